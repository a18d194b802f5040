//! Helpers for tests that use the rig: run the real kubectl against it (bounded in time, with a
//! private discovery cache so runs never share kubectl's `~/.kube/cache`), check that kubectl
//! is installed (a failure instead of a skip when CI=true), and find what a test process left
//! behind — rig cgroups named with this process's pid anywhere under /sys/fs/cgroup, and live
//! demo-service children of this process — to assert a clean drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::SimCluster;

const KUBECTL_TIMEOUT: Duration = Duration::from_secs(20);

/// Whether the real kubectl is installed; with CI=true a missing kubectl panics.
pub fn kubectl_available(test: &str) -> bool {
    let ok = Command::new("kubectl")
        .args(["version", "--client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test}: CI=true but kubectl is not installed");
        }
        eprintln!("note: {test} not run: kubectl is not installed");
    }
    ok
}

/// Exit code, stdout and stderr of a finished command, for assertion messages.
pub fn output_text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `kubectl --kubeconfig K --cache-dir C ARGS…`; panics when it runs longer than 20 s.
pub fn run_kubectl(kubeconfig: &Path, cache_dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache_dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kubectl");
    let deadline = Instant::now() + KUBECTL_TIMEOUT;
    while child.try_wait().expect("wait for kubectl").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("kubectl output");
            panic!("kubectl {args:?} hung:\n{}", output_text(&out));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("kubectl output")
}

impl SimCluster {
    /// Run kubectl against this cluster (its kubeconfig, a cache dir of its own).
    pub fn kubectl(&self, args: &[&str]) -> Output {
        run_kubectl(&self.kubeconfig, &self.dir.path().join("kube-cache"), args)
    }

    /// kubectl that must succeed; its stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{}",
            output_text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// kubectl that must succeed and print JSON (`-o json`).
    pub fn kubectl_json(&self, args: &[&str]) -> serde_json::Value {
        let text = self.kubectl_ok(args);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("kubectl {args:?}: not JSON ({e}):\n{text}"))
    }

    /// The rig's temp dir (kubeconfig, kubectl cache, container logs), for test files.
    pub fn work_dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Rig cgroups (`oomgate-sim-…-<this pid>-…`) that still exist anywhere under /sys/fs/cgroup.
pub fn leftover_cgroups() -> Vec<PathBuf> {
    let me = std::process::id().to_string();
    // `oomgate-<hint>-<pid>-<n>`: the second-to-last dash-separated part is the creator's pid.
    let mine = |name: &str| {
        name.starts_with("oomgate-sim-") && name.rsplit('-').nth(1) == Some(me.as_str())
    };
    let mut found = Vec::new();
    let mut stack = vec![(PathBuf::from("/sys/fs/cgroup"), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let name = e.file_name().to_string_lossy().to_string();
            if mine(&name) {
                found.push(e.path());
            } else if depth < 6 {
                stack.push((e.path(), depth + 1));
            }
        }
    }
    found
}

/// Live (or unreaped) children of this process that run the demo service.
pub fn leftover_demo_processes() -> Vec<u32> {
    let me = std::process::id();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == Some(me) && String::from_utf8_lossy(&cmd).contains("demo-service") {
            found.push(pid);
        }
    }
    found
}
