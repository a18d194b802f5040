//! `oomgate check` for a local workload: everything that can be verified without load. The
//! program exists and is executable (looked up on PATH as the run would), nothing already
//! listens on the ready URL's port (the gate would measure the wrong process), the limit can be
//! enforced here (a probe memory cgroup is created and removed), and the heap settings in the
//! workload's environment are weighed against the limit as the `runtime-setting` rule will. A
//! problem that would stop or mislead the run is an error naming the field; a heap setting is a
//! warning line, judged for real after the run.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::analysis::runtime::{assess, heap_settings, Assessment};
use crate::scenario::{LocalWorkloadSpec, Scenario};
use crate::units::{format_bytes, format_percent};

/// Checks `l` and writes one line per check to `o`; the first blocking problem is the error.
pub fn check_local(sc: &Scenario, l: &LocalWorkloadSpec, o: &mut dyn Write) -> Result<()> {
    let program = l.command.first().map(String::as_str).unwrap_or_default();
    match resolve(program) {
        Some(path) => writeln!(o, "    program: {} (executable)", path.display())?,
        None => bail!(sc.error_at(
            "workload.local.command",
            format!(
                "`{program}` is not an executable file{}: install it or give its full path",
                if program.contains('/') {
                    ""
                } else {
                    " on PATH"
                }
            )
        )),
    }
    if let Some(url) = &l.ready_url {
        if let Some(addr) = port_of(url) {
            match std::net::TcpListener::bind(&addr) {
                Ok(_) => writeln!(o, "    ready URL port {addr}: free")?,
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => bail!(sc.error_at(
                    "workload.local.ready_url",
                    format!(
                        "something already listens on {addr}: the gate would load and wait on \
                         that process, not the one it starts; stop it or pick another port"
                    )
                )),
                // Not a local address this host can bind (e.g. a name): the run will tell.
                Err(e) => writeln!(o, "    ready URL port {addr}: not checked ({e})")?,
            }
        }
    }
    match crate::memory::cgroup::can_create_cgroups() {
        Ok(v) => writeln!(
            o,
            "    memory cgroups: can create ({v}); the limit will be enforced by the kernel"
        )?,
        Err(e) => writeln!(
            o,
            "    memory cgroups: unavailable ({e}); the limit will NOT be enforced and memory will be read from /proc"
        )?,
    }
    for setting in heap_settings(&l.env) {
        let Some(limit) = l.limit else {
            writeln!(
                o,
                "    heap: {} (no limit to weigh it against)",
                setting.describe()
            )?;
            continue;
        };
        let verdict = match assess(&setting, limit) {
            Assessment::Fine { share } => format!("{} of the limit: fine", format_percent(share)),
            Assessment::High { share } => format!(
                "warning: {} of the {} limit, above {}: little room outside the heap",
                format_percent(share),
                format_bytes(limit),
                format_percent(setting.kind.high())
            ),
            Assessment::Low { share } => format!(
                "warning: {} of the {} limit, below {}",
                format_percent(share),
                format_bytes(limit),
                format_percent(setting.kind.low().unwrap_or(0.0))
            ),
            Assessment::AtOrAboveLimit { share } => format!(
                "warning: {} of the {} limit: the kernel OOM-kills before the GC tries hard \
                 (the run will fail runtime-setting)",
                format_percent(share),
                format_bytes(limit)
            ),
            Assessment::Unreadable => "warning: cannot be read".to_string(),
        };
        writeln!(o, "    heap: {}: {verdict}", setting.describe())?;
    }
    Ok(())
}

/// `program` as the run would start it: a path with a slash as is, else the first executable
/// of that name on PATH.
fn resolve(program: &str) -> Option<PathBuf> {
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| executable(p))
    })
}

fn executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// "127.0.0.1:8080" for an http(s) URL on a literal IP address.
fn port_of(url: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    let host = u.host_str()?;
    host.parse::<std::net::IpAddr>().ok()?;
    Some(format!("{host}:{}", u.port_or_known_default()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_on_path_or_by_path() {
        assert!(resolve("sh").is_some());
        assert!(resolve("/bin/sh").is_some());
        assert!(resolve("no-such-program-oomgate").is_none());
        let plain = tempfile::NamedTempFile::new().unwrap();
        assert!(
            resolve(plain.path().to_str().unwrap()).is_none(),
            "not executable"
        );
        assert!(resolve("").is_none());
    }

    #[test]
    fn ports_come_from_literal_addresses_only() {
        assert_eq!(
            port_of("http://127.0.0.1:8080/healthz").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(
            port_of("http://127.0.0.1/").as_deref(),
            Some("127.0.0.1:80")
        );
        assert_eq!(port_of("http://localhost:8080/"), None);
    }
}
