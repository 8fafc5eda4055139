//! Jobs get a selector generated from their uid on create (unless `manualSelector`), with
//! matching labels on the pod template, as upstream's Job strategy does.

use serde_json::{json, Value};

use crate::object;

const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
const JOB_NAME: &str = "batch.kubernetes.io/job-name";

pub fn generate_selector(obj: &mut Value) {
    if obj.pointer("/spec/manualSelector") == Some(&json!(true)) {
        return;
    }
    let uid = object::meta_str(obj, "uid").unwrap_or_default().to_string();
    let name = object::name(obj).unwrap_or_default().to_string();
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let template = spec.entry("template").or_insert_with(|| json!({}));
    if !template.get("metadata").is_some_and(Value::is_object) {
        template["metadata"] = json!({});
    }
    let meta = &mut template["metadata"];
    if !meta.get("labels").is_some_and(Value::is_object) {
        meta["labels"] = json!({});
    }
    let labels = meta["labels"]
        .as_object_mut()
        .expect("made an object above");
    for (key, value) in [
        ("controller-uid", &uid),
        (CONTROLLER_UID, &uid),
        ("job-name", &name),
        (JOB_NAME, &name),
    ] {
        labels.entry(key).or_insert_with(|| json!(value));
    }
    let selector = spec.entry("selector").or_insert_with(|| json!({}));
    if !selector.get("matchLabels").is_some_and(Value::is_object) {
        selector["matchLabels"] = json!({});
    }
    selector["matchLabels"]
        .as_object_mut()
        .expect("made an object above")
        .entry(CONTROLLER_UID)
        .or_insert_with(|| json!(uid));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_follows_uid() {
        let mut job =
            json!({"metadata": {"name": "pi", "uid": "u-1"}, "spec": {"template": {"spec": {}}}});
        generate_selector(&mut job);
        assert_eq!(
            job["spec"]["selector"]["matchLabels"][CONTROLLER_UID],
            "u-1"
        );
        assert_eq!(
            job["spec"]["template"]["metadata"]["labels"][JOB_NAME],
            "pi"
        );
        let mut manual =
            json!({"spec": {"manualSelector": true, "selector": {"matchLabels": {"a": "b"}}}});
        generate_selector(&mut manual);
        assert_eq!(
            manual["spec"]["selector"],
            json!({"matchLabels": {"a": "b"}})
        );
    }
}
