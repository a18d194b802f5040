use super::quantity::QUANTITY_EXPECTED;
use super::*;

const KI: u64 = 1024;
const MI: u64 = 1024 * KI;
const GI: u64 = 1024 * MI;

fn q(s: &str) -> Result<u64, UnitError> {
    parse_memory_quantity(s)
}

fn msg<T: std::fmt::Debug>(r: Result<T, UnitError>) -> String {
    match r {
        Ok(v) => format!("unexpectedly parsed as {v:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn quantity_plain_and_decimal_suffixes() {
    assert_eq!(q("0"), Ok(0));
    assert_eq!(q("128974848"), Ok(128_974_848));
    assert_eq!(q("129M"), Ok(129_000_000));
    assert_eq!(q("1k"), Ok(1000));
    assert_eq!(q("1.1k"), Ok(1100));
    assert_eq!(q("2G"), Ok(2_000_000_000));
    assert_eq!(q("1T"), Ok(1_000_000_000_000));
    assert_eq!(q("1P"), Ok(1_000_000_000_000_000));
    assert_eq!(q("1E"), Ok(1_000_000_000_000_000_000));
    assert_eq!(q("18E"), Ok(18_000_000_000_000_000_000));
}

#[test]
fn quantity_binary_suffixes() {
    assert_eq!(q("1Ki"), Ok(KI));
    assert_eq!(q("123Mi"), Ok(128_974_848));
    assert_eq!(q("512Mi"), Ok(512 * MI));
    assert_eq!(q("1Gi"), Ok(GI));
    assert_eq!(q("0.5Gi"), Ok(536_870_912));
    assert_eq!(q("1.5Gi"), Ok(1_610_612_736));
    assert_eq!(q("1Ti"), Ok(1 << 40));
    assert_eq!(q("1Pi"), Ok(1 << 50));
    assert_eq!(q("15Ei"), Ok(15 << 60));
    assert_eq!(q("15.999999999999999999Ei"), Ok(u64::MAX));
}

#[test]
fn quantity_number_forms_and_sign() {
    assert_eq!(q("+1Ki"), Ok(1024));
    assert_eq!(q(".5Ki"), Ok(512));
    assert_eq!(q("1.Ki"), Ok(1024));
    assert_eq!(q("007Mi"), Ok(7 * MI));
    assert_eq!(q("1.50Gi"), Ok(1_610_612_736));
    assert_eq!(q("-0"), Ok(0));
    assert_eq!(q(" 512Mi "), Ok(512 * MI));
}

#[test]
fn quantity_exponents() {
    assert_eq!(q("1e3"), Ok(1000));
    assert_eq!(q("129e6"), Ok(129_000_000));
    assert_eq!(q("1E6"), Ok(1_000_000));
    assert_eq!(q("1e+3"), Ok(1000));
    assert_eq!(q("1.5e3"), Ok(1500));
    assert_eq!(q("1.5e-3"), Ok(1), "a fraction of a byte rounds up");
    assert_eq!(q("1500e-3"), Ok(2));
    assert_eq!(q("0e99999999999999999"), Ok(0));
    assert_eq!(q("1e-99999999999999999"), Ok(1));
    assert_eq!(
        q("1e99999999999999999"),
        Err(UnitError::QuantityTooLarge {
            input: "1e99999999999999999".into()
        })
    );
    assert!(matches!(q("1e"), Err(UnitError::NotAQuantity { .. })));
    assert!(matches!(q("1e1.5"), Err(UnitError::NotAQuantity { .. })));
}

#[test]
fn quantity_rounds_fractional_bytes_up() {
    assert_eq!(q("0.5"), Ok(1));
    assert_eq!(q("1.0001"), Ok(2));
    assert_eq!(q("0.1Ki"), Ok(103)); // 102.4
    assert_eq!(
        q("0.000000000000000000000000000000000000000000001Ki"),
        Ok(1)
    );
    assert_eq!(
        q("1.00000000000000000000000000000000000000000000Ki"),
        Ok(1024)
    );
}

#[test]
fn quantity_overflow() {
    assert_eq!(
        q("99999999999Ei"),
        Err(UnitError::QuantityTooLarge {
            input: "99999999999Ei".into()
        })
    );
    assert!(matches!(q("16Ei"), Err(UnitError::QuantityTooLarge { .. })));
    assert!(matches!(q("19E"), Err(UnitError::QuantityTooLarge { .. })));
    assert!(matches!(
        q("18446744073709551616"),
        Err(UnitError::QuantityTooLarge { .. })
    ));
    assert_eq!(q("18446744073709551615"), Ok(u64::MAX));
    assert!(msg(q("16Ei")).contains("too large"));
}

#[test]
fn quantity_milli_micro_nano_are_fractions_of_a_byte() {
    assert_eq!(
        msg(q("400m")),
        "\"400m\" is 0.4 bytes: the m suffix means thousandths; write 400Mi or 400M"
    );
    assert_eq!(
        msg(q("1500m")),
        "\"1500m\" is 1.5 bytes: the m suffix means thousandths; write 1500Mi or 1500M"
    );
    assert_eq!(
        msg(q("1000m")),
        "\"1000m\" is 1 byte: the m suffix means thousandths; write 1000Mi or 1000M"
    );
    assert_eq!(
        msg(q("5u")),
        "\"5u\" is 0.000005 bytes: the u suffix means millionths; write 5Mi or 5M"
    );
    assert!(msg(q("2n")).contains("billionths"));
    assert!(msg(q("0.5m")).contains("write 0.5Mi or 0.5M"));
}

#[test]
fn quantity_rejects_malformed() {
    assert_eq!(
        q(""),
        Err(UnitError::Empty {
            expected: QUANTITY_EXPECTED
        })
    );
    assert!(matches!(q("   "), Err(UnitError::Empty { .. })));
    assert_eq!(
        q("-1Mi"),
        Err(UnitError::NegativeQuantity {
            input: "-1Mi".into()
        })
    );
    assert_eq!(
        msg(q("-1Mi")),
        "\"-1Mi\" is negative: a memory size is zero or more"
    );
    for bad in [
        "abc", "Mi", ".", "+", "-", "1..5Mi", "1.5.5", "1Mii", "1 Mi", "0x10", "1_000", "1,5Gi",
        "NaN", "inf", "++1", "1Ki5",
    ] {
        assert!(q(bad).is_err(), "{bad:?} should be rejected");
    }
    assert_eq!(
        msg(q("1 Mi")),
        "\"1 Mi\" is not a memory quantity (no space before the suffix: write 1Mi)"
    );
    assert!(msg(q("1GB")).contains("Kubernetes spells it 1G (powers of 1000) or 1Gi"));
    assert!(msg(q("1K")).contains("write 1k for 1000s or 1Ki for 1024s"));
    assert!(msg(q("1gi")).contains("write 1Gi"));
    assert!(msg(q("1x")).contains("unknown suffix \"x\""));
    assert!(msg(q("abc")).starts_with("\"abc\" is not a memory quantity"));
}

#[test]
fn byte_sizes() {
    let b = parse_byte_size;
    assert_eq!(b("512Mi"), Ok(512 * MI));
    assert_eq!(b("512 Mi"), Ok(512 * MI));
    assert_eq!(b("512MiB"), Ok(512 * MI));
    assert_eq!(b("512 MiB"), Ok(512 * MI));
    assert_eq!(b("1.5 GiB"), Ok(1_610_612_736));
    assert_eq!(b("1KiB"), Ok(1024));
    assert_eq!(b("1TiB"), Ok(1 << 40));
    assert_eq!(b("100B"), Ok(100));
    assert_eq!(b("100 B"), Ok(100));
    assert_eq!(b("1KB"), Ok(1000));
    assert_eq!(b("1kB"), Ok(1000));
    assert_eq!(b("2MB"), Ok(2_000_000));
    assert_eq!(b("1.5 GB"), Ok(1_500_000_000));
    assert_eq!(b("1TB"), Ok(1_000_000_000_000));
    assert_eq!(b("129e6"), Ok(129_000_000));
    assert_eq!(b("+1Ki"), Ok(1024));
    assert_eq!(b("1048576"), Ok(MI));
    assert!(b("512  MiB").is_err(), "one space at most");
    assert!(b("MiB").is_err());
    assert!(b("1e3 MB").is_err());
    assert!(b("1Mb").is_err());
    assert!(b("").is_err());
    assert_eq!(
        msg(b("400m")),
        "\"400m\" is 0.4 bytes: the m suffix means thousandths; write 400Mi or 400M"
    );
    assert_eq!(
        msg(b("-1 MiB")),
        "\"-1 MiB\" is negative: a memory size is zero or more"
    );
    assert!(msg(b("99999999999 EiB")).starts_with("\"99999999999 EiB\" is too large"));
    assert!(msg(b("12 parsecs")).starts_with("\"12 parsecs\" is not a memory quantity"));
}

#[test]
fn formats_bytes_for_people() {
    assert_eq!(format_bytes(0), "0 B");
    assert_eq!(format_bytes(100), "100 B");
    assert_eq!(format_bytes(1023), "1023 B");
    assert_eq!(format_bytes(1024), "1 KiB");
    assert_eq!(format_bytes(512 * KI), "512 KiB");
    assert_eq!(format_bytes(870 * MI), "870 MiB");
    assert_eq!(format_bytes(GI), "1 GiB");
    assert_eq!(format_bytes(1_610_612_736), "1.5 GiB");
    assert_eq!(format_bytes(GI - 1), "1 GiB");
    assert_eq!(format_bytes(1500), "1.5 KiB");
    assert_eq!(format_bytes(u64::MAX), "16 EiB");
}

#[test]
fn formats_exact_quantities() {
    assert_eq!(format_bytes_exact_quantity(0), "0");
    assert_eq!(format_bytes_exact_quantity(512 * MI), "512Mi");
    assert_eq!(format_bytes_exact_quantity(GI), "1Gi");
    assert_eq!(format_bytes_exact_quantity(1_610_612_736), "1536Mi");
    assert_eq!(format_bytes_exact_quantity(1000), "1000");
    assert_eq!(format_bytes_exact_quantity(2048), "2Ki");
    for v in [0, 1, 1000, 512 * MI, 1_610_612_736, u64::MAX, 15 << 60] {
        assert_eq!(
            q(&format_bytes_exact_quantity(v)),
            Ok(v),
            "round trip of {v}"
        );
    }
}

#[test]
fn percentages() {
    assert_eq!(parse_percent("20%"), Ok(0.2));
    assert_eq!(parse_percent("12.5%"), Ok(0.125));
    assert_eq!(parse_percent("0%"), Ok(0.0));
    assert_eq!(parse_percent("100%"), Ok(1.0));
    assert_eq!(parse_percent("20 %"), Ok(0.2));
    assert_eq!(parse_percent("1%"), Ok(0.01));
    assert_eq!(
        msg(parse_percent("20")),
        "\"20\" is not a percentage (write 20%)"
    );
    assert_eq!(
        msg(parse_percent("0.2")),
        "\"0.2\" is not a percentage (write it with a % sign: 0.2 as a fraction is 20%)"
    );
    assert!(msg(parse_percent("101%")).contains("between 0% and 100%"));
    assert!(msg(parse_percent("-5%")).contains("between 0% and 100%"));
    assert!(msg(parse_percent("twenty")).contains("write e.g. 20%"));
    for bad in ["%", "inf%", "NaN%", "1e2%", "20%%", "", "20 percent"] {
        assert!(parse_percent(bad).is_err(), "{bad:?} should be rejected");
    }
    assert_eq!(format_percent(0.2), "20%");
    assert_eq!(format_percent(0.125), "12.5%");
    assert_eq!(format_percent(0.07), "7%");
    assert_eq!(format_percent(1.0), "100%");
    assert_eq!(format_percent(0.0), "0%");
    for s in ["20%", "12.5%", "7%", "33.3333%"] {
        let v = parse_percent(s);
        assert_eq!(v.map(format_percent).as_deref(), Ok(s));
    }
}

fn d(s: &str) -> Result<Duration, UnitError> {
    parse_duration(s)
}

#[test]
fn durations() {
    assert_eq!(d("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(d("90s"), Ok(Duration::from_secs(90)));
    assert_eq!(d("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(d("1h"), Ok(Duration::from_secs(3600)));
    assert_eq!(d("1h30m"), Ok(Duration::from_secs(5400)));
    assert_eq!(d("1h30m15s"), Ok(Duration::from_secs(5415)));
    assert_eq!(d("1.5s"), Ok(Duration::from_millis(1500)));
    assert_eq!(d("1.5h"), Ok(Duration::from_secs(5400)));
    assert_eq!(d("0s"), Ok(Duration::ZERO));
    assert_eq!(d("250us"), Ok(Duration::from_micros(250)));
    assert_eq!(d("250µs"), Ok(Duration::from_micros(250)));
    assert_eq!(d("10ns"), Ok(Duration::from_nanos(10)));
    assert_eq!(d("1m30s500ms"), Ok(Duration::from_millis(90_500)));
    assert_eq!(d(".5s"), Ok(Duration::from_millis(500)));
    assert_eq!(d("0.000000000000000001h"), Ok(Duration::ZERO));
}

#[test]
fn durations_rejected_with_hints() {
    assert_eq!(
        msg(d("5 minutes")),
        "\"5 minutes\" is not a duration (write 5m)"
    );
    assert_eq!(
        msg(d("30 seconds")),
        "\"30 seconds\" is not a duration (write 30s)"
    );
    assert_eq!(
        msg(d("2 hours")),
        "\"2 hours\" is not a duration (write 2h)"
    );
    assert_eq!(
        msg(d("1 hour 30 minutes")),
        "\"1 hour 30 minutes\" is not a duration (write 1h30m)"
    );
    assert_eq!(
        msg(d("1h 30m")),
        "\"1h 30m\" is not a duration (write 1h30m)"
    );
    assert_eq!(msg(d("5min")), "\"5min\" is not a duration (write 5m)");
    assert_eq!(msg(d("2 days")), "\"2 days\" is not a duration (write 48h)");
    assert_eq!(
        msg(d("1.5 days")),
        "\"1.5 days\" is not a duration (write 36h)"
    );
    assert_eq!(
        msg(d("500 milliseconds")),
        "\"500 milliseconds\" is not a duration (write 500ms)"
    );
    assert_eq!(
        msg(d("5")),
        "\"5\" is not a duration (add a unit: 5s, 5m, 5h)"
    );
    assert_eq!(
        msg(d("0")),
        "\"0\" is not a duration (add a unit: 0s, 0m, 0h)"
    );
    assert_eq!(
        msg(d("5x")),
        "\"5x\" is not a duration (use h, m, s or ms, e.g. 1h30m, 90s, 500ms)"
    );
    assert_eq!(
        msg(d("-5s")),
        "\"-5s\" is not a duration (a duration cannot be negative)"
    );
    assert!(msg(d("30s1m")).contains("from largest to smallest"));
    assert!(msg(d("1m1m")).contains("from largest to smallest"));
    assert!(matches!(d(""), Err(UnitError::Empty { .. })));
    for bad in [
        "1h30",
        "s",
        "1.2.3s",
        "1 fortnight",
        "PT5M",
        "5m-",
        "inf s",
        "1d",
    ] {
        assert!(d(bad).is_err(), "{bad:?} should be rejected");
    }
    assert_eq!(msg(d("1d")), "\"1d\" is not a duration (write 24h)");
    assert!(msg(d("999999999999999999999h")).contains("longer than any run"));
}

#[test]
fn formats_durations() {
    let f = format_duration;
    assert_eq!(f(Duration::from_millis(500)), "500ms");
    assert_eq!(f(Duration::from_secs(90)), "1m30s");
    assert_eq!(f(Duration::from_secs(120)), "2m");
    assert_eq!(f(Duration::from_secs(5400)), "1h30m");
    assert_eq!(f(Duration::from_secs(3615)), "1h15s");
    assert_eq!(f(Duration::from_millis(1500)), "1.5s");
    assert_eq!(f(Duration::from_millis(61_250)), "1m1.25s");
    assert_eq!(f(Duration::ZERO), "0s");
    assert_eq!(f(Duration::from_micros(250)), "250us");
    assert_eq!(f(Duration::from_micros(1500)), "1.5ms");
    assert_eq!(f(Duration::from_nanos(7)), "7ns");
    for v in [
        Duration::from_millis(500),
        Duration::from_secs(90),
        Duration::from_secs(5415),
        Duration::from_millis(61_250),
        Duration::from_nanos(1_234_567),
        Duration::from_nanos(3_723_000_000_001),
        Duration::MAX,
    ] {
        assert_eq!(d(&f(v)), Ok(v), "round trip of {v:?}");
    }
}

#[derive(Debug, Deserialize, Serialize, PartialEq)]
struct Doc {
    limit: Option<Bytes>,
    headroom: Option<Percent>,
    interval: Option<DurationValue>,
}

fn yaml(text: &str) -> Result<Doc, String> {
    serde_saphyr::from_str(text).map_err(|e| e.to_string())
}

#[test]
fn serde_newtypes_read_yaml() {
    let doc = yaml("limit: 512Mi\nheadroom: 20%\ninterval: 5s\n");
    assert_eq!(
        doc,
        Ok(Doc {
            limit: Some(Bytes(512 * MI)),
            headroom: Some(Percent(0.2)),
            interval: Some(DurationValue(Duration::from_secs(5))),
        })
    );
    assert_eq!(
        yaml("limit: 1073741824").map(|d| d.limit),
        Ok(Some(Bytes(GI)))
    );
    assert_eq!(
        yaml("limit: 512 MiB").map(|d| d.limit),
        Ok(Some(Bytes(512 * MI)))
    );
    assert_eq!(
        yaml("limit: 129e6").map(|d| d.limit),
        Ok(Some(Bytes(129_000_000)))
    );
    assert_eq!(yaml("limit: '1e3'").map(|d| d.limit), Ok(Some(Bytes(1000))));

    let err = |text: &str| yaml(text).err().unwrap_or_default();
    assert!(err("limit: 400m").contains("\"400m\" is 0.4 bytes"));
    assert!(err("limit: -5").contains("is negative"));
    assert!(err("headroom: 20").contains("\"20\" is not a percentage (write 20%)"));
    assert!(err("headroom: 0.2").contains("0.2 as a fraction is 20%"));
    assert!(err("interval: 5").contains("\"5\" is not a duration (add a unit: 5s, 5m, 5h)"));
    assert!(err("interval: 5 minutes").contains("(write 5m)"));
    assert!(err("interval: [1]").contains("a duration such as"));
    assert!(err("limit: true").contains("a memory size such as"));
}

#[test]
fn serde_newtypes_write_canonical_strings() {
    let doc = Doc {
        limit: Some(Bytes(1_610_612_736)),
        headroom: Some(Percent(0.125)),
        interval: Some(DurationValue(Duration::from_secs(90))),
    };
    let text = serde_saphyr::to_string(&doc).unwrap_or_default();
    assert_eq!(text, "limit: 1536Mi\nheadroom: 12.5%\ninterval: 1m30s\n");
    assert_eq!(yaml(&text), Ok(doc));
    assert_eq!(Bytes(870 * MI).to_string(), "870 MiB");
    assert_eq!(Percent(0.2).to_string(), "20%");
    assert_eq!(
        DurationValue(Duration::from_secs(5400)).to_string(),
        "1h30m"
    );
}

#[test]
fn formats_rates_changes_and_spans() {
    assert_eq!(format_bytes_f(0.62 * (1024.0 * 1024.0)), "0.62 MiB");
    assert_eq!(format_bytes_f(48.0 * 1024.0), "48 KiB");
    assert_eq!(format_bytes_f(2.1 * (1024.0 * 1024.0)), "2.1 MiB");
    assert_eq!(format_bytes_f(120.4 * (1024.0 * 1024.0)), "120 MiB");
    assert_eq!(format_bytes_f(-1.5 * (1024.0 * 1024.0)), "-1.5 MiB");
    assert_eq!(format_bytes_f(0.0), "0 B");
    assert_eq!(format_change(0.3), "+30%");
    assert_eq!(format_change(-0.0483), "-4.8%");
    assert_eq!(format_change(0.0001), "0%");
    assert_eq!(format_minutes(37.2), "37 min");
    assert_eq!(format_minutes(0.5), "30 s");
    assert_eq!(format_minutes(150.0), "2.5 h");
    assert_eq!(format_minutes(4000.0), "3 days");
}

#[test]
fn formats_measured_shares() {
    assert_eq!(format_share(42.0 / 68.0), "61.8%");
    assert_eq!(format_share(0.9), "90%");
    assert_eq!(format_share(1.0), "100%");
    assert_eq!(format_share(0.0), "0%");
    assert_eq!(format_share(3.0 / 12_000.0), "0.025%");
    assert_eq!(format_share(0.9999), "99.9%");
    assert_eq!(format_share(1e-9), "<0.0001%");
    assert_eq!(format_shares(0.89999, 0.9).0, "89.999%");
    assert_eq!(format_shares(0.5, 0.9).0, "50%");
}

#[test]
fn byte_pairs_that_look_equal_get_exact_counts() {
    assert_eq!(
        format_byte_pair(858_993_460, 858_993_459),
        (
            "819.2 MiB (858993460 bytes)".to_string(),
            "819.2 MiB (858993459 bytes)".to_string()
        )
    );
    assert_eq!(
        format_byte_pair(610 * MI, 858_993_459),
        ("610 MiB".to_string(), "819.2 MiB".to_string())
    );
}

#[test]
fn formats_milliseconds() {
    assert_eq!(format_ms(3.42), "3.4 ms");
    assert_eq!(format_ms(742.4), "742 ms");
    assert_eq!(format_ms(1250.0), "1.25 s");
    assert_eq!(format_ms(12_500.0), "12.5 s");
}
