//! Reading heap settings out of environments, and weighing them against a limit.

use super::*;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn one(pairs: &[(&str, &str)]) -> HeapSetting {
    let mut s = heap_settings(&env(pairs));
    assert_eq!(s.len(), 1, "{s:?}");
    s.remove(0)
}

#[test]
fn reads_gomemlimit_as_go_does() {
    assert_eq!(parse_go_bytes("482344960"), Ok(482_344_960));
    assert_eq!(parse_go_bytes("460MiB"), Ok(460 * MIB));
    assert_eq!(parse_go_bytes("512B"), Ok(512));
    assert_eq!(parse_go_bytes("64KiB"), Ok(64 << 10));
    assert_eq!(parse_go_bytes("2GiB"), Ok(2 * GIB));
    assert_eq!(parse_go_bytes("1TiB"), Ok(1 << 40));
    for bad in [
        "1.5GiB",
        "460MB",
        "460Mi",
        "-1",
        "",
        "MiB",
        "99999999999TiB",
    ] {
        assert!(parse_go_bytes(bad).is_err(), "{bad}");
    }
    let s = one(&[("GOMEMLIMIT", "460MiB")]);
    assert_eq!(s.kind, HeapKind::GoMemLimit);
    assert_eq!(s.describe(), "GOMEMLIMIT=460MiB");
    assert_eq!(s.heap_bytes(GIB), Some(460 * MIB));
    assert!(heap_settings(&env(&[("GOMEMLIMIT", "off")])).is_empty());
}

#[test]
fn reads_node_old_space_from_node_options() {
    let s = one(&[(
        "NODE_OPTIONS",
        "--max-old-space-size=256 --enable-source-maps --max-old-space-size=900",
    )]);
    assert_eq!(s.kind, HeapKind::NodeMaxOldSpace);
    assert_eq!(s.token, "--max-old-space-size=900", "the last one wins");
    assert_eq!(s.heap_bytes(GIB), Some(900 * MIB));
    let s = one(&[("NODE_OPTIONS", "--max_old_space_size 512")]);
    assert_eq!(s.heap_bytes(GIB), Some(512 * MIB));
    let s = one(&[("NODE_OPTIONS", "--max-old-space-size=lots")]);
    assert!(s.value.is_err());
    assert!(heap_settings(&env(&[("NODE_OPTIONS", "--enable-source-maps")])).is_empty());
}

#[test]
fn reads_java_heap_flags_from_every_java_variable() {
    assert_eq!(parse_java_size("900m"), Ok(900 * MIB));
    assert_eq!(parse_java_size("2G"), Ok(2 * GIB));
    assert_eq!(parse_java_size("524288k"), Ok(512 * MIB));
    assert_eq!(parse_java_size("1073741824"), Ok(GIB));
    assert!(parse_java_size("1.5g").is_err());
    assert!(parse_java_size("900mb").is_err());
    let all = heap_settings(&env(&[
        ("JAVA_OPTS", "-XX:MaxRAMPercentage=80.0"),
        ("JAVA_TOOL_OPTIONS", "-XX:+UseG1GC \"-Xmx900m\""),
        ("JDK_JAVA_OPTIONS", "-XX:MaxHeapSize=1g"),
    ]));
    let described: Vec<String> = all.iter().map(HeapSetting::describe).collect();
    assert_eq!(
        described,
        [
            "JAVA_TOOL_OPTIONS -Xmx900m",
            "JDK_JAVA_OPTIONS -XX:MaxHeapSize=1g",
            "JAVA_OPTS -XX:MaxRAMPercentage=80.0"
        ]
    );
    assert_eq!(all[2].value, Ok(HeapValue::Share(0.8)));
    assert_eq!(all[2].heap_bytes(GIB), Some((GIB as f64 * 0.8) as u64));
    let s = one(&[("JAVA_OPTS", "-XX:MaxRAMPercentage=150")]);
    assert!(s.value.is_err());
}

#[test]
fn weighs_settings_against_the_limit() {
    let share = |pairs: &[(&str, &str)], limit| assess(&one(pairs), limit);
    assert_eq!(
        share(&[("GOMEMLIMIT", "512MiB")], GIB),
        Assessment::Fine { share: 0.5 }
    );
    assert!(matches!(
        share(&[("GOMEMLIMIT", "500MiB")], GIB),
        Assessment::Low { .. }
    ));
    assert!(matches!(
        share(&[("GOMEMLIMIT", "990MiB")], GIB),
        Assessment::High { .. }
    ));
    assert!(matches!(
        share(&[("GOMEMLIMIT", "972MiB")], GIB),
        Assessment::Fine { .. }
    ));
    assert!(matches!(
        share(&[("GOMEMLIMIT", "2GiB")], GIB),
        Assessment::AtOrAboveLimit { .. }
    ));
    assert!(matches!(
        share(&[("NODE_OPTIONS", "--max-old-space-size=820")], GIB),
        Assessment::High { .. }
    ));
    assert!(matches!(
        share(&[("NODE_OPTIONS", "--max-old-space-size=100")], GIB),
        Assessment::Fine { .. }
    ));
    assert!(matches!(
        share(&[("JAVA_OPTS", "-Xmx1g")], GIB),
        Assessment::AtOrAboveLimit { .. }
    ));
    assert!(matches!(
        share(&[("JAVA_OPTS", "-Xmx1x")], GIB),
        Assessment::Unreadable
    ));
}

#[test]
fn advises_the_setting_that_follows_from_the_limit() {
    assert_eq!(
        advice(HeapKind::GoMemLimit, 512 * MIB, "the limit"),
        "GOMEMLIMIT=460MiB (90% of the limit)"
    );
    assert_eq!(
        advice(HeapKind::NodeMaxOldSpace, GIB, "the limit"),
        "--max-old-space-size=768 (75% of the limit)"
    );
    assert!(advice(HeapKind::JavaXmx, GIB, "the limit").starts_with("-XX:MaxRAMPercentage=75"));
}
