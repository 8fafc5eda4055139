//! The table of API resources the server knows, driving routing, discovery, storage keys,
//! OpenAPI and Tables alike. Built-in kinds are listed once here; custom resources (a later
//! issue) produce the same [`ResourceDef`] at run time.

use std::sync::OnceLock;

/// Whether objects of a resource live in a namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Namespaced,
    Cluster,
}

/// One resource of one group-version, with everything discovery reports about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceDef {
    /// API group; empty for the legacy core group served under `/api/v1`.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub scope: Scope,
    pub verbs: Vec<String>,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Has a `/status` subresource whose writes touch only `.status`.
    pub has_status: bool,
    /// Has a `/scale` subresource (autoscaling/v1 Scale).
    pub has_scale: bool,
    /// Group whose storage this resource shares: `events.k8s.io/v1` events are the core
    /// events under another version, so both read the same keys.
    pub storage_group: String,
}

/// The verbs of a resource served with every operation (built-ins and custom resources).
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl ResourceDef {
    /// `group/version`, or just `version` for the core group: the `apiVersion` of objects.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn namespaced(&self) -> bool {
        self.scope == Scope::Namespaced
    }

    /// The `kind` of the list type, e.g. `PodList`.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// Storage prefix shared by every object of this resource, ending in `/`.
    /// Keys are `/registry/<group or core>/<plural>/<namespace>/<name>` (cluster-scoped
    /// objects leave out the namespace), so a prefix scan lists one namespace or all.
    pub fn key_prefix(&self) -> String {
        let group = if self.storage_group.is_empty() {
            "core"
        } else {
            &self.storage_group
        };
        format!("/registry/{}/{}/", group, self.plural)
    }

    /// Storage key of one object (`namespace` is ignored for cluster-scoped resources).
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match (self.scope, namespace) {
            (Scope::Namespaced, Some(ns)) => format!("{}{}/{}", self.key_prefix(), ns, name),
            _ => format!("{}{}", self.key_prefix(), name),
        }
    }

    /// Prefix for a list: one namespace, or every object of the resource.
    pub fn list_prefix(&self, namespace: Option<&str>) -> String {
        match (self.scope, namespace) {
            (Scope::Namespaced, Some(ns)) => format!("{}{}/", self.key_prefix(), ns),
            _ => self.key_prefix(),
        }
    }
}

/// Builder used only to keep the built-in table below readable.
struct Def(ResourceDef);

impl Def {
    fn new(group: &str, version: &str, kind: &str, plural: &str, scope: Scope) -> Self {
        Def(ResourceDef {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
            plural: plural.to_string(),
            singular: kind.to_lowercase(),
            scope,
            verbs: ALL_VERBS.iter().map(|v| v.to_string()).collect(),
            short_names: Vec::new(),
            categories: Vec::new(),
            has_status: false,
            has_scale: false,
            storage_group: group.to_string(),
        })
    }
    fn short(mut self, names: &[&str]) -> Self {
        self.0.short_names = names.iter().map(|s| s.to_string()).collect();
        self
    }
    fn all(mut self) -> Self {
        self.0.categories = vec!["all".to_string()];
        self
    }
    fn status(mut self) -> Self {
        self.0.has_status = true;
        self
    }
    fn scale(mut self) -> Self {
        self.0.has_scale = true;
        self
    }
    fn verbs(mut self, verbs: &[&str]) -> Self {
        self.0.verbs = verbs.iter().map(|s| s.to_string()).collect();
        self
    }
    fn stored_in(mut self, group: &str) -> Self {
        self.0.storage_group = group.to_string();
        self
    }
}

/// Every built-in resource, in discovery order.
pub fn builtins() -> &'static [ResourceDef] {
    static TABLE: OnceLock<Vec<ResourceDef>> = OnceLock::new();
    TABLE.get_or_init(|| {
        use Scope::{Cluster, Namespaced};
        vec![
            Def::new("", "v1", "Namespace", "namespaces", Cluster)
                .short(&["ns"])
                .status()
                .verbs(&[
                    "create", "delete", "get", "list", "patch", "update", "watch",
                ]),
            Def::new("", "v1", "Pod", "pods", Namespaced)
                .short(&["po"])
                .all()
                .status(),
            Def::new("", "v1", "Service", "services", Namespaced)
                .short(&["svc"])
                .all()
                .status(),
            Def::new("", "v1", "Endpoints", "endpoints", Namespaced).short(&["ep"]),
            Def::new("", "v1", "ConfigMap", "configmaps", Namespaced).short(&["cm"]),
            Def::new("", "v1", "Secret", "secrets", Namespaced),
            Def::new("", "v1", "ServiceAccount", "serviceaccounts", Namespaced).short(&["sa"]),
            Def::new("", "v1", "Node", "nodes", Cluster)
                .short(&["no"])
                .status(),
            Def::new("", "v1", "Event", "events", Namespaced).short(&["ev"]),
            Def::new("", "v1", "LimitRange", "limitranges", Namespaced).short(&["limits"]),
            Def::new("", "v1", "ResourceQuota", "resourcequotas", Namespaced)
                .short(&["quota"])
                .status(),
            Def::new("", "v1", "PersistentVolume", "persistentvolumes", Cluster)
                .short(&["pv"])
                .status(),
            Def::new(
                "",
                "v1",
                "PersistentVolumeClaim",
                "persistentvolumeclaims",
                Namespaced,
            )
            .short(&["pvc"])
            .status(),
            Def::new("apps", "v1", "Deployment", "deployments", Namespaced)
                .short(&["deploy"])
                .all()
                .status()
                .scale(),
            Def::new("apps", "v1", "ReplicaSet", "replicasets", Namespaced)
                .short(&["rs"])
                .all()
                .status()
                .scale(),
            Def::new("apps", "v1", "DaemonSet", "daemonsets", Namespaced)
                .short(&["ds"])
                .all()
                .status(),
            Def::new("apps", "v1", "StatefulSet", "statefulsets", Namespaced)
                .short(&["sts"])
                .all()
                .status()
                .scale(),
            Def::new(
                "apps",
                "v1",
                "ControllerRevision",
                "controllerrevisions",
                Namespaced,
            ),
            Def::new("batch", "v1", "Job", "jobs", Namespaced)
                .all()
                .status(),
            Def::new("batch", "v1", "CronJob", "cronjobs", Namespaced)
                .short(&["cj"])
                .all()
                .status(),
            Def::new(
                "discovery.k8s.io",
                "v1",
                "EndpointSlice",
                "endpointslices",
                Namespaced,
            ),
            Def::new("events.k8s.io", "v1", "Event", "events", Namespaced)
                .short(&["ev"])
                .stored_in(""),
            Def::new(
                "networking.k8s.io",
                "v1",
                "Ingress",
                "ingresses",
                Namespaced,
            )
            .short(&["ing"])
            .status(),
            Def::new(
                "networking.k8s.io",
                "v1",
                "IngressClass",
                "ingressclasses",
                Cluster,
            ),
            Def::new(
                "networking.k8s.io",
                "v1",
                "NetworkPolicy",
                "networkpolicies",
                Namespaced,
            )
            .short(&["netpol"]),
            Def::new("coordination.k8s.io", "v1", "Lease", "leases", Namespaced),
            Def::new(
                "policy",
                "v1",
                "PodDisruptionBudget",
                "poddisruptionbudgets",
                Namespaced,
            )
            .short(&["pdb"])
            .status(),
            Def::new(
                "rbac.authorization.k8s.io",
                "v1",
                "Role",
                "roles",
                Namespaced,
            ),
            Def::new(
                "rbac.authorization.k8s.io",
                "v1",
                "ClusterRole",
                "clusterroles",
                Cluster,
            ),
            Def::new(
                "rbac.authorization.k8s.io",
                "v1",
                "RoleBinding",
                "rolebindings",
                Namespaced,
            ),
            Def::new(
                "rbac.authorization.k8s.io",
                "v1",
                "ClusterRoleBinding",
                "clusterrolebindings",
                Cluster,
            ),
            Def::new(
                "scheduling.k8s.io",
                "v1",
                "PriorityClass",
                "priorityclasses",
                Cluster,
            )
            .short(&["pc"]),
            Def::new(
                "storage.k8s.io",
                "v1",
                "StorageClass",
                "storageclasses",
                Cluster,
            )
            .short(&["sc"]),
            Def::new(
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinition",
                "customresourcedefinitions",
                Cluster,
            )
            .short(&["crd", "crds"])
            .status(),
        ]
        .into_iter()
        .map(|d| d.0)
        .collect()
    })
}

/// Find a built-in resource by group, version and plural.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    builtins()
        .iter()
        .find(|d| d.group == group && d.version == version && d.plural == plural)
}

/// Find a built-in resource by its `apiVersion` and `kind`, as written in an object.
pub fn find_kind(api_version: &str, kind: &str) -> Option<&'static ResourceDef> {
    builtins()
        .iter()
        .find(|d| d.kind == kind && d.api_version() == api_version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_registry_layout() {
        let pods = find("", "v1", "pods").unwrap();
        assert_eq!(
            pods.key(Some("default"), "web"),
            "/registry/core/pods/default/web"
        );
        assert_eq!(pods.list_prefix(None), "/registry/core/pods/");
        let nodes = find("", "v1", "nodes").unwrap();
        assert_eq!(nodes.key(Some("ignored"), "n1"), "/registry/core/nodes/n1");
        let deploy = find_kind("apps/v1", "Deployment").unwrap();
        assert_eq!(
            deploy.list_prefix(Some("kube-system")),
            "/registry/apps/deployments/kube-system/"
        );
    }

    #[test]
    fn both_event_apis_share_storage() {
        let core = find("", "v1", "events").unwrap();
        let events = find("events.k8s.io", "v1", "events").unwrap();
        assert_eq!(core.key_prefix(), events.key_prefix());
    }

    #[test]
    fn plurals_are_unique_per_group_version() {
        let mut seen = std::collections::HashSet::new();
        for d in builtins() {
            assert!(seen.insert((d.group.clone(), d.version.clone(), d.plural.clone())));
        }
    }
}
