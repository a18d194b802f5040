//! Leftovers of earlier runs. oomgate removes its cgroups on every exit path it controls, but a
//! SIGKILLed oomgate (a CI runner's hard timeout, `kill -9`, an OOM kill of the gate itself)
//! cannot: its `oomgate-<hint>-<pid>-<n>` cgroups stay behind. Before creating a cgroup, the
//! sweep here removes siblings whose creating process is gone and that hold no process; one
//! that still holds processes (a service orphaned by a killed gate) is only reported, since
//! killing it is the operator's call.

use std::fs;
use std::path::{Path, PathBuf};

/// What a sweep of one parent cgroup did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Empty cgroups of exited oomgate processes, removed.
    pub removed: Vec<PathBuf>,
    /// Cgroups of exited oomgate processes that still hold processes, left in place.
    pub occupied: Vec<PathBuf>,
}

/// The creator's pid in a cgroup name `oomgate-<hint>-<pid>-<n>` (the hint may hold dashes).
pub fn creator_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("oomgate-")?;
    let mut parts = rest.rsplit('-');
    parts.next()?.parse::<u64>().ok()?;
    let pid = parts.next()?.parse::<u32>().ok()?;
    // There must be a hint before the pid.
    parts.next()?;
    Some(pid)
}

/// Remove the stale oomgate cgroups directly under `parent`; `alive` tells whether a pid runs.
pub fn sweep(parent: &Path, alive: impl Fn(u32) -> bool) -> Sweep {
    let mut out = Sweep::default();
    let Ok(entries) = fs::read_dir(parent) else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(pid) = creator_pid(&name) else {
            continue;
        };
        if pid == std::process::id() || alive(pid) {
            continue;
        }
        let path = e.path();
        let procs = fs::read_to_string(path.join("cgroup.procs")).unwrap_or_default();
        if !procs.trim().is_empty() {
            out.occupied.push(path);
        } else if fs::remove_dir(&path).is_ok() {
            out.removed.push(path);
        }
    }
    out
}

/// Whether a process with this pid exists (zombies count: they are not reaped yet).
pub fn pid_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_creator_pid_from_the_name() {
        assert_eq!(creator_pid("oomgate-app-12992-0"), Some(12992));
        assert_eq!(creator_pid("oomgate-sim-web-1-app-4242-17"), Some(4242));
        assert_eq!(creator_pid("oomgate-12992-0"), None, "no hint");
        assert_eq!(creator_pid("oomgate-app-x-0"), None);
        assert_eq!(creator_pid("other-app-1-0"), None);
    }

    #[test]
    fn removes_empty_cgroups_of_dead_creators_only() {
        let root = tempfile::tempdir().unwrap();
        for name in [
            "oomgate-app-111-0",
            "oomgate-app-222-0",
            "oomgate-app-333-0",
            "unrelated",
        ] {
            fs::create_dir(root.path().join(name)).unwrap();
        }
        // A regular directory stands in for cgroupfs: the dead creator's busy cgroup lists a pid.
        fs::write(root.path().join("oomgate-app-333-0/cgroup.procs"), "4711\n").unwrap();
        let s = sweep(root.path(), |pid| pid == 222);
        assert_eq!(s.removed, vec![root.path().join("oomgate-app-111-0")]);
        assert_eq!(s.occupied, vec![root.path().join("oomgate-app-333-0")]);
        assert!(
            root.path().join("oomgate-app-222-0").exists(),
            "live creator"
        );
        assert!(root.path().join("unrelated").exists());
    }
}
