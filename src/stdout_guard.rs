//! Keeps stdout clean for machine-readable output: while a guard lives, file descriptor 1 points
//! at stderr, so a library that prints to stdout (Goose announces "N users launched.") cannot
//! corrupt `--format json`. Dropping the guard restores the original stdout.

use std::io::Write;

/// Redirects fd 1 to fd 2 until dropped.
pub struct StdoutToStderr {
    saved: Option<libc::c_int>,
}

impl StdoutToStderr {
    pub fn new() -> Self {
        let _ = std::io::stdout().flush();
        // SAFETY: dup/dup2 on the process's own standard descriptors; failures leave fd 1 as is.
        let saved = unsafe {
            let saved = libc::dup(1);
            if saved >= 0 && libc::dup2(2, 1) >= 0 {
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
