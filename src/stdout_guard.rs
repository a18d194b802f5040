//! Keeps stdout clean for machine-readable output: while a guard lives, file descriptor 1 points
//! at /dev/null, so a library that prints to stdout (Goose announces "N users launched.") can
//! neither corrupt `--format json` nor break the live progress line. Dropping the guard restores
//! the original stdout. oomgate itself never prints to stdout while the load runs.

use std::io::Write;

/// Redirects fd 1 to /dev/null until dropped.
pub struct StdoutToStderr {
    saved: Option<libc::c_int>,
}

impl StdoutToStderr {
    pub fn new() -> Self {
        let _ = std::io::stdout().flush();
        // SAFETY: dup/dup2/open/close on the process's own descriptors; failures leave fd 1 as is.
        let saved = unsafe {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            let saved = libc::dup(1);
            let ok = null >= 0 && saved >= 0 && libc::dup2(null, 1) >= 0;
            if null >= 0 {
                libc::close(null);
            }
            if ok {
                Some(saved)
            } else {
                if saved >= 0 {
                    libc::close(saved);
                }
                None
            }
        };
        StdoutToStderr { saved }
    }
}

impl Default for StdoutToStderr {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for StdoutToStderr {
    fn drop(&mut self) {
        let _ = std::io::stdout().flush();
        if let Some(fd) = self.saved.take() {
            // SAFETY: restores the descriptor saved in `new`.
            unsafe {
                libc::dup2(fd, 1);
                libc::close(fd);
            }
        }
    }
}
