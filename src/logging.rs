//! oomgate's logger, installed before anything else so Goose does not install its own. Lines go
//! to stderr as `oomgate: message` (warnings and errors tagged); Goose's chatter is shown only
//! at -vv. The level comes from -q/-v.

use log::{Level, LevelFilter, Log, Metadata, Record};

struct StderrLogger {
    level: LevelFilter,
    goose_level: LevelFilter,
}

impl Log for StderrLogger {
    fn enabled(&self, m: &Metadata) -> bool {
        let external = !m.target().starts_with("oomgate");
        let limit = if external {
            self.goose_level
        } else {
            self.level
        };
        m.level() <= limit
    }

    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let msg = crate::report::sanitize_terminal(&r.args().to_string()).into_owned();
        let line = match r.level() {
            Level::Error => format!("oomgate: error: {msg}"),
            Level::Warn => format!("oomgate: warning: {msg}"),
            Level::Info => format!("oomgate: {msg}"),
            _ => format!("oomgate: [{}] {msg}", r.target()),
        };
        eprintln!("{line}");
    }

    fn flush(&self) {}
}

/// Install the logger. `verbosity`: -1 quiet, 0 normal, 1 verbose, 2+ also library logs.
pub fn init(verbosity: i8) {
    let level = match verbosity {
        i8::MIN..=-1 => LevelFilter::Warn,
        0 => LevelFilter::Info,
        1 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    };
    let goose_level = if verbosity >= 2 {
        LevelFilter::Info
    } else {
        LevelFilter::Error
    };
    let logger = Box::new(StderrLogger { level, goose_level });
    if log::set_boxed_logger(logger).is_ok() {
        log::set_max_level(level.max(goose_level));
    }
}
