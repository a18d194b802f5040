//! Numbers for people, as reports and findings write them: fractional byte counts for rates and
//! fits, relative changes, spans of minutes, milliseconds, measured shares, and pairs that must
//! not look equal when they differ. The exact unit formats (`format_bytes`, `format_percent`,
//! `format_duration`) live beside their parsers; everything else that turns a number into text
//! lives here, so every format and every finding says a number the same way.

use super::{format_bytes, format_percent};

/// Bytes in a MiB, as a float.
const MIB: f64 = 1024.0 * 1024.0;

/// A number of bytes that may be fractional or negative, two significant digits, for rates and
/// fit coefficients: "0.62 MiB", "48 KiB", "-1.5 MiB", "120 MiB".
pub fn format_bytes_f(bytes: f64) -> String {
    if !bytes.is_finite() {
        return "n/a".to_string();
    }
    let sign = if bytes < 0.0 { "-" } else { "" };
    let b = bytes.abs();
    let (value, unit) = if b >= 1024.0 * MIB {
        (b / (1024.0 * MIB), "GiB")
    } else if b >= 0.1 * MIB {
        (b / MIB, "MiB")
    } else if b >= 1024.0 {
        (b / 1024.0, "KiB")
    } else {
        (b, "B")
    };
    let text = if value >= 10.0 || unit == "B" {
        format!("{value:.0}")
    } else if value >= 1.0 {
        trim_zeros(format!("{value:.1}"))
    } else {
        trim_zeros(format!("{value:.2}"))
    };
    if text == "0" {
        return format!("0 {unit}");
    }
    format!("{sign}{text} {unit}")
}

fn trim_zeros(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A relative change with its sign and at most one decimal: "+30%", "-4.8%", "0%".
pub fn format_change(change: f64) -> String {
    if !change.is_finite() {
        return "n/a".to_string();
    }
    let percent = (change * 1000.0).round() / 10.0;
    if percent == 0.0 {
        return "0%".to_string();
    }
    let text = trim_zeros(format!("{:.1}", percent.abs()));
    let sign = if percent > 0.0 { "+" } else { "-" };
    format!("{sign}{text}%")
}

/// A span of minutes for people: "40 s", "37 min", "2.5 h", "3 days".
pub fn format_minutes(minutes: f64) -> String {
    if !minutes.is_finite() {
        return "never".to_string();
    }
    if minutes < 1.0 {
        format!("{:.0} s", (minutes * 60.0).max(0.0))
    } else if minutes < 120.0 {
        format!("{minutes:.0} min")
    } else if minutes < 48.0 * 60.0 {
        format!("{} h", trim_zeros(format!("{:.1}", minutes / 60.0)))
    } else {
        format!("{:.0} days", minutes / 1440.0)
    }
}

/// A duration in milliseconds for humans: "3.4 ms", "742 ms", "1.25 s".
pub fn format_ms(ms: f64) -> String {
    if !ms.is_finite() {
        "n/a".to_string()
    } else if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 10_000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

/// A measured share for people: one decimal ("61.8%"), two significant digits below 1 %
/// ("0.025%"); never "0%" or "100%" unless it is exactly that.
pub fn format_share(share: f64) -> String {
    if !share.is_finite() {
        return "n/a".to_string();
    }
    let percent = share * 100.0;
    if share <= 0.0 || share == 1.0 {
        return format_percent(share);
    }
    if percent < 0.0001 {
        return "<0.0001%".to_string();
    }
    let decimals = if percent >= 1.0 {
        1
    } else {
        (1 - percent.log10().floor() as i32).clamp(1, 4)
    };
    let scale = 10f64.powi(decimals);
    let rounded = (percent * scale).round() / scale;
    if share < 1.0 && rounded >= 100.0 {
        return format!("{:.*}%", decimals as usize, 100.0 - 1.0 / scale);
    }
    format_percent(rounded / 100.0)
}

/// An observed share and the threshold it is compared with; the observed one is shown with
/// more digits when rounding would make the two look equal.
pub fn format_shares(observed: f64, threshold: f64) -> (String, String) {
    let (o, t) = (format_share(observed), format_percent(threshold));
    if o == t && observed != threshold {
        (format_percent(observed), t)
    } else {
        (o, t)
    }
}

/// Two byte counts that are compared; both get their exact byte count when rounding would
/// make them look equal ("819.2 MiB (858993460 bytes)").
pub fn format_byte_pair(a: u64, b: u64) -> (String, String) {
    let (fa, fb) = (format_bytes(a), format_bytes(b));
    if fa == fb && a != b {
        (format!("{fa} ({a} bytes)"), format!("{fb} ({b} bytes)"))
    } else {
        (fa, fb)
    }
}

/// Bytes as Go reads them: the largest binary unit that divides exactly ("460MiB", "1GiB"),
/// else the plain number.
pub fn format_go_bytes(bytes: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes != 0 && bytes.is_multiple_of(1u64 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}
