//! Unit tests of reading k6 output on synthetic lines: the RFC 3339, number and string scanners
//! against chrono, the standard library and serde_json, key order and whitespace, the fast path
//! against serde_json, truncated and corrupted lines (across file chunks, pipeline blocks and
//! gzip). `summary_tests.rs` covers the numbers; tests/k6_reader.rs runs the real k6.

use std::io::Write;

use super::scan::{parse_rfc3339, parse_rfc3339_fast, Cursor};
use super::*;

pub(super) fn point(metric: &str, time: &str, value: f64, name: &str, status: &str) -> String {
    format!(
        r#"{{"metric":"{metric}","type":"Point","data":{{"time":"{time}","value":{value},"tags":{{"expected_response":"true","group":"","method":"GET","name":"{name}","proto":"HTTP/1.1","scenario":"default","status":"{status}","url":"http://x/{name}"}}}}}}"#
    )
}

/// The nine lines k6 writes per request, plus nothing else.
pub(super) fn request(time: &str, ms: f64, name: &str, status: u16) -> String {
    let st = status.to_string();
    let failed = if status >= 400 { 1.0 } else { 0.0 };
    let mut out = String::new();
    for (m, v) in [
        ("http_reqs", 1.0),
        ("http_req_duration", ms),
        ("http_req_blocked", 0.01),
        ("http_req_connecting", 0.0),
        ("http_req_tls_handshaking", 0.0),
        ("http_req_sending", 0.01),
        ("http_req_waiting", ms * 0.9),
        ("http_req_receiving", ms * 0.1),
        ("http_req_failed", failed),
    ] {
        out.push_str(&point(m, time, v, name, &st));
        out.push('\n');
    }
    out
}

pub(super) fn vus(time: &str, v: u32) -> String {
    format!(
        "{{\"metric\":\"vus\",\"type\":\"Point\",\"data\":{{\"time\":\"{time}\",\"value\":{v},\"tags\":{{}}}}}}\n"
    )
}

pub(super) fn read_str(text: &str, opts: &ReadOptions) -> Result<Aggregate, K6Error> {
    read_stream(
        "mem.json",
        std::io::Cursor::new(text.as_bytes().to_vec()),
        opts,
    )
}

pub(super) fn sample_run() -> String {
    let mut s = String::from(
        r#"{"type":"Metric","data":{"name":"http_req_duration","type":"trend","contains":"time","thresholds":["p(95)<500"],"submetrics":null},"metric":"http_req_duration"}"#,
    );
    s.push('\n');
    for i in 0..50 {
        let t = format!(
            "2026-11-28T10:00:{:02}.{:09}Z",
            i / 5,
            (i % 5) * 100_000_000
        );
        let name = if i % 3 == 0 { "order" } else { "list" };
        let status = if i % 10 == 0 { 500 } else { 200 };
        s.push_str(&request(&t, 1.0 + i as f64 * 0.5, name, status));
        if i % 5 == 0 {
            s.push_str(&vus(&t, (i / 5 + 1) as u32));
        }
    }
    s
}

#[test]
fn rfc3339_matches_chrono_for_any_offset_and_fraction() {
    for s in [
        "2026-11-28T02:36:55Z",
        "2026-11-28T02:36:55.9Z",
        "2026-11-28T02:36:55.990972006Z",
        "2026-11-28T04:36:55.990972006+02:00",
        "2026-11-27T21:06:55.99097+05:30",
        "2026-11-28T02:36:55-00:00",
        "2024-02-29T23:59:59.000000001-12:00",
        "1969-12-31T23:59:59.5Z",
        "2023-09-08t21:03:10.92457668z",
    ] {
        let want = chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_nanos_opt();
        assert_eq!(parse_rfc3339_fast(s.as_bytes()), want, "{s}");
    }
    // the same instant, 0 and 9 fraction digits, different offsets
    let a = parse_rfc3339(b"2026-11-28T12:00:00+02:00").unwrap();
    let b = parse_rfc3339(b"2026-11-28T10:00:00.000000000Z").unwrap();
    assert_eq!(a, b);
    for bad in [
        "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-11-28T02:36:55",
        "2026-11-28T02:36:55.Z",
        "2026-11-28T02:36:55+0200",
        "2026-11-28 02:36:55Zjunk",
    ] {
        assert_eq!(parse_rfc3339(bad.as_bytes()), None, "{bad}");
    }
    // a leap second is left to chrono
    assert!(parse_rfc3339_fast(b"2016-12-31T23:59:60Z").is_none());
    assert!(parse_rfc3339(b"2016-12-31T23:59:60Z").is_some());
}

#[test]
fn a_valid_rfc3339_time_beyond_the_timeline_is_named_valid() {
    let line = point("http_reqs", "9999-12-31T23:59:59Z", 1.0, "list", "200");
    let e = read_stream(
        "r.json",
        format!("{line}\n").as_bytes(),
        &ReadOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("r.json:1: not a k6 JSON line: \"data.time\" \"9999-12-31T23:59:59Z\" is a valid RFC 3339 time, but outside the years"),
        "{e}"
    );
    assert!(!e.contains("is not an RFC 3339"), "{e}");
    // The control: a time that is not RFC 3339 is called so.
    let line = point("http_reqs", "2026-13-01T00:00:00Z", 1.0, "list", "200");
    let e = read_stream(
        "r.json",
        format!("{line}\n").as_bytes(),
        &ReadOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("is not an RFC 3339 time"), "{e}");
}

#[test]
fn strings_end_at_the_right_quote_at_any_position() {
    let pieces = [
        "a",
        "\\\"",
        "\\\\",
        "\\u0026",
        "é",
        "0123456789abcdef",
        "\\n",
        " ",
    ];
    let mut seed = 7u64;
    for _ in 0..2000 {
        let mut body = String::new();
        for _ in 0..(seed % 13) {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            body.push_str(pieces[(seed >> 33) as usize % pieces.len()]);
        }
        let text = format!("\"{body}\",\"next\"");
        let mut c = Cursor::new(text.as_bytes());
        let raw = c.string().expect("a string");
        assert_eq!(raw.bytes, body.as_bytes());
        assert_eq!(raw.escaped, body.contains('\\'));
        assert_eq!(c.peek(), Some(b','));
        let want: String = serde_json::from_str(&format!("\"{body}\"")).unwrap();
        let unescaped: String =
            serde_json::from_slice(&[&b"\""[..], raw.bytes, &b"\""[..]].concat()).unwrap();
        assert_eq!(unescaped, want);
    }
    // a raw control character or an unfinished string is not a string
    assert!(Cursor::new(b"\"ab\tc\"").string().is_none());
    assert!(Cursor::new(b"\"abcdefghijklmnop").string().is_none());
    assert!(Cursor::new(b"\"abc\\").string().is_none());
}

#[test]
fn numbers_match_the_standard_parser() {
    for s in [
        "0",
        "1",
        "-1",
        "122.817053",
        "0.000921",
        "36.123967",
        "1e3",
        "2.5E-3",
        "-0.0",
        "12345678901234567890",
        "0.1234567890123456789",
        "9007199254740993",
        // serde_json (without float_roundtrip) rounds these differently from str::parse; the
        // scanner must agree with serde_json, the authoritative path.
        "3e23",
        "0.12345678901234567",
        "9583204168252305555862588",
        "1e-400",
    ] {
        let mut c = Cursor::new(s.as_bytes());
        assert_eq!(c.number(), serde_json::from_str::<f64>(s).ok(), "{s}");
        assert!(c.at_end());
    }
    // Out of f64's range: refused, as serde_json refuses it.
    for big in ["1E400", &"9".repeat(400)] {
        assert!(serde_json::from_str::<f64>(big).is_err());
        assert_eq!(Cursor::new(big.as_bytes()).number(), None, "{big}");
    }
    for bad in ["01", "1.", "-", ".5", "1e"] {
        let mut c = Cursor::new(bad.as_bytes());
        assert!(c.number().is_none() || !c.at_end(), "{bad}");
    }
}

#[test]
fn key_order_whitespace_and_offsets_do_not_matter() {
    let canonical = [
        r#"{"metric":"http_reqs","type":"Point","data":{"time":"2026-11-28T10:00:00Z","value":1,"tags":{"name":"a","status":"200"}}}"#,
        r#"{"metric":"http_req_duration","type":"Point","data":{"time":"2026-11-28T10:00:01.500000000Z","value":12.5,"tags":{"name":"a","status":"200"}}}"#,
    ];
    let shuffled = [
        r#"{ "data" : { "tags" : { "status" : "200" , "name" : "a" } , "value" : 1 , "time" : "2026-11-28T12:00:00+02:00" } , "type" : "Point" , "metric" : "http_reqs" }"#,
        "{\"type\":\"Point\",\"data\":{\"metadata\":{\"trace\":[1,{\"x\":null}]},\"value\":1.25e1,\"time\":\"2026-11-28T05:00:01.5-05:00\",\"tags\":{\"name\":\"a\"}},\t\"metric\":\"http_req_duration\"}",
    ];
    let a = summarize(
        &read_str(&canonical.join("\n"), &ReadOptions::default()).unwrap(),
        None,
    );
    let b = summarize(
        &read_str(&shuffled.join("\n"), &ReadOptions::default()).unwrap(),
        None,
    );
    assert_eq!(a.requests, 1);
    assert_eq!(b.requests, 1);
    assert_eq!(a.first_point, b.first_point);
    assert_eq!(a.last_point, b.last_point);
    assert_eq!(a.duration, b.duration);
    assert_eq!(a.per_request, b.per_request);
    assert_eq!(a.status_codes, b.status_codes);
}

#[test]
fn fast_path_agrees_with_serde_json() {
    let mut text = sample_run();
    // escaped names, a check, iterations, a custom metric, tags null, unicode
    text.push_str(concat!(
        r#"{"metric":"http_reqs","type":"Point","data":{"time":"2026-11-28T10:00:20Z","value":1,"tags":{"name":"http://x/?a=1\u0026b=\"2\"","status":"404"}}}"#, "\n",
        r#"{"metric":"http_req_duration","type":"Point","data":{"time":"2026-11-28T10:00:20Z","value":3,"tags":{"name":"http://x/?a=1\u0026b=\"2\""}}}"#, "\n",
        r#"{"metric":"checks","type":"Point","data":{"time":"2026-11-28T10:00:20Z","value":0,"tags":{"check":"is 200 ✓","group":""}}}"#, "\n",
        r#"{"metric":"checks","type":"Point","data":{"time":"2026-11-28T10:00:20Z","value":1,"tags":{"check":"is 200 ✓","group":""}}}"#, "\n",
        r#"{"metric":"iterations","type":"Point","data":{"time":"2026-11-28T10:00:21Z","value":1,"tags":null}}"#, "\n",
        r#"{"metric":"my_trend","type":"Point","data":{"time":"2026-11-28T10:00:22Z","value":-4.5,"tags":{"k":"v"}}}"#, "\n",
        r#"{"type":"Metric","data":{"name":"checks","type":"rate","contains":"default","thresholds":["rate>0.9"],"submetrics":null},"metric":"checks"}"#, "\n",
        "\n",
    ));
    let fast = summarize(&read_str(&text, &ReadOptions::default()).unwrap(), None);
    let slow_opts = ReadOptions {
        force_slow_path: true,
        ..ReadOptions::default()
    };
    let slow = summarize(&read_str(&text, &slow_opts).unwrap(), None);
    assert!(fast.stats.fallback_lines < 5, "{:?}", fast.stats);
    assert_eq!(slow.stats.fallback_lines, slow.stats.lines);
    let strip = |mut s: K6Summary| {
        s.stats.fallback_lines = 0;
        s
    };
    assert_eq!(strip(fast.clone()), strip(slow));
    assert_eq!(fast.requests, 51);
    assert_eq!(fast.checks, 2);
    assert_eq!(fast.checks_passed, 1);
    assert_eq!(fast.iterations, 1);
    assert_eq!(fast.status_codes.get(&404), Some(&1));
    assert!(fast
        .per_request
        .iter()
        .any(|r| r.name == "http://x/?a=1&b=\"2\"" && r.requests == 1));
    assert_eq!(fast.per_check[0].name, "is 200 ✓");
    assert_eq!(fast.metrics["checks"].thresholds, vec!["rate>0.9"]);
    assert_eq!(
        fast.metrics["http_req_duration"].thresholds,
        vec!["p(95)<500"]
    );
    assert_eq!(
        fast.last_point.unwrap().to_rfc3339(),
        "2026-11-28T10:00:22+00:00"
    );
}

#[test]
fn a_cut_off_last_line_is_a_warning() {
    let text = sample_run();
    let full = read_str(&text, &ReadOptions::default()).unwrap();
    let complete_lines = text.lines().count() as u64;
    // cut inside the last line
    let cut = &text[..text.len() - 40];
    let agg = read_str(cut, &ReadOptions::default()).unwrap();
    let s = summarize(&agg, None);
    assert_eq!(s.stats.truncated_lines, 1);
    assert_eq!(s.stats.lines, complete_lines);
    assert!(
        s.warnings[0].contains(&format!("mem.json:{complete_lines}")),
        "{:?}",
        s.warnings
    );
    assert_eq!(s.failed_points, summarize(&full, None).failed_points - 1);
    // a complete last line without its newline is read
    let agg = read_str(text.trim_end(), &ReadOptions::default()).unwrap();
    assert_eq!(agg.stats().truncated_lines, 0);
    let mut s = summarize(&agg, None);
    s.stats.bytes += 1; // the missing newline
    assert_eq!(s, summarize(&full, None));
}

#[test]
fn a_corrupt_line_names_file_and_line_unless_lenient() {
    let mut lines: Vec<String> = sample_run().lines().map(String::from).collect();
    lines[100] = lines[100][..60].to_string(); // a skipped-metric line cut short
    lines[200] = "garbage".to_string();
    let text = lines.join("\n") + "\n";
    let err = read_str(&text, &ReadOptions::default()).unwrap_err();
    assert!(matches!(err, K6Error::Malformed { line: 101, .. }), "{err}");
    assert!(err.to_string().starts_with("mem.json:101: "), "{err}");
    let lenient = ReadOptions {
        lenient: true,
        ..ReadOptions::default()
    };
    let s = summarize(&read_str(&text, &lenient).unwrap(), None);
    assert_eq!(s.stats.skipped_lines, 2);
    assert!(
        s.warnings.iter().any(|w| w.contains("mem.json:201")),
        "{:?}",
        s.warnings
    );
}

#[test]
fn split_chunks_keep_line_numbers_and_results() {
    let dir = tempfile::tempdir().unwrap();
    let text = sample_run().repeat(40);
    let path = dir.path().join("big.json");
    std::fs::write(&path, &text).unwrap();
    let split = ReadOptions {
        threads: 3,
        split_threshold: 1,
        ..ReadOptions::default()
    };
    let one = ReadOptions {
        threads: 1,
        ..ReadOptions::default()
    };
    let a = summarize(&read_files(&[&path], &split).unwrap(), None);
    let b = summarize(&read_files(&[&path], &one).unwrap(), None);
    assert_eq!(a.requests, 2000);
    assert_eq!(a.requests, b.requests);
    assert_eq!(a.duration, b.duration);
    assert_eq!(a.vus, b.vus); // same runner: max per second, not a sum
    assert_eq!(a.stats.lines, b.stats.lines);
    // a bad line in the last third
    let mut lines: Vec<&str> = text.lines().collect();
    let bad = lines.len() * 5 / 6;
    lines[bad] = "{\"metric\":";
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let err = read_files(&[&path], &split).unwrap_err().to_string();
    assert!(err.contains(&format!("big.json:{}:", bad + 1)), "{err}");
}

#[test]
fn gzip_reads_like_plain_and_an_early_end_is_a_warning() {
    let text = sample_run();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(text.as_bytes()).unwrap();
    let gz = enc.finish().unwrap();
    let opts = ReadOptions::default();
    let plain = summarize(&read_str(&text, &opts).unwrap(), None);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.dat"); // no .gz in the name
    std::fs::write(&path, &gz).unwrap();
    let mut g = summarize(&read_files(&[&path], &opts).unwrap(), None);
    assert_eq!(g.sources, vec![path.display().to_string()]);
    g.sources = plain.sources.clone();
    assert_eq!(g, plain);
    std::fs::write(&path, &gz[..gz.len() * 2 / 3]).unwrap();
    let t = summarize(&read_files(&[&path], &opts).unwrap(), None);
    assert!(t.requests > 0 && t.requests < 50);
    assert!(
        t.warnings
            .iter()
            .any(|w| w.contains("gzip stream ends early")),
        "{:?}",
        t.warnings
    );
}

#[test]
fn an_empty_input_reads_as_no_points() {
    let s = summarize(&read_str("", &ReadOptions::default()).unwrap(), None);
    assert_eq!((s.requests, s.stats.lines), (0, 0));
    assert_eq!(s.first_point, None);
    assert_eq!(s.stage_origin, StageOrigin::None);
    assert!(
        s.warnings[0].starts_with("no k6 points in mem.json"),
        "{:?}",
        s.warnings
    );
    assert_eq!(s.load_stats().rps, 0.0);
    assert!(matches!(
        read_files::<&str>(&[], &ReadOptions::default()),
        Err(K6Error::NoInput)
    ));
    assert!(matches!(
        read_files(&["-", "-"], &ReadOptions::default()),
        Err(K6Error::StdinTwice)
    ));
    let missing = read_files(&["/nonexistent/k6.json"], &ReadOptions::default()).unwrap_err();
    assert!(
        missing.to_string().contains("/nonexistent/k6.json"),
        "{missing}"
    );
}

#[test]
fn the_block_pipeline_numbers_lines_across_blocks() {
    // ~12 MB: three blocks for two parser threads, gzipped and through a plain stream
    let text = sample_run().repeat(100);
    let mut lines: Vec<&str> = text.lines().collect();
    let (early, late) = (lines.len() / 3 + 7, lines.len() * 5 / 6);
    lines[early] = "{\"metric\":\"http_reqs\",";
    lines[late] = "not json";
    let bad = lines.join("\n") + "\n";
    let gzip = |t: &str| {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(t.as_bytes()).unwrap();
        enc.finish().unwrap()
    };
    let two = ReadOptions {
        threads: 2,
        ..ReadOptions::default()
    };
    for input in [gzip(&bad), bad.clone().into_bytes()] {
        let err = read_stream("s", std::io::Cursor::new(input.clone()), &two).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!("s:{}: ", early + 1)),
            "{err}"
        );
        let lenient = ReadOptions {
            lenient: true,
            ..two.clone()
        };
        let s = summarize(
            &read_stream("s", std::io::Cursor::new(input), &lenient).unwrap(),
            None,
        );
        assert_eq!(s.stats.skipped_lines, 2);
        assert_eq!(s.stats.lines, lines.len() as u64);
        assert!(
            s.warnings[0].starts_with(&format!("s:{}: ", early + 1)),
            "{:?}",
            s.warnings
        );
        assert!(
            s.warnings[1].starts_with(&format!("s:{}: ", late + 1)),
            "{:?}",
            s.warnings
        );
    }
    // the same numbers from two parser threads as from one
    let one = ReadOptions {
        threads: 1,
        ..ReadOptions::default()
    };
    let a = summarize(
        &read_stream("s", std::io::Cursor::new(gzip(&text)), &two).unwrap(),
        None,
    );
    let b = summarize(&read_str(&text, &one).unwrap(), None);
    let mut a2 = a.clone();
    a2.sources = b.sources.clone();
    assert_eq!(a2, b);
    assert_eq!(a.requests, 5000);
    // cut off mid-line at the end of a multi-block gzip stream: a warning on the last line
    let cut = &text[..text.len() - 30];
    let s = summarize(
        &read_stream("s", std::io::Cursor::new(gzip(cut)), &two).unwrap(),
        None,
    );
    assert_eq!(s.stats.truncated_lines, 1);
    assert!(
        s.warnings[0].starts_with(&format!("s:{}: ", cut.lines().count())),
        "{:?}",
        s.warnings
    );
}

#[test]
fn a_line_longer_than_many_blocks_is_read_whole() {
    // Blocks start at 64 KiB; a 9 MB line is carried over several reads and must arrive whole.
    let long = format!(
        "{{\"metric\":\"http_reqs\",\"type\":\"Point\",\"data\":{{\"time\":\"2024-01-01T00:00:01Z\",\"value\":1,\"tags\":{{\"name\":\"{}\",\"status\":\"200\"}}}}}}\n",
        "x".repeat(9_000_000)
    );
    let text = format!("{}{long}{}", sample_run(), sample_run());
    let opts = ReadOptions {
        threads: 2,
        ..ReadOptions::default()
    };
    for input in [text.clone().into_bytes(), {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(text.as_bytes()).unwrap();
        enc.finish().unwrap()
    }] {
        let agg = read_stream("s", std::io::Cursor::new(input), &opts).unwrap();
        let s = summarize(&agg, None);
        assert_eq!(s.stats.lines, text.lines().count() as u64);
        assert_eq!(s.stats.skipped_lines, 0);
        assert!(
            s.per_request.iter().any(|r| r.name.len() == 9_000_000),
            "the long name was not read whole"
        );
    }
}

#[test]
fn the_k6_driver_is_told_when_its_results_are_cut() {
    let text = sample_run();
    let dir = std::env::temp_dir().join(format!("oomgate-ingest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (whole, cut) = (dir.join("whole.json"), dir.join("cut.json"));
    std::fs::write(&whole, &text).unwrap();
    std::fs::write(&cut, &text[..text.len() - 40]).unwrap();
    let started = chrono::Utc::now();
    assert!(ingest_run(&[&whole], None, started)
        .unwrap()
        .incomplete
        .is_empty());
    let got = ingest_run(&[&cut], None, started).unwrap();
    assert_eq!(got.incomplete.len(), 1, "{:?}", got.incomplete);
    std::fs::remove_dir_all(&dir).unwrap();
}
