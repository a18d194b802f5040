//! Entry points for the fuzz targets under `fuzz/` and for `tests/e2e/fuzz_corpus.rs`, which replays
//! the committed seed corpus and every minimized crash through them on stable. Each function
//! takes arbitrary bytes, runs one parser family and panics only when an invariant breaks (that
//! panic is the fuzzer's "crash"): the unit parsers round-trip what they accept, the k6 reader's
//! fast scanner agrees with the serde_json path on every input, and the scenario parser answers
//! any text with a scenario or an error whose line and column lie inside the text. Not part of
//! the public API.

#![doc(hidden)]

use std::path::Path;

use crate::k6::{read_stream, summarize, ReadOptions};
use crate::scenario::{parse, Overrides, ScenarioError};
use crate::units::{
    format_bytes, format_bytes_exact_quantity, format_duration, format_percent, parse_byte_size,
    parse_duration, parse_memory_quantity, parse_percent,
};

/// Memory quantities, byte sizes, durations and percentages: never a panic, and what parses
/// formats back to the same value.
pub fn units(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let s = text.as_ref();

    match parse_memory_quantity(s) {
        Ok(bytes) => {
            let exact = format_bytes_exact_quantity(bytes);
            assert_eq!(
                parse_memory_quantity(&exact).ok(),
                Some(bytes),
                "{s:?} → {bytes} → {exact:?} does not parse back"
            );
            // A byte size accepts every memory quantity, with the same value.
            assert_eq!(
                parse_byte_size(s).ok(),
                Some(bytes),
                "{s:?} is the quantity {bytes} but not the same byte size"
            );
            assert!(!format_bytes(bytes).is_empty());
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }

    match parse_byte_size(s) {
        Ok(bytes) => {
            let exact = format_bytes_exact_quantity(bytes);
            assert_eq!(
                parse_byte_size(&exact).ok(),
                Some(bytes),
                "{s:?} → {bytes} → {exact:?} does not parse back as a byte size"
            );
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }

    match parse_duration(s) {
        Ok(d) => {
            let back = format_duration(d);
            assert_eq!(
                parse_duration(&back).ok(),
                Some(d),
                "{s:?} → {d:?} → {back:?} does not parse back"
            );
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }

    match parse_percent(s) {
        Ok(f) => {
            assert!((0.0..=1.0).contains(&f), "{s:?} → {f} is outside 0%..100%");
            let back = format_percent(f);
            // Four decimals of a percent: within half a millionth of the fraction.
            match parse_percent(&back) {
                Ok(g) => assert!(
                    (g - f).abs() <= 0.5e-6 + 1e-12,
                    "{s:?} → {f} → {back:?} → {g}"
                ),
                Err(e) => panic!("{s:?} → {f} → {back:?} does not parse back: {e}"),
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// k6 JSON lines: the same bytes read with the fast scanner and with serde_json alone (the
/// authoritative path) give the same counts, the same metric definitions and the same summary.
pub fn k6_lines(data: &[u8]) {
    let read = |force_slow_path: bool| {
        let opts = ReadOptions {
            lenient: true,
            threads: 1,
            force_slow_path,
            ..ReadOptions::default()
        };
        read_stream("fuzz.json", data, &opts).map(|agg| {
            let mut stats = agg.stats().clone();
            stats.fallback_lines = 0; // how often the fast path gave up differs by design
            let mut summary = summarize(&agg, None);
            summary.stats.fallback_lines = 0;
            format!("{stats:?}\n{:?}\n{summary:?}", agg.metrics())
        })
    };
    let fast = read(false);
    let slow = read(true);
    match (fast, slow) {
        (Ok(fast), Ok(slow)) => assert_eq!(fast, slow, "fast scanner and serde_json disagree"),
        (Err(fast), Err(slow)) => assert_eq!(fast.to_string(), slow.to_string()),
        (fast, slow) => panic!("fast scanner {fast:?}, serde_json {slow:?}"),
    }
}

/// Line breaks as YAML 1.2 (and serde-saphyr) counts them (`\r\n`, `\r`, `\n`), plus one: the
/// number of lines an error may point into.
fn yaml_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let end = match c {
            '\r' => {
                if let Some((_, '\n')) = chars.peek() {
                    chars.next();
                }
                true
            }
            '\n' => true,
            _ => false,
        };
        if end {
            lines.push(&text[start..i]);
            start = chars.peek().map_or(text.len(), |&(j, _)| j);
        }
    }
    lines.push(&text[start..]);
    lines
}

/// Checks that an error points inside `text`: a line within the text, a column within that line
/// (one past its end allowed), no column without a line, and a message.
fn check_position(text: &str, e: &ScenarioError) {
    assert!(!e.message.trim().is_empty(), "empty message: {e:?}");
    let shown = e.to_string();
    assert!(shown.starts_with("fuzz.yaml"), "{shown}");
    match (e.line, e.column) {
        (None, None) => {}
        (None, Some(_)) => panic!("a column without a line: {e:?}"),
        (Some(line), column) => {
            let lines = yaml_lines(text);
            assert!(
                line >= 1 && line <= lines.len(),
                "line {line} of a text with {} lines: {e:?}",
                lines.len()
            );
            if let Some(column) = column {
                let width = lines[line - 1].chars().count();
                assert!(
                    column >= 1 && column <= width + 1,
                    "column {column} of line {line} ({width} characters): {e:?}"
                );
            }
        }
    }
}

/// Scenario text: any input gives a scenario or an error with a sensible position, never a panic.
/// Variables whose name has an even length are set (to a port number), the others are not.
pub fn scenario(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // `scenario::load` rejects non-UTF-8 files before parsing
    };
    let lookup = |name: &str| name.len().is_multiple_of(2).then(|| "8080".to_string());
    match parse(Path::new("fuzz.yaml"), text, &Overrides::default(), lookup) {
        Ok(s) => {
            let _ = s.load.total_duration();
        }
        Err(e) => check_position(text, &e),
    }
}
