//! Kubernetes memory quantities (the apimachinery grammar, exact arithmetic) and byte sizes:
//! parsing into bytes and formatting for people and for manifests.

#[allow(unused_imports)]
use super::duration::*;
#[allow(unused_imports)]
use super::percent::*;
#[allow(unused_imports)]
use super::*;
// ---------------------------------------------------------------------------------------------
// Memory quantities and byte sizes
// ---------------------------------------------------------------------------------------------

pub(super) const QUANTITY_EXPECTED: &str = "a memory quantity such as 512Mi";
pub(super) const QUANTITY_HINT: &str = "write e.g. 512Mi, 1Gi, 1.5G or 129e6";

pub(super) fn not_a_quantity(input: &str, hint: impl Into<String>) -> UnitError {
    UnitError::NotAQuantity {
        input: input.to_string(),
        hint: hint.into(),
    }
}

/// What a suffix multiplies by: `10^dec × 2^bin`.
pub(super) struct Scale {
    dec: i128,
    bin: u32,
}

pub(super) fn suffix_scale(suffix: &str) -> Option<Scale> {
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
pub(super) fn parse_exponent(s: &str) -> Option<Result<i128, ()>> {
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
pub(super) fn suffix_hint(number: &str, suffix: &str) -> String {
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
pub(super) const BYTE_UNITS: [(&str, &str); 14] = [
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
pub(super) fn split_byte_unit(input: &str) -> Option<(&str, &'static str)> {
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

pub(super) fn with_input(err: UnitError, input: &str) -> UnitError {
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

pub(super) const BINARY_UNITS: [(&str, &str); 7] = [
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
        return if tenths.is_multiple_of(10) {
            format!("{} {name}", tenths / 10)
        } else {
            format!("{}.{} {name}", tenths / 10, tenths % 10)
        };
    }
}

/// A size that is exact by construction (suggestions are whole MiB), for humans: "1088 MiB",
/// "2 GiB", "1000 B".
pub fn format_bytes_exact(bytes: u64) -> String {
    let q = format_bytes_exact_quantity(bytes);
    match q.strip_suffix('i') {
        Some(n) if n.ends_with(['K', 'M', 'G', 'T', 'P', 'E']) => {
            let (num, unit) = n.split_at(n.len() - 1);
            format!("{num} {unit}iB")
        }
        _ => format!("{q} B"),
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
        if bytes.is_multiple_of(unit) {
            return format!("{}{}", bytes / unit, BINARY_UNITS[index].1);
        }
    }
    bytes.to_string()
}
