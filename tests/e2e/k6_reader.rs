//! The k6 results reader against the real k6 (v1.1.0, `scripts/install-k6`) loading the real
//! oomgate demo service: a staged run with two request names and 10 % of 500s compared with
//! k6's own `--summary-export` (plain and gzip output of the same run), two k6 processes side
//! by side merged, a cut-off file, a corrupted line, and a real file rewritten with other key
//! orders and time offsets. Without k6 the tests note it and pass, except under CI=true.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use oomgate::k6::{read_files, summarize, K6Error, K6Summary, ReadOptions, StageOrigin};
use serde_json::Value;

fn k6_available() -> bool {
    let ok = Command::new("k6")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("k6 is not installed (scripts/install-k6 installs it)");
        }
        eprintln!("k6 is not installed; skipping (scripts/install-k6 installs it)");
    }
    ok
}

/// The demo service on a free loopback port; killed on drop.
struct Demo {
    child: Child,
    base: String,
}

impl Demo {
    fn start() -> Demo {
        let mut child = Command::new(env!("CARGO_BIN_EXE_oomgate"))
            .args([
                "demo-service",
                "--listen",
                "127.0.0.1:0",
                "--fail-ratio",
                "0.1",
            ])
            .args(["--baseline", "1Mi"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the demo service");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("reading the demo service's first line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Demo {
            child,
            base: format!("http://{addr}"),
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `k6 run` on `script` (written into `dir`) with extra arguments; returns its exit code.
fn k6_spawn(dir: &Path, script: &str, base: &str, args: &[String]) -> Child {
    let path = dir.join(format!("script-{}.js", args.len()));
    std::fs::write(&path, script).unwrap();
    Command::new("k6")
        .args(["run", "-q", "--no-color", "--no-usage-report"])
        .args(args)
        .arg(&path)
        .env("BASE", base)
        .env("K6_NO_USAGE_REPORT", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting k6")
}

fn k6_wait(child: Child) {
    let out = child.wait_with_output().expect("waiting for k6");
    assert!(
        out.status.success(),
        "k6 failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn arg(flag: &str, path: &Path) -> String {
    format!("{flag}={}", path.display())
}

const STAGED: &str = r#"
import http from 'k6/http';
import { check, sleep } from 'k6';
export const options = {
  stages: [
    { duration: '2s', target: 4 },
    { duration: '4s', target: 4 },
    { duration: '2s', target: 0 },
  ],
  thresholds: {
    'http_req_duration': ['p(95)<5000'],
    'http_reqs{name:list}': ['count>0'],
    'http_reqs{name:order}': ['count>0'],
    'http_req_duration{name:order}': ['p(95)<5000'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
};
export default function () {
  const r = http.get(`${__ENV.BASE}/api/list`, { tags: { name: 'list' } });
  check(r, { 'list answered': (x) => x.status > 0 });
  http.post(`${__ENV.BASE}/api/order`, '{"sku":"A1"}',
    { tags: { name: 'order' }, headers: { 'Content-Type': 'application/json' } });
  sleep(0.01);
}
"#;

fn within(ours: f64, k6: f64, tolerance: f64, what: &str) {
    let err = (ours - k6).abs() / k6.abs().max(1e-9);
    assert!(
        err <= tolerance,
        "{what}: oomgate {ours} vs k6 {k6} ({:.3} %)",
        err * 100.0
    );
}

fn metric<'a>(export: &'a Value, name: &str) -> &'a Value {
    &export["metrics"][name]
}

fn num(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// Without the reading-side counters, which differ between plain and gzip input.
fn comparable(mut s: K6Summary) -> K6Summary {
    s.sources.clear();
    s.stats.fallback_lines = 0;
    s
}

// (a) + (b): a staged run with two names and 10 % of 500s, written plain and gzipped at once.
#[test]
fn staged_run_agrees_with_k6s_own_summary_plain_and_gzip() {
    if !k6_available() {
        return;
    }
    let started = Instant::now();
    let demo = Demo::start();
    let dir = tempfile::tempdir().unwrap();
    let (plain, gz, export) = (
        dir.path().join("out.json"),
        dir.path().join("out.json.gz"),
        dir.path().join("summary.json"),
    );
    let args = [
        arg("--out=json", &plain),
        arg("--out=json", &gz),
        arg("--summary-export", &export),
    ];
    k6_wait(k6_spawn(dir.path(), STAGED, &demo.base, &args));
    drop(demo);
    let k6: Value = serde_json::from_slice(&std::fs::read(&export).unwrap()).unwrap();

    let agg = read_files(&[&plain], &ReadOptions::default()).unwrap();
    let s = summarize(&agg, None);
    // the request count equals k6's exactly; avg, p90, p95 and max within 1 %
    let reqs = metric(&k6, "http_reqs");
    assert_eq!(s.requests as f64, num(reqs, "count"));
    assert!(
        s.requests > 200,
        "too few requests for a meaningful comparison: {}",
        s.requests
    );
    let d = metric(&k6, "http_req_duration");
    eprintln!(
        "k6 vs oomgate: requests {} / {}; avg {} / {}; p(90) {} / {}; p(95) {} / {}; max {} / {}",
        num(reqs, "count"),
        s.requests,
        num(d, "avg"),
        s.duration.avg_ms,
        num(d, "p(90)"),
        s.duration.p90_ms,
        num(d, "p(95)"),
        s.duration.p95_ms,
        num(d, "max"),
        s.duration.max_ms
    );
    within(s.duration.avg_ms, num(d, "avg"), 0.01, "avg");
    within(s.duration.p90_ms, num(d, "p(90)"), 0.01, "p(90)");
    within(s.duration.p95_ms, num(d, "p(95)"), 0.01, "p(95)");
    within(s.duration.p99_ms, num(d, "p(99)"), 0.01, "p(99)");
    within(s.duration.med_ms, num(d, "med"), 0.01, "med");
    assert_eq!(s.duration.max_ms, num(d, "max"));
    assert_eq!(s.duration.min_ms, num(d, "min"));
    // per name
    for name in ["list", "order"] {
        let ours = s.per_request.iter().find(|r| r.name == name).unwrap();
        let theirs = metric(&k6, &format!("http_reqs{{name:{name}}}"));
        assert_eq!(ours.requests as f64, num(theirs, "count"), "{name}");
    }
    let order = s.per_request.iter().find(|r| r.name == "order").unwrap();
    within(
        order.duration.p95_ms,
        num(metric(&k6, "http_req_duration{name:order}"), "p(95)"),
        0.02,
        "order p(95)",
    );
    // 500s: the demo service fails every tenth request; http_req_failed counts them
    let fivehundreds = s.status_codes.get(&500).copied().unwrap_or(0);
    let share = fivehundreds as f64 / s.requests as f64;
    assert!((0.09..=0.11).contains(&share), "500 share {share}");
    assert_eq!(s.failures, fivehundreds);
    assert_eq!(
        s.failures as f64,
        num(metric(&k6, "http_req_failed"), "passes")
    );
    assert_eq!(s.iterations as f64, num(metric(&k6, "iterations"), "count"));
    assert_eq!(s.checks_passed as f64, num(metric(&k6, "checks"), "passes"));
    assert_eq!(s.max_vus as f64, num(metric(&k6, "vus_max"), "max"));
    assert_eq!(
        s.metrics["http_req_duration"].thresholds,
        vec!["p(95)<5000".to_string()]
    );
    // stages: reconstructed ramp / hold / ramp from vus, declared ones placed from the first point
    assert_eq!(s.stage_origin, StageOrigin::Reconstructed);
    let kinds: Vec<(u32, u32)> = s
        .stages
        .iter()
        .map(|st| (st.window.stage.from_users, st.window.stage.to_users))
        .collect();
    assert!(kinds.contains(&(4, 4)), "no hold at 4 users in {kinds:?}");
    assert_eq!(
        s.stages.iter().map(|st| st.requests).sum::<u64>(),
        s.requests
    );
    let declared = [
        (Duration::from_secs(2), 4),
        (Duration::from_secs(4), 4),
        (Duration::from_secs(2), 0),
    ];
    let sd = summarize(&agg, Some(&declared));
    assert_eq!(sd.stages.len(), 3);
    assert_eq!(
        sd.stages.iter().map(|st| st.requests).sum::<u64>(),
        s.requests
    );
    assert!(sd.stages[1].requests > sd.stages[0].requests);
    assert!(sd.stages[1].requests > sd.stages[2].requests);
    let load = s.load_stats();
    assert_eq!((load.driver.as_str(), load.requests), ("k6", s.requests));

    // (b) the gzipped output of the same run reads the same
    let g = summarize(&read_files(&[&gz], &ReadOptions::default()).unwrap(), None);
    assert_eq!(comparable(g), comparable(s.clone()));
    // and serde_json on every line agrees with the fast path
    let slow = ReadOptions {
        force_slow_path: true,
        ..ReadOptions::default()
    };
    let sl = summarize(&read_files(&[&plain], &slow).unwrap(), None);
    assert_eq!(comparable(sl), comparable(s));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

const CONSTANT: &str = r#"
import http from 'k6/http';
import { sleep } from 'k6';
export const options = { vus: 2, duration: '3s' };
export default function () {
  http.get(`${__ENV.BASE}/api/item`, { tags: { name: 'item' } });
  sleep(0.02);
}
"#;

fn count_k6_requests(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| l.contains(r#""metric":"http_reqs","type":"Point""#) && l.ends_with('}'))
        .count() as u64
}

/// Runs k6 with CONSTANT into `out` (a fresh service per call is not needed).
fn constant_run(dir: &Path, base: &str, name: &str) -> (Child, PathBuf) {
    let out = dir.join(name);
    let sub = dir.join(format!("{name}.d"));
    std::fs::create_dir_all(&sub).unwrap();
    let child = k6_spawn(
        &sub,
        CONSTANT,
        base,
        &[format!("--out=json={}", out.display())],
    );
    (child, out)
}

// (c) two k6 processes side by side, each with its own file, merged.
#[test]
fn parallel_runners_merge_on_one_timeline() {
    if !k6_available() {
        return;
    }
    let demo = Demo::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, fa) = constant_run(dir.path(), &demo.base, "a.json");
    std::thread::sleep(Duration::from_millis(1500));
    let (b, fb) = constant_run(dir.path(), &demo.base, "b.json");
    k6_wait(a);
    k6_wait(b);
    drop(demo);
    let opts = ReadOptions::default();
    let sa = summarize(&read_files(&[&fa], &opts).unwrap(), None);
    let sb = summarize(&read_files(&[&fb], &opts).unwrap(), None);
    let both = summarize(&read_files(&[&fa, &fb], &opts).unwrap(), None);
    assert_eq!(sa.requests, count_k6_requests(&fa));
    assert_eq!(both.requests, sa.requests + sb.requests);
    assert_eq!(both.duration.count, sa.duration.count + sb.duration.count);
    assert_eq!(both.first_point, sa.first_point.min(sb.first_point));
    assert_eq!(both.last_point, sa.last_point.max(sb.last_point));
    assert!(both.last_point.unwrap() - both.first_point.unwrap() > chrono::Duration::seconds(4));
    // the overlapping seconds run 2 + 2 VUs
    assert_eq!(both.max_vus, 4);
    assert_eq!(both.sources.len(), 2);
    let total = both.status_codes.values().sum::<u64>();
    assert_eq!(total, both.requests);
}

// (d) a file cut mid-line, (e) a corrupted line in the middle.
#[test]
fn cut_off_and_corrupted_files() {
    if !k6_available() {
        return;
    }
    let demo = Demo::start();
    let dir = tempfile::tempdir().unwrap();
    let (child, full) = constant_run(dir.path(), &demo.base, "full.json");
    k6_wait(child);
    drop(demo);
    let text = std::fs::read_to_string(&full).unwrap();
    let opts = ReadOptions::default();

    // (d) cut in the middle of an http_reqs line near the end
    let at = text.rfind(r#"{"metric":"http_reqs""#).unwrap() + 40;
    let cut = dir.path().join("cut.json");
    std::fs::write(&cut, &text[..at]).unwrap();
    let s = summarize(&read_files(&[&cut], &opts).unwrap(), None);
    assert_eq!(s.stats.truncated_lines, 1);
    assert_eq!(s.requests, count_k6_requests(&cut));
    assert_eq!(s.requests, count_k6_requests(&full) - 1);
    let complete = text[..at].matches('\n').count() as u64;
    assert_eq!(s.stats.lines, complete + 1);
    assert!(
        s.warnings[0].contains(&format!("cut.json:{}", complete + 1)),
        "{:?}",
        s.warnings
    );

    // (e) a damaged http_req_duration line in the middle
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let victim = (lines.len() / 2..)
        .find(|&i| lines[i].starts_with(r#"{"metric":"http_req_duration""#))
        .unwrap();
    lines[victim] = lines[victim].replacen("\"value\":", "\"value\":x", 1);
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let err = read_files(&[&bad], &opts).unwrap_err();
    match &err {
        K6Error::Malformed { file, line, .. } => {
            assert!(file.ends_with("bad.json"), "{err}");
            assert_eq!(*line, victim as u64 + 1, "{err}");
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(
        err.to_string()
            .contains(&format!("bad.json:{}:", victim + 1)),
        "{err}"
    );
    let lenient = ReadOptions {
        lenient: true,
        ..ReadOptions::default()
    };
    let s = summarize(&read_files(&[&bad], &lenient).unwrap(), None);
    assert_eq!(s.stats.skipped_lines, 1);
    let good = summarize(&read_files(&[&full], &opts).unwrap(), None);
    assert_eq!(s.duration.count, good.duration.count - 1);
    assert_eq!(s.requests, good.requests);
    assert!(
        s.warnings.iter().any(|w| w.contains("skipped")),
        "{:?}",
        s.warnings
    );
}

// (f) the same real points with keys in another order and times at +02:00 with 0 or 9 digits.
#[test]
fn other_key_orders_and_offsets_read_the_same() {
    if !k6_available() {
        return;
    }
    let demo = Demo::start();
    let dir = tempfile::tempdir().unwrap();
    let (child, full) = constant_run(dir.path(), &demo.base, "orig.json");
    k6_wait(child);
    drop(demo);
    let plus2 = chrono::FixedOffset::east_opt(2 * 3600).unwrap();
    let mut rewritten = String::new();
    let mut whole_seconds = String::new();
    for (i, line) in std::fs::read_to_string(&full).unwrap().lines().enumerate() {
        // serde_json without preserve_order writes keys sorted: "data" before "metric"/"type"
        let mut v: Value = serde_json::from_str(line).unwrap();
        let mut w = v.clone();
        if let Some(t) = v.pointer_mut("/data/time") {
            let at = chrono::DateTime::parse_from_rfc3339(t.as_str().unwrap()).unwrap();
            let local = at.with_timezone(&plus2);
            let fmt = if i % 2 == 0 {
                chrono::SecondsFormat::Nanos
            } else {
                chrono::SecondsFormat::AutoSi
            };
            *t = Value::String(local.to_rfc3339_opts(fmt, false));
            let truncated = local.to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
            *w.pointer_mut("/data/time").unwrap() = Value::String(truncated);
        }
        rewritten.push_str(&serde_json::to_string(&v).unwrap());
        rewritten.push('\n');
        whole_seconds.push_str(&serde_json::to_string(&w).unwrap());
        whole_seconds.push('\n');
    }
    assert!(rewritten.contains("+02:00") && rewritten.starts_with("{\"data\""));
    let other = dir.path().join("other.json");
    std::fs::write(&other, rewritten).unwrap();
    let opts = ReadOptions::default();
    let a = summarize(&read_files(&[&full], &opts).unwrap(), None);
    let b = summarize(&read_files(&[&other], &opts).unwrap(), None);
    assert!(
        b.stats.fallback_lines <= a.stats.fallback_lines,
        "{:?}",
        b.stats
    );
    let strip = |mut s: K6Summary| {
        s = comparable(s);
        s.stats.bytes = 0;
        s
    };
    assert_eq!(strip(b), strip(a.clone()));
    // whole seconds (0 fraction digits): the same counts, the window truncated to seconds
    let secs = dir.path().join("secs.json");
    std::fs::write(&secs, whole_seconds).unwrap();
    let c = summarize(&read_files(&[&secs], &opts).unwrap(), None);
    assert_eq!(c.requests, a.requests);
    assert_eq!(c.duration, a.duration);
    assert_eq!(
        c.first_point.unwrap().timestamp(),
        a.first_point.unwrap().timestamp()
    );
}
