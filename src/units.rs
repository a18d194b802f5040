//! Units the user writes and reads: Kubernetes memory quantities (`512Mi`, `1.5G`, `129e6`),
//! byte sizes (`512 MiB`, `2GB`), percentages (`20%`) and durations (`1h30m`, `500ms`). This
//! module owns parsing them exactly (integer arithmetic, no floating point for bytes), formatting
//! them back for reports, the [`UnitError`] messages a user sees when a value is malformed, and
//! the serde newtypes ([`Bytes`], [`Percent`], [`DurationValue`]) the scenario file is read
//! into. It does no I/O and talks to nobody; the scenario reader and the manifest reader call it.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A value the user wrote could not be read. `Display` is the whole user-facing message and
/// quotes the input, e.g. `"5 minutes" is not a duration (write 5m)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// Nothing was written where a value was expected.
    #[error("empty value: expected {expected}")]
    Empty {
        /// What was expected, e.g. "a memory quantity such as 512Mi".
        expected: &'static str,
    },
    /// Not a memory quantity or byte size at all.
    #[error("\"{input}\" is not a memory quantity ({hint})")]
    NotAQuantity { input: String, hint: String },
    /// A quantity with a sub-unit suffix (`m`, `u`, `n`): a fraction of a byte.
    #[error("\"{input}\" is {value}: the {suffix} suffix means {meaning}; write {number}Mi or {number}M")]
    FractionOfByte {
        input: String,
        /// The value in bytes, spelled out, e.g. "0.4 bytes".
        value: String,
        suffix: &'static str,
        meaning: &'static str,
        /// The number as the user wrote it, without the suffix.
        number: String,
    },
    /// A memory size below zero.
    #[error("\"{input}\" is negative: a memory size is zero or more")]
    NegativeQuantity { input: String },
    /// A memory size that does not fit in 64 bits.
    #[error("\"{input}\" is too large: a memory size is at most {max} bytes (16 EiB)", max = u64::MAX)]
    QuantityTooLarge { input: String },
    /// Not a percentage.
    #[error("\"{input}\" is not a percentage ({hint})")]
    NotAPercent { input: String, hint: String },
    /// Not a duration.
    #[error("\"{input}\" is not a duration ({hint})")]
    NotADuration { input: String, hint: String },
}

// ---------------------------------------------------------------------------------------------
// Exact decimal numbers
// ---------------------------------------------------------------------------------------------

/// An unsigned decimal number, exactly: `digits × 10^(-scale)`. Digits are most significant
/// first, each 0..=9.
#[derive(Debug, Clone, PartialEq)]
struct Decimal {
    digits: Vec<u8>,
    scale: i128,
}

impl Decimal {
    fn is_zero(&self) -> bool {
        self.digits.iter().all(|&d| d == 0)
    }

    /// Drops leading zeros, and trailing zeros into the scale; zero becomes no digits.
    fn normalize(mut self) -> Self {
        let lead = self.digits.iter().take_while(|&&d| d == 0).count();
        self.digits.drain(..lead);
        while self.digits.last() == Some(&0) {
            self.digits.pop();
            self.scale -= 1;
        }
        if self.digits.is_empty() {
            self.scale = 0;
        }
        self
    }

    /// Multiplies by `2^power` exactly.
    fn mul_pow2(mut self, mut power: u32) -> Self {
        while power > 0 {
            let step = power.min(32);
            power -= step;
            let factor: u64 = 1 << step;
            let mut carry: u64 = 0;
            for d in self.digits.iter_mut().rev() {
                let v = u64::from(*d) * factor + carry;
                *d = (v % 10) as u8;
                carry = v / 10;
            }
            let mut front = Vec::new();
            while carry > 0 {
                front.push((carry % 10) as u8);
                carry /= 10;
            }
            front.reverse();
            front.extend_from_slice(&self.digits);
            self.digits = front;
        }
        self
    }

    /// The value rounded up to a whole number, or `None` when it does not fit in a `u64`.
    fn ceil_u64(&self) -> Option<u64> {
        let n = self.clone().normalize();
        if n.digits.is_empty() {
            return Some(0);
        }
        let len = n.digits.len() as i128;
        // Number of digits left of the decimal point (zeros appended when scale < 0).
        let int_len = len - n.scale;
        if int_len > 20 {
            return None;
        }
        if int_len <= 0 {
            return Some(1); // 0 < value < 1, and normalized digits are non-zero
        }
        let int_len = int_len as usize;
        let mut value: u64 = 0;
        for i in 0..int_len {
            let d = n.digits.get(i).copied().unwrap_or(0);
            value = value.checked_mul(10)?.checked_add(u64::from(d))?;
        }
        let has_fraction = n.digits.iter().skip(int_len).any(|&d| d != 0);
        if has_fraction {
            value = value.checked_add(1)?;
        }
        Some(value)
    }

    /// Plain decimal spelling, no exponent, no trailing zeros: `0.4`, `1.5`, `1000`.
    fn to_plain_string(&self) -> String {
        let n = self.clone().normalize();
        if n.digits.is_empty() {
            return "0".to_string();
        }
        let digits: String = n.digits.iter().map(|d| char::from(b'0' + d)).collect();
        if n.scale <= 0 {
            let zeros = usize::try_from(-n.scale).unwrap_or(0);
            return format!("{digits}{}", "0".repeat(zeros));
        }
        let scale = usize::try_from(n.scale).unwrap_or(0);
        if scale >= digits.len() {
            format!("0.{}{digits}", "0".repeat(scale - digits.len()))
        } else {
            let (int, frac) = digits.split_at(digits.len() - scale);
            format!("{int}.{frac}")
        }
    }
}

/// Splits `<digits>[.<digits>]` (at least one digit overall) from the front of `s`.
/// Returns the decimal and the rest, or `None` when `s` does not start with a number.
fn split_unsigned_number(s: &str) -> Option<(Decimal, &str)> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut digits = Vec::new();
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        digits.push(bytes[i] - b'0');
        i += 1;
    }
    let mut frac_len: i128 = 0;
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            digits.push(bytes[i] - b'0');
            frac_len += 1;
            i += 1;
        }
    }
    if digits.is_empty() {
        return None;
    }
    Some((
        Decimal {
            digits,
            scale: frac_len,
        },
        &s[i..],
    ))
}

// ---------------------------------------------------------------------------------------------
// Memory quantities and byte sizes
// ---------------------------------------------------------------------------------------------

const QUANTITY_EXPECTED: &str = "a memory quantity such as 512Mi";
const QUANTITY_HINT: &str = "write e.g. 512Mi, 1Gi, 1.5G or 129e6";

fn not_a_quantity(input: &str, hint: impl Into<String>) -> UnitError {
    UnitError::NotAQuantity {
        input: input.to_string(),
        hint: hint.into(),
    }
}

/// What a suffix multiplies by: `10^dec × 2^bin`.
struct Scale {
    dec: i128,
    bin: u32,
}

fn suffix_scale(suffix: &str) -> Option<Scale> {
    let (dec, bin) = match suffix {
        "" => (0, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        _ => return None,
    };
    Some(Scale { dec, bin })
}

/// Reads a decimal exponent `e<int>` / `E<int>` (the part after the letter).
fn parse_exponent(s: &str) -> Option<Result<i128, ()>> {
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Exponents beyond this are out of range whatever the mantissa; keep them finite.
    let trimmed = digits.trim_start_matches('0');
    if trimmed.len() > 12 {
        return Some(Err(()));
    }
    let mut value: i128 = 0;
    for b in trimmed.bytes() {
        value = value * 10 + i128::from(b - b'0');
    }
    Some(Ok(if negative { -value } else { value }))
}

/// A hint for a suffix that is not part of the Kubernetes grammar.
fn suffix_hint(number: &str, suffix: &str) -> String {
    let lower = suffix.to_ascii_lowercase();
    match lower.as_str() {
        "k" => format!("write {number}k for 1000s or {number}Ki for 1024s"),
        "kb" | "mb" | "gb" | "tb" | "pb" | "eb" => {
            let unit = lower[..1].to_ascii_uppercase();
            let unit = if unit == "K" { "k".to_string() } else { unit };
            format!(
                "Kubernetes spells it {number}{unit} (powers of 1000) or {number}{}i (powers of 1024)",
                lower[..1].to_ascii_uppercase()
            )
        }
        "kib" | "mib" | "gib" | "tib" | "pib" | "eib" | "ki" | "mi" | "gi" | "ti" | "pi"
        | "ei" => {
            format!("write {number}{}i", lower[..1].to_ascii_uppercase())
        }
        "b" | "byte" | "bytes" => format!("write {number} for bytes"),
        _ => format!(
            "unknown suffix \"{suffix}\"; use Ki, Mi, Gi, Ti (powers of 1024) or k, M, G, T (powers of 1000)"
        ),
    }
}

/// Parses a Kubernetes memory quantity into bytes, rounding a fraction of a byte up like
/// apimachinery's `Quantity.Value()`.
///
/// The grammar is apimachinery's: an optionally signed decimal number (`1`, `1.5`, `.5`, `1.`)
/// followed by a binary suffix (`Ki` … `Ei`), a decimal suffix (`k M G T P E`) or a decimal
/// exponent (`e3`, `E6`, `1.5e-3`). The sub-unit suffixes `m`, `u` and `n` are rejected: for
/// memory they mean fractions of a byte and are always a typo for `Mi` or `M`.
pub fn parse_memory_quantity(s: &str) -> Result<u64, UnitError> {
    let input = s.trim();
    if input.is_empty() {
        return Err(UnitError::Empty {
            expected: QUANTITY_EXPECTED,
        });
    }
    let (negative, unsigned) = match input.as_bytes().first() {
        Some(b'+') => (false, &input[1..]),
        Some(b'-') => (true, &input[1..]),
        _ => (false, input),
    };
    let Some((number, suffix)) = split_unsigned_number(unsigned) else {
        return Err(not_a_quantity(input, QUANTITY_HINT));
    };
    let number_text = &unsigned[..unsigned.len() - suffix.len()];
    if negative && !number.is_zero() {
        return Err(UnitError::NegativeQuantity {
            input: input.to_string(),
        });
    }

    let scale = if let Some(scale) = suffix_scale(suffix) {
        scale
    } else if let Some((sub, meaning, dec)) = match suffix {
        "m" => Some(("m", "thousandths", 3)),
        "u" => Some(("u", "millionths", 6)),
        "n" => Some(("n", "billionths", 9)),
        _ => None,
    } {
        let bytes = Decimal {
            digits: number.digits.clone(),
            scale: number.scale + dec,
        }
        .to_plain_string();
        let unit = if bytes == "1" { "byte" } else { "bytes" };
        return Err(UnitError::FractionOfByte {
            input: input.to_string(),
            value: format!("{bytes} {unit}"),
            suffix: sub,
            meaning,
            number: number_text.to_string(),
        });
    } else if let Some(exp) = suffix
        .strip_prefix('e')
        .or_else(|| suffix.strip_prefix('E'))
    {
        match parse_exponent(exp) {
            Some(Ok(dec)) => Scale { dec, bin: 0 },
            Some(Err(())) => {
                let negative_exponent = exp.starts_with('-');
                if number.is_zero() {
                    return Ok(0);
                } else if negative_exponent {
                    return Ok(1);
                }
                return Err(UnitError::QuantityTooLarge {
                    input: input.to_string(),
                });
            }
            None => {
                return Err(not_a_quantity(
                    input,
                    format!("an exponent is a whole number, e.g. {number_text}e6"),
                ))
            }
        }
    } else {
        let trimmed = suffix.trim_start();
        if trimmed.len() < suffix.len() && suffix_scale(trimmed).is_some() {
            return Err(not_a_quantity(
                input,
                format!("no space before the suffix: write {number_text}{trimmed}"),
            ));
        }
        if !trimmed.starts_with(|c: char| c.is_alphabetic()) {
            return Err(not_a_quantity(input, QUANTITY_HINT));
        }
        return Err(not_a_quantity(input, suffix_hint(number_text, trimmed)));
    };

    let value = Decimal {
        digits: number.digits,
        scale: number.scale - scale.dec,
    }
    .normalize()
    .mul_pow2(scale.bin);
    value.ceil_u64().ok_or_else(|| UnitError::QuantityTooLarge {
        input: input.to_string(),
    })
}

/// Byte-size units beyond the Kubernetes grammar, and the Kubernetes suffix each stands for.
/// Longer spellings first, so `MiB` is not read as `B`.
const BYTE_UNITS: [(&str, &str); 14] = [
    ("KiB", "Ki"),
    ("MiB", "Mi"),
    ("GiB", "Gi"),
    ("TiB", "Ti"),
    ("PiB", "Pi"),
    ("EiB", "Ei"),
    ("KB", "k"),
    ("kB", "k"),
    ("MB", "M"),
    ("GB", "G"),
    ("TB", "T"),
    ("PB", "P"),
    ("EB", "E"),
    ("B", ""),
];

/// Splits `512 MiB` into the number (`512`) and the Kubernetes suffix (`Mi`), allowing one
/// space before the unit; `None` when the input does not end in a byte unit.
fn split_byte_unit(input: &str) -> Option<(&str, &'static str)> {
    BYTE_UNITS.iter().find_map(|&(unit, suffix)| {
        let number = input.strip_suffix(unit)?;
        let number = number.strip_suffix(' ').unwrap_or(number);
        Some((number, suffix))
    })
}

/// Parses a byte size: everything [`parse_memory_quantity`] accepts, plus `B`, `KB`/`MB`/`GB`/
/// `TB`/`PB`/`EB` (powers of 1000) and `KiB` … `EiB` (powers of 1024), with an optional single
/// space before the unit (`512 MiB`, `512 Mi`).
pub fn parse_byte_size(s: &str) -> Result<u64, UnitError> {
    let input = s.trim();
    if input.is_empty() {
        return Err(UnitError::Empty {
            expected: "a size such as 512Mi or 512 MiB",
        });
    }
    let result = match split_byte_unit(input) {
        Some((number, suffix)) => {
            // A byte unit follows a plain, optionally signed number.
            let unsigned = number.strip_prefix(['+', '-']).unwrap_or(number);
            if is_plain_decimal(unsigned) {
                parse_memory_quantity(&format!("{number}{suffix}"))
            } else {
                Err(not_a_quantity(input, "write e.g. 512 MiB, 1.5GB or 512Mi"))
            }
        }
        None => {
            // `512 Mi`: one space between the number and a Kubernetes suffix is fine here.
            match input.split_once(' ') {
                Some((number, suffix))
                    if !number.is_empty()
                        && !suffix.is_empty()
                        && !suffix.starts_with(char::is_whitespace)
                        && suffix.starts_with(|c: char| c.is_ascii_alphabetic()) =>
                {
                    parse_memory_quantity(&format!("{number}{suffix}"))
                }
                _ => parse_memory_quantity(input),
            }
        }
    };
    // Report the input as the user wrote it, not the rewritten spelling.
    result.map_err(|e| with_input(e, input))
}

fn with_input(err: UnitError, input: &str) -> UnitError {
    let input = input.to_string();
    match err {
        UnitError::NotAQuantity { hint, .. } => UnitError::NotAQuantity { input, hint },
        UnitError::FractionOfByte {
            value,
            suffix,
            meaning,
            number,
            ..
        } => UnitError::FractionOfByte {
            input,
            value,
            suffix,
            meaning,
            number,
        },
        UnitError::NegativeQuantity { .. } => UnitError::NegativeQuantity { input },
        UnitError::QuantityTooLarge { .. } => UnitError::QuantityTooLarge { input },
        other => other,
    }
}

const BINARY_UNITS: [(&str, &str); 7] = [
    ("B", ""),
    ("KiB", "Ki"),
    ("MiB", "Mi"),
    ("GiB", "Gi"),
    ("TiB", "Ti"),
    ("PiB", "Pi"),
    ("EiB", "Ei"),
];

/// Formats bytes for people: binary units, at most one decimal, no trailing `.0`:
/// `100 B`, `512 KiB`, `870 MiB`, `1 GiB`, `1.5 GiB`.
pub fn format_bytes(bytes: u64) -> String {
    let mut index = 0usize;
    while index + 1 < BINARY_UNITS.len() && bytes >= 1u64 << (10 * (index + 1)) {
        index += 1;
    }
    loop {
        let unit: u128 = 1u128 << (10 * index);
        // Tenths of the unit, rounded half up.
        let tenths = (u128::from(bytes) * 10 + unit / 2) / unit;
        if tenths >= 10240 && index + 1 < BINARY_UNITS.len() {
            index += 1; // 1023.96 MiB reads better as 1 GiB than 1024 MiB
            continue;
        }
        let name = BINARY_UNITS[index].0;
        return if tenths % 10 == 0 {
            format!("{} {name}", tenths / 10)
        } else {
            format!("{}.{} {name}", tenths / 10, tenths % 10)
        };
    }
}

/// Formats bytes the way Kubernetes spells them: the largest whole binary unit (`512Mi`,
/// `1Gi`, `1536Mi`), or the plain number of bytes when no binary unit divides it (`1000`).
pub fn format_bytes_exact_quantity(bytes: u64) -> String {
    if bytes == 0 {
        return "0".to_string();
    }
    for index in (1..BINARY_UNITS.len()).rev() {
        let unit = 1u64 << (10 * index);
        if bytes % unit == 0 {
            return format!("{}{}", bytes / unit, BINARY_UNITS[index].1);
        }
    }
    bytes.to_string()
}

// ---------------------------------------------------------------------------------------------
// Percentages
// ---------------------------------------------------------------------------------------------

fn not_a_percent(input: &str, hint: impl Into<String>) -> UnitError {
    UnitError::NotAPercent {
        input: input.to_string(),
        hint: hint.into(),
    }
}

/// True for `<digits>[.<digits>]` / `.<digits>`, nothing else (no sign, exponent, inf or NaN).
fn is_plain_decimal(s: &str) -> bool {
    matches!(split_unsigned_number(s), Some((_, "")))
}

/// Hint for a bare number written where a percentage belongs.
fn bare_number_percent_hint(number: &str) -> String {
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

// ---------------------------------------------------------------------------------------------
// Durations
// ---------------------------------------------------------------------------------------------

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Duration units from largest to smallest, with their length in nanoseconds.
const DURATION_UNITS: [(&str, u128); 6] = [
    ("h", 3600 * NANOS_PER_SEC),
    ("m", 60 * NANOS_PER_SEC),
    ("s", NANOS_PER_SEC),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

const DURATION_HINT: &str = "use h, m, s or ms, e.g. 1h30m, 90s, 500ms";

fn not_a_duration(input: &str, hint: impl Into<String>) -> UnitError {
    UnitError::NotADuration {
        input: input.to_string(),
        hint: hint.into(),
    }
}

/// The position in [`DURATION_UNITS`] of a unit as written in a duration.
fn duration_unit_index(unit: &str) -> Option<usize> {
    let unit = if unit == "µs" || unit == "μs" {
        "us"
    } else {
        unit
    };
    DURATION_UNITS.iter().position(|(name, _)| *name == unit)
}

/// Strict parse: components `<number><unit>` from the largest unit to the smallest.
fn parse_duration_strict(input: &str) -> Result<u128, String> {
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
fn component_nanos(number: &Decimal, unit_nanos: u128) -> Option<u128> {
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
fn decimal_times(number: &Decimal, factor: u64) -> Option<String> {
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
fn duration_word(word: &str) -> Option<(&'static str, u64)> {
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
fn duration_suggestion(input: &str) -> Option<String> {
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

fn nanos_to_duration(nanos: u128) -> Option<Duration> {
    let secs = u64::try_from(nanos / NANOS_PER_SEC).ok()?;
    let sub = (nanos % NANOS_PER_SEC) as u32;
    Some(Duration::new(secs, sub))
}

/// `whole.fraction` with the fraction's trailing zeros dropped; `width` is the fraction's
/// number of digits.
fn with_fraction(whole: u128, fraction: u128, width: usize) -> String {
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

// ---------------------------------------------------------------------------------------------
// Serde newtypes for the scenario file
// ---------------------------------------------------------------------------------------------

/// A size in bytes. Reads a YAML integer (bytes) or a string in any spelling
/// [`parse_byte_size`] accepts; writes the Kubernetes spelling (`512Mi`); displays for people
/// (`512 MiB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub u64);

/// A fraction from a percentage (`20%` is `Percent(0.2)`). Reads a string with `%` only.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Percent(pub f64);

/// A duration read from a string with a unit (`90s`, `1h30m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DurationValue(pub Duration);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_bytes(self.0))
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_percent(self.0))
    }
}

impl fmt::Display for DurationValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_bytes_exact_quantity(self.0))
    }
}

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_percent(self.0))
    }
}

impl Serialize for DurationValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_duration(self.0))
    }
}

struct BytesVisitor;

impl Visitor<'_> for BytesVisitor {
    type Value = Bytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a memory size such as 512Mi, 1Gi or 536870912")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Bytes, E> {
        parse_byte_size(v).map(Bytes).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Bytes, E> {
        Ok(Bytes(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Bytes, E> {
        u64::try_from(v).map(Bytes).map_err(|_| {
            E::custom(UnitError::NegativeQuantity {
                input: v.to_string(),
            })
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Bytes, E> {
        // YAML reads `129e6` and `1.5` as floats; round a fraction of a byte up, as Kubernetes does.
        if !v.is_finite() {
            return Err(E::custom(not_a_quantity(&v.to_string(), QUANTITY_HINT)));
        }
        if v < 0.0 {
            return Err(E::custom(UnitError::NegativeQuantity {
                input: v.to_string(),
            }));
        }
        let up = v.ceil();
        // 2^64 as f64; anything at or above it does not fit.
        if up >= 18_446_744_073_709_551_616.0 {
            return Err(E::custom(UnitError::QuantityTooLarge {
                input: v.to_string(),
            }));
        }
        Ok(Bytes(up as u64))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BytesVisitor)
    }
}

struct PercentVisitor;

impl PercentVisitor {
    fn bare<E: de::Error>(number: String) -> E {
        E::custom(not_a_percent(&number, bare_number_percent_hint(&number)))
    }
}

impl Visitor<'_> for PercentVisitor {
    type Value = Percent;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a percentage such as 20%")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Percent, E> {
        parse_percent(v).map(Percent).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Percent, E> {
        Err(Self::bare(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Percent, E> {
        Err(Self::bare(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Percent, E> {
        Err(Self::bare(v.to_string()))
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(PercentVisitor)
    }
}

struct DurationVisitor;

impl DurationVisitor {
    fn bare<E: de::Error>(number: String) -> E {
        E::custom(not_a_duration(
            &number,
            format!("add a unit: {number}s, {number}m, {number}h"),
        ))
    }
}

impl Visitor<'_> for DurationVisitor {
    type Value = DurationValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as 90s, 5m or 1h30m")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationValue, E> {
        parse_duration(v).map(DurationValue).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationValue, E> {
        Err(Self::bare(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationValue, E> {
        if v < 0 {
            return Err(E::custom(not_a_duration(
                &v.to_string(),
                "a duration cannot be negative",
            )));
        }
        Err(Self::bare(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<DurationValue, E> {
        Err(Self::bare(v.to_string()))
    }
}

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DurationVisitor)
    }
}

#[cfg(test)]
mod tests {
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
            "abc", "Mi", ".", "+", "-", "1..5Mi", "1.5.5", "1Mii", "1 Mi", "0x10", "1_000",
            "1,5Gi", "NaN", "inf", "++1", "1Ki5",
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
        serde_yaml_ng::from_str(text).map_err(|e| e.to_string())
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
        let text = serde_yaml_ng::to_string(&doc).unwrap_or_default();
        assert_eq!(text, "limit: 1536Mi\nheadroom: 12.5%\ninterval: 1m30s\n");
        assert_eq!(yaml(&text), Ok(doc));
        assert_eq!(Bytes(870 * MI).to_string(), "870 MiB");
        assert_eq!(Percent(0.2).to_string(), "20%");
        assert_eq!(
            DurationValue(Duration::from_secs(5400)).to_string(),
            "1h30m"
        );
    }
}
