//! The serde newtypes the scenario file uses (`Bytes`, `Percent`, `DurationValue`): they parse
//! while deserializing, so a bad value's error carries its line and column.

#[allow(unused_imports)]
use super::duration::*;
#[allow(unused_imports)]
use super::percent::*;
#[allow(unused_imports)]
use super::quantity::*;
#[allow(unused_imports)]
use super::*;
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

pub(super) struct BytesVisitor;

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

pub(super) struct PercentVisitor;

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

pub(super) struct DurationVisitor;

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
