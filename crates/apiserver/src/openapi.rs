//! OpenAPI v3 documents, one per group-version, as kubectl reads them.
//!
//! kubectl 1.32 decides whether to hand validation to the server by looking, in
//! `/openapi/v3/<gv>`, for a PATCH operation tagged with the kind's
//! `x-kubernetes-group-version-kind` that lists the `fieldValidation` parameter. Serving
//! that lets `kubectl create`/`apply` send `fieldValidation=Strict` and leaves the schema
//! checks to [`crate::schema`]. Strategic merge patch is deliberately not advertised here,
//! so client-side apply computes its patches from kubectl's compiled-in types.

use std::sync::Arc;

use k3rs_core::ResourceDef;
use serde_json::{json, Map, Value};

use crate::discovery;

/// `/openapi/v3`: where each group-version's document lives.
pub fn root(resources: &[Arc<ResourceDef>]) -> Value {
    let hash = content_hash(resources);
    let paths: Map<String, Value> = discovery::group_version_paths(resources)
        .into_keys()
        .map(|path| {
            let url = format!("/openapi/v3/{path}?hash={hash}");
            (path, json!({"serverRelativeURL": url}))
        })
        .collect();
    json!({"paths": paths})
}

/// Changes whenever the set of served resources changes, so clients refresh caches.
fn content_hash(resources: &[Arc<ResourceDef>]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for d in resources {
        for b in d.api_version().bytes().chain(d.plural.bytes()) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    format!("{h:016X}")
}

fn query_param(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

/// The document for one group-version, or `None` if it is not served.
pub fn group_version(resources: &[Arc<ResourceDef>], path: &str) -> Option<Value> {
    let (group, version) = discovery::group_version_paths(resources).remove(path)?;
    let mut paths = Map::new();
    for def in resources
        .iter()
        .filter(|d| d.group == group && d.version == version)
    {
        let gvk = json!({"group": def.group, "version": def.version, "kind": def.kind});
        let schema = json!({"type": "object"});
        let body = |types: &[&str]| {
            let content: Map<String, Value> = types
                .iter()
                .map(|t| (t.to_string(), json!({"schema": schema.clone()})))
                .collect();
            json!({"content": content, "required": true})
        };
        let response = json!({"200": {"description": "OK", "content": {"application/json": {"schema": schema.clone()}}}});
        let write_params = vec![
            query_param("dryRun"),
            query_param("fieldManager"),
            query_param("fieldValidation"),
        ];
        let op = |action: &str, params: Vec<Value>, request: Option<Value>| {
            let mut op = json!({
                "operationId": format!("{action}{}", def.kind),
                "parameters": params,
                "responses": response.clone(),
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk.clone(),
            });
            if let Some(r) = request {
                op["requestBody"] = r;
            }
            op
        };
        let mut patch_params = write_params.clone();
        patch_params.push(query_param("force"));
        let item = json!({
            "get": op("get", vec![], None),
            "put": op("put", write_params.clone(), Some(body(&["application/json"]))),
            "patch": op("patch", patch_params, Some(body(&[
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/apply-patch+yaml",
            ]))),
            "delete": op("delete", vec![query_param("dryRun")], None),
        });
        let collection = json!({
            "get": op("list", vec![query_param("labelSelector"), query_param("fieldSelector")], None),
            "post": op("post", write_params, Some(body(&["application/json"]))),
        });
        let base = if def.group.is_empty() {
            format!("/api/{}", def.version)
        } else {
            format!("/apis/{}/{}", def.group, def.version)
        };
        let scoped = if def.namespaced() {
            format!("{base}/namespaces/{{namespace}}/{}", def.plural)
        } else {
            format!("{base}/{}", def.plural)
        };
        paths.insert(format!("{scoped}/{{name}}"), item);
        paths.insert(scoped, collection);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": discovery::KUBE_GIT_VERSION},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

/// `/openapi/v2`: an empty Swagger document. kubectl falls back to it for kinds the v3
/// documents do not describe; an empty document makes it skip client-side validation and
/// report the real problem (no such kind) instead of a download error. kubectl asks for
/// the protobuf form (gnostic `openapi_v2.Document`), whose only field here is
/// `swagger = 1`.
pub fn v2(protobuf: bool) -> (Vec<u8>, &'static str) {
    if protobuf {
        let mut doc = vec![0x0a, 3];
        doc.extend_from_slice(b"2.0");
        (
            doc,
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
        )
    } else {
        let doc = json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": discovery::KUBE_GIT_VERSION},
            "paths": {},
        });
        (doc.to_string().into_bytes(), "application/json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_operations_advertise_field_validation() {
        let resources = &crate::registry::Registry::builtin().snapshot();
        let root = root(resources);
        assert!(root["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap()
            .starts_with("/openapi/v3/apis/apps/v1?hash="));
        let doc = group_version(resources, "api/v1").unwrap();
        let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "ConfigMap"
        );
        assert!(patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation"));
        assert!(group_version(resources, "apis/nope/v1").is_none());
    }
}
