//! Durations (`500ms`, `90s`, `1h30m`): strict parsing with hints for near misses, and a
//! compact formatting that parses back.

#[allow(unused_imports)]
use super::percent::*;
#[allow(unused_imports)]
use super::quantity::*;
#[allow(unused_imports)]
use super::*;
// ---------------------------------------------------------------------------------------------
// Durations
// ---------------------------------------------------------------------------------------------

pub(super) const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Duration units from largest to smallest, with their length in nanoseconds.
pub(super) const DURATION_UNITS: [(&str, u128); 6] = [
    ("h", 3600 * NANOS_PER_SEC),
    ("m", 60 * NANOS_PER_SEC),
    ("s", NANOS_PER_SEC),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

pub(super) const DURATION_HINT: &str = "use h, m, s or ms, e.g. 1h30m, 90s, 500ms";

pub(super) fn not_a_duration(input: &str, hint: impl Into<String>) -> UnitError {
    UnitError::NotADuration {
        input: input.to_string(),
        hint: hint.into(),
    }
}

/// The position in [`DURATION_UNITS`] of a unit as written in a duration.
pub(super) fn duration_unit_index(unit: &str) -> Option<usize> {
    let unit = if unit == "µs" || unit == "μs" {
        "us"
    } else {
        unit
    };
    DURATION_UNITS.iter().position(|(name, _)| *name == unit)
}

/// Strict parse: components `<number><unit>` from the largest unit to the smallest.
pub(super) fn parse_duration_strict(input: &str) -> Result<u128, String> {
    let mut rest = input;
    let mut total: u128 = 0;
    let mut previous: Option<usize> = None;
    while !rest.is_empty() {
        let Some((number, after)) = split_unsigned_number(rest) else {
            return Err(DURATION_HINT.to_string());
        };
        let unit_len = after
            .char_indices()
            .find(|&(_, c)| c.is_ascii_digit() || c == '.')
            .map_or(after.len(), |(i, _)| i);
        let (unit, next) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(DURATION_HINT.to_string());
        }
        let Some(index) = duration_unit_index(unit) else {
            return Err(DURATION_HINT.to_string());
        };
        if previous.is_some_and(|p| index <= p) {
            return Err(
                "write the units from largest to smallest, each once, e.g. 1h30m15s".to_string(),
            );
        }
        previous = Some(index);
        let nanos = component_nanos(&number, DURATION_UNITS[index].1)
            .ok_or_else(|| "that is longer than any run".to_string())?;
        total = total
            .checked_add(nanos)
            .ok_or_else(|| "that is longer than any run".to_string())?;
        rest = next;
    }
    Ok(total)
}

/// `number × unit` in whole nanoseconds (a fraction of a nanosecond is dropped).
pub(super) fn component_nanos(number: &Decimal, unit_nanos: u128) -> Option<u128> {
    let mut n = number.clone().normalize();
    // Digits beyond the 13th decimal are worth less than a nanosecond even in hours.
    if n.scale > 13 {
        let drop = usize::try_from(n.scale - 13)
            .unwrap_or(usize::MAX)
            .min(n.digits.len());
        n.digits.truncate(n.digits.len() - drop);
        n.scale = 13;
    }
    if n.digits.len() > 38 {
        return None;
    }
    let mut mantissa: u128 = 0;
    for &d in &n.digits {
        mantissa = mantissa.checked_mul(10)?.checked_add(u128::from(d))?;
    }
    let mut value = mantissa.checked_mul(unit_nanos)?;
    if n.scale < 0 {
        for _ in 0..(-n.scale) {
            value = value.checked_mul(10)?;
        }
    } else {
        for _ in 0..n.scale {
            value /= 10;
        }
    }
    Some(value)
}

/// `number × factor`, spelled plainly (`1.5 × 24` → `36`).
pub(super) fn decimal_times(number: &Decimal, factor: u64) -> Option<String> {
    let n = number.clone().normalize();
    if n.digits.len() > 38 {
        return None;
    }
    let mut mantissa: u128 = 0;
    for &d in &n.digits {
        mantissa = mantissa.checked_mul(10)?.checked_add(u128::from(d))?;
    }
    let product = mantissa.checked_mul(u128::from(factor))?;
    let digits = product.to_string().bytes().map(|b| b - b'0').collect();
    Some(
        Decimal {
            digits,
            scale: n.scale,
        }
        .to_plain_string(),
    )
}

/// Maps an English or abbreviated unit word to a duration unit and a multiplier, for hints.
pub(super) fn duration_word(word: &str) -> Option<(&'static str, u64)> {
    let lower = word.to_lowercase();
    Some(match lower.as_str() {
        "d" | "day" | "days" => ("h", 24),
        "h" | "hr" | "hrs" | "hour" | "hours" => ("h", 1),
        "m" | "min" | "mins" | "minute" | "minutes" => ("m", 1),
        "s" | "sec" | "secs" | "second" | "seconds" => ("s", 1),
        "ms" | "msec" | "msecs" | "millis" | "millisecond" | "milliseconds" => ("ms", 1),
        "us" | "µs" | "μs" | "usec" | "usecs" | "microsecond" | "microseconds" => ("us", 1),
        "ns" | "nsec" | "nsecs" | "nanosecond" | "nanoseconds" => ("ns", 1),
        _ => return None,
    })
}

/// Rewrites spellings like `5 minutes`, `1 hour 30 min` or `2 days` into a duration this
/// parser reads (`5m`, `1h30m`, `48h`), when it can.
pub(super) fn duration_suggestion(input: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = input.trim();
    let mut components = 0;
    while !rest.is_empty() {
        let (number, after) = split_unsigned_number(rest)?;
        let number_text = &rest[..rest.len() - after.len()];
        let after = after.trim_start();
        let word_len = after
            .char_indices()
            .find(|&(_, c)| !c.is_alphabetic())
            .map_or(after.len(), |(i, _)| i);
        let (word, next) = after.split_at(word_len);
        let (unit, multiplier) = duration_word(word)?;
        if multiplier == 1 {
            out.push_str(number_text);
        } else {
            out.push_str(&decimal_times(&number, multiplier)?);
        }
        out.push_str(unit);
        components += 1;
        rest = next.trim_start().trim_start_matches(',').trim_start();
        if let Some(r) = rest.strip_prefix("and ") {
            rest = r.trim_start();
        }
    }
    (components > 0 && out != input && parse_duration_strict(&out).is_ok()).then_some(out)
}

/// Parses a duration: components `<number><unit>` with units `h`, `m`, `s`, `ms` (and `us`,
/// `ns`) from the largest to the smallest, decimals allowed: `500ms`, `90s`, `2m`, `1h30m`,
/// `1h30m15s`, `1.5s`, `0s`. A bare number, a negative value or an English spelling
/// (`5 minutes`) is rejected with a hint saying what to write.
pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    let input = s.trim();
    if input.is_empty() {
        return Err(UnitError::Empty {
            expected: "a duration such as 90s or 5m",
        });
    }
    if let Some(positive) = input.strip_prefix('-') {
        if parse_duration_strict(positive).is_ok() || is_plain_decimal(positive) {
            return Err(not_a_duration(input, "a duration cannot be negative"));
        }
    }
    if is_plain_decimal(input) {
        return Err(not_a_duration(
            input,
            format!("add a unit: {input}s, {input}m, {input}h"),
        ));
    }
    match parse_duration_strict(input) {
        Ok(nanos) => nanos_to_duration(nanos)
            .ok_or_else(|| not_a_duration(input, "that is longer than any run")),
        Err(hint) => match duration_suggestion(input) {
            Some(suggestion) => Err(not_a_duration(input, format!("write {suggestion}"))),
            None => Err(not_a_duration(input, hint)),
        },
    }
}

pub(super) fn nanos_to_duration(nanos: u128) -> Option<Duration> {
    let secs = u64::try_from(nanos / NANOS_PER_SEC).ok()?;
    let sub = (nanos % NANOS_PER_SEC) as u32;
    Some(Duration::new(secs, sub))
}

/// `whole.fraction` with the fraction's trailing zeros dropped; `width` is the fraction's
/// number of digits.
pub(super) fn with_fraction(whole: u128, fraction: u128, width: usize) -> String {
    if fraction == 0 {
        return whole.to_string();
    }
    let frac = format!("{fraction:0width$}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// Formats a duration compactly, in the spelling [`parse_duration`] reads: `500ms`, `1m30s`,
/// `2m`, `1h30m`, `1.5s`, `0s`.
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}us", with_fraction(nanos / 1_000, nanos % 1_000, 3));
    }
    if nanos < NANOS_PER_SEC {
        return format!(
            "{}ms",
            with_fraction(nanos / 1_000_000, nanos % 1_000_000, 6)
        );
    }
    let total_secs = nanos / NANOS_PER_SEC;
    let sub = nanos % NANOS_PER_SEC;
    let hours = total_secs / 3600;
    let minutes = total_secs % 3600 / 60;
    let secs = total_secs % 60;
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    if secs > 0 || sub > 0 {
        out.push_str(&format!("{}s", with_fraction(secs, sub, 9)));
    }
    out
}
