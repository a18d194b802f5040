//! Replays the fuzzers' inputs on stable Rust in the normal suite (issue 7, point 3): every file
//! of the committed seed corpus (fuzz/corpus/TARGET) and every minimized crash the fuzzers found
//! (fuzz/regressions/TARGET) goes through the same entry point its fuzz target calls
//! (`oomgate::fuzz_entry`), which panics when an invariant breaks. A fixed crash stays fixed;
//! `scripts/fuzz` runs the fuzzers themselves (docs/fuzzing.md).

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if path.is_file() && !hidden {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Runs `entry` on every input of `target`, naming the file that broke it.
fn replay(target: &str, min_seeds: usize, entry: fn(&[u8])) {
    let files = inputs(target);
    assert!(
        files.len() >= min_seeds,
        "fuzz/corpus/{target} holds {} inputs, expected at least {min_seeds}",
        files.len()
    );
    let mut broken = Vec::new();
    for f in &files {
        let data = std::fs::read(f).unwrap();
        if let Err(e) = std::panic::catch_unwind(|| entry(&data)) {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            broken.push(format!("{}: {msg}", f.display()));
        }
    }
    assert!(
        broken.is_empty(),
        "inputs that break {target}:\n{}",
        broken.join("\n")
    );
}

#[test]
fn units_corpus_and_regressions() {
    replay("units", 40, oomgate::fuzz_entry::units);
}

#[test]
fn k6_line_corpus_and_regressions() {
    replay("k6_line", 20, oomgate::fuzz_entry::k6_lines);
}

#[test]
fn scenario_corpus_and_regressions() {
    replay("scenario", 40, oomgate::fuzz_entry::scenario);
}
