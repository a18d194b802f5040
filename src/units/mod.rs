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
pub(super) struct Decimal {
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
pub(super) fn split_unsigned_number(s: &str) -> Option<(Decimal, &str)> {
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

mod duration;
mod format;
mod percent;
mod quantity;
mod serde_types;

pub use duration::{format_duration, parse_duration};
pub use format::{
    format_byte_pair, format_bytes_f, format_change, format_go_bytes, format_minutes, format_ms,
    format_share, format_shares,
};
pub use percent::{format_percent, parse_percent};
pub use quantity::{
    format_bytes, format_bytes_exact, format_bytes_exact_quantity, parse_byte_size,
    parse_memory_quantity,
};
pub use serde_types::{Bytes, DurationValue, Percent};

#[cfg(test)]
mod tests;
