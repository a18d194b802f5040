//! The k6 driver: oomgate runs the user's own k6 script (`load.k6.script`) with one
//! `--stage DURATION:TARGET` per scenario stage (or the script's own stages when the scenario
//! has none), `--out json=<out>/k6.json.gz`, plus `load.k6.args`. k6's output is streamed to the
//! log; when the run must stop early k6 gets SIGINT (it then ends gracefully). Afterwards the JSON
//! results are ingested by the streaming reader (`crate::k6`). Exit code 99 (k6's own thresholds
//! failed) and 110 (the script called `exec.test.fail()`) are a finding, not a crash. Any other
//! non-zero exit (108: the script called `exec.test.abort()`, 107: a script exception, …) or
//! k6 killed by a signal, unless oomgate itself stopped it, means the planned load did not run
//! to its end: the outcome's `stopped_early` says so with k6's own meaning of the code, and the
//! run is judged as one that ended early.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::{stop_notify, stop_reason, LiveCounters, LoadDriver, LoadError, LoadOutcome};
use crate::memory::BoxFuture;
use crate::model::Stage;
use crate::units::format_duration;

/// The pid of the k6 child while it runs (0 when none), for [`kill_running_child`].
static CHILD_PID: AtomicI32 = AtomicI32::new(0);

/// SIGKILL the running k6 child, if there is one (a second Ctrl-C must not wait for k6's
/// graceful end).
pub fn kill_running_child() {
    let pid = CHILD_PID.swap(0, Ordering::SeqCst);
    if pid > 0 {
        log::warn!("killing k6 (pid {pid}) now");
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our child's, recorded
        // while it runs and cleared as soon as it has been waited for.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Clears the recorded pid when the child has been waited for (or the run failed).
struct ChildPid;

impl ChildPid {
    fn set(pid: Option<u32>) -> ChildPid {
        CHILD_PID.store(pid.map_or(0, |p| p as i32), Ordering::SeqCst);
        ChildPid
    }
}

impl Drop for ChildPid {
    fn drop(&mut self) {
        CHILD_PID.store(0, Ordering::SeqCst);
    }
}

/// Runs a k6 script as the load.
pub struct K6Driver {
    pub script: PathBuf,
    pub args: Vec<String>,
    /// Empty: the script's own stages.
    pub stages: Vec<Stage>,
    /// Where k6 writes its JSON results (gzipped).
    pub results: PathBuf,
    /// Passed to the script as `__ENV.TARGET_URL` (and `K6_TARGET_URL`).
    pub target_url: Option<String>,
}

/// `k6 run` arguments for the plan.
pub fn k6_args(d: &K6Driver) -> Vec<String> {
    let mut args = vec!["run".to_string(), "--no-usage-report".to_string()];
    for s in &d.stages {
        args.push("--stage".into());
        args.push(format!("{}:{}", format_duration(s.duration), s.to_users));
    }
    args.push("--out".into());
    args.push(format!("json={}", d.results.display()));
    args.extend(d.args.iter().cloned());
    args.push(d.script.display().to_string());
    args
}

fn find_k6() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|p| p.join("k6"))
        .find(|p| p.is_file())
}

impl LoadDriver for K6Driver {
    fn name(&self) -> &'static str {
        "k6"
    }

    fn run(
        self: Box<Self>,
        live: Arc<LiveCounters>,
    ) -> BoxFuture<'static, Result<LoadOutcome, LoadError>> {
        Box::pin(async move { self.execute(live).await })
    }
}

impl K6Driver {
    async fn execute(self, _live: Arc<LiveCounters>) -> Result<LoadOutcome, LoadError> {
        let k6 = find_k6().ok_or(LoadError::K6Missing)?;
        if !self.script.is_file() {
            return Err(LoadError::K6(format!(
                "load.k6.script {} does not exist (it is resolved next to the scenario file)",
                self.script.display()
            )));
        }
        let _ = std::fs::remove_file(&self.results);
        let mut cmd = Command::new(k6);
        cmd.args(k6_args(&self))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(url) = &self.target_url {
            cmd.env("TARGET_URL", url).env("K6_TARGET_URL", url);
        }
        log::info!("running k6 {}", k6_args(&self).join(" "));
        let started = chrono::Utc::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| LoadError::K6(format!("cannot start k6: {e}")))?;
        let recorded = ChildPid::set(child.id());
        let mut pumps = Vec::new();
        if let Some(out) = child.stdout.take() {
            pumps.push(tokio::spawn(pump(BufReader::new(out))));
        }
        if let Some(err) = child.stderr.take() {
            pumps.push(tokio::spawn(pump(BufReader::new(err))));
        }
        let mut interrupted = false;
        let status = loop {
            tokio::select! {
                s = child.wait() => break s.map_err(|e| LoadError::K6(e.to_string()))?,
                _ = stop_notify().notified(), if !interrupted => {
                    interrupted = true;
                    if let Some(pid) = child.id() {
                        // SAFETY: signalling our own child process.
                        unsafe { libc::kill(pid as i32, libc::SIGINT) };
                    }
                    // k6 ends gracefully on SIGINT; give it a bounded time.
                    let pid = child.id();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(15)).await;
                        if let Some(pid) = pid {
                            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                        }
                    });
                }
            }
        };
        drop(recorded);
        for p in pumps {
            let _ = p.await;
        }
        let code = status.code();
        // 99: k6's thresholds failed; 110: the script called exec.test.fail(). Both ran the
        // whole plan and are the tool's own failure verdict.
        let thresholds_failed = matches!(code, Some(99 | 110));
        let early = if interrupted {
            None
        } else {
            early_end(code, std::os::unix::process::ExitStatusExt::signal(&status))
        };
        if let Some(why) = &early {
            if !self.results.exists() {
                let why = format!("{why} before writing any results (see its output above)");
                // Killed from outside: a load ran and was cut, a run that ended early. An exit
                // code without results is k6 refusing the script or its options: exit 2.
                return Err(if code.is_none() {
                    LoadError::EndedEarly(why)
                } else {
                    LoadError::K6(why)
                });
            }
            log::warn!("{why}; judging the results it wrote as a load that ended early");
        }
        let stages = (!self.stages.is_empty()).then_some(self.stages.as_slice());
        let crate::k6::Ingested {
            mut stats,
            windows,
            incomplete,
        } = crate::k6::ingest_run(std::slice::from_ref(&self.results), stages, started).map_err(
            |e| {
                LoadError::K6(format!(
                    "reading k6's results {}: {e}",
                    self.results.display()
                ))
            },
        )?;
        stats.tool_exit_code = code.filter(|_| thresholds_failed);
        Ok(LoadOutcome {
            stats,
            stages: windows,
            // Results cut short (a full disk, a killed writer) are not the planned load either.
            stopped_early: stop_reason().or(early).or_else(|| {
                (!incomplete.is_empty())
                    .then(|| format!("the k6 results are incomplete: {}", incomplete.join("; ")))
            }),
            tool_thresholds_failed: thresholds_failed,
        })
    }
}

/// Why k6 ended before its plan, from its exit: `None` for 0, 99 (thresholds failed) and 110
/// (`exec.test.fail()`: the test ran on, marked failed; both a finding of their own), else the
/// code with k6's meaning of it, or the signal that killed it.
pub fn early_end(code: Option<i32>, signal: Option<i32>) -> Option<String> {
    match (code, signal) {
        (Some(0 | 99 | 110), _) => None,
        (Some(c), _) => Some(format!("k6 exited with code {c}{}", k6_exit_meaning(c))),
        (None, Some(sig)) => Some(format!("k6 was killed by signal {sig}{}", signal_name(sig))),
        (None, None) => Some("k6 ended without an exit code".to_string()),
    }
}

/// k6's own names for its exit codes (go.k6.io/k6/errext/exitcodes).
fn k6_exit_meaning(code: i32) -> &'static str {
    match code {
        97 => " (the cloud test run failed)",
        98 => " (cloud progress could not be read)",
        100 => " (setup() timed out)",
        101 => " (teardown() timed out)",
        102 => " (a timeout)",
        103 => " (an engine error)",
        104 => " (invalid configuration)",
        105 => " (aborted from outside: a signal or the REST API)",
        106 => " (the REST API could not start)",
        107 => " (an uncaught exception in the script)",
        108 => " (the script called exec.test.abort())",
        109 => " (k6 panicked)",
        _ => "",
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGKILL => " (SIGKILL)",
        libc::SIGTERM => " (SIGTERM)",
        libc::SIGINT => " (SIGINT)",
        libc::SIGSEGV => " (SIGSEGV)",
        libc::SIGABRT => " (SIGABRT)",
        _ => "",
    }
}

async fn pump<R: tokio::io::AsyncRead + Unpin>(r: BufReader<R>) {
    let mut lines = r.lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line = line.trim_end();
        if !line.is_empty() {
            log::info!("[k6] {line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exit_other_than_0_or_99_is_an_early_end_with_its_meaning() {
        assert_eq!(early_end(Some(0), None), None);
        assert_eq!(early_end(Some(99), None), None);
        assert_eq!(early_end(Some(110), None), None);
        assert_eq!(
            early_end(Some(108), None).as_deref(),
            Some("k6 exited with code 108 (the script called exec.test.abort())")
        );
        assert_eq!(
            early_end(Some(107), None).as_deref(),
            Some("k6 exited with code 107 (an uncaught exception in the script)")
        );
        assert_eq!(
            early_end(Some(1), None).as_deref(),
            Some("k6 exited with code 1")
        );
        assert_eq!(
            early_end(None, Some(libc::SIGKILL)).as_deref(),
            Some("k6 was killed by signal 9 (SIGKILL)")
        );
    }

    #[test]
    fn stages_become_stage_flags() {
        let d = K6Driver {
            script: "load.js".into(),
            args: vec!["--vus".into(), "1".into()],
            stages: vec![
                Stage {
                    index: 0,
                    from_users: 0,
                    to_users: 10,
                    duration: Duration::from_secs(120),
                },
                Stage {
                    index: 1,
                    from_users: 10,
                    to_users: 10,
                    duration: Duration::from_millis(1500),
                },
            ],
            results: "/tmp/out/k6.json.gz".into(),
            target_url: None,
        };
        assert_eq!(
            k6_args(&d),
            vec![
                "run",
                "--no-usage-report",
                "--stage",
                "2m:10",
                "--stage",
                "1.5s:10",
                "--out",
                "json=/tmp/out/k6.json.gz",
                "--vus",
                "1",
                "load.js"
            ]
        );
    }
}
