//! Test rigs shared by the integration tests: run the real `oomgate` binary, write scenarios
//! for the real demo service into temp dirs, read the reports back, and insist on cgroups when
//! CI=true (a test that needs them fails there instead of skipping).

#![allow(dead_code)]

pub mod auth_proxy;
pub mod cluster;
pub mod prometheus;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn oomgate() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_oomgate"))
}

/// Whether this machine lets us create memory cgroups. In CI a missing capability is a failure.
pub fn require_cgroups() -> bool {
    let ok = Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists()
        || std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .is_ok_and(|c| c.contains("memory"));
    let root = unsafe { libc_geteuid() } == 0;
    if ok && root {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("this test needs root and a memory cgroup controller, and CI=true: failing instead of skipping");
    }
    eprintln!("note: skipping: needs root and a memory cgroup controller");
    false
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A temp dir with a scenario file in it.
pub struct Case {
    pub dir: tempfile::TempDir,
    pub scenario: PathBuf,
    pub port: u16,
}

impl Case {
    /// `body` is the scenario YAML; `{PORT}` and `{BIN}` are filled in.
    pub fn new(body: &str) -> Case {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let text = body
            .replace("{PORT}", &port.to_string())
            .replace("{BIN}", &oomgate().display().to_string());
        let scenario = dir.path().join("scenario.yaml");
        std::fs::write(&scenario, text).unwrap();
        Case {
            dir,
            scenario,
            port,
        }
    }

    pub fn out_dir(&self) -> PathBuf {
        self.dir.path().join("report")
    }

    /// `oomgate run <scenario> --out <dir> [extra]`, bounded in time.
    pub fn run(&self, extra: &[&str]) -> Output {
        self.run_with_env(extra, &[])
    }

    /// [`Case::run`] with extra environment variables for the gate (set on its command, not in
    /// this process: the tests of the crate share one process under `cargo test`).
    pub fn run_with_env(&self, extra: &[&str], env: &[(&str, &str)]) -> Output {
        let mut args: Vec<String> = vec![
            "run".into(),
            self.scenario.display().to_string(),
            "--out".into(),
            self.out_dir().display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        run_bounded(
            Command::new(oomgate())
                .args(&args)
                .envs(env.iter().copied()),
            Duration::from_secs(90),
        )
    }

    pub fn report(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.out_dir().join("report.json"))
            .expect("report.json written");
        serde_json::from_str(&text).expect("report.json is JSON")
    }
}

/// Run a command with a deadline; kill it when the deadline passes (and fail the test).
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn oomgate");
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "oomgate did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn text(o: &Output) -> String {
    format!(
        "exit: {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The findings of a report with the given rule and severity.
pub fn findings<'a>(
    report: &'a serde_json::Value,
    rule: &str,
    severity: &str,
) -> Vec<&'a serde_json::Value> {
    report["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|f| f["rule"] == rule && f["severity"] == severity)
                .collect()
        })
        .unwrap_or_default()
}

/// Cgroups named oomgate-* left behind (v1 or v2) by an oomgate process that has exited, under
/// this test's own memory cgroup: oomgate nests its cgroups under the cgroup it runs in, which is
/// the test's (several levels deep at most). Other process trees on the machine (a second
/// checkout's tests, a killed shell) are not this test's business. A cgroup is named
/// `oomgate-<hint>-<pid>-<n>`; one whose process still runs belongs to a test running in
/// parallel and is not a leftover.
pub fn leftover_cgroups() -> Vec<String> {
    let mut left = Vec::new();
    let mut stack: Vec<(PathBuf, usize)> = own_cgroup_dirs().into_iter().map(|d| (d, 0)).collect();
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with("oomgate-") {
                if !owner_alive(&name) {
                    left.push(e.path().display().to_string());
                }
            } else if depth < 6 {
                stack.push((e.path(), depth + 1));
            }
        }
    }
    left
}

/// This process's memory cgroup directories, from /proc/self/cgroup: the v1 `memory` hierarchy
/// and the v2 unified one, whichever exist; the whole /sys/fs/cgroup when neither can be read.
fn own_cgroup_dirs() -> Vec<PathBuf> {
    let table = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let dirs: Vec<PathBuf> = table
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let path = path.trim_start_matches('/');
            if controllers.split(',').any(|c| c == "memory") {
                Some(Path::new("/sys/fs/cgroup/memory").join(path))
            } else if id == "0"
                && controllers.is_empty()
                && Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
            {
                // The unified (v2) line, only where v2 is what is mounted at /sys/fs/cgroup: a
                // v1 host lists `0::/` too, which would be the whole v1 tree.
                Some(Path::new("/sys/fs/cgroup").join(path))
            } else {
                None
            }
        })
        .filter(|d| d.is_dir())
        .collect();
    let mut dirs = dirs;
    dirs.sort();
    dirs.dedup();
    if dirs.is_empty() {
        vec![PathBuf::from("/sys/fs/cgroup")]
    } else {
        dirs
    }
}

/// Whether the process named in `oomgate-<hint>-<pid>-<n>` is still alive.
fn owner_alive(name: &str) -> bool {
    let mut parts = name.rsplit('-');
    let _n = parts.next();
    match parts.next().and_then(|p| p.parse::<u32>().ok()) {
        Some(pid) => Path::new(&format!("/proc/{pid}")).exists(),
        None => false,
    }
}
