//! The three value walks server-side apply is built from, as in
//! structured-merge-diff's `typed` package: merging an applied configuration
//! into a live object, comparing two versions of an object into added, modified
//! and removed field sets, and removing a set of fields from an object.
//!
//! Maps merge key by key; associative lists and sets merge item by item
//! (keeping live-only items where they were and the applied order for the
//! rest); atomic lists and scalars are replaced.

use serde_json::{Map, Value};

use crate::fieldset::FieldSet;
use crate::path::{Path, PathElement};
use crate::schema::{list_item_elements, ListTypes};

/// Merges `config` into `live`. Fails (upstream wording) when `config` has an
/// associative list item without its key or two items with the same key.
pub fn merge(live: &Value, config: &Value, schema: &dyn ListTypes) -> Result<Value, String> {
    merge_value(&mut Vec::new(), Some(live), config, schema)
}

fn merge_value(
    path: &mut Path,
    live: Option<&Value>,
    config: &Value,
    schema: &dyn ListTypes,
) -> Result<Value, String> {
    match (live, config) {
        (Some(Value::Object(live)), Value::Object(config)) => {
            let mut out = live.clone();
            for (key, value) in config {
                path.push(PathElement::Field(key.clone()));
                let merged = merge_value(path, live.get(key), value, schema);
                path.pop();
                out.insert(key.clone(), merged?);
            }
            Ok(Value::Object(out))
        }
        (live, Value::Array(config_items)) => {
            let Some(config_pes) = list_item_elements(path, config_items, schema, false)? else {
                return Ok(Value::Array(config_items.clone()));
            };
            let live_items = match live {
                Some(Value::Array(items)) => items.as_slice(),
                _ => &[],
            };
            let live_pes = match list_item_elements(path, live_items, schema, true) {
                Ok(Some(pes)) => pes,
                // A live list we cannot key is replaced, as an atomic one would be.
                _ => Vec::new(),
            };
            let live_items = if live_pes.len() == live_items.len() {
                live_items
            } else {
                &[]
            };
            merge_list(
                path,
                live_items,
                &live_pes,
                config_items,
                &config_pes,
                schema,
            )
            .map(Value::Array)
        }
        (_, Value::Object(_)) => {
            // Nothing (or a non-map) to merge into: still walk to validate lists.
            merge_value(path, Some(&Value::Object(Map::new())), config, schema)
        }
        (_, scalar) => Ok(scalar.clone()),
    }
}

/// structured-merge-diff's list merge: walks both lists, emitting live-only
/// items where they are, shared items in the applied order, new items after
/// the shared item that precedes them in the applied configuration.
fn merge_list(
    path: &mut Path,
    live: &[Value],
    live_pes: &[PathElement],
    config: &[Value],
    config_pes: &[PathElement],
    schema: &dyn ListTypes,
) -> Result<Vec<Value>, String> {
    let live_index = |pe: &PathElement| live_pes.iter().position(|p| p == pe);
    let in_config = |pe: &PathElement| config_pes.contains(pe);
    let shared: Vec<&PathElement> = config_pes
        .iter()
        .filter(|pe| live_index(pe).is_some())
        .collect();
    let mut next_shared = 0;
    let mut merged_config: Vec<&PathElement> = Vec::new();
    let mut out = Vec::with_capacity(live.len() + config.len());

    let merge_item = |path: &mut Path, pe: &PathElement, config_item: &Value| {
        let live_item = live_index(pe).map(|i| &live[i]);
        path.push(pe.clone());
        let merged = merge_value(path, live_item, config_item, schema);
        path.pop();
        merged
    };

    let (mut li, mut ri) = (0, 0);
    while li < live.len() || ri < config.len() {
        if li < live.len() && ri < config.len() {
            let pe = &live_pes[li];
            if *pe == config_pes[ri] {
                out.push(merge_item(path, pe, &config[ri])?);
                merged_config.push(pe);
                if shared.get(next_shared) == Some(&pe) {
                    next_shared += 1;
                }
                li += 1;
                ri += 1;
                continue;
            }
            if in_config(pe) && shared.get(next_shared) != Some(&pe) {
                // A shared item, but not the one due now: it comes later.
                li += 1;
                continue;
            }
        }
        if li < live.len() {
            let pe = &live_pes[li];
            if !in_config(pe) {
                out.push(live[li].clone());
                li += 1;
                continue;
            }
            if merged_config.contains(&pe) {
                li += 1;
                continue;
            }
        }
        if ri < config.len() {
            let pe = &config_pes[ri];
            out.push(merge_item(path, pe, &config[ri])?);
            merged_config.push(pe);
            if shared.get(next_shared) == Some(&pe) {
                next_shared += 1;
            }
            ri += 1;
        }
    }
    Ok(out)
}

/// The difference between two versions of an object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Paths present only in the new version (maps, lists and items included).
    pub added: FieldSet,
    /// Leaves present in both with different values.
    pub modified: FieldSet,
    /// Paths present only in the old version.
    pub removed: FieldSet,
}

impl Comparison {
    /// Added or modified paths: what a writer takes ownership of.
    pub fn changed(&self) -> FieldSet {
        self.added.union(&self.modified)
    }

    /// The comparison without `ignored` paths and anything below them.
    pub fn without(self, ignored: &FieldSet) -> Comparison {
        if ignored.is_empty() {
            return self;
        }
        Comparison {
            added: self.added.recursive_difference(ignored),
            modified: self.modified.recursive_difference(ignored),
            removed: self.removed.recursive_difference(ignored),
        }
    }
}

/// Compares `old` with `new`.
pub fn compare(old: &Value, new: &Value, schema: &dyn ListTypes) -> Comparison {
    let mut out = Comparison::default();
    compare_value(&mut Vec::new(), Some(old), Some(new), schema, &mut out);
    out
}

fn compare_value(
    path: &mut Path,
    old: Option<&Value>,
    new: Option<&Value>,
    schema: &dyn ListTypes,
    out: &mut Comparison,
) {
    match (old, new) {
        (None, None) => {}
        (None, Some(new)) => mark_all(path, new, schema, &mut out.added),
        (Some(old), None) => mark_all(path, old, schema, &mut out.removed),
        (Some(Value::Object(old)), Some(Value::Object(new))) => {
            let keys = old
                .keys()
                .chain(new.keys().filter(|k| !old.contains_key(*k)));
            for key in keys {
                path.push(PathElement::Field(key.clone()));
                compare_value(path, old.get(key), new.get(key), schema, out);
                path.pop();
            }
        }
        (Some(Value::Array(old_items)), Some(Value::Array(new_items))) => {
            let keyed = (
                list_item_elements(path, old_items, schema, true),
                list_item_elements(path, new_items, schema, true),
            );
            let (Ok(Some(old_pes)), Ok(Some(new_pes))) = keyed else {
                if old_items != new_items {
                    out.modified.insert(path);
                }
                return;
            };
            fn find<'a>(
                pes: &[PathElement],
                items: &'a [Value],
                pe: &PathElement,
            ) -> Option<&'a Value> {
                pes.iter().position(|p| p == pe).map(|i| &items[i])
            }
            let mut seen: Vec<&PathElement> = Vec::new();
            for pe in old_pes.iter().chain(new_pes.iter()) {
                if seen.contains(&pe) {
                    continue;
                }
                seen.push(pe);
                path.push(pe.clone());
                compare_value(
                    path,
                    find(&old_pes, old_items, pe),
                    find(&new_pes, new_items, pe),
                    schema,
                    out,
                );
                path.pop();
            }
        }
        (Some(old), Some(new)) => {
            if old != new {
                out.modified.insert(path);
            }
        }
    }
}

/// Inserts `path` and every path below it in `value`.
fn mark_all(path: &mut Path, value: &Value, schema: &dyn ListTypes, set: &mut FieldSet) {
    set.insert(path);
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                path.push(PathElement::Field(key.clone()));
                mark_all(path, child, schema, set);
                path.pop();
            }
        }
        Value::Array(items) => {
            if let Ok(Some(pes)) = list_item_elements(path, items, schema, true) {
                for (item, pe) in items.iter().zip(pes) {
                    path.push(pe);
                    mark_all(path, item, schema, set);
                    path.pop();
                }
            }
        }
        _ => {}
    }
}

/// Removes the paths in `remove` from `obj`: a member path removes the field or
/// list item with everything below it. A map or list emptied by the removal
/// goes too, unless `keep` owns it, the way upstream prunes a named field
/// nobody owns anything under any more.
pub fn remove_fields(obj: &mut Value, remove: &FieldSet, keep: &FieldSet, schema: &dyn ListTypes) {
    remove_in(&mut Vec::new(), obj, remove, Some(keep), schema);
}

fn remove_in(
    path: &mut Path,
    value: &mut Value,
    remove: &FieldSet,
    keep: Option<&FieldSet>,
    schema: &dyn ListTypes,
) {
    match value {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let pe = PathElement::Field(key.clone());
                if remove.has_member(&pe) {
                    map.remove(&key);
                } else if let Some(sub) = remove.child(&pe) {
                    let kept = keep.and_then(|k| k.child(&pe));
                    let owned = keep.is_some_and(|k| k.has_member(&pe));
                    if let Some(child) = map.get_mut(&key) {
                        path.push(pe);
                        let emptied = remove_child(path, child, sub, kept, schema);
                        path.pop();
                        if emptied && !owned {
                            map.remove(&key);
                        }
                    }
                }
            }
        }
        Value::Array(items) => {
            let Ok(Some(pes)) = list_item_elements(path, items, schema, true) else {
                return;
            };
            let mut kept_items = Vec::with_capacity(items.len());
            for (mut item, pe) in std::mem::take(items).into_iter().zip(pes) {
                if remove.has_member(&pe) {
                    continue;
                }
                if let Some(sub) = remove.child(&pe) {
                    path.push(pe.clone());
                    remove_in(
                        path,
                        &mut item,
                        sub,
                        keep.and_then(|k| k.child(&pe)),
                        schema,
                    );
                    path.pop();
                }
                kept_items.push(item);
            }
            *items = kept_items;
        }
        _ => {}
    }
}

/// Removes below a child and reports whether it went from non-empty to empty.
fn remove_child(
    path: &mut Path,
    child: &mut Value,
    remove: &FieldSet,
    keep: Option<&FieldSet>,
    schema: &dyn ListTypes,
) -> bool {
    let was_empty = is_empty_container(child);
    remove_in(path, child, remove, keep, schema);
    !was_empty && is_empty_container(child)
}

fn is_empty_container(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::BuiltinListTypes;
    use serde_json::json;

    #[test]
    fn maps_merge_and_lists_follow_their_type() {
        let live = json!({
            "metadata": {"labels": {"a": "1"}},
            "spec": {
                "containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}],
                "tolerations": [{"key": "x"}]
            }
        });
        let config = json!({
            "metadata": {"labels": {"b": "2"}},
            "spec": {
                "containers": [{"name": "b", "image": "b:2"}, {"name": "c", "image": "c:1"}],
                "tolerations": [{"key": "y"}]
            }
        });
        let merged = merge(&live, &config, &BuiltinListTypes).unwrap();
        assert_eq!(
            merged,
            json!({
                "metadata": {"labels": {"a": "1", "b": "2"}},
                "spec": {
                    "containers": [
                        {"name": "a", "image": "a:1"},
                        {"name": "b", "image": "b:2"},
                        {"name": "c", "image": "c:1"}
                    ],
                    "tolerations": [{"key": "y"}]
                }
            })
        );
    }

    #[test]
    fn shared_items_take_the_applied_order() {
        let live = json!({"spec": {"containers": [{"name": "a"}, {"name": "x"}, {"name": "b"}]}});
        let config = json!({"spec": {"containers": [{"name": "b"}, {"name": "a"}]}});
        let merged = merge(&live, &config, &BuiltinListTypes).unwrap();
        let names: Vec<_> = merged["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["x", "b", "a"]);
    }

    #[test]
    fn compare_marks_containers_and_leaves() {
        let old = json!({"spec": {"replicas": 1, "containers": [{"name": "a", "image": "x"}]}});
        let new = json!({
            "metadata": {"labels": {"app": "y"}},
            "spec": {"replicas": 2, "containers": [{"name": "b", "image": "x"}]}
        });
        let cmp = compare(&old, &new, &BuiltinListTypes);
        assert_eq!(
            cmp.added.to_fields_v1(),
            json!({
                "f:metadata": {".": {}, "f:labels": {".": {}, "f:app": {}}},
                "f:spec": {"f:containers": {"k:{\"name\":\"b\"}": {".": {}, "f:image": {}, "f:name": {}}}}
            })
        );
        assert_eq!(
            cmp.modified.to_fields_v1(),
            json!({"f:spec": {"f:replicas": {}}})
        );
        assert_eq!(
            cmp.removed.to_fields_v1(),
            json!({"f:spec": {"f:containers": {"k:{\"name\":\"a\"}": {".": {}, "f:image": {}, "f:name": {}}}}})
        );
    }

    #[test]
    fn removal_collapses_emptied_maps() {
        let mut obj = json!({"metadata": {"labels": {"a": "1"}, "name": "x"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let mut remove = FieldSet::new();
        remove.insert(&[
            PathElement::field("metadata"),
            PathElement::field("labels"),
            PathElement::field("a"),
        ]);
        remove.insert(&[
            PathElement::field("spec"),
            PathElement::field("containers"),
            PathElement::key(vec![("name".into(), json!("a"))]),
        ]);
        remove_fields(&mut obj, &remove, &FieldSet::new(), &BuiltinListTypes);
        assert_eq!(
            obj,
            json!({"metadata": {"name": "x"}, "spec": {"containers": [{"name": "b"}]}})
        );
    }
}
