//! Reading a CustomResourceDefinition object: its names (with the defaults upstream fills in),
//! its versions, and what the API server serves for each version ([`ResourceDef`]s and
//! [`VersionInfo`]). Nothing here validates; see `validation.rs`.

use crate::columns::PrinterColumn;
use crate::schema::Schema;
use k3rs_core::resource::{ResourceDef, Scope, ALL_VERBS};
use serde_json::{json, Value};

/// `spec.names` with `singular` and `listKind` defaulted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(next) => cur = next,
            None => return "",
        }
    }
    cur.as_str().unwrap_or("")
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

impl Names {
    /// Read a `names` object (`spec.names` or `status.acceptedNames`), defaulting
    /// `singular` to the lowercased kind and `listKind` to `<kind>List`.
    pub fn from_value(names: &Value) -> Names {
        let kind = str_at(names, &["kind"]).to_string();
        let mut singular = str_at(names, &["singular"]).to_string();
        if singular.is_empty() {
            singular = kind.to_lowercase();
        }
        let mut list_kind = str_at(names, &["listKind"]).to_string();
        if list_kind.is_empty() && !kind.is_empty() {
            list_kind = format!("{kind}List");
        }
        Names {
            plural: str_at(names, &["plural"]).to_string(),
            singular,
            kind,
            list_kind,
            short_names: strings(names.get("shortNames")),
            categories: strings(names.get("categories")),
        }
    }

    /// The names as a `CustomResourceDefinitionNames` object.
    pub fn to_value(&self) -> Value {
        let mut v = json!({
            "plural": self.plural,
            "singular": self.singular,
            "kind": self.kind,
            "listKind": self.list_kind,
        });
        if !self.short_names.is_empty() {
            v["shortNames"] = json!(self.short_names);
        }
        if !self.categories.is_empty() {
            v["categories"] = json!(self.categories);
        }
        v
    }
}

/// `spec.names` of a CRD, defaulted.
pub fn spec_names(crd: &Value) -> Names {
    Names::from_value(crd.pointer("/spec/names").unwrap_or(&Value::Null))
}

/// `spec.group` of a CRD.
pub fn group(crd: &Value) -> &str {
    str_at(crd, &["spec", "group"])
}

/// `spec.versions` of a CRD (empty when absent).
pub fn versions(crd: &Value) -> &[Value] {
    crd.pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The name of the version with `storage: true`, if exactly one is marked.
pub fn storage_version(crd: &Value) -> Option<&str> {
    let mut stored = versions(crd)
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true));
    let first = stored.next()?;
    if stored.next().is_some() {
        return None;
    }
    first.get("name").and_then(Value::as_str)
}

/// Fill in what the API server defaults on a v1 CRD: `spec.names.singular`,
/// `spec.names.listKind` and `spec.conversion.strategy: None`.
pub fn apply_crd_defaults(crd: &mut Value) {
    let names = spec_names(crd);
    if let Some(n) = crd
        .pointer_mut("/spec/names")
        .and_then(Value::as_object_mut)
    {
        if !names.singular.is_empty() {
            n.entry("singular")
                .or_insert_with(|| Value::String(names.singular.clone()));
        }
        if !names.list_kind.is_empty() {
            n.entry("listKind")
                .or_insert_with(|| Value::String(names.list_kind.clone()));
        }
    }
    if let Some(spec) = crd.get_mut("spec").and_then(Value::as_object_mut) {
        let conversion = spec.entry("conversion").or_insert_with(|| json!({}));
        if let Some(c) = conversion.as_object_mut() {
            c.entry("strategy")
                .or_insert_with(|| Value::String("None".to_string()));
        }
    }
}

/// Where the `/scale` subresource reads and writes replicas (JSONPaths such as
/// `.spec.replicas`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

/// The fields of a simple dot path (`.spec.replicas` -> `["spec", "replicas"]`).
fn dot_fields(path: &str) -> Vec<&str> {
    path.trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
        .collect()
}

fn get_dot<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    dot_fields(path)
        .into_iter()
        .try_fold(obj, |cur, field| cur.get(field))
}

impl ScalePaths {
    /// Desired replicas at `specReplicasPath` (`None` when unset or not an integer).
    pub fn read_spec_replicas(&self, obj: &Value) -> Option<i64> {
        get_dot(obj, &self.spec_replicas).and_then(Value::as_i64)
    }

    /// Observed replicas at `statusReplicasPath` (0 when unset, as upstream).
    pub fn read_status_replicas(&self, obj: &Value) -> i64 {
        get_dot(obj, &self.status_replicas)
            .and_then(Value::as_i64)
            .unwrap_or(0)
    }

    /// The serialized label selector at `labelSelectorPath`, if any.
    pub fn read_label_selector(&self, obj: &Value) -> Option<String> {
        let path = self.label_selector.as_deref()?;
        get_dot(obj, path)
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// Write `replicas` at `specReplicasPath`, creating missing objects on the way.
    /// Returns false when the path crosses a non-object value.
    pub fn write_spec_replicas(&self, obj: &mut Value, replicas: i64) -> bool {
        let fields = dot_fields(&self.spec_replicas);
        let Some((last, parents)) = fields.split_last() else {
            return false;
        };
        let mut cur = obj;
        for field in parents {
            let Some(map) = cur.as_object_mut() else {
                return false;
            };
            cur = map.entry(field.to_string()).or_insert_with(|| json!({}));
        }
        match cur.as_object_mut() {
            Some(map) => {
                map.insert(last.to_string(), Value::from(replicas));
                true
            }
            None => false,
        }
    }

    fn from_value(scale: &Value) -> ScalePaths {
        ScalePaths {
            spec_replicas: str_at(scale, &["specReplicasPath"]).to_string(),
            status_replicas: str_at(scale, &["statusReplicasPath"]).to_string(),
            label_selector: scale
                .get("labelSelectorPath")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        }
    }
}

/// What the API server needs to serve one version of a CRD.
#[derive(Clone, Debug)]
pub struct VersionInfo {
    /// Compiled `schema.openAPIV3Schema` (accepts anything when the version has none).
    pub schema: Schema,
    /// Declared `additionalPrinterColumns` (see [`crate::table_columns`] for the defaults).
    pub printer_columns: Vec<PrinterColumn>,
    /// `subresources.scale`, when the version has a scale subresource.
    pub scale: Option<ScalePaths>,
    /// Whether this is the storage version.
    pub storage: bool,
    /// Whether this version is served.
    pub served: bool,
    /// Whether this version has a status subresource.
    pub has_status: bool,
}

fn find_version<'a>(crd: &'a Value, version: &str) -> Option<&'a Value> {
    versions(crd)
        .iter()
        .find(|v| v.get("name").and_then(Value::as_str) == Some(version))
}

/// The schema, printer columns and scale paths of `version`, or `None` when the CRD does
/// not define that version. Unserved versions are returned too (`served: false`), so the
/// storage version's schema is available even when it is not served.
pub fn version_info(crd: &Value, version: &str) -> Option<VersionInfo> {
    let v = find_version(crd, version)?;
    let schema = match v.pointer("/schema/openAPIV3Schema") {
        Some(s) if s.is_object() => Schema::compile(s),
        _ => Schema::preserve_unknown(),
    };
    let printer_columns = v
        .get("additionalPrinterColumns")
        .and_then(Value::as_array)
        .map(|cols| cols.iter().map(PrinterColumn::from_value).collect())
        .unwrap_or_default();
    let scale = v
        .pointer("/subresources/scale")
        .filter(|s| s.is_object())
        .map(ScalePaths::from_value);
    Some(VersionInfo {
        schema,
        printer_columns,
        scale,
        storage: v.get("storage").and_then(Value::as_bool) == Some(true),
        served: v.get("served").and_then(Value::as_bool) == Some(true),
        has_status: v
            .pointer("/subresources/status")
            .is_some_and(|s| !s.is_null()),
    })
}

/// One [`ResourceDef`] per served version, in `spec.versions` order.
pub fn resource_defs(crd: &Value) -> Vec<ResourceDef> {
    let names = spec_names(crd);
    let group = group(crd).to_string();
    let scope = match str_at(crd, &["spec", "scope"]) {
        "Cluster" => Scope::Cluster,
        _ => Scope::Namespaced,
    };
    versions(crd)
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool) == Some(true))
        .filter_map(|v| {
            let name = v.get("name").and_then(Value::as_str)?;
            Some(ResourceDef {
                group: group.clone(),
                version: name.to_string(),
                kind: names.kind.clone(),
                plural: names.plural.clone(),
                singular: names.singular.clone(),
                scope,
                verbs: ALL_VERBS.iter().map(|s| s.to_string()).collect(),
                short_names: names.short_names.clone(),
                categories: names.categories.clone(),
                has_status: v
                    .pointer("/subresources/status")
                    .is_some_and(|s| !s.is_null()),
                has_scale: v
                    .pointer("/subresources/scale")
                    .is_some_and(|s| !s.is_null()),
                storage_group: group.clone(),
            })
        })
        .collect()
}
