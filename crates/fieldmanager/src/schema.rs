//! List semantics without OpenAPI: which lists are atomic, sets of scalars, or
//! associative lists merged by key fields.
//!
//! kube-apiserver reads `x-kubernetes-list-type` / `x-kubernetes-list-map-keys`
//! (and the `patchMergeKey` tags of built-in types) from its schemas. k3rs has
//! no schemas at runtime, so [`list_type`] is a table of the built-in lists that
//! matter, keyed by field name and, where a name is ambiguous (`ports`), by its
//! parent. Everything else is atomic, as structured-merge-diff's deduced schema
//! treats lists. Callers with better knowledge (a CRD's structural schema) pass
//! their own [`ListTypes`], typically a closure that falls back to [`list_type`].

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

use crate::path::PathElement;

/// How a list merges and how its items are tracked in field sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListType {
    /// Replaced as a whole; owned as one leaf.
    Atomic,
    /// A set of scalars; each value is owned separately (`v:` steps).
    Set,
    /// An associative list: items are identified by these key fields (`k:` steps).
    Map(Vec<&'static str>),
}

/// The list-type lookup used by field sets, merges and comparisons.
///
/// `path` is the path of the list field itself, e.g. `.spec.template.spec.containers`.
pub trait ListTypes {
    /// The semantics of the list at `path`.
    fn list_type(&self, path: &[PathElement]) -> ListType;

    /// The value a key field takes when an item omits it (OpenAPI `default`);
    /// upstream's schemas default `protocol` to `TCP` for ports.
    fn key_default(&self, _list_path: &[PathElement], key: &str) -> Option<Value> {
        (key == "protocol").then(|| Value::String("TCP".to_string()))
    }
}

/// The built-in table, [`list_type`], as a [`ListTypes`].
#[derive(Clone, Copy, Debug, Default)]
pub struct BuiltinListTypes;

impl ListTypes for BuiltinListTypes {
    fn list_type(&self, path: &[PathElement]) -> ListType {
        list_type(path)
    }
}

impl<F> ListTypes for F
where
    F: Fn(&[PathElement]) -> ListType,
{
    fn list_type(&self, path: &[PathElement]) -> ListType {
        self(path)
    }
}

const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

/// The built-in list table for Kubernetes' own types.
pub fn list_type(path: &[PathElement]) -> ListType {
    let Some(PathElement::Field(name)) = path.last() else {
        return ListType::Atomic;
    };
    let parent = &path[..path.len() - 1];
    match name.as_str() {
        "containers" | "initContainers" | "ephemeralContainers" => ListType::Map(vec!["name"]),
        "ports" => ports_type(parent),
        "env" | "imagePullSecrets" | "volumes" | "resourceClaims" | "schedulingGates" => {
            ListType::Map(vec!["name"])
        }
        "volumeMounts" => ListType::Map(vec!["mountPath"]),
        "volumeDevices" => ListType::Map(vec!["devicePath"]),
        "hostAliases" => ListType::Map(vec!["ip"]),
        "podIPs" | "hostIPs" if is_field(parent.last(), "status") => ListType::Map(vec!["ip"]),
        "conditions" => ListType::Map(vec!["type"]),
        "ownerReferences" => ListType::Map(vec!["uid"]),
        "topologySpreadConstraints" => ListType::Map(vec!["topologyKey", "whenUnsatisfiable"]),
        "finalizers" => ListType::Set,
        // tolerations, args, command and every other list: atomic.
        _ => ListType::Atomic,
    }
}

fn ports_type(parent: &[PathElement]) -> ListType {
    // `...containers[name=x].ports`: a container's ports.
    if let [.., PathElement::Field(list), PathElement::Key(_)] = parent {
        if CONTAINER_LISTS.contains(&list.as_str()) {
            return ListType::Map(vec!["containerPort", "protocol"]);
        }
    }
    // `.spec.ports` at the top of an object: a Service's ports.
    if let [PathElement::Field(spec)] = parent {
        if spec == "spec" {
            return ListType::Map(vec!["port", "protocol"]);
        }
    }
    ListType::Atomic
}

fn is_field(pe: Option<&PathElement>, name: &str) -> bool {
    matches!(pe, Some(PathElement::Field(f)) if f == name)
}

/// The path elements naming each item of the list at `list_path`, or `None`
/// when the list is atomic. Errors (worded as upstream) when an item of an
/// associative list is not a map or lacks a key field without a default, when a
/// set holds a non-scalar, or, unless `allow_duplicates`, when two items share a
/// key. Live objects pass `allow_duplicates` (upstream tolerates them there).
pub(crate) fn list_item_elements(
    list_path: &[PathElement],
    items: &[Value],
    schema: &dyn ListTypes,
    allow_duplicates: bool,
) -> Result<Option<Vec<PathElement>>, String> {
    let where_ = || crate::path::path_to_string(list_path);
    let elements = match schema.list_type(list_path) {
        ListType::Atomic => return Ok(None),
        ListType::Set => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Array(_) | Value::Object(_) => Err(format!(
                    "{}: element {i}: set items must be scalars",
                    where_()
                )),
                scalar => Ok(PathElement::Value(scalar.clone())),
            })
            .collect::<Result<Vec<_>, _>>()?,
        ListType::Map(keys) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let Value::Object(fields) = item else {
                    return Err(format!(
                        "{}: element {i}: associative list with keys has an element that is not a map type",
                        where_()
                    ));
                };
                let mut key = Vec::with_capacity(keys.len());
                for name in &keys {
                    let value = match fields.get(*name) {
                        Some(value) if !value.is_null() => value.clone(),
                        _ => schema.key_default(list_path, name).ok_or_else(|| {
                            format!(
                                "{}: element {i}: associative list with keys has an element that omits key field {name:?} (and doesn't have default value)",
                                where_()
                            )
                        })?,
                    };
                    key.push((name.to_string(), value));
                }
                Ok(PathElement::key(key))
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    if !allow_duplicates {
        let mut seen = std::collections::BTreeSet::new();
        for pe in &elements {
            if !seen.insert(pe) {
                let what = if matches!(pe, PathElement::Value(_)) {
                    "value"
                } else {
                    "key"
                };
                return Err(format!("{}: duplicate entries for {what} {pe}", where_()));
            }
        }
    }
    Ok(Some(elements))
}

/// Returns a `'static` copy of a key field name, for [`ListType::Map`] built
/// from schemas at runtime (CRDs). Each distinct name is allocated once and
/// kept for the life of the process.
pub fn intern_key(name: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(existing) = names.get(name) {
        return existing;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(steps: &[&str]) -> Vec<PathElement> {
        steps
            .iter()
            .map(|s| match s.strip_prefix("name=") {
                Some(name) => PathElement::key(vec![("name".into(), json!(name))]),
                None => PathElement::field(s),
            })
            .collect()
    }

    #[test]
    fn ports_depend_on_the_parent() {
        assert_eq!(
            list_type(&path(&["spec", "ports"])),
            ListType::Map(vec!["port", "protocol"])
        );
        assert_eq!(
            list_type(&path(&[
                "spec",
                "template",
                "spec",
                "containers",
                "name=web",
                "ports"
            ])),
            ListType::Map(vec!["containerPort", "protocol"])
        );
        assert_eq!(list_type(&path(&["ports"])), ListType::Atomic);
    }

    #[test]
    fn table_entries() {
        assert_eq!(
            list_type(&path(&["spec", "containers"])),
            ListType::Map(vec!["name"])
        );
        assert_eq!(list_type(&path(&["metadata", "finalizers"])), ListType::Set);
        assert_eq!(list_type(&path(&["spec", "tolerations"])), ListType::Atomic);
        assert_eq!(
            list_type(&path(&["spec", "containers", "name=a", "args"])),
            ListType::Atomic
        );
        assert_eq!(
            list_type(&path(&["spec", "somethingElse"])),
            ListType::Atomic
        );
    }

    #[test]
    fn closures_override_the_table() {
        let custom = |p: &[PathElement]| {
            if p.last().and_then(PathElement::as_field) == Some("items") {
                ListType::Map(vec![intern_key("id")])
            } else {
                list_type(p)
            }
        };
        assert_eq!(
            custom.list_type(&path(&["spec", "items"])),
            ListType::Map(vec!["id"])
        );
        assert_eq!(
            custom.list_type(&path(&["spec", "containers"])),
            ListType::Map(vec!["name"])
        );
        assert!(std::ptr::eq(intern_key("id"), intern_key("id")));
    }
}
