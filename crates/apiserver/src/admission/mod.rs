//! What happens to an object between the request body and the store: the type check
//! against the URL, names and `generateName`, schema checks with `fieldValidation`,
//! defaults, and the system-owned metadata (uid, timestamps, generation).

pub mod allocator;
mod defaults;
mod fields;
mod immutable;
mod jobs;
mod names;
mod pods;
mod services;

use k3rs_core::ResourceDef;
use rand::Rng;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult, FieldCause};
use crate::object;
use crate::query::{FieldValidation, Params};
use crate::schema;

/// Metadata fields only the server writes; clients' values are replaced on update.
const SYSTEM_METADATA: &[&str] = &[
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
];

/// Make sure `obj` is of the resource addressed by the URL, filling in a missing
/// `apiVersion`/`kind` and rejecting a different one with 400.
fn check_type(def: &ResourceDef, obj: &mut Value) -> ApiResult<()> {
    let expected = def.api_version();
    match obj.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => obj["apiVersion"] = json!(expected),
        Some(v) if v == expected => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({expected})"
            )))
        }
    }
    match obj.get("kind").and_then(Value::as_str) {
        None | Some("") => obj["kind"] = json!(def.kind),
        Some(k) if k == def.kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                def.kind
            )))
        }
    }
    Ok(())
}

/// Put the URL's namespace on the object, refusing a conflicting one.
fn check_namespace(def: &ResourceDef, url_ns: Option<&str>, obj: &mut Value) -> ApiResult<()> {
    if !def.namespaced() {
        object::meta_mut(obj).remove("namespace");
        return Ok(());
    }
    let url_ns = url_ns.unwrap_or("");
    match object::namespace(obj) {
        Some(ns) if ns != url_ns => Err(ApiError::bad_request(format!(
            "the namespace of the provided object does not match the namespace sent on the request ({ns} != {url_ns})"
        ))),
        _ => {
            object::set_str(obj, "namespace", url_ns);
            Ok(())
        }
    }
}

/// Apply `fieldValidation` to the schema check: unknown fields are an error (Strict),
/// a warning (Warn) or silently dropped (Ignore). Returns the warnings to send.
fn check_schema(
    def: &ResourceDef,
    obj: &mut Value,
    validation: FieldValidation,
) -> ApiResult<Vec<String>> {
    // Upstream's wording, which clients and users grep for.
    let prefix = format!(
        "{kind} in version \"{version}\" cannot be handled as a {kind}",
        kind = def.kind,
        version = def.version
    );
    let check =
        schema::check(def, obj).map_err(|e| ApiError::bad_request(format!("{prefix}: {e}")))?;
    if check.unknown_fields.is_empty() {
        return Ok(Vec::new());
    }
    let messages: Vec<String> = check
        .unknown_fields
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    if validation == FieldValidation::Strict {
        return Err(ApiError::bad_request(format!(
            "{prefix}: strict decoding error: {}",
            messages.join(", ")
        )));
    }
    schema::prune(obj, &check.unknown_fields);
    Ok(match validation {
        FieldValidation::Warn => messages,
        _ => Vec::new(),
    })
}

/// Random suffix for `generateName`, from the same alphabet as upstream (no vowels, so no words).
fn name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Prepare a new object for storage. Returns the warnings to send to the client.
pub fn prepare_create(
    def: &ResourceDef,
    url_ns: Option<&str>,
    obj: &mut Value,
    params: &Params,
) -> ApiResult<Vec<String>> {
    check_type(def, obj)?;
    check_namespace(def, url_ns, obj)?;
    if object::name(obj).is_none() {
        match object::meta_str(obj, "generateName").filter(|g| !g.is_empty()) {
            Some(prefix) => {
                let name = format!("{prefix}{}", name_suffix());
                object::set_str(obj, "name", &name);
            }
            None => {
                return Err(ApiError::invalid(
                    &def.kind,
                    "",
                    vec![FieldCause {
                        field: "metadata.name".into(),
                        message: "Required value: name or generateName is required".into(),
                        reason: "FieldValueRequired",
                    }],
                ))
            }
        }
    }
    let warnings = check_schema(def, obj, params.field_validation)?;
    names::validate(def, obj)?;
    let meta = object::meta_mut(obj);
    for field in SYSTEM_METADATA {
        meta.remove(*field);
    }
    meta.remove("resourceVersion");
    meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    meta.insert("creationTimestamp".into(), json!(object::now_rfc3339()));
    if def.has_status {
        meta.insert("generation".into(), json!(1));
        // Status is the controllers' to write; upstream drops it on create, except for
        // Nodes, which kubelets register with their status filled in.
        if def.kind != "Node" {
            if let Some(map) = obj.as_object_mut() {
                map.remove("status");
            }
        }
    }
    mutate(def, obj);
    if is_core(def, "Pod") {
        pods::admit_create(obj, &name_suffix());
    }
    if def.group == "batch" && def.kind == "Job" {
        jobs::generate_selector(obj);
    }
    defaults::apply(def, obj);
    if is_core(def, "Pod") {
        let qos = pods::qos_class(obj.get("spec").unwrap_or(&Value::Null));
        if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
            status.insert("qosClass".into(), json!(qos));
        }
    }
    validate(def, obj)?;
    Ok(warnings)
}

fn is_core(def: &ResourceDef, kind: &str) -> bool {
    def.group.is_empty() && def.kind == kind
}

/// Per-kind changes made before defaults (on create and update).
fn mutate(def: &ResourceDef, obj: &mut Value) {
    if is_core(def, "Service") {
        services::normalize(obj);
    }
}

/// Per-kind validation of the defaulted object (on create and update): 422 naming each
/// offending field.
fn validate(def: &ResourceDef, obj: &Value) -> ApiResult<()> {
    let pod_spec = |pointer: &str, path: &str| {
        pods::validate_spec(
            obj.pointer(pointer).unwrap_or(&Value::Null),
            &fields::Path::new(path),
        )
    };
    let causes = match (def.group.as_str(), def.kind.as_str()) {
        ("", "Service") => services::validate(obj),
        ("", "Pod") => pod_spec("/spec", "spec"),
        ("", "PodTemplate") => pod_spec("/template/spec", "template.spec"),
        ("apps", "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet")
        | ("batch", "Job")
        | ("", "ReplicationController") => pod_spec("/spec/template/spec", "spec.template.spec"),
        ("batch", "CronJob") => pod_spec(
            "/spec/jobTemplate/spec/template/spec",
            "spec.jobTemplate.spec.template.spec",
        ),
        _ => Vec::new(),
    };
    fields::check(&def.kind, obj, causes)
}

/// Per-kind rules about what an update may change.
fn validate_update(def: &ResourceDef, old: &Value, new: &Value) -> ApiResult<()> {
    let causes = match (def.group.as_str(), def.kind.as_str()) {
        ("", "Service") => services::validate_update(old, new),
        ("", "Pod") => pods::validate_update(old, new),
        (group, kind) => immutable::validate_update(group, kind, old, new),
    };
    fields::check(&def.kind, new, causes)
}

/// Which part of an object a write may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The object itself; `.status` is kept from the stored object when the kind has a
    /// status subresource.
    Main,
    /// `/status`: only `.status` (and labels/annotations, as upstream) change.
    Status,
}

/// Prepare a replacement of `old` by `new`. Returns warnings.
pub fn prepare_update(
    def: &ResourceDef,
    url_ns: Option<&str>,
    name: &str,
    old: &Value,
    new: &mut Value,
    target: Target,
    params: &Params,
) -> ApiResult<Vec<String>> {
    check_type(def, new)?;
    check_namespace(def, url_ns, new)?;
    match object::name(new) {
        None => object::set_str(new, "name", name),
        Some(n) if n == name => {}
        Some(n) => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )))
        }
    }
    let warnings = check_schema(def, new, params.field_validation)?;
    if target == Target::Status {
        // Everything but status (and labels/annotations) comes from the stored object.
        let mut merged = old.clone();
        merged["status"] = new.get("status").cloned().unwrap_or(Value::Null);
        if merged["status"].is_null() {
            merged.as_object_mut().expect("object").remove("status");
        }
        for field in ["labels", "annotations"] {
            match new.get("metadata").and_then(|m| m.get(field)) {
                Some(v) => {
                    object::meta_mut(&mut merged).insert(field.into(), v.clone());
                }
                None => {
                    object::meta_mut(&mut merged).remove(field);
                }
            }
        }
        if let Some(rv) = object::meta_str(new, "resourceVersion") {
            let rv = rv.to_string();
            object::set_str(&mut merged, "resourceVersion", &rv);
        }
        *new = merged;
    } else if def.has_status {
        match old.get("status") {
            Some(status) => new["status"] = status.clone(),
            None => {
                if let Some(map) = new.as_object_mut() {
                    map.remove("status");
                }
            }
        }
    }
    let old_meta = old.get("metadata").cloned().unwrap_or(json!({}));
    let meta = object::meta_mut(new);
    for field in SYSTEM_METADATA {
        match old_meta.get(*field) {
            Some(v) => meta.insert(field.to_string(), v.clone()),
            None => meta.remove(*field),
        };
    }
    // A finalizer may be removed from a deleting object but not added.
    if object::is_deleting(old) {
        let old_finalizers = object::finalizers(old);
        if object::finalizers(new)
            .iter()
            .any(|f| !old_finalizers.contains(f))
        {
            return Err(ApiError::forbidden(format!(
                "no new finalizers can be added if the object is being deleted, found new finalizers in {}",
                name
            )));
        }
    }
    names::validate(def, new)?;
    mutate(def, new);
    if target == Target::Main && is_core(def, "Service") {
        services::keep_allocated(old, new);
        services::drop_type_dependent(old, new);
    }
    defaults::apply(def, new);
    if target == Target::Main {
        validate(def, new)?;
        validate_update(def, old, new)?;
    }
    if def.has_status && object::spec_part(old) != object::spec_part(new) {
        let generation = old_meta
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        object::meta_mut(new).insert("generation".into(), json!(generation + 1));
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params::parse(None).unwrap()
    }

    fn def(plural: &str) -> &'static ResourceDef {
        k3rs_core::resource::builtins()
            .iter()
            .find(|d| d.plural == plural && d.group.is_empty())
            .unwrap()
    }

    #[test]
    fn create_fills_system_fields_and_generate_name() {
        let mut cm = json!({"metadata": {"generateName": "cfg-"}, "data": {"a": "b"}});
        prepare_create(def("configmaps"), Some("default"), &mut cm, &params()).unwrap();
        assert_eq!(cm["kind"], "ConfigMap");
        assert!(cm["metadata"]["name"].as_str().unwrap().starts_with("cfg-"));
        assert_eq!(cm["metadata"]["name"].as_str().unwrap().len(), 9);
        assert_eq!(cm["metadata"]["namespace"], "default");
        assert!(cm["metadata"]["uid"].is_string());
    }

    #[test]
    fn create_rejects_mismatches() {
        let mut wrong_kind = json!({"kind": "Secret", "metadata": {"name": "a"}});
        let err = prepare_create(
            def("configmaps"),
            Some("default"),
            &mut wrong_kind,
            &params(),
        )
        .unwrap_err();
        assert_eq!(err.code, 400);
        let mut wrong_ns = json!({"metadata": {"name": "a", "namespace": "other"}});
        assert!(
            prepare_create(def("configmaps"), Some("default"), &mut wrong_ns, &params()).is_err()
        );
        let mut no_name = json!({"metadata": {}});
        let err = prepare_create(def("configmaps"), Some("default"), &mut no_name, &params())
            .unwrap_err();
        assert_eq!(err.code, 422);
    }

    #[test]
    fn strict_validation_rejects_unknown_fields() {
        let strict = Params::parse(Some("fieldValidation=Strict")).unwrap();
        let mut cm = json!({"metadata": {"name": "a"}, "dta": {"a": "b"}});
        let err = prepare_create(def("configmaps"), Some("default"), &mut cm.clone(), &strict)
            .unwrap_err();
        assert!(
            err.message.contains("unknown field \"dta\""),
            "{}",
            err.message
        );
        let warnings =
            prepare_create(def("configmaps"), Some("default"), &mut cm, &params()).unwrap();
        assert_eq!(warnings, vec!["unknown field \"dta\"".to_string()]);
        assert!(cm.get("dta").is_none());
    }

    #[test]
    fn update_keeps_status_and_bumps_generation() {
        let pods = def("pods");
        let mut old = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
        prepare_create(pods, Some("default"), &mut old, &params()).unwrap();
        old["status"] = json!({"phase": "Running"});
        let mut new = old.clone();
        new["status"] = json!({"phase": "Failed"});
        new["spec"]["containers"][0]["image"] = json!("busybox:2");
        new["metadata"]["uid"] = json!("forged");
        prepare_update(
            pods,
            Some("default"),
            "p",
            &old,
            &mut new,
            Target::Main,
            &params(),
        )
        .unwrap();
        assert_eq!(new["status"]["phase"], "Running");
        assert_eq!(new["metadata"]["uid"], old["metadata"]["uid"]);
        assert_eq!(new["metadata"]["generation"], 2);

        let mut status = old.clone();
        status["status"] = json!({"phase": "Succeeded"});
        status["spec"]["containers"][0]["image"] = json!("ignored");
        prepare_update(
            pods,
            Some("default"),
            "p",
            &old,
            &mut status,
            Target::Status,
            &params(),
        )
        .unwrap();
        assert_eq!(status["status"]["phase"], "Succeeded");
        assert_eq!(status["spec"]["containers"][0]["image"], "busybox");
    }
}
