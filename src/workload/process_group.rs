//! How a local service is kept together without a memory cgroup (the /proc fallback), so that
//! `memory::procfs` can count all of it and cleanup can reach all of it.
//!
//! - Every local service starts as the leader of a new session (`setsid` between fork and
//!   exec), so its session id and process group id are its pid. A daemon that double-forks and
//!   is re-parented to init keeps both and is still found.
//! - Without a cgroup the service's main process is also made a *child subreaper*
//!   (`PR_SET_CHILD_SUBREAPER`, kept across exec): an orphaned descendant is re-parented to it
//!   instead of init, so even a daemon that calls `setsid` itself (leaving the session and the
//!   group) stays its descendant while the main process runs. The price is the service's:
//!   it may see `SIGCHLD` for, and have to reap, processes it did not fork itself (unreaped,
//!   they linger as zombies until the service exits; zombies hold no memory). With a cgroup
//!   none of this is needed and the service's own semantics are left alone.
//!
//! Not found by either: processes the service has another program start for it (a system
//! service manager, a container runtime) — they are not its descendants — and, after the main
//! process has exited, a descendant that left the session. Cleanup (`Processes`) signals what
//! it finds; a pid is only signalled while it still has the start time it was seen with.

use std::io;

use crate::memory::procfs::{service_processes, ServiceProcess};

/// In the forked child: lead a new session (and so a new process group), detached from the
/// gate's terminal. Async-signal-safe.
pub(super) fn new_session() -> io::Result<()> {
    // SAFETY: setsid takes no arguments and is async-signal-safe.
    if unsafe { libc::setsid() } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// In the forked child: become a child subreaper (kept across exec). Async-signal-safe.
pub(super) fn become_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The processes of a service seen so far (pid and start time), for cleanup without a cgroup.
#[derive(Debug, Default)]
pub(super) struct Processes {
    seen: Vec<ServiceProcess>,
}

impl Processes {
    /// Add what /proc shows of the service rooted at `root` now.
    pub(super) fn look(&mut self, root: u32) {
        match service_processes(root) {
            Ok(found) => {
                for p in found {
                    if !self.seen.contains(&p) {
                        self.seen.push(p);
                    }
                }
            }
            Err(e) => log::warn!("listing the service's processes for cleanup: {e}"),
        }
    }

    /// Send `signal` to every process seen that still runs under the same start time (so a
    /// reused pid is left alone), never to the gate itself or init. Returns how many were
    /// signalled.
    pub(super) fn signal(&self, signal: i32) -> usize {
        let me = std::process::id();
        let mut sent = 0;
        for p in &self.seen {
            if p.pid <= 1 || p.pid == me || !p.still_running() {
                continue;
            }
            if let Ok(pid) = i32::try_from(p.pid) {
                // SAFETY: kill(2) with a positive pid has no memory-safety preconditions.
                if unsafe { libc::kill(pid, signal) } == 0 {
                    sent += 1;
                }
            }
        }
        sent
    }
}
