//! Percentages written with a `%` sign, parsed into fractions and formatted back.

#[allow(unused_imports)]
use super::duration::*;
#[allow(unused_imports)]
use super::quantity::*;
#[allow(unused_imports)]
use super::*;
// ---------------------------------------------------------------------------------------------
// Percentages
// ---------------------------------------------------------------------------------------------

pub(super) fn not_a_percent(input: &str, hint: impl Into<String>) -> UnitError {
    UnitError::NotAPercent {
        input: input.to_string(),
        hint: hint.into(),
    }
}

/// True for `<digits>[.<digits>]` / `.<digits>`, nothing else (no sign, exponent, inf or NaN).
pub(super) fn is_plain_decimal(s: &str) -> bool {
    matches!(split_unsigned_number(s), Some((_, "")))
}

/// Hint for a bare number written where a percentage belongs.
pub(super) fn bare_number_percent_hint(number: &str) -> String {
    match number.parse::<f64>() {
        Ok(v) if v > 0.0 && v < 1.0 => format!(
            "write it with a % sign: {number} as a fraction is {}",
            format_percent(v)
        ),
        _ => format!("write {number}%"),
    }
}

/// Parses a percentage written with a `%` sign into a fraction: `20%` → 0.2, `12.5%` → 0.125.
/// Only 0 % to 100 % is accepted.
pub fn parse_percent(s: &str) -> Result<f64, UnitError> {
    let input = s.trim();
    if input.is_empty() {
        return Err(UnitError::Empty {
            expected: "a percentage such as 20%",
        });
    }
    let Some(number) = input.strip_suffix('%') else {
        if is_plain_decimal(input) {
            return Err(not_a_percent(input, bare_number_percent_hint(input)));
        }
        return Err(not_a_percent(input, "write e.g. 20%"));
    };
    let number = number.strip_suffix(' ').unwrap_or(number);
    if number.starts_with('-') && is_plain_decimal(&number[1..]) {
        return Err(not_a_percent(input, "it must be between 0% and 100%"));
    }
    if !is_plain_decimal(number) {
        return Err(not_a_percent(input, "write e.g. 20% or 12.5%"));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| not_a_percent(input, "write e.g. 20% or 12.5%"))?;
    if !(0.0..=100.0).contains(&value) {
        return Err(not_a_percent(input, "it must be between 0% and 100%"));
    }
    Ok(value / 100.0)
}

/// Formats a fraction as a percentage, at most four decimals, no trailing zeros:
/// 0.2 → `20%`, 0.125 → `12.5%`.
pub fn format_percent(fraction: f64) -> String {
    let text = format!("{:.4}", fraction * 100.0);
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    let text = if text == "-0" { "0" } else { text };
    format!("{text}%")
}
