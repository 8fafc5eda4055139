//! What a kubelet may touch, as upstream's Node authorizer and NodeRestriction admission
//! decide it for `system:node:<name>` in `system:nodes`, ahead of RBAC's `system:node`
//! role (which k3rs binds to that group and which alone would let every node read every
//! Secret):
//!
//! - Secrets, ConfigMaps and PersistentVolumeClaims: `get` only, and only those a pod
//!   bound to the node uses (volumes, projected sources, env, envFrom, image pull
//!   secrets, ephemeral claims); PersistentVolumes only when bound to such a claim;
//!   service account tokens only for accounts of pods bound to the node.
//! - Its own Node object and Lease only, for writes (creating a Node under another name
//!   included, checked on the body in [`admit_create`]); pod status and pod deletion only
//!   for pods bound to it; pods it creates must be mirror pods bound to it.
//!
//! Relationships are read from the store at request time (pods of one namespace, or of
//! the node for PersistentVolumes) rather than kept in a graph: the kubelet learns of its
//! pods from this same store, so there is no window in which it knows a pod the check
//! does not. Everything else is left to RBAC.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::auth::Identity;
use crate::authz::RequestAttributes;
use crate::error::ApiResult;
use crate::AppState;

pub const NODES_GROUP: &str = "system:nodes";
const NODE_USER_PREFIX: &str = "system:node:";
const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// The outcome for one request.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not a kubelet, or nothing node-specific: RBAC decides.
    Defer,
    Allow,
    Deny(String),
}

/// The node a kubelet identity speaks for.
pub fn node_of(identity: &Identity) -> Option<&str> {
    let node = identity.user.strip_prefix(NODE_USER_PREFIX)?;
    (!node.is_empty() && identity.groups.iter().any(|g| g == NODES_GROUP)).then_some(node)
}

/// Objects whose access depends on the pods bound to the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Secret,
    ConfigMap,
    Claim,
    ServiceAccount,
}

/// What a request needs, from its attributes alone.
#[derive(Debug, PartialEq, Eq)]
enum Need {
    Defer,
    Deny(String),
    /// A namespaced object a pod bound to the node must use.
    Used(Kind),
    /// A PersistentVolume bound to a claim a pod bound to the node uses.
    Volume,
    /// A pod that must be bound to the node.
    BoundPod,
}

fn classify(node: &str, a: &RequestAttributes) -> Need {
    if !a.resource_request {
        return Need::Defer;
    }
    let individual_get = |kind| match (a.verb.as_str(), a.name.is_empty()) {
        ("get", false) => kind,
        _ => Need::Deny("can only get individual resources of this type".into()),
    };
    let own = |what: &str| match a.name == node {
        true => Need::Defer,
        false => Need::Deny(format!("node '{node}' cannot modify {what} '{}'", a.name)),
    };
    let writes = matches!(a.verb.as_str(), "update" | "patch" | "delete");
    match (
        a.group.as_str(),
        a.resource.as_str(),
        a.subresource.as_str(),
    ) {
        ("", "secrets", "") => individual_get(Need::Used(Kind::Secret)),
        ("", "configmaps", "") => individual_get(Need::Used(Kind::ConfigMap)),
        ("", "persistentvolumeclaims", "") => individual_get(Need::Used(Kind::Claim)),
        ("", "persistentvolumes", "") => individual_get(Need::Volume),
        ("", "serviceaccounts", "token") if a.verb == "create" => Need::Used(Kind::ServiceAccount),
        ("", "nodes", "" | "status") if writes => own("node"),
        ("coordination.k8s.io", "leases", "")
            if a.namespace == NODE_LEASE_NAMESPACE && !a.name.is_empty() =>
        {
            own("lease")
        }
        ("", "pods", "status") if writes => Need::BoundPod,
        ("", "pods", "") if a.verb == "delete" => Need::BoundPod,
        _ => Need::Defer,
    }
}

/// Names of the objects of each kind a pod uses.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Uses {
    pub secrets: BTreeSet<String>,
    pub config_maps: BTreeSet<String>,
    pub claims: BTreeSet<String>,
    pub service_accounts: BTreeSet<String>,
}

impl Uses {
    fn contains(&self, kind: Kind, name: &str) -> bool {
        match kind {
            Kind::Secret => self.secrets.contains(name),
            Kind::ConfigMap => self.config_maps.contains(name),
            Kind::Claim => self.claims.contains(name),
            Kind::ServiceAccount => self.service_accounts.contains(name),
        }
    }
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

fn array<'a>(value: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    value
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// Every Secret, ConfigMap, claim and service account `pod` uses.
pub fn uses(pod: &Value) -> Uses {
    let mut out = Uses::default();
    let spec = &pod["spec"];
    let add = |set: &mut BTreeSet<String>, name: Option<&str>| {
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            set.insert(name.to_string());
        }
    };
    add(
        &mut out.service_accounts,
        Some(str_at(spec, "/serviceAccountName").unwrap_or("default")),
    );
    for secret in array(spec, "imagePullSecrets") {
        add(&mut out.secrets, str_at(secret, "/name"));
    }
    let pod_name = str_at(pod, "/metadata/name").unwrap_or_default();
    for volume in array(spec, "volumes") {
        add(&mut out.secrets, str_at(volume, "/secret/secretName"));
        add(&mut out.config_maps, str_at(volume, "/configMap/name"));
        add(
            &mut out.claims,
            str_at(volume, "/persistentVolumeClaim/claimName"),
        );
        if volume.get("ephemeral").is_some() {
            let name = str_at(volume, "/name").unwrap_or_default();
            out.claims.insert(format!("{pod_name}-{name}"));
        }
        for source in volume
            .pointer("/projected/sources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            add(&mut out.secrets, str_at(source, "/secret/name"));
            add(&mut out.config_maps, str_at(source, "/configMap/name"));
        }
        // Volume plugins that take credentials (csi, rbd, cephfs, iscsi, ...).
        if let Some(plugin) = volume.as_object() {
            for settings in plugin.values() {
                for key in ["secretRef", "nodePublishSecretRef", "nodeStageSecretRef"] {
                    add(
                        &mut out.secrets,
                        settings
                            .pointer(&format!("/{key}/name"))
                            .and_then(Value::as_str),
                    );
                }
            }
        }
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for container in array(spec, list) {
            for env in array(container, "env") {
                add(
                    &mut out.secrets,
                    str_at(env, "/valueFrom/secretKeyRef/name"),
                );
                add(
                    &mut out.config_maps,
                    str_at(env, "/valueFrom/configMapKeyRef/name"),
                );
            }
            for from in array(container, "envFrom") {
                add(&mut out.secrets, str_at(from, "/secretRef/name"));
                add(&mut out.config_maps, str_at(from, "/configMapRef/name"));
            }
        }
    }
    out
}

fn bound_to(pod: &Value, node: &str) -> bool {
    str_at(pod, "/spec/nodeName") == Some(node)
}

fn no_relationship(node: &str) -> Verdict {
    Verdict::Deny(format!(
        "no relationship found between node '{node}' and this object"
    ))
}

/// NodeRestriction on create, where the name is in the body: a kubelet creates only its
/// own Node, and only mirror pods bound to itself.
pub fn admit_create(
    identity: &Identity,
    (group, plural): (&str, &str),
    obj: &Value,
) -> std::result::Result<(), crate::error::ApiError> {
    let Some(node) = node_of(identity) else {
        return Ok(());
    };
    let name = str_at(obj, "/metadata/name").unwrap_or_default();
    let refuse = |plural: &str, why: String| {
        Err(crate::error::ApiError::forbidden(format!(
            "{plural} \"{name}\" is forbidden: {why}"
        )))
    };
    match (group, plural) {
        ("", "nodes") if name != node => refuse(
            "nodes",
            format!("node \"{node}\" is not allowed to modify node \"{name}\""),
        ),
        ("", "pods") if str_at(obj, "/metadata/annotations/kubernetes.io~1config.mirror").is_none() => {
            refuse(
                "pods",
                format!("pod does not have \"kubernetes.io/config.mirror\" annotation, node \"{node}\" can only create mirror pods"),
            )
        }
        ("", "pods") if !bound_to(obj, node) => refuse(
            "pods",
            format!("node \"{node}\" can only create pods with spec.nodeName set to itself"),
        ),
        _ => Ok(()),
    }
}

/// The pods bound to `node`, in `namespace` or everywhere.
async fn pods_of(state: &AppState, node: &str, namespace: Option<&str>) -> ApiResult<Vec<Value>> {
    let def = state.find("", "v1", "pods").expect("pods are built in");
    let page = state.store.list(&def, namespace, None, None, None).await?;
    Ok(page
        .items
        .into_iter()
        .filter(|pod| bound_to(pod, node))
        .collect())
}

/// Decide a request of `identity`; [`Verdict::Defer`] for anyone who is not a kubelet.
pub async fn check(
    state: &AppState,
    identity: &Identity,
    attrs: &RequestAttributes,
) -> ApiResult<Verdict> {
    let Some(node) = node_of(identity) else {
        return Ok(Verdict::Defer);
    };
    match classify(node, attrs) {
        Need::Defer => Ok(Verdict::Defer),
        Need::Deny(reason) => Ok(Verdict::Deny(reason)),
        Need::Used(kind) => {
            let pods = pods_of(state, node, Some(&attrs.namespace)).await?;
            Ok(
                match pods.iter().any(|p| uses(p).contains(kind, &attrs.name)) {
                    true => Verdict::Allow,
                    false => no_relationship(node),
                },
            )
        }
        Need::Volume => {
            let claims_def = state
                .find("", "v1", "persistentvolumeclaims")
                .expect("claims are built in");
            for pod in pods_of(state, node, None).await? {
                let namespace = str_at(&pod, "/metadata/namespace").unwrap_or_default();
                for claim in uses(&pod).claims {
                    let found = state
                        .store
                        .get(&claims_def, Some(namespace), &claim)
                        .await?;
                    if found.as_ref().and_then(|c| str_at(c, "/spec/volumeName"))
                        == Some(attrs.name.as_str())
                    {
                        return Ok(Verdict::Allow);
                    }
                }
            }
            Ok(no_relationship(node))
        }
        Need::BoundPod => {
            let def = state.find("", "v1", "pods").expect("pods are built in");
            Ok(
                match state
                    .store
                    .get(&def, Some(&attrs.namespace), &attrs.name)
                    .await?
                {
                    Some(pod) if !bound_to(&pod, node) => {
                        Verdict::Deny(format!("node '{node}' can only modify pods bound to it"))
                    }
                    // Bound here, or gone (the handler answers 404): RBAC decides.
                    _ => Verdict::Defer,
                },
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;
    use serde_json::json;

    fn attrs(method: Method, path: &str) -> RequestAttributes {
        RequestAttributes::from_request(&method, path, None)
    }

    #[test]
    fn kubelet_identities_only() {
        let identity = |user: &str, groups: &[&str]| Identity {
            user: user.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Identity::default()
        };
        assert_eq!(
            node_of(&identity("system:node:n1", &["system:nodes"])),
            Some("n1")
        );
        assert_eq!(node_of(&identity("system:node:n1", &[])), None);
        assert_eq!(node_of(&identity("alice", &["system:nodes"])), None);
    }

    #[test]
    fn requests_are_classified_by_what_they_touch() {
        let c = |m: Method, p: &str| classify("n1", &attrs(m, p));
        assert_eq!(
            c(Method::GET, "/api/v1/namespaces/d/secrets/s"),
            Need::Used(Kind::Secret)
        );
        assert!(matches!(
            c(Method::GET, "/api/v1/namespaces/d/secrets"),
            Need::Deny(_)
        ));
        assert!(matches!(c(Method::GET, "/api/v1/secrets"), Need::Deny(_)));
        assert_eq!(
            c(Method::GET, "/api/v1/namespaces/d/configmaps/c"),
            Need::Used(Kind::ConfigMap)
        );
        assert_eq!(
            c(Method::GET, "/api/v1/persistentvolumes/pv1"),
            Need::Volume
        );
        assert_eq!(
            c(
                Method::POST,
                "/api/v1/namespaces/d/serviceaccounts/default/token"
            ),
            Need::Used(Kind::ServiceAccount)
        );
        assert_eq!(c(Method::PATCH, "/api/v1/nodes/n1/status"), Need::Defer);
        assert!(matches!(
            c(Method::PATCH, "/api/v1/nodes/n2/status"),
            Need::Deny(_)
        ));
        assert!(matches!(
            c(Method::DELETE, "/api/v1/nodes/n2"),
            Need::Deny(_)
        ));
        assert_eq!(c(Method::GET, "/api/v1/nodes/n2"), Need::Defer);
        assert_eq!(
            c(
                Method::PATCH,
                "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1"
            ),
            Need::Defer
        );
        assert!(matches!(
            c(
                Method::PUT,
                "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n2"
            ),
            Need::Deny(_)
        ));
        assert_eq!(
            c(Method::PATCH, "/api/v1/namespaces/d/pods/p/status"),
            Need::BoundPod
        );
        assert_eq!(
            c(Method::DELETE, "/api/v1/namespaces/d/pods/p"),
            Need::BoundPod
        );
        assert_eq!(c(Method::GET, "/api/v1/pods"), Need::Defer);
        assert_eq!(c(Method::GET, "/version"), Need::Defer);
    }

    #[test]
    fn kubelets_create_only_their_node_and_mirror_pods() {
        let kubelet = Identity {
            user: "system:node:n1".into(),
            groups: vec![NODES_GROUP.into()],
            ..Identity::default()
        };
        let def = |plural| ("", plural);
        let node = |name: &str| json!({"metadata": {"name": name}});
        assert!(admit_create(&kubelet, def("nodes"), &node("n1")).is_ok());
        let err = admit_create(&kubelet, def("nodes"), &node("n2")).unwrap_err();
        assert_eq!(err.code, 403);
        assert!(
            err.message.contains("not allowed to modify node \"n2\""),
            "{}",
            err.message
        );
        let plain = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}});
        assert!(admit_create(&kubelet, def("pods"), &plain).is_err());
        let mirror = |node: &str| {
            json!({"metadata": {"name": "p", "annotations": {"kubernetes.io/config.mirror": "x"}},
                   "spec": {"nodeName": node}})
        };
        assert!(admit_create(&kubelet, def("pods"), &mirror("n1")).is_ok());
        assert!(admit_create(&kubelet, def("pods"), &mirror("n2")).is_err());
        let admin = Identity {
            user: "admin".into(),
            ..Identity::default()
        };
        assert!(admit_create(&admin, def("nodes"), &node("n2")).is_ok());
    }

    #[test]
    fn everything_a_pod_uses() {
        let pod = json!({
            "metadata": {"name": "web", "namespace": "d"},
            "spec": {
                "nodeName": "n1",
                "serviceAccountName": "builder",
                "imagePullSecrets": [{"name": "pull"}],
                "volumes": [
                    {"name": "a", "secret": {"secretName": "vol-secret"}},
                    {"name": "b", "configMap": {"name": "vol-cm"}},
                    {"name": "c", "persistentVolumeClaim": {"claimName": "data"}},
                    {"name": "d", "projected": {"sources": [
                        {"secret": {"name": "proj-secret"}},
                        {"configMap": {"name": "proj-cm"}},
                        {"serviceAccountToken": {"path": "token"}}
                    ]}},
                    {"name": "e", "ephemeral": {"volumeClaimTemplate": {}}},
                    {"name": "f", "csi": {"driver": "x", "nodePublishSecretRef": {"name": "csi-secret"}}}
                ],
                "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "init-env"}}]}],
                "containers": [{"name": "m",
                    "env": [
                        {"name": "A", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "k"}}},
                        {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "env-cm", "key": "k"}}}
                    ],
                    "envFrom": [{"configMapRef": {"name": "from-cm"}}]
                }]
            }
        });
        let u = uses(&pod);
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(
            u.secrets,
            set(&[
                "csi-secret",
                "env-secret",
                "init-env",
                "proj-secret",
                "pull",
                "vol-secret"
            ])
        );
        assert_eq!(
            u.config_maps,
            set(&["env-cm", "from-cm", "proj-cm", "vol-cm"])
        );
        assert_eq!(u.claims, set(&["data", "web-e"]));
        assert_eq!(u.service_accounts, set(&["builder"]));
        assert_eq!(
            uses(&json!({"spec": {}})).service_accounts,
            set(&["default"]),
            "no serviceAccountName means the default account"
        );
    }
}
