//! Request bodies in and responses out: JSON or YAML bodies, the size limit, and the
//! `Accept` negotiation that picks between plain objects and `meta.k8s.io` Tables.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// Largest request body accepted, as kube-apiserver's default.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Media type of the request body, without parameters.
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Decode a JSON or YAML body into an object.
pub fn decode_object(headers: &HeaderMap, body: &Bytes) -> ApiResult<Value> {
    let media = content_type(headers);
    let value: Value = match media.as_str() {
        "application/json" | "" | "*/*" => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding JSON body: {e}")))?,
        "application/yaml" | "application/x-yaml" | "text/yaml" => serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML body: {e}")))?,
        // client-go's typed clients send built-in kinds as protobuf.
        k3rs_kubeproto::MEDIA_TYPE => k3rs_kubeproto::decode_object(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding protobuf body: {e}")))?,
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON or YAML object",
        ));
    }
    Ok(value)
}

/// How the client wants objects rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Render {
    Object,
    Table,
    /// `meta.k8s.io/v1` PartialObjectMetadata(List): only the metadata of each object, as
    /// metadata-only informers (the garbage collector's) ask for.
    Metadata,
}

/// An object reduced to its metadata, as `PartialObjectMetadata`.
pub fn partial_metadata(object: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object.get("metadata").cloned().unwrap_or_else(|| serde_json::json!({})),
    })
}

/// Reads `Accept`: a Table is sent only when the client lists `as=Table` for meta.k8s.io.
pub fn negotiate(headers: &HeaderMap) -> ApiResult<Render> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*");
    let mut json_ok = false;
    for clause in accept.split(',') {
        let mut parts = clause.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        let params: Vec<&str> = parts.collect();
        let is_table = params.contains(&"as=Table");
        if is_table && (media == "application/json" || media == "*/*") {
            return Ok(Render::Table);
        }
        let is_metadata = params.contains(&"as=PartialObjectMetadata")
            || params.contains(&"as=PartialObjectMetadataList");
        if is_metadata && (media == "application/json" || media == "*/*") {
            return Ok(Render::Metadata);
        }
        if !is_table
            && !is_metadata
            && matches!(
                media,
                "application/json" | "*/*" | "application/*" | "application/yaml"
            )
            || media.starts_with("application/vnd.kubernetes.protobuf")
        {
            json_ok = true;
        }
    }
    if json_ok || accept.trim().is_empty() {
        Ok(Render::Object)
    } else {
        Err(ApiError::not_acceptable(format!(
            "only the following media types are accepted: application/json, application/json;as=Table;v=v1;g=meta.k8s.io (got \"{accept}\")"
        )))
    }
}

/// A JSON response with the given code and optional `Warning` headers.
pub fn json_response(code: StatusCode, value: &Value, warnings: &[String]) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = (code, Body::from(body)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('"', "\\\""));
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
        h
    }

    #[test]
    fn kubectl_table_accept() {
        assert_eq!(
            negotiate(&headers(
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
            ))
            .unwrap(),
            Render::Metadata
        );
        let h = headers("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json");
        assert_eq!(negotiate(&h).unwrap(), Render::Table);
        assert_eq!(
            negotiate(&headers("application/json")).unwrap(),
            Render::Object
        );
        assert_eq!(
            negotiate(&headers("application/vnd.kubernetes.protobuf, */*")).unwrap(),
            Render::Object
        );
        assert!(negotiate(&headers("text/html")).is_err());
    }

    #[test]
    fn yaml_and_bad_bodies() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/yaml"),
        );
        let v = decode_object(&h, &Bytes::from_static(b"kind: ConfigMap\n")).unwrap();
        assert_eq!(v["kind"], "ConfigMap");
        assert!(decode_object(&HeaderMap::new(), &Bytes::from_static(b"{nope")).is_err());
        assert!(decode_object(&HeaderMap::new(), &Bytes::from_static(b"[1]")).is_err());
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let err = decode_object(&h, &Bytes::from_static(b"{}")).unwrap_err();
        assert_eq!(err.code, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
