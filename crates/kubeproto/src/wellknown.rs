//! Kubernetes types whose JSON form is not the object of their protobuf fields.
//!
//! `Quantity` and `IntOrString` are strings or numbers, times are RFC 3339 strings,
//! `Duration` is a Go duration string, `RawExtension`/`FieldsV1`/`JSON` carry embedded
//! JSON, string-list wrappers (`Verbs`, `ExtraValue`) are plain arrays, and the
//! apiextensions `JSONSchemaPropsOr*` unions are one of their alternatives. Each decoder
//! here mirrors the type's Go `MarshalJSON`.

use serde_json::Value;

use crate::decode::{self, for_each_field};
use crate::schema::{FieldSchema, MessageSchema, ValueType};
use crate::wire::{RawValue, WireError, WireType};
use crate::{envelope, Error, Result};

const META_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.";
const APIEXTENSIONS: &str = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.";

/// A message with a custom JSON form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WellKnown {
    Quantity,
    IntOrString,
    Time,
    MicroTime,
    Duration,
    RawExtension,
    /// `FieldsV1`, apiextensions `JSON`: field 1 holds JSON text.
    EmbeddedJson,
    /// `Verbs`, `ExtraValue`: field 1 is a repeated string, the JSON is the array.
    StringList,
    SchemaOrArray,
    SchemaOrBool,
    SchemaOrStringArray,
}

impl WellKnown {
    pub(crate) fn of(full_name: &str) -> Option<Self> {
        Some(match full_name {
            "k8s.io.apimachinery.pkg.api.resource.Quantity"
            | "k8s.io.apimachinery.pkg.api.resource.QuantityValue" => WellKnown::Quantity,
            "k8s.io.apimachinery.pkg.util.intstr.IntOrString" => WellKnown::IntOrString,
            "k8s.io.apimachinery.pkg.runtime.RawExtension" => WellKnown::RawExtension,
            _ => {
                if let Some(name) = full_name.strip_prefix(META_V1) {
                    return match name {
                        "Time" => Some(WellKnown::Time),
                        "MicroTime" => Some(WellKnown::MicroTime),
                        "Duration" => Some(WellKnown::Duration),
                        "FieldsV1" => Some(WellKnown::EmbeddedJson),
                        "Verbs" => Some(WellKnown::StringList),
                        _ => None,
                    };
                }
                if let Some(rest) = full_name.strip_prefix(APIEXTENSIONS) {
                    return match rest.split_once('.').map(|(_, name)| name) {
                        Some("JSON") => Some(WellKnown::EmbeddedJson),
                        Some("JSONSchemaPropsOrArray") => Some(WellKnown::SchemaOrArray),
                        Some("JSONSchemaPropsOrBool") => Some(WellKnown::SchemaOrBool),
                        Some("JSONSchemaPropsOrStringArray") => {
                            Some(WellKnown::SchemaOrStringArray)
                        }
                        _ => None,
                    };
                }
                if full_name.ends_with(".ExtraValue") {
                    return Some(WellKnown::StringList);
                }
                return None;
            }
        })
    }
}

/// Decodes a well-known message; `None` is Go's `null`/zero, which is left out.
pub(crate) fn decode(
    kind: WellKnown,
    message: &'static MessageSchema,
    bytes: &[u8],
    depth: usize,
) -> Result<Option<Value>> {
    let fields = Fields::read(message, bytes)?;
    match kind {
        WellKnown::Quantity => {
            let text = fields.string(1)?.unwrap_or_default();
            // A zero Quantity prints as "0".
            Ok(Some(Value::String(if text.is_empty() {
                "0".to_string()
            } else {
                text
            })))
        }
        WellKnown::IntOrString => match fields.varint(1)?.unwrap_or(0) {
            0 => Ok(Some(Value::from(fields.varint(2)?.unwrap_or(0) as i32))),
            1 => Ok(Some(Value::String(fields.string(3)?.unwrap_or_default()))),
            other => Err(Error::Malformed {
                message: message.name,
                field: 1,
                reason: format!("IntOrString type {other} is neither 0 (int) nor 1 (string)"),
            }),
        },
        WellKnown::Time | WellKnown::MicroTime => {
            // Go writes a zero time as an empty message; its JSON is null.
            if bytes.is_empty() {
                return Ok(None);
            }
            let seconds = fields.varint(1)?.unwrap_or(0) as i64;
            let nanos = fields.varint(2)?.unwrap_or(0) as i32;
            let micros =
                (kind == WellKnown::MicroTime).then_some(nanos.clamp(0, 999_999_999) / 1000);
            Ok(Some(Value::String(rfc3339(seconds, micros))))
        }
        WellKnown::Duration => {
            let nanos = fields.varint(1)?.unwrap_or(0) as i64;
            Ok(Some(Value::String(go_duration(nanos))))
        }
        WellKnown::RawExtension | WellKnown::EmbeddedJson => {
            let Some(raw) = fields.bytes(1)? else {
                return Ok(None);
            };
            if raw.is_empty() {
                return Ok(None);
            }
            if kind == WellKnown::RawExtension && raw.starts_with(envelope::MAGIC) {
                return envelope::decode_object_at_depth(raw, depth + 1).map(Some);
            }
            serde_json::from_slice(raw)
                .map(Some)
                .map_err(|source| Error::EmbeddedJson {
                    message: message.name,
                    field: 1,
                    source,
                })
        }
        WellKnown::StringList => {
            let items = fields
                .all(1)
                .map(|raw| match raw {
                    RawValue::Bytes(b) => {
                        Ok(Value::String(String::from_utf8_lossy(b).into_owned()))
                    }
                    other => Err(wrong(message, 1, other)),
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Some(Value::Array(items)))
        }
        WellKnown::SchemaOrArray => {
            let list = fields.messages(message, 2, depth)?;
            if !list.is_empty() {
                return Ok(Some(Value::Array(list)));
            }
            fields.message(message, 1, depth)
        }
        WellKnown::SchemaOrBool => {
            if let Some(schema) = fields.message(message, 2, depth)? {
                return Ok(Some(schema));
            }
            Ok(Some(Value::Bool(fields.varint(1)?.unwrap_or(0) != 0)))
        }
        WellKnown::SchemaOrStringArray => {
            let property: Vec<Value> = fields
                .all(2)
                .map(|raw| match raw {
                    RawValue::Bytes(b) => {
                        Ok(Value::String(String::from_utf8_lossy(b).into_owned()))
                    }
                    other => Err(wrong(message, 2, other)),
                })
                .collect::<Result<_>>()?;
            if !property.is_empty() {
                return Ok(Some(Value::Array(property)));
            }
            fields.message(message, 1, depth)
        }
    }
}

fn wrong(message: &MessageSchema, field: u32, raw: RawValue<'_>) -> Error {
    let expected = match raw {
        RawValue::Bytes(_) => WireType::Varint,
        _ => WireType::LengthDelimited,
    };
    decode::malformed(
        message,
        field,
        WireError::UnexpectedWireType {
            expected,
            found: raw.wire_type(),
        },
    )
}

/// The raw fields of a small message, in wire order.
struct Fields<'a> {
    message: &'static MessageSchema,
    values: Vec<(u32, RawValue<'a>)>,
}

impl<'a> Fields<'a> {
    fn read(message: &'static MessageSchema, bytes: &'a [u8]) -> Result<Self> {
        let mut values = Vec::new();
        for_each_field(message, bytes, |number, raw| {
            values.push((number, raw));
            Ok(())
        })?;
        Ok(Fields { message, values })
    }

    fn all(&self, number: u32) -> impl Iterator<Item = RawValue<'a>> + '_ {
        self.values
            .iter()
            .filter(move |(n, _)| *n == number)
            .map(|(_, raw)| *raw)
    }

    fn last(&self, number: u32) -> Option<RawValue<'a>> {
        self.all(number).last()
    }

    fn varint(&self, number: u32) -> Result<Option<u64>> {
        match self.last(number) {
            None => Ok(None),
            Some(RawValue::Varint(v)) => Ok(Some(v)),
            Some(other) => Err(wrong(self.message, number, other)),
        }
    }

    fn bytes(&self, number: u32) -> Result<Option<&'a [u8]>> {
        match self.last(number) {
            None => Ok(None),
            Some(RawValue::Bytes(b)) => Ok(Some(b)),
            Some(other) => Err(wrong(self.message, number, other)),
        }
    }

    fn string(&self, number: u32) -> Result<Option<String>> {
        Ok(self
            .bytes(number)?
            .map(|b| String::from_utf8_lossy(b).into_owned()))
    }

    fn schema_field(&self, number: u32) -> Option<&'static FieldSchema> {
        self.message.field(number)
    }

    /// The last occurrence of message field `number`, decoded by its schema.
    fn message(&self, message: &MessageSchema, number: u32, depth: usize) -> Result<Option<Value>> {
        let (Some(raw), Some(field)) = (self.last(number), self.schema_field(number)) else {
            return Ok(None);
        };
        decode::value(message, field, field.value, raw, depth)
    }

    /// Every occurrence of repeated message field `number`, decoded by its schema.
    fn messages(&self, message: &MessageSchema, number: u32, depth: usize) -> Result<Vec<Value>> {
        let Some(field) = self.schema_field(number) else {
            return Ok(Vec::new());
        };
        debug_assert!(matches!(field.value, ValueType::Message(_)));
        self.all(number)
            .map(|raw| {
                decode::value(message, field, field.value, raw, depth)
                    .map(|v| v.unwrap_or(Value::Null))
            })
            .collect()
    }
}

/// Formats Unix time as RFC 3339 in UTC, with 6 fractional digits when `micros` is given
/// (Go's `time.RFC3339` and Kubernetes' `MicroTime` layouts).
pub(crate) fn rfc3339(seconds: i64, micros: Option<i32>) -> String {
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60,
    );
    let mut text = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}");
    if let Some(micros) = micros {
        text.push_str(&format!(".{micros:06}"));
    }
    text.push('Z');
    text
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Formats nanoseconds like Go's `time.Duration.String` (`1h0m0s`, `1.5s`, `300ms`).
pub(crate) fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_string();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    if n < 1_000_000_000 {
        let (text, unit) = if n < 1_000 {
            (n.to_string(), "ns")
        } else if n < 1_000_000 {
            (decimal(n, 3), "µs")
        } else {
            (decimal(n, 6), "ms")
        };
        return format!("{sign}{text}{unit}");
    }
    let seconds = n / 1_000_000_000;
    let fraction = n % 1_000_000_000;
    let mut text = decimal(seconds % 60 * 1_000_000_000 + fraction, 9);
    text.push('s');
    let minutes = seconds / 60;
    if minutes > 0 {
        text = format!("{}m{text}", minutes % 60);
        let hours = minutes / 60;
        if hours > 0 {
            text = format!("{hours}h{text}");
        }
    }
    format!("{sign}{text}")
}

/// `value / 10^digits` with the fraction's trailing zeros (and a bare point) removed.
fn decimal(value: u64, digits: u32) -> String {
    let scale = 10u64.pow(digits);
    let whole = value / scale;
    let fraction = format!("{:0width$}", value % scale, width = digits as usize);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        whole.to_string()
    } else {
        format!("{whole}.{fraction}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times() {
        assert_eq!(rfc3339(0, None), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_704_164_645, None), "2024-01-02T03:04:05Z");
        assert_eq!(
            rfc3339(1_704_164_645, Some(123_456)),
            "2024-01-02T03:04:05.123456Z"
        );
        assert_eq!(rfc3339(951_782_400, None), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1, None), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn formats_durations_like_go() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(300_000_000), "300ms");
        assert_eq!(go_duration(1_500), "1.5µs");
        assert_eq!(go_duration(42), "42ns");
        assert_eq!(go_duration(-2_000_000_000), "-2s");
        assert_eq!(go_duration(86_400_000_000_000 + 1), "24h0m0.000000001s");
    }
}
