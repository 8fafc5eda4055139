//! Parsing of resource URLs (`/api/v1/namespaces/ns/pods/name/status`,
//! `/apis/apps/v1/deployments`, the legacy `/watch/` prefix) into their parts.

/// The parts of a resource request path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub plural: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// The path used the deprecated `/watch/` form.
    pub legacy_watch: bool,
}

/// Split a request path; `None` when it is not a resource path at all.
pub fn parse(path: &str) -> Option<ResourcePath> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => (String::new(), version.to_string(), rest),
        ["apis", group, version, rest @ ..] => (group.to_string(), version.to_string(), rest),
        _ => return None,
    };
    let (legacy_watch, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    if rest.iter().any(|s| s.is_empty()) {
        return None;
    }
    let mut parsed = ResourcePath {
        group,
        version,
        namespace: None,
        plural: String::new(),
        name: None,
        subresource: None,
        legacy_watch,
    };
    match rest {
        // `namespaces/{ns}/{plural}...` addresses namespaced objects, except that
        // `namespaces/{name}/status|finalize` is a subresource of the namespace itself.
        ["namespaces", ns, sub] if *sub == "status" || *sub == "finalize" => {
            parsed.plural = "namespaces".into();
            parsed.name = Some(ns.to_string());
            parsed.subresource = Some(sub.to_string());
        }
        ["namespaces", ns, plural, tail @ ..] => {
            parsed.namespace = Some(ns.to_string());
            parsed.plural = plural.to_string();
            match tail {
                [] => {}
                [name] => parsed.name = Some(name.to_string()),
                [name, sub] => {
                    parsed.name = Some(name.to_string());
                    parsed.subresource = Some(sub.to_string());
                }
                _ => return None,
            }
        }
        [plural] => parsed.plural = plural.to_string(),
        [plural, name] => {
            parsed.plural = plural.to_string();
            parsed.name = Some(name.to_string());
        }
        [plural, name, sub] => {
            parsed.plural = plural.to_string();
            parsed.name = Some(name.to_string());
            parsed.subresource = Some(sub.to_string());
        }
        _ => return None,
    }
    Some(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(path: &str) -> ResourcePath {
        parse(path).unwrap()
    }

    #[test]
    fn core_and_group_paths() {
        let r = p("/api/v1/namespaces/default/pods/web/status");
        assert_eq!(r.group, "");
        assert_eq!(r.namespace.as_deref(), Some("default"));
        assert_eq!(r.plural, "pods");
        assert_eq!(r.name.as_deref(), Some("web"));
        assert_eq!(r.subresource.as_deref(), Some("status"));

        let r = p("/apis/apps/v1/deployments");
        assert_eq!(
            (r.group.as_str(), r.plural.as_str()),
            ("apps", "deployments")
        );
        assert!(r.namespace.is_none() && r.name.is_none());
    }

    #[test]
    fn namespaces_themselves() {
        let r = p("/api/v1/namespaces");
        assert_eq!(r.plural, "namespaces");
        let r = p("/api/v1/namespaces/kube-system");
        assert_eq!(r.plural, "namespaces");
        assert_eq!(r.name.as_deref(), Some("kube-system"));
        let r = p("/api/v1/namespaces/kube-system/finalize");
        assert_eq!(r.subresource.as_deref(), Some("finalize"));
        assert!(r.namespace.is_none());
    }

    #[test]
    fn legacy_watch_and_rejects() {
        let r = p("/api/v1/watch/namespaces/default/configmaps");
        assert!(r.legacy_watch);
        assert_eq!(r.plural, "configmaps");
        assert!(parse("/healthz").is_none());
        assert!(parse("/api/v1/namespaces/a/pods/b/c/d").is_none());
        assert!(parse("/api/v1/pods//x").is_none());
    }
}
