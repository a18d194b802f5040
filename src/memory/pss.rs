//! One process's memory for the /proc fallback (`procfs`): its proportional set size from
//! `/proc/PID/smaps_rollup` (Linux 4.14+), where a page mapped by n processes counts 1/n in
//! each, so summing over the service's processes counts a copy-on-write page shared by a parent
//! and its forked children once, not once per process. Where smaps_rollup cannot be read (an
//! older kernel, a process the gate may not inspect) the resident set size from
//! `/proc/PID/statm` stands in: it counts a shared page in every process that maps it, so the
//! sum can only be too high, never too low, and `procfs` says in a note that it happened.

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use super::SourceError;

/// How one process's memory was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessMemory {
    /// Proportional set size, in bytes (from smaps_rollup).
    Pss(u64),
    /// Resident set size, in bytes (from statm), because smaps_rollup could not be read.
    Rss(u64),
}

impl ProcessMemory {
    pub fn bytes(self) -> u64 {
        match self {
            ProcessMemory::Pss(b) | ProcessMemory::Rss(b) => b,
        }
    }
}

/// Why smaps_rollup was not used for a process (kept for the report's note).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RssInstead {
    pub pid: u32,
    pub why: String,
}

/// Read one process. `Ok(None)`: the process is gone (exited, or a zombie with no memory).
/// `fallback` is set when statm RSS had to stand in for PSS.
pub fn read_process(
    proc_root: &Path,
    pid: u32,
    page_size: u64,
    buf: &mut Vec<u8>,
    fallback: &mut Option<RssInstead>,
) -> Result<Option<ProcessMemory>, SourceError> {
    let dir = proc_root.join(pid.to_string());
    let rollup = dir.join("smaps_rollup");
    let why = match read_file(&rollup, buf) {
        Ok(()) => match parse_pss(buf) {
            Some(pss) => return Ok(Some(ProcessMemory::Pss(pss))),
            None => format!("{} has no Pss line", rollup.display()),
        },
        // A zombie's smaps_rollup fails with ESRCH: it has no memory left to count.
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(None),
        Err(e) => format!("reading {}: {e}", rollup.display()),
    };
    let statm = dir.join("statm");
    match read_file(&statm, buf) {
        Ok(()) => match parse_statm_resident(buf) {
            Some(pages) => {
                fallback.get_or_insert(RssInstead { pid, why });
                Ok(Some(ProcessMemory::Rss(pages.saturating_mul(page_size))))
            }
            None => Err(SourceError::Parse {
                path: statm.display().to_string(),
                detail: "not a /proc/PID/statm line".to_string(),
            }),
        },
        Err(e) if gone(&e) => Ok(None),
        Err(e) => Err(SourceError::Io {
            path: statm.display().to_string(),
            source: e,
        }),
    }
}

/// ENOENT or ESRCH: the process is gone.
pub(super) fn gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH)
}

pub(super) fn read_file(path: &Path, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    let f = fs::File::open(path)?;
    f.take(1 << 20).read_to_end(buf)?;
    Ok(())
}

/// The `Pss:` line of smaps_rollup (in kB, as the kernel writes it), in bytes. Other lines that
/// start with "Pss" (`Pss_Anon:`, `Pss_File:`, `Pss_Dirty:`, …) are parts of it, not it.
fn parse_pss(text: &[u8]) -> Option<u64> {
    for line in text.split(|&b| b == b'\n') {
        let Some(rest) = line.strip_prefix(b"Pss:") else {
            continue;
        };
        let mut words = rest
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty());
        let value: u64 = std::str::from_utf8(words.next()?).ok()?.parse().ok()?;
        return match words.next() {
            Some(b"kB") => value.checked_mul(1024),
            _ => None,
        };
    }
    None
}

/// The resident page count, the second field of `/proc/PID/statm`.
pub(super) fn parse_statm_resident(line: &[u8]) -> Option<u64> {
    let field = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
        .nth(1)?;
    std::str::from_utf8(field).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// smaps_rollup as Linux 6.x writes it.
    const ROLLUP: &str = "\
55d0c0a00000-7ffd4b9fe000 ---p 00000000 00:00 0                          [rollup]
Rss:              103424 kB
Pss:               35210 kB
Pss_Dirty:         34000 kB
Pss_Anon:          33900 kB
Pss_File:           1310 kB
Pss_Shmem:             0 kB
Shared_Clean:       2000 kB
Shared_Dirty:     100000 kB
Private_Clean:       424 kB
Private_Dirty:      1000 kB
Referenced:       103424 kB
Anonymous:        101000 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
";

    #[test]
    fn reads_the_pss_line_not_its_parts() {
        assert_eq!(parse_pss(ROLLUP.as_bytes()), Some(35_210 * 1024));
        // Linux 4.14 has no Pss_* lines; order does not matter.
        assert_eq!(
            parse_pss(b"[rollup]\nRss: 8 kB\nPss:\t4 kB\nSwap: 0 kB\n"),
            Some(4096)
        );
        let parts_only = ROLLUP.replace("Pss:               35210 kB\n", "");
        assert_eq!(parse_pss(parts_only.as_bytes()), None);
        assert_eq!(parse_pss(b""), None);
        assert_eq!(parse_pss(b"Pss: 12\n"), None, "no unit");
        assert_eq!(parse_pss(b"Pss: 12 MB\n"), None, "an unknown unit");
        assert_eq!(parse_pss(b"Pss: x kB\n"), None);
        assert_eq!(parse_pss(b"Pss: 18446744073709551615 kB\n"), None);
    }

    #[test]
    fn reads_statm() {
        assert_eq!(parse_statm_resident(b"1000 250 30 1 0 90 0\n"), Some(250));
        assert_eq!(parse_statm_resident(b"1000"), None);
        assert_eq!(parse_statm_resident(b"1000 -1"), None);
    }

    #[test]
    fn falls_back_to_statm_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("42");
        fs::create_dir(&p).unwrap();
        fs::write(p.join("statm"), "1000 250 30 1 0 90 0\n").unwrap();
        let mut buf = Vec::new();
        let mut fallback = None;
        let m = read_process(dir.path(), 42, 4096, &mut buf, &mut fallback).unwrap();
        assert_eq!(m, Some(ProcessMemory::Rss(250 * 4096)));
        let f = fallback.expect("the fallback is recorded");
        assert_eq!(f.pid, 42);
        assert!(f.why.contains("smaps_rollup"), "{}", f.why);

        // With smaps_rollup there, PSS is used and nothing is recorded.
        fs::write(p.join("smaps_rollup"), ROLLUP).unwrap();
        let mut fallback = None;
        let m = read_process(dir.path(), 42, 4096, &mut buf, &mut fallback).unwrap();
        assert_eq!(m, Some(ProcessMemory::Pss(35_210 * 1024)));
        assert_eq!(fallback, None);

        // A process with neither file is gone.
        let mut fallback = None;
        assert_eq!(
            read_process(dir.path(), 7, 4096, &mut buf, &mut fallback).unwrap(),
            None
        );
        // A statm that is not one is an error, not a zero.
        fs::write(p.join("smaps_rollup"), "").unwrap();
        fs::write(p.join("statm"), "garbage").unwrap();
        assert!(read_process(dir.path(), 42, 4096, &mut buf, &mut fallback).is_err());
    }

    #[test]
    fn this_process_has_a_pss() {
        let mut buf = Vec::new();
        let mut fallback = None;
        let m = read_process(
            Path::new("/proc"),
            std::process::id(),
            4096,
            &mut buf,
            &mut fallback,
        )
        .unwrap();
        assert!(
            matches!(m, Some(ProcessMemory::Pss(b)) if b > 1 << 20),
            "{m:?}"
        );
    }
}
