//! Discovery documents (`/api`, `/apis`, `/apis/<group>`, and each group-version's
//! `APIResourceList`) computed from the resource table, plus `/version`.

use std::collections::BTreeMap;

use std::sync::Arc;

use k3rs_core::ResourceDef;
use serde_json::{json, Value};

/// The Kubernetes release whose API k3rs serves. kubectl's version dispatcher picks the
/// client matching this minor version.
pub const KUBE_MAJOR: &str = "1";
pub const KUBE_MINOR: &str = "33";
pub const KUBE_GIT_VERSION: &str = k3rs_core::KUBE_GIT_VERSION;

pub fn version() -> Value {
    json!({
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "gitVersion": KUBE_GIT_VERSION,
        "gitCommit": env!("CARGO_PKG_VERSION"),
        "gitTreeState": "clean",
        "buildDate": "2026-11-24T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("linux/{}", go_arch()),
    })
}

/// Architecture names as Go spells them, which is what clients expect in `platform`.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        other => other,
    }
}

/// `/api`: the legacy core group's versions.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// Named groups with their versions, in first-seen order of the resource table.
fn groups(resources: &[Arc<ResourceDef>]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for def in resources.iter().filter(|d| !d.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == def.group) {
            Some((_, versions)) if !versions.contains(&def.version) => {
                versions.push(def.version.clone())
            }
            Some(_) => {}
            None => out.push((def.group.clone(), vec![def.version.clone()])),
        }
    }
    out
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({"name": name, "versions": versions.clone(), "preferredVersion": versions[0].clone()})
}

/// `/apis`.
pub fn group_list(resources: &[Arc<ResourceDef>]) -> Value {
    let groups: Vec<Value> = groups(resources)
        .iter()
        .map(|(name, versions)| group_json(name, versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`.
pub fn group(resources: &[Arc<ResourceDef>], name: &str) -> Option<Value> {
    let (_, versions) = groups(resources).into_iter().find(|(g, _)| g == name)?;
    let mut doc = group_json(name, &versions);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

/// `/api/v1` or `/apis/<group>/<version>`; `None` if nothing is served there.
pub fn resource_list(resources: &[Arc<ResourceDef>], group: &str, version: &str) -> Option<Value> {
    let defs: Vec<&Arc<ResourceDef>> = resources
        .iter()
        .filter(|d| d.group == group && d.version == version)
        .collect();
    if defs.is_empty() {
        return None;
    }
    let mut entries = Vec::new();
    for def in defs {
        let mut entry = json!({
            "name": def.plural,
            "singularName": def.singular,
            "namespaced": def.namespaced(),
            "kind": def.kind,
            "verbs": def.verbs,
            "storageVersionHash": storage_version_hash(def),
        });
        if !def.short_names.is_empty() {
            entry["shortNames"] = json!(def.short_names);
        }
        if !def.categories.is_empty() {
            entry["categories"] = json!(def.categories);
        }
        entries.push(entry);
        if def.group.is_empty() && def.plural == "serviceaccounts" {
            entries.push(json!({
                "name": "serviceaccounts/token",
                "singularName": "",
                "namespaced": true,
                "group": "authentication.k8s.io",
                "version": "v1",
                "kind": "TokenRequest",
                "verbs": ["create"],
            }));
        }
        if def.group.is_empty() && def.plural == "pods" {
            for (name, group, kind, verbs) in [
                (
                    "pods/attach",
                    "",
                    "PodAttachOptions",
                    &["create", "get"][..],
                ),
                ("pods/binding", "", "Binding", &["create"][..]),
                ("pods/eviction", "policy", "Eviction", &["create"][..]),
                ("pods/exec", "", "PodExecOptions", &["create", "get"][..]),
                ("pods/log", "", "Pod", &["get"][..]),
                (
                    "pods/portforward",
                    "",
                    "PodPortForwardOptions",
                    &["create", "get"][..],
                ),
            ] {
                entries.push(json!({
                    "name": name, "singularName": "", "namespaced": true,
                    "group": group, "version": "v1", "kind": kind, "verbs": verbs,
                }));
            }
        }
        if def.has_scale {
            entries.push(crate::handlers::scale::discovery_entry(def));
        }
        if def.has_status {
            entries.push(json!({
                "name": format!("{}/status", def.plural),
                "singularName": "",
                "namespaced": def.namespaced(),
                "kind": def.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": entries,
    }))
}

/// A short stable hash of group/version/kind, like upstream's `storageVersionHash`.
fn storage_version_hash(def: &ResourceDef) -> String {
    use base64::Engine;
    let mut h: u64 = 0xcbf29ce484222325;
    for b in format!("{}/{}/{}", def.storage_group, def.version, def.kind).bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    base64::engine::general_purpose::STANDARD.encode(h.to_be_bytes())[..11].to_string()
}

/// Every served group-version path (`api/v1`, `apis/apps/v1`, ...), for OpenAPI v3.
pub fn group_version_paths(resources: &[Arc<ResourceDef>]) -> BTreeMap<String, (String, String)> {
    resources
        .iter()
        .map(|d| {
            let path = if d.group.is_empty() {
                format!("api/{}", d.version)
            } else {
                format!("apis/{}/{}", d.group, d.version)
            };
            (path, (d.group.clone(), d.version.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_resource_list_has_pods_and_status() {
        let list =
            resource_list(&crate::registry::Registry::builtin().snapshot(), "", "v1").unwrap();
        let names: Vec<&str> = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"pods") && names.contains(&"pods/status"));
        assert!(!names.contains(&"configmaps/status"));
        let pods = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "pods")
            .unwrap();
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
    }

    #[test]
    fn groups_are_listed_once() {
        let list = group_list(&crate::registry::Registry::builtin().snapshot());
        let names: Vec<&str> = list["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap())
            .collect();
        assert_eq!(names.iter().filter(|n| **n == "apps").count(), 1);
        assert!(names.contains(&"events.k8s.io"));
        assert!(group(&crate::registry::Registry::builtin().snapshot(), "nope").is_none());
    }
}
