//! Walks a protobuf message by its schema and builds the Kubernetes JSON value.
//!
//! Generic rules live here (names, repeated, maps, scalars, `bytes` as base64); types
//! whose JSON form is not a plain object are handed to [`crate::wellknown`].

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use crate::schema::{self, FieldSchema, MessageSchema, Shape, ValueType};
use crate::wellknown;
use crate::wire::{RawValue, Reader, WireError, WireType};
use crate::{Error, Result};

/// Deepest message nesting accepted; real objects stay far below it, and the limit keeps
/// hostile input from exhausting the stack.
pub(crate) const MAX_DEPTH: usize = 100;

pub(crate) fn malformed(message: &MessageSchema, field: u32, error: WireError) -> Error {
    Error::Malformed {
        message: message.name,
        field,
        reason: error.to_string(),
    }
}

/// Calls `visit(field number, value)` for every field on the wire, in wire order.
pub(crate) fn for_each_field<'a>(
    message: &MessageSchema,
    bytes: &'a [u8],
    mut visit: impl FnMut(u32, RawValue<'a>) -> Result<()>,
) -> Result<()> {
    let mut reader = Reader::new(bytes);
    let mut last_field = 0;
    while !reader.is_empty() {
        let (number, wire_type) = reader
            .key()
            .map_err(|e| malformed(message, last_field, e))?;
        last_field = number;
        let value = reader
            .value(wire_type)
            .map_err(|e| malformed(message, number, e))?;
        visit(number, value)?;
    }
    Ok(())
}

/// Decodes message `index` from `bytes`. `None` means "no JSON value" (for example a zero
/// `Time`), which drops the field like Go's `omitempty`.
pub(crate) fn message_value(index: u16, bytes: &[u8], depth: usize) -> Result<Option<Value>> {
    if depth > MAX_DEPTH {
        return Err(Error::TooDeep(MAX_DEPTH));
    }
    let message = schema::message(index);
    if let Some(kind) = wellknown::WellKnown::of(message.name) {
        return wellknown::decode(kind, message, bytes, depth);
    }
    object(message, bytes, depth).map(|o| Some(Value::Object(o)))
}

fn object(message: &MessageSchema, bytes: &[u8], depth: usize) -> Result<Map<String, Value>> {
    let mut object = Map::new();
    for_each_field(message, bytes, |number, raw| {
        // Fields this schema does not know (a newer Kubernetes) are skipped, as protobuf does.
        let Some(field) = message.field(number) else {
            return Ok(());
        };
        match field.shape {
            Shape::Single => {
                let value = value(message, field, field.value, raw, depth)?;
                match value {
                    Some(Value::String(s)) if s.is_empty() && field.omit_empty_string => {
                        object.remove(field.json_name);
                    }
                    None => {
                        object.remove(field.json_name);
                    }
                    Some(Value::Object(embedded)) if field.inline => {
                        for (name, value) in embedded {
                            set_singular(&mut object, &name, value);
                        }
                    }
                    Some(value) => set_singular(&mut object, field.json_name, value),
                }
            }
            Shape::Repeated => {
                let items = object
                    .entry(field.json_name)
                    .or_insert_with(|| Value::Array(Vec::new()));
                let Value::Array(items) = items else {
                    unreachable!("repeated fields are always arrays");
                };
                push_repeated(message, field, raw, depth, items)?;
            }
            Shape::Map(key_type) => {
                let (key, value) = map_entry(message, field, key_type, raw, depth)?;
                let entries = object
                    .entry(field.json_name)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(entries) = entries {
                    entries.insert(key, value);
                }
            }
        }
        Ok(())
    })?;
    Ok(object)
}

/// A repeated singular field: the last value wins, messages merge (protobuf semantics).
fn set_singular(object: &mut Map<String, Value>, name: &str, value: Value) {
    match (object.get_mut(name), value) {
        (Some(Value::Object(existing)), Value::Object(new)) => existing.extend(new),
        (_, value) => {
            object.insert(name.to_string(), value);
        }
    }
}

fn push_repeated(
    message: &MessageSchema,
    field: &FieldSchema,
    raw: RawValue<'_>,
    depth: usize,
    items: &mut Vec<Value>,
) -> Result<()> {
    // Packed numeric lists arrive as one length-delimited run of values.
    if let (RawValue::Bytes(bytes), Some(wire_type)) = (raw, numeric_wire_type(field.value)) {
        let mut reader = Reader::new(bytes);
        while !reader.is_empty() {
            let item = reader
                .value(wire_type)
                .map_err(|e| malformed(message, field.number, e))?;
            items.push(value(message, field, field.value, item, depth)?.unwrap_or(Value::Null));
        }
        return Ok(());
    }
    items.push(value(message, field, field.value, raw, depth)?.unwrap_or(Value::Null));
    Ok(())
}

fn map_entry(
    message: &MessageSchema,
    field: &FieldSchema,
    key_type: ValueType,
    raw: RawValue<'_>,
    depth: usize,
) -> Result<(String, Value)> {
    let RawValue::Bytes(bytes) = raw else {
        return Err(wrong_wire_type(
            message,
            field,
            WireType::LengthDelimited,
            raw,
        ));
    };
    let mut key = None;
    let mut entry_value = None;
    for_each_field(message, bytes, |number, raw| {
        match number {
            1 => key = value(message, field, key_type, raw, depth)?,
            2 => entry_value = Some(value(message, field, field.value, raw, depth)?),
            _ => {}
        }
        Ok(())
    })?;
    let key = match key {
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => default_scalar(key_type)
            .map(|v| match v {
                Value::String(s) => s,
                other => other.to_string(),
            })
            .unwrap_or_default(),
    };
    let entry_value = match entry_value {
        Some(v) => v,
        // An absent value is the type's zero value.
        None => match field.value {
            ValueType::Message(index) => message_value(index, &[], depth + 1)?,
            scalar => default_scalar(scalar),
        },
    };
    Ok((key, entry_value.unwrap_or(Value::Null)))
}

fn default_scalar(value_type: ValueType) -> Option<Value> {
    match value_type {
        ValueType::String | ValueType::Bytes => Some(Value::String(String::new())),
        ValueType::Bool => Some(Value::Bool(false)),
        ValueType::Message(_) => None,
        _ => Some(Value::Number(0.into())),
    }
}

/// The wire type a numeric scalar uses when not packed; `None` for length-delimited types.
fn numeric_wire_type(value_type: ValueType) -> Option<WireType> {
    match value_type {
        ValueType::String | ValueType::Bytes | ValueType::Message(_) => None,
        ValueType::Fixed32 | ValueType::Sfixed32 | ValueType::Float => Some(WireType::Fixed32),
        ValueType::Fixed64 | ValueType::Sfixed64 | ValueType::Double => Some(WireType::Fixed64),
        _ => Some(WireType::Varint),
    }
}

fn wrong_wire_type(
    message: &MessageSchema,
    field: &FieldSchema,
    expected: WireType,
    raw: RawValue<'_>,
) -> Error {
    malformed(
        message,
        field.number,
        WireError::UnexpectedWireType {
            expected,
            found: raw.wire_type(),
        },
    )
}

/// Converts one wire value of `value_type` to JSON.
pub(crate) fn value(
    message: &MessageSchema,
    field: &FieldSchema,
    value_type: ValueType,
    raw: RawValue<'_>,
    depth: usize,
) -> Result<Option<Value>> {
    let json = match (value_type, raw) {
        (ValueType::String, RawValue::Bytes(b)) => {
            Value::String(String::from_utf8_lossy(b).into_owned())
        }
        (ValueType::Bytes, RawValue::Bytes(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        (ValueType::Message(index), RawValue::Bytes(b)) => {
            return message_value(index, b, depth + 1);
        }
        (ValueType::Bool, RawValue::Varint(v)) => Value::Bool(v != 0),
        // Truncation to the declared width is what protobuf does for 32-bit varints.
        (ValueType::Int32, RawValue::Varint(v)) => Value::from(v as i32),
        (ValueType::Int64, RawValue::Varint(v)) => Value::from(v as i64),
        (ValueType::Uint32, RawValue::Varint(v)) => Value::from(v as u32),
        (ValueType::Uint64, RawValue::Varint(v)) => Value::from(v),
        (ValueType::Sint32, RawValue::Varint(v)) => {
            let v = v as u32;
            Value::from(((v >> 1) as i32) ^ -((v & 1) as i32))
        }
        (ValueType::Sint64, RawValue::Varint(v)) => {
            Value::from(((v >> 1) as i64) ^ -((v & 1) as i64))
        }
        (ValueType::Fixed32, RawValue::Fixed32(v)) => Value::from(v),
        (ValueType::Sfixed32, RawValue::Fixed32(v)) => Value::from(v as i32),
        (ValueType::Float, RawValue::Fixed32(v)) => float(f64::from(f32::from_bits(v))),
        (ValueType::Fixed64, RawValue::Fixed64(v)) => Value::from(v),
        (ValueType::Sfixed64, RawValue::Fixed64(v)) => Value::from(v as i64),
        (ValueType::Double, RawValue::Fixed64(v)) => float(f64::from_bits(v)),
        (value_type, raw) => {
            let expected = numeric_wire_type(value_type).unwrap_or(WireType::LengthDelimited);
            return Err(wrong_wire_type(message, field, expected, raw));
        }
    };
    Ok(Some(json))
}

/// Go's encoding/json writes whole floats without a fraction (`1`, not `1.0`).
fn float(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        return Value::from(v as i64);
    }
    Number::from_f64(v).map_or(Value::Null, Value::Number)
}
