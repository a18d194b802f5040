//! The fallback memory source for a local workload that could not get a memory cgroup (no
//! permission, no controller): `ProcTreeSource` sums the proportional set size (PSS, see `pss`)
//! of the service's processes from /proc. It is cruder than the cgroup source and the report
//! says so: page cache is left out (PSS has only the processes' shares of the file pages they
//! map), there is no kernel peak counter (a spike between two ticks
//! is missed) and no OOM-kill counter. `workload::local` builds it; the sampler polls it.
//!
//! Which processes are the service's: when the root leads its own session or process group
//! (`workload::local` starts the service with `setsid`, so it leads both), every process in that
//! session or group and every descendant of any of them, found by one scan of `/proc/*/stat`
//! per tick. That finds a daemon that double-forks and is re-parented to init, as long as it
//! keeps the session. One that also calls `setsid` itself leaves both; `workload::local` makes
//! the service's main process a child subreaper, so such a daemon is re-parented to the main
//! process instead of init and stays its descendant. For any other root (a process that leads
//! neither) only its descendants are followed, through `/proc/PID/task/TID/children` (or, on
//! kernels without that file, a scan of parent pids). More processes than `MAX_PROCESSES` make
//! the tick an error, never a partial sum.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use chrono::Utc;

use super::pss::{gone, read_file, read_process, ProcessMemory, RssInstead};
use super::{BoxFuture, MemorySource, Observation, SourceError};

/// At most this many processes are followed, so a fork bomb cannot make a tick unbounded.
const MAX_PROCESSES: usize = 100_000;
/// At most this many pids are remembered for the RSS-instead-of-PSS note.
const MAX_REMEMBERED: usize = 10_000;

/// What one measurement of a process tree found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeMemory {
    /// Sum of the processes' PSS (RSS for those whose smaps_rollup could not be read), in bytes.
    pub bytes: u64,
    /// How many processes were counted (the root included).
    pub processes: usize,
    /// How many of them were counted by RSS because their smaps_rollup could not be read.
    pub rss_instead: usize,
}

/// The fields of a `/proc/PID/stat` line that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    state: u8,
    ppid: u32,
    pgrp: u32,
    session: u32,
    /// Clock ticks since boot.
    start: u64,
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
    /// Processes counted by RSS because their smaps_rollup could not be read, and the first
    /// reason, for the report's note.
    rss_pids: BTreeSet<u32>,
    rss_first: Option<RssInstead>,
}

impl ProcTreeSource {
    /// Measure `root_pid` and its processes (see the module doc), reported as
    /// `pod`/`container`.
    pub fn new(
        root_pid: u32,
        pod: impl Into<String>,
        container: impl Into<String>,
    ) -> ProcTreeSource {
        ProcTreeSource {
            root_pid,
            pod: pod.into(),
            container: container.into(),
            proc_root: PathBuf::from("/proc"),
            page_size: page_size(),
            root_start: None,
            buf: Vec::with_capacity(1024),
            rss_pids: BTreeSet::new(),
            rss_first: None,
        }
    }

    pub fn root_pid(&self) -> u32 {
        self.root_pid
    }

    /// One measurement; None when the root process is gone (exited, a zombie, or its pid now
    /// belongs to another process).
    pub fn measure(&mut self) -> Result<Option<TreeMemory>, SourceError> {
        let root_stat = self.proc_root.join(self.root_pid.to_string()).join("stat");
        let root = match read_file(&root_stat, &mut self.buf) {
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
        if is_dead(root.state) {
            return Ok(None);
        }
        match self.root_start {
            None => self.root_start = Some(root.start),
            Some(s) if s != root.start => return Ok(None),
            Some(_) => {}
        }

        let leads = root.session == self.root_pid || root.pgrp == self.root_pid;
        let pids = if leads {
            let procs = scan(&self.proc_root, &mut self.buf)?;
            members(
                &procs,
                self.root_pid,
                root.session == self.root_pid,
                root.pgrp == self.root_pid,
            )
        } else {
            self.tree()?
        };
        let mut total = TreeMemory {
            bytes: 0,
            processes: 0,
            rss_instead: 0,
        };
        for &pid in &pids {
            let mut fallback = None;
            let read = read_process(
                &self.proc_root,
                pid,
                self.page_size,
                &mut self.buf,
                &mut fallback,
            )?;
            match read {
                Some(m) => {
                    total.bytes = total.bytes.saturating_add(m.bytes());
                    total.processes += 1;
                    if let ProcessMemory::Rss(_) = m {
                        total.rss_instead += 1;
                    }
                }
                // A process that exited between listing and reading is simply not counted;
                // the root gone means the service is.
                None if pid == self.root_pid => return Ok(None),
                None => {}
            }
            if let Some(f) = fallback {
                if self.rss_pids.len() < MAX_REMEMBERED {
                    self.rss_pids.insert(f.pid);
                }
                self.rss_first.get_or_insert(f);
            }
        }
        Ok(Some(total))
    }

    /// The root pid and its descendants, the root first.
    fn tree(&mut self) -> Result<Vec<u32>, SourceError> {
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
            let procs = scan(&self.proc_root, &mut self.buf)?;
            Ok(members(&procs, root, false, false))
        }
    }

    fn tree_from_children(&mut self) -> Result<Vec<u32>, SourceError> {
        let mut out = vec![self.root_pid];
        let mut seen: BTreeSet<u32> = out.iter().copied().collect();
        let mut i = 0;
        while i < out.len() {
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
                        if seen.insert(child) {
                            out.push(child);
                        }
                    }
                }
            }
            if out.len() > MAX_PROCESSES {
                return Err(too_many());
            }
        }
        Ok(out)
    }

    /// The note for the report when some processes were counted by RSS instead of PSS.
    fn rss_note(&self) -> Option<String> {
        let first = self.rss_first.as_ref()?;
        let n = self.rss_pids.len();
        Some(format!(
            "RSS instead of PSS for {n} of the service's processes{more} ({why}): pages they \
             share with other processes are counted once per process, so the service's memory \
             may read high",
            more = if n >= MAX_REMEMBERED { " or more" } else { "" },
            why = first.why,
        ))
    }
}

/// Every process the service is made of, the root first (when it is still there): with
/// `by_session`/`by_group`, every process in the root pid's session/process group; and every
/// descendant of any of these. Pure, over one scan of /proc.
fn members(procs: &[(u32, Stat)], root: u32, by_session: bool, by_group: bool) -> Vec<u32> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    if procs.iter().any(|(pid, _)| *pid == root) {
        seen.insert(root);
        out.push(root);
    }
    for (pid, s) in procs {
        if ((by_session && s.session == root) || (by_group && s.pgrp == root)) && seen.insert(*pid)
        {
            out.push(*pid);
        }
    }
    // Descendants, breadth first over the parent links.
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        i += 1;
        for (pid, s) in procs {
            if s.ppid == parent && seen.insert(*pid) {
                out.push(*pid);
            }
        }
    }
    out
}

/// One process of a service, as cleanup needs it: its pid and start time, so a pid reused by
/// another process since is not mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceProcess {
    pub pid: u32,
    /// Clock ticks since boot.
    pub start: u64,
}

impl ServiceProcess {
    /// Whether the process still runs (not a zombie) with the start time it was seen with.
    pub fn still_running(&self) -> bool {
        fs::read(format!("/proc/{}/stat", self.pid))
            .ok()
            .and_then(|line| parse_stat(&line))
            .is_some_and(|s| s.start == self.start && !is_dead(s.state))
    }
}

/// The processes of the service rooted at `root`, which the gate started as the leader of its
/// own session and process group: every process in that session or group and their
/// descendants (`members`), read now. Used to clean up without a cgroup; also finds the
/// session's processes after the root has exited.
pub fn service_processes(root: u32) -> Result<Vec<ServiceProcess>, SourceError> {
    let mut buf = Vec::with_capacity(1024);
    let mut procs = scan(Path::new("/proc"), &mut buf)?;
    // A root pid that leads neither is not the service any more (its pid was reused after it
    // was reaped): neither it nor its descendants are the service's.
    procs.retain(|(pid, s)| *pid != root || s.session == root || s.pgrp == root);
    let found = members(&procs, root, true, true);
    Ok(procs
        .iter()
        .filter(|(pid, _)| found.contains(pid))
        .map(|&(pid, s)| ServiceProcess {
            pid,
            start: s.start,
        })
        .collect())
}

/// Every process's stat, read once. Processes that exit meanwhile are skipped; so are dead ones
/// (zombies hold no memory and cannot be signalled away).
fn scan(proc_root: &Path, buf: &mut Vec<u8>) -> Result<Vec<(u32, Stat)>, SourceError> {
    let entries = fs::read_dir(proc_root).map_err(|source| SourceError::Io {
        path: proc_root.display().to_string(),
        source,
    })?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| parse_pid(s.as_bytes()))
        else {
            continue;
        };
        if read_file(&entry.path().join("stat"), buf).is_err() {
            continue;
        }
        if let Some(s) = parse_stat(buf).filter(|s| !is_dead(s.state)) {
            out.push((pid, s));
        }
        if out.len() > MAX_PROCESSES {
            return Err(too_many());
        }
    }
    Ok(out)
}

fn too_many() -> SourceError {
    SourceError::Other(format!(
        "more than {MAX_PROCESSES} processes to follow: not all of the service's memory could \
         be counted this tick"
    ))
}

fn is_dead(state: u8) -> bool {
    matches!(state, b'Z' | b'X' | b'x')
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(page).ok().filter(|&p| p > 0).unwrap_or(4096)
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
                working_set: m.bytes,
                usage: None,
                kernel_peak_usage: None,
                oom_kills: None,
                bad_value: None,
                resident: None,
            })
            .into_iter()
            .collect()
        });
        Box::pin(async move { result })
    }

    fn notes(&self) -> Vec<String> {
        self.rss_note().into_iter().collect()
    }
}

fn parse_pid(bytes: &[u8]) -> Option<u32> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// The fields of a `/proc/PID/stat` line. The command name sits in parentheses and may itself
/// contain spaces and parentheses, so fields are counted after the last `)`.
fn parse_stat(line: &[u8]) -> Option<Stat> {
    let close = line.iter().rposition(|&b| b == b')')?;
    let mut fields = line
        .get(close + 1..)?
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty());
    // Field 3 is the state, 4 the ppid, 5 the process group, 6 the session, 22 the start time
    // (1-based, as in proc(5)).
    let state = *fields.next()?.first()?;
    let ppid = parse_pid(fields.next()?)?;
    let pgrp = parse_pid(fields.next()?)?;
    let session = parse_pid(fields.next()?)?;
    let start = fields.nth(15)?;
    let start = std::str::from_utf8(start).ok()?.trim().parse().ok()?;
    Some(Stat {
        state,
        ppid,
        pgrp,
        session,
        start,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    fn stat_line(pid: u32, name: &str, state: char, ppid: u32, pgrp: u32, session: u32) -> String {
        format!(
            "{pid} ({name}) {state} {ppid} {pgrp} {session} 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 \
             1 0 {start} 12345678 300 18446744073709551615\n",
            start = 1000 + pid
        )
    }

    #[test]
    fn parses_stat_with_hostile_names() {
        let line = stat_line(1234, "my (weird) name) S 1 2 3", 'S', 77, 1200, 1100);
        assert_eq!(
            parse_stat(line.as_bytes()),
            Some(Stat {
                state: b'S',
                ppid: 77,
                pgrp: 1200,
                session: 1100,
                start: 2234
            })
        );
        assert_eq!(parse_stat(b"garbage"), None);
        assert_eq!(parse_stat(b"1 (x) S"), None);
        assert_eq!(parse_stat(b"1 (x) S 1 2"), None);
        assert_eq!(parse_stat(b"1 (x) S 1 2 -3 0"), None);
        assert_eq!(parse_pid(b"12a"), None);
    }

    type FakeProc<'a> = (u32, &'a str, char, u32, u32, u32, Option<u64>, u64);

    /// A /proc made of plain files: (pid, name, state, ppid, pgrp, session, smaps_rollup Pss kB
    /// or None for no smaps_rollup, statm resident pages).
    fn fake_proc(procs: &[FakeProc]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for &(pid, name, state, ppid, pgrp, session, pss, resident) in procs {
            let p = dir.path().join(pid.to_string());
            fs::create_dir(&p).unwrap();
            fs::write(
                p.join("stat"),
                stat_line(pid, name, state, ppid, pgrp, session),
            )
            .unwrap();
            fs::write(p.join("statm"), format!("9999 {resident} 10 1 0 50 0\n")).unwrap();
            if let Some(kb) = pss {
                fs::write(
                    p.join("smaps_rollup"),
                    format!(
                        "00-ff ---p 0 00:00 0 [rollup]\nRss: {} kB\nPss: {kb} kB\n",
                        resident * 4
                    ),
                )
                .unwrap();
            }
        }
        fs::create_dir(dir.path().join("self")).unwrap();
        fs::write(dir.path().join("uptime"), "1.0 1.0\n").unwrap();
        dir
    }

    #[test]
    fn counts_the_session_the_group_and_their_descendants_on_plain_proc_text() {
        let proc = fake_proc(&[
            // The service: leads session and group 100.
            (100, "svc", 'S', 1, 100, 100, Some(1000), 400),
            (101, "worker", 'S', 100, 100, 100, Some(200), 400),
            // Double-forked, re-parented to init: kept the session and group.
            (200, "daemon", 'S', 1, 100, 100, Some(3000), 900),
            // Moved to a group of its own (job control), then re-parented: kept the session.
            (201, "job", 'R', 1, 201, 100, Some(40), 20),
            // A worker's child that called setsid: still a descendant, and so is its child.
            (301, "own-session", 'S', 101, 301, 301, Some(50), 20),
            (302, "grandchild", 'S', 301, 301, 301, None, 25),
            // A zombie in the session: no memory, not counted.
            (400, "zombie", 'Z', 100, 100, 100, Some(999_999), 0),
            // Strangers: another session, and a setsid daemon re-parented to init.
            (500, "stranger", 'S', 1, 500, 500, Some(777_777), 4000),
            (600, "escaped", 'S', 1, 600, 600, Some(888_888), 4000),
        ]);
        let mut buf = Vec::new();
        let procs = scan(proc.path(), &mut buf).unwrap();
        assert_eq!(procs.len(), 8, "the zombie is dropped, `self` is not a pid");
        let mut found = members(&procs, 100, true, true);
        assert_eq!(found[0], 100, "the root first");
        found.sort_unstable();
        assert_eq!(found, vec![100, 101, 200, 201, 301, 302]);
        // Without following the session, the re-parented daemon is lost.
        let mut tree = members(&procs, 100, false, false);
        tree.sort_unstable();
        assert_eq!(tree, vec![100, 101, 301, 302]);
        // By group only: the job that left the group is lost, the daemon is not.
        let mut group = members(&procs, 100, false, true);
        group.sort_unstable();
        assert_eq!(group, vec![100, 101, 200, 301, 302]);

        // Measured: PSS summed, RSS (25 pages) for the one without smaps_rollup, and a note.
        let mut src = ProcTreeSource::new(100, "local", "svc");
        src.proc_root = proc.path().to_path_buf();
        src.page_size = 4096;
        let m = src.measure().unwrap().unwrap();
        assert_eq!(
            m,
            TreeMemory {
                bytes: (1000 + 200 + 3000 + 40 + 50) * 1024 + 25 * 4096,
                processes: 6,
                rss_instead: 1,
            }
        );
        let notes = src.notes();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with("RSS instead of PSS for 1 of the service's processes (reading ")
                && notes[0].contains("302/smaps_rollup"),
            "{notes:?}"
        );

        // A root that leads neither is measured as a tree only (here via the scan: the fake
        // /proc has no task/*/children files).
        let mut src = ProcTreeSource::new(101, "local", "worker");
        src.proc_root = proc.path().to_path_buf();
        src.page_size = 4096;
        let m = src.measure().unwrap().unwrap();
        assert_eq!(m.processes, 3, "101, 301, 302");
        assert!(src.notes()[0].contains("for 1 of"));
    }

    #[test]
    fn no_rss_note_when_every_process_had_a_pss() {
        let proc = fake_proc(&[(100, "svc", 'S', 1, 100, 100, Some(10), 4)]);
        let mut src = ProcTreeSource::new(100, "local", "svc");
        src.proc_root = proc.path().to_path_buf();
        let m = src.measure().unwrap().unwrap();
        assert_eq!((m.bytes, m.processes, m.rss_instead), (10 * 1024, 1, 0));
        assert!(src.notes().is_empty());
    }

    #[tokio::test]
    async fn measures_this_process() {
        let mut src = ProcTreeSource::new(std::process::id(), "local", "self");
        assert_eq!(src.name(), "procfs");
        let obs = src.poll().await.unwrap();
        assert_eq!(obs.len(), 1);
        let o = &obs[0];
        assert!(o.working_set > 1 << 20, "pss {}", o.working_set);
        assert_eq!(
            (o.usage, o.kernel_peak_usage, o.oom_kills),
            (None, None, None)
        );
        assert_eq!((o.pod.as_str(), o.container.as_str()), ("local", "self"));
        assert!(src.notes().is_empty(), "{:?}", src.notes());
    }

    fn kill(pids: &[u32]) {
        for &pid in pids {
            if pid > 1 {
                // SAFETY: plain kill(2) on pids this test started.
                unsafe {
                    libc::kill(pid as i32, libc::SIGKILL);
                }
            }
        }
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
        assert!(m.bytes > 0);

        // The scan finds the same tree.
        let scanned = members(
            &scan(Path::new("/proc"), &mut Vec::new()).unwrap(),
            child.id(),
            false,
            false,
        );
        assert_eq!(scanned.len(), 3, "{scanned:?}");

        let grandchildren: Vec<u32> = src.tree().unwrap()[1..].to_vec();
        child.kill().unwrap();
        kill(&grandchildren);
        // A zombie root counts as gone, and so does a reaped one.
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(src.measure().unwrap(), None);
        child.wait().unwrap();
        assert_eq!(src.measure().unwrap(), None);
    }

    #[test]
    fn a_daemon_reparented_away_from_a_session_leader_is_still_counted() {
        // The root leads its own session (as workload::local starts it); the subshell forks a
        // sleep and exits, so the sleep is re-parented to init (or a subreaper above this test).
        // SAFETY: setsid is async-signal-safe.
        let mut child = unsafe {
            Command::new("sh")
                .args(["-c", "(sleep 30 &); exec sleep 31"])
                .stdin(Stdio::null())
                .pre_exec(|| {
                    if libc::setsid() < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                })
                .spawn()
                .unwrap()
        };
        let root = child.id();
        let mut src = ProcTreeSource::new(root, "local", "daemon");
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut found = Vec::new();
        let mut orphan = None;
        while Instant::now() < deadline {
            found = service_processes(root)
                .unwrap()
                .into_iter()
                .map(|p| p.pid)
                .collect();
            // Re-parented for good: its parent is neither the root nor a live process of the
            // session (a subshell that is exiting may still be its parent for a moment).
            let stat = |pid: u32| {
                fs::read(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|s| parse_stat(&s))
            };
            orphan = found.iter().copied().find(|&p| {
                p != root
                    && stat(p).is_some_and(|s| {
                        s.ppid != root
                            && stat(s.ppid).is_none_or(|q| q.session != root || is_dead(q.state))
                    })
            });
            if found.len() == 2 && orphan.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            found.len(),
            2,
            "the root and the re-parented sleep: {found:?}"
        );
        let orphan = orphan.expect("the sleep was re-parented");
        let m = src.measure().unwrap().expect("the root runs");
        assert_eq!(m.processes, 2, "{m:?}");
        // A plain tree walk would have lost it.
        assert!(!src.tree().unwrap().contains(&orphan));
        kill(&found);
        child.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !service_processes(root).unwrap().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(service_processes(root).unwrap().is_empty());
    }
}
