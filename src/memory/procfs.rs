//! The fallback memory source for a local workload that could not get a memory cgroup (no
//! permission, no controller): `ProcTreeSource` sums the resident set size of a root process
//! and all its descendants from /proc. It is cruder than the cgroup source and the report says
//! so: RSS counts pages shared between processes once per process and leaves out page cache,
//! there is no kernel peak counter (a spike between two ticks is missed) and no OOM-kill
//! counter, and a process that daemonizes away from the tree (reparented to init) is no longer
//! counted. `workload::local` builds it; the sampler polls it.
//!
//! Descendants are found through `/proc/PID/task/TID/children` (cheap: only the tree is read);
//! on kernels without that file every `/proc/*/stat` is scanned for parent pids instead.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use chrono::Utc;

use super::{BoxFuture, MemorySource, Observation, SourceError};

/// At most this many processes are followed, so a fork bomb cannot make a tick unbounded.
const MAX_PROCESSES: usize = 100_000;

/// What one measurement of a process tree found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeMemory {
    /// Sum of the resident set sizes, in bytes.
    pub rss: u64,
    /// How many processes were counted (the root included).
    pub processes: usize,
}

/// Memory of a process tree read from /proc.
#[derive(Debug)]
pub struct ProcTreeSource {
    root_pid: u32,
    pod: String,
    container: String,
    proc_root: PathBuf,
    page_size: u64,
    /// The root's start time (clock ticks since boot), to notice a reused pid.
    root_start: Option<u64>,
    buf: Vec<u8>,
}

impl ProcTreeSource {
    /// Measure `root_pid` and its descendants, reported as `pod`/`container`.
    pub fn new(
        root_pid: u32,
        pod: impl Into<String>,
        container: impl Into<String>,
    ) -> ProcTreeSource {
        // SAFETY: sysconf has no memory-safety preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        ProcTreeSource {
            root_pid,
            pod: pod.into(),
            container: container.into(),
            proc_root: PathBuf::from("/proc"),
            page_size: u64::try_from(page).ok().filter(|&p| p > 0).unwrap_or(4096),
            root_start: None,
            buf: Vec::with_capacity(1024),
        }
    }

    pub fn root_pid(&self) -> u32 {
        self.root_pid
    }

    /// One measurement; None when the root process is gone (exited, a zombie, or its pid now
    /// belongs to another process).
    pub fn measure(&mut self) -> Result<Option<TreeMemory>, SourceError> {
        let root_stat = self.proc_root.join(self.root_pid.to_string()).join("stat");
        let (state, _ppid, start) = match read_file(&root_stat, &mut self.buf) {
            Ok(()) => match parse_stat(&self.buf) {
                Some(s) => s,
                None => {
                    return Err(SourceError::Parse {
                        path: root_stat.display().to_string(),
                        detail: "not a /proc/PID/stat line".to_string(),
                    })
                }
            },
            Err(e) if gone(&e) => return Ok(None),
            Err(e) => {
                return Err(SourceError::Io {
                    path: root_stat.display().to_string(),
                    source: e,
                })
            }
        };
        if matches!(state, b'Z' | b'X' | b'x') {
            return Ok(None);
        }
        match self.root_start {
            None => self.root_start = Some(start),
            Some(s) if s != start => return Ok(None),
            Some(_) => {}
        }

        let pids = self.tree();
        let mut rss: u64 = 0;
        let mut processes = 0;
        for &pid in &pids {
            let statm = self.proc_root.join(pid.to_string()).join("statm");
            match read_file(&statm, &mut self.buf) {
                Ok(()) => {
                    if let Some(pages) = parse_statm_resident(&self.buf) {
                        rss = rss.saturating_add(pages.saturating_mul(self.page_size));
                        processes += 1;
                    }
                }
                // A descendant that exited between listing and reading is simply not counted.
                Err(e) if gone(&e) && pid != self.root_pid => {}
                Err(e) if gone(&e) => return Ok(None),
                Err(e) => {
                    return Err(SourceError::Io {
                        path: statm.display().to_string(),
                        source: e,
                    })
                }
            }
        }
        Ok(Some(TreeMemory { rss, processes }))
    }

    /// The root pid and its descendants, the root first.
    fn tree(&mut self) -> Vec<u32> {
        let root = self.root_pid;
        let probe = self
            .proc_root
            .join(root.to_string())
            .join("task")
            .join(root.to_string())
            .join("children");
        if probe.exists() {
            self.tree_from_children()
        } else {
            self.tree_from_scan()
        }
    }

    fn tree_from_children(&mut self) -> Vec<u32> {
        let mut out = vec![self.root_pid];
        let mut i = 0;
        while i < out.len() && out.len() < MAX_PROCESSES {
            let pid = out[i];
            i += 1;
            let tasks = self.proc_root.join(pid.to_string()).join("task");
            let Ok(entries) = fs::read_dir(&tasks) else {
                continue;
            };
            for entry in entries.flatten() {
                let children = entry.path().join("children");
                if read_file(&children, &mut self.buf).is_err() {
                    continue;
                }
                for word in self.buf.split(|b| b.is_ascii_whitespace()) {
                    if let Some(child) = parse_pid(word) {
                        if !out.contains(&child) && out.len() < MAX_PROCESSES {
                            out.push(child);
                        }
                    }
                }
            }
        }
        out
    }

    fn tree_from_scan(&mut self) -> Vec<u32> {
        let mut parents: Vec<(u32, u32)> = Vec::new();
        if let Ok(entries) = fs::read_dir(&self.proc_root) {
            for entry in entries.flatten() {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|s| s.parse::<u32>().ok())
                else {
                    continue;
                };
                if read_file(&entry.path().join("stat"), &mut self.buf).is_err() {
                    continue;
                }
                if let Some((_, ppid, _)) = parse_stat(&self.buf) {
                    parents.push((pid, ppid));
                }
                if parents.len() >= MAX_PROCESSES {
                    break;
                }
            }
        }
        let mut out = vec![self.root_pid];
        let mut i = 0;
        while i < out.len() {
            let pid = out[i];
            i += 1;
            for &(child, ppid) in &parents {
                if ppid == pid && !out.contains(&child) {
                    out.push(child);
                }
            }
        }
        out
    }
}

impl MemorySource for ProcTreeSource {
    fn name(&self) -> &'static str {
        "procfs"
    }

    fn poll(&mut self) -> BoxFuture<'_, Result<Vec<Observation>, SourceError>> {
        let result = self.measure().map(|m| {
            m.map(|m| Observation {
                pod: self.pod.clone(),
                container: self.container.clone(),
                at: Utc::now(),
                working_set: m.rss,
                usage: None,
                kernel_peak_usage: None,
                oom_kills: None,
                bad_value: None,
            })
            .into_iter()
            .collect()
        });
        Box::pin(async move { result })
    }
}

/// ENOENT or ESRCH: the process is gone.
fn gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH)
}

fn read_file(path: &Path, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    let f = fs::File::open(path)?;
    f.take(1 << 20).read_to_end(buf)?;
    Ok(())
}

fn parse_pid(bytes: &[u8]) -> Option<u32> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// (state, ppid, starttime) from a `/proc/PID/stat` line. The command name sits in parentheses
/// and may itself contain spaces and parentheses, so fields are counted after the last `)`.
fn parse_stat(line: &[u8]) -> Option<(u8, u32, u64)> {
    let close = line.iter().rposition(|&b| b == b')')?;
    let mut fields = line
        .get(close + 1..)?
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty());
    // Field 3 is the state, 4 the ppid, 22 the start time (1-based, as in proc(5)).
    let state = *fields.next()?.first()?;
    let ppid = parse_pid(fields.next()?)?;
    let start = fields.nth(17)?;
    let start = std::str::from_utf8(start).ok()?.trim().parse().ok()?;
    Some((state, ppid, start))
}

/// The resident page count, the second field of `/proc/PID/statm`.
fn parse_statm_resident(line: &[u8]) -> Option<u64> {
    let field = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
        .nth(1)?;
    std::str::from_utf8(field).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    #[test]
    fn parses_stat_with_hostile_names() {
        let line =
            b"1234 (my (weird) name) S 77 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
                     987654 12345678 300 18446744073709551615\n";
        assert_eq!(parse_stat(line), Some((b'S', 77, 987_654)));
        assert_eq!(parse_stat(b"garbage"), None);
        assert_eq!(parse_stat(b"1 (x) S"), None);
        assert_eq!(parse_statm_resident(b"1000 250 30 1 0 90 0\n"), Some(250));
        assert_eq!(parse_statm_resident(b"1000"), None);
        assert_eq!(parse_pid(b"12a"), None);
    }

    #[tokio::test]
    async fn measures_this_process() {
        let mut src = ProcTreeSource::new(std::process::id(), "local", "self");
        assert_eq!(src.name(), "procfs");
        let obs = src.poll().await.unwrap();
        assert_eq!(obs.len(), 1);
        let o = &obs[0];
        assert!(o.working_set > 1 << 20, "rss {}", o.working_set);
        assert_eq!(
            (o.usage, o.kernel_peak_usage, o.oom_kills),
            (None, None, None)
        );
        assert_eq!((o.pod.as_str(), o.container.as_str()), ("local", "self"));
    }

    #[test]
    fn follows_a_child_tree_and_notices_the_end() {
        let mut child = Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30 & wait"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut src = ProcTreeSource::new(child.id(), "local", "tree");
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut last = None;
        while Instant::now() < deadline {
            last = src.measure().unwrap();
            if last.map(|m| m.processes) == Some(3) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let m = last.expect("the tree was measured");
        assert_eq!(m.processes, 3, "sh and two sleeps");
        assert!(m.rss > 0);

        // The scan fallback finds the same tree.
        let scanned = src.tree_from_scan();
        assert_eq!(scanned.len(), 3, "{scanned:?}");

        let grandchildren: Vec<u32> = src.tree()[1..].to_vec();
        child.kill().unwrap();
        for pid in grandchildren {
            // SAFETY: plain kill(2) on pids we just saw as our grandchildren.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
        // A zombie root counts as gone, and so does a reaped one.
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(src.measure().unwrap(), None);
        child.wait().unwrap();
        assert_eq!(src.measure().unwrap(), None);
    }
}
