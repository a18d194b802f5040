//! Soak (issue 7, point 7): the real `oomgate run` samples a 3-replica deployment of the
//! simulated cluster every second for `OOMGATE_SOAK_SECONDS` (default 60 s, so it runs with the
//! normal suite; `scripts/soak` sets 600) while this test reads the gate's own VmRSS from
//! `/proc/<pid>/status` every second, and which samples the rig's metrics API publishes (every
//! 50 ms). It asserts exit 0, about one tick a second, one sample per tick with data for the
//! container of every pod, that no sample the API published during the run was missed, and that
//! the gate's RSS between the end of the first 20 % and the end of the run grows by less than
//! 8 MiB; the RSS timeline and the coverage are printed always.
//!
//! Coverage (`memory.ticks_with_data / memory.ticks`) must be exactly 100 %. PodMetrics
//! timestamps are whole seconds (metav1.Time, as from a real metrics-server) and the rig's
//! refresh drifts against the gate's 1 s ticks, so now and then a tick finds no sample newer than
//! the previous tick's; the sampler counts such a tick covered because the sample it repeats is
//! still the source's current one (see src/memory/sampler.rs). The no-loss check makes sure that
//! is all it is: every sample the API published during the run was taken.

use crate::support;

use std::collections::HashMap;
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::support::cluster::{
    require_cgroups, ClusterConfig, ContainerTemplate, PodTemplate, SimCluster, MI,
};

/// Allowed RSS growth of the gate from the end of the first 20 % of the run to its end.
const MAX_GROWTH_KIB: i64 = 8 * 1024;

/// The rig's PodMetrics refresh (`OOMGATE_SOAK_RESOLUTION_MS` overrides it). Every PodMetrics
/// timestamp is whole seconds (metav1.Time), and the sampler takes a sample as fresh only when
/// its timestamp moved.
fn metrics_resolution() -> Duration {
    let ms = std::env::var("OOMGATE_SOAK_RESOLUTION_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1000);
    Duration::from_millis(ms.max(100))
}

fn soak_seconds() -> u64 {
    std::env::var("OOMGATE_SOAK_SECONDS")
        .ok()
        .map(|v| {
            v.trim()
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("OOMGATE_SOAK_SECONDS={v:?} is not a whole number"))
        })
        .unwrap_or(60)
        .max(10)
}

/// VmRSS of a live process in KiB.
fn vm_rss_kib(pid: u32) -> Option<i64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Drain a pipe on a thread so the child never blocks on a full pipe.
fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Wait for the gate to exit (killing it and failing past `limit`), reading its VmRSS about
/// once a second into `rss` as (seconds since `started`, KiB).
fn wait_sampling_rss(
    child: &mut Child,
    started: Instant,
    limit: Duration,
    rss: &mut Vec<(f64, i64)>,
) -> ExitStatus {
    let pid = child.id();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("oomgate did not finish within {limit:?}");
        }
        // From the first second on: before that the process may not have loaded yet.
        if let Some(kib) = vm_rss_kib(pid).filter(|_| started.elapsed() >= Duration::from_secs(1)) {
            rss.push((started.elapsed().as_secs_f64(), kib));
        }
        // Sleep up to a second, but notice the exit promptly.
        let tick = Instant::now();
        while tick.elapsed() < Duration::from_secs(1) && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn the_soak() {
    if !require_cgroups("the_soak") {
        return;
    }
    let secs = soak_seconds();
    let cluster = SimCluster::start(ClusterConfig {
        metrics_resolution: metrics_resolution(),
        ..ClusterConfig::default()
    });
    let tpl = PodTemplate::app(
        ContainerTemplate::app(256 * MI)
            .request(64 * MI)
            .env("DEMO_BASELINE", "24Mi"),
    );
    cluster.add_deployment("web", 3, tpl);
    assert!(
        cluster.wait_ready("web", Duration::from_secs(30)),
        "web never became ready"
    );
    // metrics-server lists a pod only after its first scrapes.
    std::thread::sleep(Duration::from_millis(2500));
    let pods = cluster.pod_names("web");
    assert_eq!(pods.len(), 3);

    let ramp = (secs / 10).max(2);
    let hold = secs - ramp;
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("scenario.yaml");
    std::fs::write(
        &scenario,
        format!(
            r#"name: soak
target: {{ url: "{url}" }}
load:
  stages: [{{ duration: {ramp}s, users: 3 }}, {{ duration: {hold}s, users: 3 }}]
  requests:
    - {{ name: work, path: /api/work, expect_status: 200 }}
  think_time: 100ms..300ms
workload:
  kubernetes:
    namespace: {ns}
    deployment: web
    containers: [app]
memory:
  source: metrics-api
  interval: 1s
policy:
  headroom: 20%
"#,
            url = cluster.service_url("web"),
            ns = cluster.namespace(),
        ),
    )
    .unwrap();
    let out = dir.path().join("report");
    let mut child = Command::new(support::oomgate())
        .args(["run", scenario.to_str().unwrap(), "--out"])
        .arg(&out)
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig_path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn oomgate");
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());

    // (seconds since start, VmRSS KiB) of the gate itself, once a second.
    let started = Instant::now();
    let limit = Duration::from_secs(secs + 120);
    let mut rss: Vec<(f64, i64)> = Vec::new();
    // Every sample the metrics API published while the gate ran: (pod, timestamp second) → when
    // this test first saw it served (polled every 50 ms).
    let stop = AtomicBool::new(false);
    let mut published: HashMap<(String, i64), DateTime<Utc>> = HashMap::new();
    let status = std::thread::scope(|scope| {
        let observer = scope.spawn(|| {
            let mut seen: HashMap<(String, i64), DateTime<Utc>> = HashMap::new();
            let deadline = Instant::now() + limit + Duration::from_secs(10);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let now = Utc::now();
                for stamp in cluster.pod_metrics_stamps() {
                    seen.entry(stamp).or_insert(now);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            seen
        });
        let status = wait_sampling_rss(&mut child, started, limit, &mut rss);
        stop.store(true, Ordering::Relaxed);
        published = observer.join().unwrap();
        status
    });
    let stdout = String::from_utf8_lossy(&stdout.join().unwrap()).to_string();
    let stderr = String::from_utf8_lossy(&stderr.join().unwrap()).to_string();
    let all = format!(
        "exit: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        status.code()
    );

    // The RSS timeline, always printed.
    assert!(rss.len() >= 5, "too few RSS readings: {rss:?}\n{all}");
    let run_secs = rss.last().unwrap().0;
    let mark = rss
        .iter()
        .find(|(t, _)| *t >= run_secs * 0.2)
        .copied()
        .unwrap_or(rss[0]);
    let first = rss[0];
    let last = *rss.last().unwrap();
    let min = rss.iter().map(|r| r.1).min().unwrap();
    let max = rss.iter().map(|r| r.1).max().unwrap();
    let growth = last.1 - mark.1;
    let minutes = ((last.0 - mark.0) / 60.0).max(1.0 / 60.0);
    eprintln!(
        "soak: {secs} s of load, metrics resolution {:?}, {} RSS readings over {run_secs:.0} s; oomgate VmRSS KiB: first {} min {min} max {max} last {}; at 20 % ({:.0} s) {}; growth after 20 %: {growth} KiB ({:.1} KiB/min)",
        metrics_resolution(),
        rss.len(),
        first.1,
        last.1,
        mark.0,
        mark.1,
        growth as f64 / minutes
    );

    assert_eq!(status.code(), Some(0), "{all}");
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("report.json")).expect("report.json"),
    )
    .unwrap();
    let memory = &report["memory"];
    let ticks = memory["ticks"].as_u64().unwrap();
    let with_data = memory["ticks_with_data"].as_u64().unwrap();
    let c = &report["containers"][0];
    let samples = c["samples"].as_u64().unwrap();
    eprintln!(
        "soak: ticks {ticks}, ticks with data {with_data}, coverage {}; container app: {samples} samples over pods {}",
        memory["coverage"], c["pods"]
    );
    assert!(
        ticks >= secs * 95 / 100,
        "about one tick a second over {secs} s: {memory}"
    );
    assert_eq!(report["containers"].as_array().unwrap().len(), 1);
    let mut seen: Vec<String> = c["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    seen.sort();
    let mut want = pods.clone();
    want.sort();
    assert_eq!(seen, want, "all three pods sampled");
    assert_eq!(
        with_data, ticks,
        "coverage 100 %: every tick brought a fresh or still-current sample ({memory})"
    );
    // A pod gets at most one fresh sample per tick (the sampler dedups by timestamp).
    assert!(
        samples <= 3 * ticks,
        "at most one sample per pod per tick: {samples} samples in {ticks} ticks"
    );
    // No sample lost: every sample the metrics API published while the gate ran (first served
    // after the run started and at least 300 ms before it ended, so a poll came after it) was
    // taken.
    let at = |k: &str| {
        DateTime::parse_from_rfc3339(report[k].as_str().unwrap())
            .unwrap()
            .with_timezone(&Utc)
    };
    let (from, to) = (
        at("started_at"),
        at("ended_at") - chrono::Duration::milliseconds(300),
    );
    let mut published_in_run = 0;
    for pod in &pods {
        let in_run = published
            .iter()
            .filter(|((p, _), first_seen)| p == pod && **first_seen > from && **first_seen < to)
            .count() as u64;
        eprintln!("soak: pod {pod}: {in_run} samples published during the run");
        published_in_run += in_run;
    }
    assert!(
        samples >= published_in_run,
        "{published_in_run} samples published during the run but only {samples} taken: samples were lost ({memory})"
    );
    assert!(
        growth < MAX_GROWTH_KIB,
        "oomgate's RSS grew {growth} KiB after the first 20 % (bound {MAX_GROWTH_KIB} KiB)"
    );
}
