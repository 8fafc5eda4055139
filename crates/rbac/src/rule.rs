//! One RBAC `PolicyRule` and whether it allows a request, exactly as upstream's
//! `rbac.RuleAllows` and the `*Matches` helpers in `pkg/apis/rbac/v1/evaluation_helpers.go`.
//!
//! Matching is case-sensitive and has only these wildcards: `*` as a whole verb, API group,
//! resource or non-resource URL; `*/<subresource>` for that subresource of any resource;
//! and a trailing `*` on a non-resource URL as a prefix match. Like upstream, `pods/*` is
//! not a wildcard: it matches only the literal resource `pods/*`, never `pods/log`.

use serde_json::{Map, Value};

use crate::attributes::Attributes;

/// A parsed `PolicyRule`. Missing, `null` or malformed fields are empty lists, so a rule
/// `{"verbs": ["get"], "resourceNames": []}` equals one without `resourceNames` (as
/// upstream's semantic equality treats nil and empty slices).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Rule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

impl Rule {
    /// Parses a `PolicyRule` JSON object. Non-string list items are skipped.
    pub fn from_json(v: &Value) -> Rule {
        let list = |key: &str| -> Vec<String> {
            v.get(key)
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        Rule {
            verbs: list("verbs"),
            api_groups: list("apiGroups"),
            resources: list("resources"),
            resource_names: list("resourceNames"),
            non_resource_urls: list("nonResourceURLs"),
        }
    }

    /// Parses the `rules` list of a Role or ClusterRole object.
    pub fn list_from_role(role: &Value) -> Vec<Rule> {
        role.get("rules")
            .and_then(Value::as_array)
            .map(|rules| rules.iter().map(Rule::from_json).collect())
            .unwrap_or_default()
    }

    /// The rule in Kubernetes JSON, fields in upstream's order (`verbs`, `apiGroups`,
    /// `resources`, `resourceNames`, `nonResourceURLs`); empty lists other than `verbs` are
    /// omitted, as upstream's `omitempty` does.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        let strings = |items: &[String]| Value::from(items.to_vec());
        out.insert("verbs".into(), strings(&self.verbs));
        for (key, items) in [
            ("apiGroups", &self.api_groups),
            ("resources", &self.resources),
            ("resourceNames", &self.resource_names),
            ("nonResourceURLs", &self.non_resource_urls),
        ] {
            if !items.is_empty() {
                out.insert(key.into(), strings(items));
            }
        }
        Value::Object(out)
    }

    /// Whether this rule allows the request (upstream `RuleAllows`).
    pub fn allows(&self, a: &Attributes) -> bool {
        if !self.verb_matches(a.verb) {
            return false;
        }
        if a.resource_request {
            self.api_group_matches(a.api_group)
                && self.resource_matches(a.resource, a.subresource)
                && self.resource_name_matches(a.name)
        } else {
            self.non_resource_url_matches(a.path)
        }
    }

    /// `*` or the exact verb.
    pub fn verb_matches(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == "*" || v == verb)
    }

    /// `*` or the exact API group (`""` is the core group).
    pub fn api_group_matches(&self, group: &str) -> bool {
        self.api_groups.iter().any(|g| g == "*" || g == group)
    }

    /// `*`, the exact `resource` or `resource/subresource`, or `*/subresource`.
    pub fn resource_matches(&self, resource: &str, subresource: &str) -> bool {
        self.resources.iter().any(|r| {
            if r == "*" {
                return true;
            }
            if subresource.is_empty() {
                return r == resource;
            }
            // `resource/subresource` exactly, without building the combined string.
            let combined = r.len() == resource.len() + 1 + subresource.len()
                && r.starts_with(resource)
                && r.as_bytes()[resource.len()] == b'/'
                && r.ends_with(subresource);
            combined
                || (r.len() == subresource.len() + 2
                    && r.starts_with("*/")
                    && r.ends_with(subresource))
        })
    }

    /// Empty `resourceNames` allows any name (and none); otherwise the request must name one
    /// of them, so `create`, `list`, `watch` and `deletecollection` without a name never match.
    pub fn resource_name_matches(&self, name: &str) -> bool {
        self.resource_names.is_empty() || self.resource_names.iter().any(|n| n == name)
    }

    /// `*`, the exact path, or a prefix match for a rule URL ending in `*`.
    pub fn non_resource_url_matches(&self, path: &str) -> bool {
        self.non_resource_urls.iter().any(|u| {
            if u == "*" || u == path {
                return true;
            }
            u.ends_with('*') && path.starts_with(u.trim_end_matches('*'))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(v: Value) -> Rule {
        Rule::from_json(&v)
    }

    fn res<'a>(verb: &'a str, group: &'a str, resource: &'a str, name: &'a str) -> Attributes<'a> {
        Attributes::resource("u", &[], verb, group, resource, "ns", name)
    }

    #[test]
    fn verbs_groups_resources() {
        let r = rule(
            json!({"verbs": ["get", "list"], "apiGroups": ["", "apps"], "resources": ["pods", "deployments"]}),
        );
        assert!(r.allows(&res("get", "", "pods", "p")));
        assert!(r.allows(&res("list", "apps", "deployments", "")));
        assert!(!r.allows(&res("delete", "", "pods", "p")));
        assert!(!r.allows(&res("get", "batch", "pods", "p")));
        assert!(!r.allows(&res("get", "", "services", "s")));
        // A resource rule never matches a non-resource request, and vice versa.
        assert!(!r.allows(&Attributes::non_resource("u", &[], "get", "pods")));
        let url = rule(json!({"verbs": ["get"], "nonResourceURLs": ["*"]}));
        assert!(!url.allows(&res("get", "", "pods", "")));

        let all = rule(json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}));
        assert!(all.allows(&res(
            "escalate",
            "rbac.authorization.k8s.io",
            "clusterroles",
            ""
        )));
        assert!(all.allows(&res("get", "", "pods/log", "p")));
        // Matching is case-sensitive.
        assert!(!r.allows(&res("GET", "", "pods", "p")));
    }

    #[test]
    fn subresources_and_wildcards() {
        let pods = rule(json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}));
        assert!(!pods.allows(&res("get", "", "pods/log", "p")));
        let log = rule(json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]}));
        assert!(log.allows(&res("get", "", "pods/log", "p")));
        assert!(!log.allows(&res("get", "", "pods", "p")));
        assert!(!log.allows(&res("get", "", "pods/exec", "p")));
        assert!(!log.allows(&res("get", "", "nodes/log", "n")));

        let scale = rule(json!({"verbs": ["get"], "apiGroups": ["*"], "resources": ["*/scale"]}));
        assert!(scale.allows(&res("get", "apps", "deployments/scale", "d")));
        assert!(scale.allows(&res("get", "", "replicationcontrollers/scale", "r")));
        assert!(!scale.allows(&res("get", "apps", "deployments", "d")));
        assert!(!scale.allows(&res("get", "apps", "deployments/status", "d")));

        // Upstream has no `resource/*` wildcard: `pods/*` is a literal.
        let pods_any = rule(json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods/*"]}));
        assert!(!pods_any.allows(&res("get", "", "pods/log", "p")));
        assert!(!pods_any.allows(&res("get", "", "pods", "p")));
        // And `*/*` matches only the literal subresource `*`.
        let star_star = rule(json!({"verbs": ["get"], "apiGroups": [""], "resources": ["*/*"]}));
        assert!(!star_star.allows(&res("get", "", "pods/log", "p")));
    }

    #[test]
    fn resource_names() {
        let r = rule(json!({
            "verbs": ["get", "update", "list", "watch", "create", "delete", "deletecollection"],
            "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["app-config"]
        }));
        assert!(r.allows(&res("get", "", "configmaps", "app-config")));
        assert!(r.allows(&res("update", "", "configmaps", "app-config")));
        assert!(!r.allows(&res("get", "", "configmaps", "other")));
        // Requests without a name cannot be restricted by name.
        assert!(!r.allows(&res("create", "", "configmaps", "")));
        assert!(!r.allows(&res("list", "", "configmaps", "")));
        assert!(!r.allows(&res("watch", "", "configmaps", "")));
        assert!(!r.allows(&res("deletecollection", "", "configmaps", "")));
        // ... unless the API server derived one (e.g. a metadata.name field selector).
        assert!(r.allows(&res("watch", "", "configmaps", "app-config")));
        // An empty list allows every name.
        let any = rule(
            json!({"verbs": ["create"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": []}),
        );
        assert!(any.allows(&res("create", "", "configmaps", "")));
    }

    #[test]
    fn non_resource_urls() {
        let r = rule(
            json!({"verbs": ["get"], "nonResourceURLs": ["/version", "/apis/*", "/healthz**"]}),
        );
        let get = |path| Attributes::non_resource("u", &[], "get", path);
        assert!(r.allows(&get("/version")));
        assert!(!r.allows(&get("/version/")));
        assert!(r.allows(&get("/apis/apps/v1")));
        assert!(r.allows(&get("/apis/")));
        assert!(!r.allows(&get("/apis")));
        assert!(r.allows(&get("/healthz/etcd")));
        assert!(!r.allows(&Attributes::non_resource("u", &[], "post", "/version")));
        let all = rule(json!({"verbs": ["*"], "nonResourceURLs": ["*"]}));
        assert!(all.allows(&Attributes::non_resource("u", &[], "put", "/anything")));
    }

    #[test]
    fn json_round_trip_and_equality() {
        let r = rule(
            json!({"resourceNames": [], "apiGroups": [""], "verbs": ["get"], "resources": ["pods"], "nonResourceURLs": null}),
        );
        assert_eq!(
            serde_json::to_string(&r.to_json()).unwrap(),
            r#"{"verbs":["get"],"apiGroups":[""],"resources":["pods"]}"#
        );
        assert_eq!(
            r,
            rule(json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}))
        );
        assert_eq!(Rule::from_json(&json!("garbage")), Rule::default());
        assert_eq!(Rule::default().to_json(), json!({"verbs": []}));
    }
}
