//! The resident floor of a local workload: at every tick, the resident set size of its largest
//! process (`/proc/PID/statm`, anonymous memory plus the file pages it has mapped — its binary
//! and libraries included). A local cgroup is charged a file page only when a process in it
//! reads the page first, so a runtime whose binary was already in the page cache (run before, or
//! shared with the rest of the machine) looks smaller here than the same container in a
//! cluster, where a fresh container's cgroup pays for its own image's files. No container can
//! run in less than its largest process's RSS, so the recommendation keeps a limit above it
//! (`analysis::recommend`). [`ResidentFloor`] wraps a local source and adds the figure to each
//! observation; a cluster's sources leave it `None` (their working set already counts the
//! container's own pages).

use std::fs;
use std::path::PathBuf;

use futures::future::BoxFuture;

use super::procfs::service_processes;
use super::pss::parse_statm_resident;
use super::{MemorySource, Observation, SourceError};

/// Where the workload's processes are listed.
#[derive(Debug, Clone)]
pub enum Processes {
    /// The `cgroup.procs` file of the workload's memory cgroup.
    Cgroup(PathBuf),
    /// The process tree, session and group of this root pid (no cgroup).
    Tree(u32),
}

impl Processes {
    fn pids(&self) -> Vec<u32> {
        match self {
            Processes::Cgroup(dir) => fs::read_to_string(dir.join("cgroup.procs"))
                .map(|text| text.lines().filter_map(|l| l.trim().parse().ok()).collect())
                .unwrap_or_default(),
            Processes::Tree(root) => service_processes(*root)
                .map(|ps| ps.iter().map(|p| p.pid).collect())
                .unwrap_or_default(),
        }
    }
}

/// A local memory source whose observations also carry the resident floor.
pub struct ResidentFloor {
    inner: Box<dyn MemorySource>,
    processes: Processes,
    page_size: u64,
}

impl ResidentFloor {
    pub fn new(inner: Box<dyn MemorySource>, processes: Processes) -> Self {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        ResidentFloor {
            inner,
            processes,
            page_size: u64::try_from(page).unwrap_or(4096),
        }
    }

    /// The largest resident set among the workload's processes now, bytes; `None` when none
    /// could be read (all gone, or /proc hidden).
    fn largest(&self) -> Option<u64> {
        self.processes
            .pids()
            .into_iter()
            .filter_map(|pid| fs::read(format!("/proc/{pid}/statm")).ok())
            .filter_map(|line| parse_statm_resident(&line))
            .map(|pages| pages.saturating_mul(self.page_size))
            .max()
    }
}

impl MemorySource for ResidentFloor {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn poll(&mut self) -> BoxFuture<'_, Result<Vec<Observation>, SourceError>> {
        Box::pin(async move {
            let mut out = self.inner.poll().await?;
            if !out.is_empty() {
                let largest = self.largest();
                for o in &mut out {
                    o.resident = largest;
                }
            }
            Ok(out)
        })
    }

    fn notes(&self) -> Vec<String> {
        self.inner.notes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source answering one fixed observation.
    struct Fixed;

    impl MemorySource for Fixed {
        fn name(&self) -> &'static str {
            "fixed"
        }
        fn poll(&mut self) -> BoxFuture<'_, Result<Vec<Observation>, SourceError>> {
            Box::pin(async {
                Ok(vec![Observation {
                    pod: "local".into(),
                    container: "app".into(),
                    at: chrono::Utc::now(),
                    working_set: 1,
                    usage: None,
                    kernel_peak_usage: None,
                    oom_kills: None,
                    bad_value: None,
                    resident: None,
                }])
            })
        }
    }

    #[tokio::test]
    async fn the_largest_resident_set_of_the_listed_processes() {
        let dir = std::env::temp_dir().join(format!("oomgate-resident-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("cgroup.procs"), "").unwrap();
        let mut floor = ResidentFloor::new(Box::new(Fixed), Processes::Cgroup(dir.clone()));
        assert_eq!(floor.poll().await.unwrap()[0].resident, None);
        fs::write(
            dir.join("cgroup.procs"),
            format!("{}\n", std::process::id()),
        )
        .unwrap();
        let got = floor.poll().await.unwrap()[0]
            .resident
            .expect("a resident figure");
        let own = fs::read(format!("/proc/{}/statm", std::process::id())).unwrap();
        let own = parse_statm_resident(&own).unwrap() * floor.page_size;
        // This test process, read a moment apart: its pages touched so far, within a factor
        // of two of its own statm.
        assert!(
            got >= 16 * 4096 && got <= 2 * own && 2 * got >= own,
            "{got} vs {own}"
        );
        assert_eq!(floor.name(), "fixed");
        fs::remove_dir_all(dir).unwrap();
    }
}
