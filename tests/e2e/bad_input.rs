//! The bad input corpus (issue 7, point 2): malformed scenarios, manifests, quantities and k6
//! results files under tests/bad_input/, each with the message a user must see. Scenarios and
//! manifests go through the real binary (`oomgate check`: exit 2, `file:line:col`, never a
//! panic); quantities and k6 files through the library.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::{run_bounded, text};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_input")
}

/// `oomgate check FILE` run from FILE's directory: exit 2, the fragment, no panic.
fn check_rejects(dir: &Path, file: &str, loc: Option<&str>, fragment: &str) {
    let o = run_bounded(
        Command::new(support::oomgate())
            .current_dir(dir)
            .args(["check", file]),
        Duration::from_secs(30),
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{file}: {}", text(&o));
    assert!(!stderr.contains("panicked"), "{file}: {}", text(&o));
    assert!(
        stderr.contains(fragment),
        "{file}: want {fragment:?}\n{}",
        text(&o)
    );
    if let Some(loc) = loc {
        let want = format!("{file}:{loc}");
        assert!(stderr.contains(&want), "{file}: want {want}\n{}", text(&o));
    }
}

#[test]
fn every_bad_scenario_and_manifest_is_rejected_with_its_message() {
    let dir = corpus().join("scenarios");
    let mut n = 0;
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    for name in names {
        let expect = std::fs::read_to_string(dir.join(name.replace(".yaml", ".expect")))
            .unwrap_or_else(|_| panic!("{name} has no .expect file"));
        let mut lines = expect.lines();
        let loc = lines.next().unwrap().trim();
        let fragment = lines.next().unwrap().trim();
        check_rejects(&dir, &name, (loc != "-").then_some(loc), fragment);
        n += 1;
    }
    assert!(n >= 35, "only {n} scenarios in the corpus");
}

#[test]
fn generated_bad_scenarios_are_rejected_without_panic() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "long.yaml",
            format!("name: {}\n", "a".repeat(10_000_000)),
            // `load` is optional since `judge` needs none; `workload` is the first one missing
            "missing field `workload`",
        ),
        (
            "deep.yaml",
            format!("name: {}{}\n", "[".repeat(2000), "]".repeat(2000)),
            "nested deeper than 64 levels",
        ),
        (
            "deep_unclosed.yaml",
            format!("name: {}\n", "{a: [".repeat(2000)),
            "nested deeper than 64 levels",
        ),
        (
            "not_too_deep.yaml",
            format!("name: {}{}\n", "[".repeat(60), "]".repeat(60)),
            "expected a string",
        ),
    ];
    for (file, body, fragment) in cases {
        std::fs::write(dir.path().join(file), body).unwrap();
        check_rejects(dir.path(), file, None, fragment);
    }
}

#[test]
fn bad_quantities_give_their_messages() {
    use oomgate::units::{parse_byte_size, parse_duration, parse_memory_quantity, parse_percent};
    let table = std::fs::read_to_string(corpus().join("quantities.txt")).unwrap();
    let mut n = 0;
    for line in table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let f: Vec<&str> = line.split('\t').collect();
        let (kind, input, want) = (f[0], f[1], f[2]);
        let got = match kind {
            "mem" => parse_memory_quantity(input).map(|_| ()),
            "bytes" => parse_byte_size(input).map(|_| ()),
            "dur" => parse_duration(input).map(|_| ()),
            "pct" => parse_percent(input).map(|_| ()),
            k => panic!("unknown kind {k}"),
        };
        let err = got.expect_err(&format!("{kind} {input:?} must be rejected"));
        assert!(err.to_string().contains(want), "{kind} {input:?}: {err}");
        n += 1;
    }
    assert!(n >= 15);
}

#[test]
fn bad_k6_files_name_file_and_line_and_lenient_mode_counts_them() {
    use oomgate::k6::{read_files, ReadOptions};
    for (file, line) in [
        ("corrupted_middle.json", 2),
        ("bad_time.json", 1),
        ("value_is_string.json", 1),
        ("not_json.json", 1),
    ] {
        let path = corpus().join("k6").join(file);
        let err = read_files(&[&path], &ReadOptions::default())
            .expect_err(&format!("{file} must be rejected"));
        let msg = err.to_string();
        assert!(msg.contains(&format!("{file}:{line}:")), "{file}: {msg}");
        let lenient = ReadOptions {
            lenient: true,
            ..ReadOptions::default()
        };
        let agg = read_files(&[&path], &lenient).expect("lenient mode reads on");
        assert_eq!(agg.stats().skipped_lines, 1, "{file}");
    }
}
