//! Decodes Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`)
//! into the object's Kubernetes JSON form as a [`serde_json::Value`].
//!
//! kubectl and client-go clientsets send built-in kinds as protobuf; the API server works
//! on JSON. This crate turns the wire bytes into the JSON Kubernetes itself would print:
//! camelCase field names as in the API (`hostIPC`, `podCIDRs`), quantities and
//! int-or-strings as strings/numbers, times as RFC 3339, `bytes` as base64.
//!
//! The schema for all messages is generated at build time from the `k8s-pb` and
//! `k8s-openapi` sources (see `build.rs`); nothing is listed per kind by hand. The crate
//! only decodes: it does no IO and does not encode responses.

mod decode;
mod envelope;
mod schema;
mod wellknown;
mod wire;

/// The media type of Kubernetes protobuf bodies.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Why a protobuf body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body does not start with the `k8s\0` magic bytes.
    #[error("not a Kubernetes protobuf body: missing the \"k8s\\0\" magic prefix")]
    BadMagic,
    /// The envelope names a kind this crate has no schema for.
    #[error("unknown kind \"{api_version}, Kind={kind}\"")]
    UnknownKind { api_version: String, kind: String },
    /// The envelope's content encoding is not supported (Kubernetes only uses none).
    #[error("unsupported content encoding {0:?} in protobuf envelope")]
    UnsupportedEncoding(String),
    /// The bytes are not valid protobuf for the expected message.
    #[error("malformed protobuf at field {field} of message {message}: {reason}")]
    Malformed {
        message: &'static str,
        field: u32,
        reason: String,
    },
    /// An embedded JSON value (`RawExtension`, `FieldsV1`, `JSON`) is not valid JSON.
    #[error("invalid embedded JSON at field {field} of message {message}: {source}")]
    EmbeddedJson {
        message: &'static str,
        field: u32,
        #[source]
        source: serde_json::Error,
    },
    /// Messages nest deeper than any real object does.
    #[error("protobuf messages nested deeper than {0} levels")]
    TooDeep(usize),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub use envelope::{decode_object, decode_raw};
