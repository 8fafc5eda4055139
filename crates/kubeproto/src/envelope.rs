//! The Kubernetes protobuf envelope: `k8s\0` magic + `runtime.Unknown`.
//!
//! `runtime.Unknown` carries the object's `typeMeta` (apiVersion, kind) and its `raw`
//! bytes, encoded as the kind's own message. This module unwraps it, picks the message
//! from apiVersion/kind, and sets `apiVersion`/`kind` on the decoded JSON (the raw
//! object's own `TypeMeta` is empty on the wire).

use serde_json::{Map, Value};

use crate::decode::{self, for_each_field, MAX_DEPTH};
use crate::schema;
use crate::wire::{RawValue, WireError, WireType};
use crate::{Error, Result};

/// The four bytes every Kubernetes protobuf body starts with.
pub(crate) const MAGIC: &[u8] = b"k8s\0";

const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";
const TYPE_META: &str = "k8s.io.apimachinery.pkg.runtime.TypeMeta";

/// Decode a whole request body (magic + `runtime.Unknown`) into the object's JSON, with
/// `apiVersion` and `kind` set from the envelope's `typeMeta`.
///
/// ```
/// let err = k3rs_kubeproto::decode_object(b"{}").unwrap_err();
/// assert!(matches!(err, k3rs_kubeproto::Error::BadMagic));
/// ```
pub fn decode_object(body: &[u8]) -> Result<Value> {
    decode_object_at_depth(body, 0)
}

/// Decode the raw bytes of a known message, chosen by apiVersion and kind
/// (`("apps/v1", "Deployment")`). `apiVersion` and `kind` are set on the result.
pub fn decode_raw(api_version: &str, kind: &str, raw: &[u8]) -> Result<Value> {
    decode_raw_at_depth(api_version, kind, raw, 0)
}

pub(crate) fn decode_object_at_depth(body: &[u8], depth: usize) -> Result<Value> {
    if depth > MAX_DEPTH {
        return Err(Error::TooDeep(MAX_DEPTH));
    }
    let unknown = body.strip_prefix(MAGIC).ok_or(Error::BadMagic)?;
    let envelope = Envelope::read(unknown)?;
    if !envelope.content_encoding.is_empty() {
        return Err(Error::UnsupportedEncoding(envelope.content_encoding));
    }
    decode_raw_at_depth(&envelope.api_version, &envelope.kind, envelope.raw, depth)
}

fn decode_raw_at_depth(api_version: &str, kind: &str, raw: &[u8], depth: usize) -> Result<Value> {
    let unknown_kind = || Error::UnknownKind {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
    };
    let index = schema::message_for_kind(api_version, kind).ok_or_else(unknown_kind)?;
    let value = decode::message_value(index, raw, depth + 1)?;
    let Some(Value::Object(fields)) = value else {
        // A kind that names a scalar-like type (Quantity, Time) is not an object kind.
        return Err(unknown_kind());
    };
    // apiVersion and kind first, as Kubernetes prints them.
    let mut object = Map::new();
    object.insert(
        "apiVersion".to_string(),
        Value::String(api_version.to_string()),
    );
    object.insert("kind".to_string(), Value::String(kind.to_string()));
    for (key, value) in fields {
        if key != "apiVersion" && key != "kind" {
            object.insert(key, value);
        }
    }
    Ok(Value::Object(object))
}

/// The parts of `runtime.Unknown` that matter for decoding.
struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
}

impl<'a> Envelope<'a> {
    fn read(bytes: &'a [u8]) -> Result<Self> {
        let unknown = schema_of(UNKNOWN)?;
        let type_meta = schema_of(TYPE_META)?;
        let mut envelope = Envelope {
            api_version: String::new(),
            kind: String::new(),
            raw: &[],
            content_encoding: String::new(),
        };
        for_each_field(unknown, bytes, |number, raw| {
            let bytes = expect_bytes(unknown, number, raw)?;
            match number {
                1 => for_each_field(type_meta, bytes, |number, raw| {
                    let text = String::from_utf8_lossy(expect_bytes(type_meta, number, raw)?);
                    match number {
                        1 => envelope.api_version = text.into_owned(),
                        2 => envelope.kind = text.into_owned(),
                        _ => {}
                    }
                    Ok(())
                })?,
                2 => envelope.raw = bytes,
                3 => envelope.content_encoding = String::from_utf8_lossy(bytes).into_owned(),
                _ => {} // 4: contentType, always protobuf here
            }
            Ok(())
        })?;
        Ok(envelope)
    }
}

fn schema_of(name: &str) -> Result<&'static schema::MessageSchema> {
    schema::message_index(name)
        .map(schema::message)
        .ok_or_else(|| Error::UnknownKind {
            api_version: String::new(),
            kind: name.to_string(),
        })
}

fn expect_bytes<'a>(
    message: &schema::MessageSchema,
    number: u32,
    raw: RawValue<'a>,
) -> Result<&'a [u8]> {
    match raw {
        RawValue::Bytes(bytes) => Ok(bytes),
        other => Err(decode::malformed(
            message,
            number,
            WireError::UnexpectedWireType {
                expected: WireType::LengthDelimited,
                found: other.wire_type(),
            },
        )),
    }
}
