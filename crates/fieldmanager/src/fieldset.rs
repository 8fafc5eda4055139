//! Sets of field paths and their FieldsV1 JSON encoding.
//!
//! A [`FieldSet`] is a trie of [`PathElement`]s, like structured-merge-diff's
//! `fieldpath.Set`: a node's *members* are paths that end there, its *children*
//! continue further. In FieldsV1 a member with no children is `{}`, and a member
//! that also has children carries a `"."` marker:
//! `{"f:metadata":{"f:labels":{".":{},"f:app":{}}}}`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::path::{Path, PathElement};
use crate::schema::{list_item_elements, ListTypes};
use crate::Error;

/// A set of field paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, FieldSet>,
}

/// Paths kube-apiserver never records in managedFields (its `stripMetaManager`).
const STRIPPED: &[&[&str]] = &[
    &["apiVersion"],
    &["kind"],
    &["metadata"],
    &["metadata", "name"],
    &["metadata", "namespace"],
    &["metadata", "creationTimestamp"],
    &["metadata", "selfLink"],
    &["metadata", "uid"],
    &["metadata", "clusterName"],
    &["metadata", "generation"],
    &["metadata", "managedFields"],
    &["metadata", "resourceVersion"],
];

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when the set holds no path.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    /// Adds `path`; the empty path (the object itself) is never tracked.
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    /// True when `path` itself is in the set.
    pub fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    /// True when `pe` (one step from here) is a member.
    pub fn has_member(&self, pe: &PathElement) -> bool {
        self.members.contains(pe)
    }

    /// The paths below `pe`, relative to it.
    pub fn child(&self, pe: &PathElement) -> Option<&FieldSet> {
        self.children.get(pe)
    }

    /// Paths in either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out
    }

    /// Paths in `self` that are not in `other` (exact paths: a member of
    /// `other` does not remove the paths below it).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter_map(|(pe, child)| {
                let rest = match other.children.get(pe) {
                    Some(theirs) => child.difference(theirs),
                    None => child.clone(),
                };
                (!rest.is_empty()).then(|| (pe.clone(), rest))
            })
            .collect();
        FieldSet { members, children }
    }

    /// Paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.intersection(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter_map(|(pe, child)| {
                let both = child.intersection(other.children.get(pe)?);
                (!both.is_empty()).then(|| (pe.clone(), both))
            })
            .collect();
        FieldSet { members, children }
    }

    /// Paths in `self` that are neither in `other` nor below one of its paths.
    pub fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter(|(pe, _)| !other.members.contains(pe))
            .filter_map(|(pe, child)| {
                let rest = match other.children.get(pe) {
                    Some(theirs) => child.recursive_difference(theirs),
                    None => child.clone(),
                };
                (!rest.is_empty()).then(|| (pe.clone(), rest))
            })
            .collect();
        FieldSet { members, children }
    }

    /// Every path in the set, in FieldsV1 order (a member before its children).
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        for pe in self.steps() {
            prefix.push(pe.clone());
            if self.members.contains(pe) {
                out.push(prefix.clone());
            }
            if let Some(child) = self.children.get(pe) {
                child.collect_paths(prefix, out);
            }
            prefix.pop();
        }
    }

    /// The number of paths in the set.
    pub fn len(&self) -> usize {
        self.members.len() + self.children.values().map(FieldSet::len).sum::<usize>()
    }

    fn steps(&self) -> BTreeSet<&PathElement> {
        self.members.iter().chain(self.children.keys()).collect()
    }

    /// Decodes a `fieldsV1` object.
    pub fn from_fields_v1(v: &Value) -> Result<Self, Error> {
        match v {
            Value::Object(map) => Self::decode(map),
            Value::Null => Ok(Self::new()),
            other => Err(Error::InvalidFieldsV1(format!(
                "expected an object, got {other}"
            ))),
        }
    }

    fn decode(map: &Map<String, Value>) -> Result<Self, Error> {
        let mut set = FieldSet::new();
        for (key, value) in map {
            if key == "." {
                continue;
            }
            let pe = PathElement::from_fields_v1_key(key).map_err(Error::InvalidFieldsV1)?;
            let Value::Object(inner) = value else {
                return Err(Error::InvalidFieldsV1(format!(
                    "value of {key:?} is not an object"
                )));
            };
            if inner.is_empty() || inner.contains_key(".") {
                set.members.insert(pe.clone());
            }
            let child = Self::decode(inner)?;
            if !child.is_empty() {
                set.children.insert(pe, child);
            }
        }
        Ok(set)
    }

    /// Encodes the set as a `fieldsV1` object.
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.encode())
    }

    fn encode(&self) -> Map<String, Value> {
        let mut out = Map::new();
        for pe in self.steps() {
            let node = match self.children.get(pe) {
                Some(child) => {
                    let mut node = Map::new();
                    if self.members.contains(pe) {
                        node.insert(".".to_string(), Value::Object(Map::new()));
                    }
                    node.extend(child.encode());
                    node
                }
                None => Map::new(),
            };
            out.insert(pe.to_fields_v1_key(), Value::Object(node));
        }
        out
    }

    /// The fields an applied configuration (or any object) sets: its leaves
    /// (scalars, nulls, empty maps, atomic lists), the items of its sets and
    /// associative lists, without the metadata kube-apiserver never tracks
    /// (apiVersion, kind, metadata.name/namespace/uid/resourceVersion/
    /// generation/creationTimestamp/selfLink/managedFields). Lists whose items
    /// cannot be keyed are treated as atomic; see [`FieldSet::try_from_object`].
    pub fn from_object(obj: &Value, schema: &dyn ListTypes) -> FieldSet {
        let mut set = FieldSet::new();
        // Lenient walks cannot fail.
        let _ = collect(obj, &mut Vec::new(), schema, false, &mut set);
        set.difference(&stripped_fields())
    }

    /// Like [`FieldSet::from_object`] but fails, with upstream's wording, on
    /// associative-list items that lack a key or share one, as apply does.
    pub fn try_from_object(obj: &Value, schema: &dyn ListTypes) -> Result<FieldSet, String> {
        let mut set = FieldSet::new();
        collect(obj, &mut Vec::new(), schema, true, &mut set)?;
        Ok(set.difference(&stripped_fields()))
    }
}

/// The paths kube-apiserver removes from every manager's set.
pub fn stripped_fields() -> FieldSet {
    let mut set = FieldSet::new();
    for path in STRIPPED {
        let path: Path = path.iter().map(|s| PathElement::field(s)).collect();
        set.insert(&path);
    }
    set
}

fn collect(
    value: &Value,
    path: &mut Path,
    schema: &dyn ListTypes,
    strict: bool,
    set: &mut FieldSet,
) -> Result<(), String> {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                path.push(PathElement::Field(key.clone()));
                let result = collect(child, path, schema, strict, set);
                path.pop();
                result?;
            }
        }
        Value::Array(items) => {
            let elements = match list_item_elements(path, items, schema, !strict) {
                Ok(Some(elements)) => elements,
                Ok(None) => {
                    set.insert(path);
                    return Ok(());
                }
                Err(err) if strict => return Err(err),
                Err(_) => {
                    set.insert(path);
                    return Ok(());
                }
            };
            for (item, pe) in items.iter().zip(elements) {
                path.push(pe);
                let result = collect(item, path, schema, strict, set);
                set.insert(path);
                path.pop();
                result?;
            }
        }
        _ => set.insert(path),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::BuiltinListTypes;
    use serde_json::json;

    fn p(steps: &[&str]) -> Path {
        steps.iter().map(|s| PathElement::field(s)).collect()
    }

    #[test]
    fn set_operations() {
        let mut a = FieldSet::new();
        a.insert(&p(&["spec", "replicas"]));
        a.insert(&p(&["spec", "template"]));
        let mut b = FieldSet::new();
        b.insert(&p(&["spec", "replicas"]));
        b.insert(&p(&["metadata", "labels", "app"]));

        assert_eq!(a.union(&b).len(), 3);
        assert_eq!(a.intersection(&b).paths(), vec![p(&["spec", "replicas"])]);
        assert_eq!(a.difference(&b).paths(), vec![p(&["spec", "template"])]);
        assert!(a.difference(&a).is_empty());

        let mut c = FieldSet::new();
        c.insert(&p(&["spec"]));
        assert!(a.difference(&c).has(&p(&["spec", "replicas"])));
        assert!(a.recursive_difference(&c).is_empty());
    }

    #[test]
    fn encodes_markers_for_members_with_children() {
        let mut set = FieldSet::new();
        set.insert(&p(&["metadata", "labels"]));
        set.insert(&p(&["metadata", "labels", "app"]));
        set.insert(&p(&["spec", "replicas"]));
        assert_eq!(
            set.to_fields_v1(),
            json!({"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:replicas":{}}})
        );
        assert_eq!(FieldSet::from_fields_v1(&set.to_fields_v1()).unwrap(), set);
    }

    #[test]
    fn rejects_malformed_fields_v1() {
        assert!(FieldSet::from_fields_v1(&json!({"f:a": 1})).is_err());
        assert!(FieldSet::from_fields_v1(&json!({"q:a": {}})).is_err());
        assert!(FieldSet::from_fields_v1(&json!([1])).is_err());
    }

    #[test]
    fn from_object_tracks_leaves_items_and_sets() {
        let obj = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": "d", "labels": {"app": "x"},
                         "finalizers": ["a/b"]},
            "spec": {
                "containers": [{"name": "web", "image": "nginx", "args": ["-x"],
                                "ports": [{"containerPort": 80}], "resources": {}}],
                "tolerations": [{"key": "k"}]
            }
        });
        let set = FieldSet::from_object(&obj, &BuiltinListTypes);
        assert_eq!(
            set.to_fields_v1(),
            json!({
                "f:metadata": {"f:finalizers": {"v:\"a/b\"": {}}, "f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:containers": {"k:{\"name\":\"web\"}": {
                        ".": {}, "f:args": {}, "f:image": {}, "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}},
                        "f:resources": {}
                    }},
                    "f:tolerations": {}
                }
            })
        );
    }

    #[test]
    fn strict_walk_reports_missing_and_duplicate_keys() {
        let missing = json!({"spec": {"containers": [{"image": "x"}]}});
        let err = FieldSet::try_from_object(&missing, &BuiltinListTypes).unwrap_err();
        assert!(err.contains("omits key field \"name\""), "{err}");
        let dup = json!({"spec": {"containers": [{"name": "a"}, {"name": "a"}]}});
        let err = FieldSet::try_from_object(&dup, &BuiltinListTypes).unwrap_err();
        assert_eq!(
            err,
            ".spec.containers: duplicate entries for key [name=\"a\"]"
        );
        // Lenient walks treat unkeyable lists as atomic and tolerate duplicates.
        let set = FieldSet::from_object(&missing, &BuiltinListTypes);
        assert!(set.has(&p(&["spec", "containers"])));
        let set = FieldSet::from_object(&dup, &BuiltinListTypes);
        assert_eq!(set.len(), 2, "{set:?}");
    }
}
