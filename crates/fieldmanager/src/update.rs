//! Ownership tracking for non-apply writes (create, update, and JSON, merge or
//! strategic-merge patches): the writer takes the fields it changed, as
//! structured-merge-diff's `Updater.Update` and the apiserver's
//! `managedFieldsUpdater` do. Nothing here rejects a write; an update never
//! conflicts.

use serde_json::{Map, Value};

use crate::apply::before_first_apply;
use crate::fieldset::{stripped_fields, FieldSet};
use crate::managed::{
    cap_update_managers, drop_empty, has_managed_fields, now, read_managed_fields,
    strip_managed_fields, write_managed_fields, ManagedFieldsEntry, Operation, MAX_UPDATE_MANAGERS,
};
use crate::merge::compare;
use crate::schema::ListTypes;

/// Records a non-apply write of `new` (over `old`, `None` for a create) by
/// `manager`: the fields that changed become owned by (`manager`, Update,
/// `api_version`, `subresource`) and stop being owned by every other manager;
/// removed fields stop being owned by anyone. Returns `new` with
/// `metadata.managedFields` set.
///
/// As upstream: managedFields the client sent with a main-resource write
/// replace the stored ones (`[{}]` resets them); when `old` has none, its
/// fields are first attributed to `before-first-apply`; more than ten Update
/// entries are folded into `ancient-changes`.
pub fn update(
    old: Option<&Value>,
    new: &Value,
    manager: &str,
    subresource: &str,
    api_version: &str,
    schema: &dyn ListTypes,
) -> Value {
    update_with_reset(
        old,
        new,
        manager,
        subresource,
        api_version,
        schema,
        &FieldSet::new(),
    )
}

/// [`update`] for an endpoint with reset fields (see
/// [`crate::apply_with_reset`]): changes under `reset` (which the API server's
/// strategy has already undone) move no ownership.
pub fn update_with_reset(
    old: Option<&Value>,
    new: &Value,
    manager: &str,
    subresource: &str,
    api_version: &str,
    schema: &dyn ListTypes,
    reset: &FieldSet,
) -> Value {
    let client_supplied = subresource.is_empty() && has_managed_fields(new);
    let mut entries = if client_supplied {
        read_managed_fields(new)
    } else {
        old.map(read_managed_fields).unwrap_or_default()
    };
    drop_empty(&mut entries);

    let mut new_obj = new.clone();
    strip_managed_fields(&mut new_obj);
    let mut old_obj = old.cloned().unwrap_or_else(|| Value::Object(Map::new()));
    strip_managed_fields(&mut old_obj);
    if old.is_some_and(|o| !has_managed_fields(o)) && !client_supplied {
        entries.extend(before_first_apply(
            &old_obj,
            api_version,
            subresource,
            schema,
        ));
    }

    let comparison = compare(&old_obj, &new_obj, schema).without(reset);
    let changed = comparison.changed();
    let mine = entries
        .iter()
        .position(|e| e.is_for(manager, Operation::Update, api_version, subresource));
    for (i, entry) in entries.iter_mut().enumerate() {
        entry.fields = entry.fields.difference(&comparison.removed);
        if Some(i) != mine {
            entry.fields = entry.fields.difference(&changed);
        }
    }
    let taken = changed.difference(&stripped_fields());
    if !taken.is_empty() {
        match mine {
            Some(i) => {
                entries[i].fields = entries[i].fields.union(&taken);
                entries[i].time = Some(now());
            }
            None => entries.push(ManagedFieldsEntry::new(
                manager,
                Operation::Update,
                api_version,
                subresource,
                taken,
            )),
        }
    }
    drop_empty(&mut entries);
    cap_update_managers(&mut entries, MAX_UPDATE_MANAGERS);
    write_managed_fields(&mut new_obj, &entries);
    new_obj
}
