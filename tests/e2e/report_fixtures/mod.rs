//! The runs the report tests render, shared by `reports_render.rs` and `reports_analysis.rs`:
//! a realistic 14-minute run of two pods (a GC sawtooth that follows the users, a leak through
//! the 200-user hold ending in an OOM kill, a VPA recommendation, a baseline 30 % lower, a Node
//! heap flag, an expected peak load), the same run with hostile names, and the helpers that find
//! and run the real consumers (Python's xml.etree and prometheus_client, headless Chromium).
//! Missing tools fail under `CI=true` and are noted and skipped otherwise.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use oomgate::judge::evaluate;
use oomgate::model::{Baseline, BaselineContainer};
use oomgate::model::{
    ContainerSeries, LoadStats, LowConfidencePolicy, MemoryMeta, Policy, RequestStats,
    RestartEvent, RestartReason, Run, Sample, Stage, StageWindow, Timestamp, VpaContainer, VpaRule,
    VpaStatus,
};
use oomgate::report::{all_file_reporters, ReportView};

pub const MIB: u64 = 1024 * 1024;
pub const GIB: u64 = 1024 * MIB;
pub const POD_A: &str = "checkout-api-7d9f6c5b8-x2k4p";
pub const POD_B: &str = "checkout-api-7d9f6c5b8-q7m2n";

pub fn at(secs: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2025, 3, 14, 12, 0, 0).unwrap() + chrono::Duration::seconds(secs)
}

/// The plan of the design's example: ramp to 100 (2 min), hold (5 min), ramp to 200 (2 min),
/// hold (5 min).
pub fn plan() -> Vec<StageWindow> {
    let steps = [
        (0, 100, 120),
        (100, 100, 300),
        (100, 200, 120),
        (200, 200, 300),
    ];
    let mut end = 0;
    let window = |(index, &(from_users, to_users, secs)): (usize, &(u32, u32, i64))| {
        end += secs;
        let duration = Duration::from_secs(secs as u64);
        let stage = Stage {
            index,
            from_users,
            to_users,
            duration,
        };
        StageWindow {
            stage,
            start: at(end - secs),
            end: at(end),
        }
    };
    steps.iter().enumerate().map(window).collect()
}

/// The planned users `t` seconds into the run.
pub fn users_at(t: i64) -> f64 {
    let t = t as f64;
    match t {
        ..120.0 => t / 120.0 * 100.0,
        ..420.0 => 100.0,
        ..540.0 => 100.0 + (t - 420.0) / 120.0 * 100.0,
        _ => 200.0,
    }
}

/// Deterministic noise in −1..1.
pub fn noise(i: i64, seed: u64) -> f64 {
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed;
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    (x % 20_001) as f64 / 10_000.0 - 1.0
}

pub fn series(
    pod: &str,
    name: &str,
    limit: u64,
    request: u64,
    mib: Vec<(i64, f64)>,
) -> ContainerSeries {
    let mut s = ContainerSeries::new(pod, name);
    (s.limit, s.request) = (Some(limit), Some(request));
    let sample = |(t, mib): (i64, f64)| Sample {
        at: at(t),
        working_set: (mib * MIB as f64) as u64,
    };
    s.samples = mib.into_iter().map(sample).collect();
    s
}

/// A 14-minute run of two pods of `checkout-api` (app 1 GiB limit, envoy 256 MiB): memory
/// follows the users with a GC sawtooth; pod q7m2n leaks in the 200-user hold, reaches its
/// limit and is OOM-killed at 12:13:00, then restarts low. The VPA recommends 640 MiB for app.
pub fn realistic() -> (Run, Policy) {
    let lagged = |t: i64| users_at((t - 20).max(0));
    let app = |t: i64, pod: u64| {
        170.0
            + 2.3 * lagged(t)
            + 38.0 * (((t as f64 + pod as f64 * 17.0) % 45.0) / 45.0)
            + 6.0 * noise(t, pod)
    };
    let ticks: Vec<i64> = (0..=168).map(|i| i * 5).collect();
    let a: Vec<(i64, f64)> = ticks.iter().map(|&t| (t, app(t, 1))).collect();
    let b: Vec<(i64, f64)> = (ticks.iter().filter(|&&t| t != 785))
        .map(|&t| match t {
            ..=780 => (t, (app(t, 2) + (t - 560).max(0) as f64 * 1.45).min(1022.0)),
            // Restarted at 12:13:02: a cold process warming up.
            _ => (t, 215.0 + (t - 780) as f64 * 2.0 + 4.0 * noise(t, 9)),
        })
        .collect();
    let envoy = |pod: u64| -> Vec<(i64, f64)> {
        ticks
            .iter()
            .map(|&t| (t, 38.0 + 0.13 * lagged(t) + 2.5 * noise(t, 40 + pod)))
            .collect()
    };
    let run = Run {
        scenario: "checkout-api".into(),
        started_at: at(0),
        ended_at: at(840),
        stages: plan(),
        containers: vec![
            series(POD_A, "app", GIB, 512 * MIB, a),
            series(POD_A, "envoy", 256 * MIB, 64 * MIB, envoy(1)),
            series(POD_B, "app", GIB, 512 * MIB, b),
            series(POD_B, "envoy", 256 * MIB, 64 * MIB, envoy(2)),
        ],
        restarts: vec![RestartEvent {
            pod: POD_B.into(),
            container: "app".into(),
            at: at(782),
            reason: RestartReason::OomKilled,
            exit_code: Some(137),
        }],
        load: LoadStats {
            driver: "goose".into(),
            latency_measure: "time to first byte".into(),
            requests: 212_400,
            failures: 318,
            rps: 252.9,
            p50_ms: 21.0,
            p95_ms: 148.0,
            p99_ms: 410.0,
            max_ms: 2350.0,
            per_request: vec![
                request("list users", 159_300, 118),
                request("POST /api/orders", 53_100, 200),
            ],
            status_codes: [(200, 212_082), (503, 318)].into_iter().collect(),
            ..LoadStats::default()
        },
        memory: MemoryMeta {
            source: "metrics-api".into(),
            interval: Duration::from_secs(5),
            ticks: 169,
            ticks_with_data: 169,
            limit_enforced: true,
            notes: Vec::new(),
        },
        ended_early: None,
        workload: "deployment/checkout-api in staging".into(),
        vpa: Some(VpaStatus::Recommendation {
            name: "checkout-api".into(),
            low_confidence: false,
            containers: vec![vpa("app", 640, 480, 900), vpa("envoy", 72, 48, 128)],
        }),
        notes: Vec::new(),
        baseline: Some(Baseline {
            path: "main/oomgate-report/report.json".into(),
            scenario: "checkout-api".into(),
            started_at: Some(at(-86_400)),
            verdict: Some("pass".into()),
            containers: vec![baseline_peak("app", 780), baseline_peak("envoy", 66)],
            driver: Some("goose".into()),
            p95_ms: Some(141.0),
        }),
        env: vec![("app".into(), vec![("GOMEMLIMIT".into(), "1000MiB".into())])],
    };
    let policy = Policy {
        expected_peak_users: Some(300),
        max_p95: Some(Duration::from_millis(500)),
        max_error_rate: Some(0.01),
        vpa: Some(VpaRule {
            tolerance: 0.2,
            low_confidence: LowConfidencePolicy::Warn,
        }),
        ..Policy::default()
    };
    (run, policy)
}

/// A container of the baseline report with this peak (MiB) under a 1 GiB limit.
pub fn baseline_peak(container: &str, mib: u64) -> BaselineContainer {
    BaselineContainer {
        container: container.into(),
        peak_bytes: Some(mib * MIB),
        limit_bytes: Some(GIB),
        suggested_limit_bytes: None,
    }
}

pub fn request(name: &str, requests: u64, failures: u64) -> RequestStats {
    let mut r = RequestStats::default();
    (r.name, r.requests, r.failures) = (name.into(), requests, failures);
    (r.p50_ms, r.p95_ms, r.p99_ms, r.max_ms) = (20.0, 150.0, 400.0, 2000.0);
    r
}

pub fn vpa(container: &str, target: u64, lower: u64, upper: u64) -> VpaContainer {
    VpaContainer {
        container: container.into(),
        target: Some(target * MIB),
        lower_bound: Some(lower * MIB),
        upper_bound: Some(upper * MIB),
        uncapped_target: Some(target * MIB),
    }
}

/// The realistic run with names from a hostile outside world.
pub fn hostile() -> (Run, Policy) {
    let (mut run, policy) = realistic();
    let evil = "<script>alert(1)</script>\"quoted\" 'single' & \x1b[31mred\nline2";
    run.scenario = format!("checkout {evil}");
    run.workload = format!("deployment/{evil} in <b>staging</b>");
    for c in &mut run.containers {
        c.pod = format!("{}<img src=x onerror=alert(2)>", c.pod);
        if c.container == "app" {
            c.container = format!("app{evil}");
        }
    }
    run.restarts[0].pod = format!("{}<img src=x onerror=alert(2)>", run.restarts[0].pod);
    run.restarts[0].container = format!("app{evil}");
    run.load.per_request[0].name = "GET /?q=<svg onload=alert(3)>|`x`".into();
    run.notes = vec![format!("note {evil}")];
    run.env = vec![(
        format!("app{evil}"),
        vec![(
            "NODE_OPTIONS".into(),
            "--title=<script>alert(5)</script> --max-old-space-size=900".into(),
        )],
    )];
    if let Some(b) = &mut run.baseline {
        b.path = "prev/<img src=x onerror=alert(4)>.json".into();
        b.scenario = format!("base {evil}");
        b.containers[0].container = format!("app{evil}");
    }
    if let Some(VpaStatus::Recommendation {
        name, containers, ..
    }) = &mut run.vpa
    {
        *name = format!("vpa{evil}");
        containers[0].container = format!("app{evil}");
    }
    (run, policy)
}

pub fn view_of((run, policy): (Run, Policy)) -> ReportView {
    let verdict = evaluate(&policy, &run);
    ReportView::build(&run, &verdict, &policy)
}

/// Every file format written into `dir`, as `--out` does.
pub fn write_all(view: &ReportView, dir: &Path) {
    for r in all_file_reporters() {
        let mut bytes = Vec::new();
        r.render(view, &mut bytes).unwrap();
        assert!(!bytes.is_empty(), "{} is empty", r.file_name());
        std::fs::write(dir.join(r.file_name()), bytes).unwrap();
    }
}

pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Whether a needed tool is there; without it: a panic under CI=true, else a note.
pub fn have(ok: bool, what: &str, install: &str) -> bool {
    if !ok {
        assert!(!ci(), "{what} is required under CI=true ({install})");
        eprintln!("note: {what} is missing ({install}); skipping this check");
    }
    ok
}

pub fn have_python() -> bool {
    let ok = python_module("xml.etree.ElementTree");
    have(ok, "python3", "apt-get install python3")
}

pub fn have_chromium() -> bool {
    have(
        Path::new(CHROMIUM).exists(),
        "chromium",
        "apt-get install chromium",
    )
}

pub fn python_module(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs a Python snippet with `args`; returns its stdout; panics with stderr when it fails.
pub fn python(code: &str, args: &[&Path]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const FLAGS: &str = "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --hide-scrollbars \
    --force-device-scale-factor=1 --enable-logging=stderr --v=0";

/// Runs headless Chromium on `page` with `extra` flags and a fresh profile; returns (stdout, stderr).
pub fn chromium(page: &Path, extra: &[String]) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("timeout")
        .arg("120")
        .arg(CHROMIUM)
        .args(FLAGS.split_whitespace())
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Console messages (errors, uncaught exceptions, CSP violations) Chromium logged about `page`.
pub fn console_errors(stderr: &str, page: &Path) -> Vec<String> {
    let url = format!("file://{}", page.display());
    stderr
        .lines()
        .filter(|l| (l.contains("CONSOLE") || l.contains("Uncaught")) && l.contains(&url))
        .map(String::from)
        .collect()
}

pub fn screenshot(page: &Path, png: &Path, size: (u32, u32)) {
    chromium(
        page,
        &[
            format!("--screenshot={}", png.display()),
            format!("--window-size={},{}", size.0, size.1),
        ],
    );
    let bytes = std::fs::read(png).expect("the screenshot exists");
    assert!(bytes.starts_with(b"\x89PNG"), "{} is a PNG", png.display());
    assert!(
        bytes.len() > 10_000,
        "{} is not blank: {} bytes",
        png.display(),
        bytes.len()
    );
}
