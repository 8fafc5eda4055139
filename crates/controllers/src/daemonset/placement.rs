//! Which nodes a DaemonSet's pod belongs on (upstream's `NodeShouldRunDaemonPod`):
//! nodeSelector, required node affinity and taints, judged against the pod as it will be
//! created (with the automatic daemon tolerations). Node readiness does not matter; the
//! tolerations for not-ready and unreachable nodes take care of it.
//!
//! Also how a daemon pod is pinned to its node: a required node affinity on
//! `metadata.name`, which the default scheduler honours when it binds the pod.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodSpec, Toleration,
};

/// Where a daemon pod may be: `should_run` means a pod should be created there;
/// `should_continue_running` means an existing pod may stay (a new untolerated
/// `NoSchedule` taint does not evict, an untolerated `NoExecute` one does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    pub should_run: bool,
    pub should_continue_running: bool,
}

/// Add upstream's automatic daemon tolerations to `spec`, unless already there.
pub fn add_daemon_tolerations(spec: &mut PodSpec) {
    let mut wanted = vec![
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if spec.host_network == Some(true) {
        wanted.push(("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for (key, effect) in wanted {
        let toleration = Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some(effect.into()),
            ..Default::default()
        };
        // Replace a same key/effect toleration (e.g. one with tolerationSeconds): daemon
        // pods must never be evicted for these conditions.
        tolerations
            .retain(|t| !(t.key.as_deref() == Some(key) && t.effect.as_deref() == Some(effect)));
        tolerations.push(toleration);
    }
}

/// Pin `spec` to `node` through a required node affinity on the node's name, replacing any
/// required terms (the node was already checked against them).
pub fn pin_to_node(spec: &mut PodSpec, node: &str) {
    let selector = NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_fields: Some(vec![NodeSelectorRequirement {
                key: "metadata.name".into(),
                operator: "In".into(),
                values: Some(vec![node.into()]),
            }]),
            match_expressions: None,
        }],
    };
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    let node_affinity = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    node_affinity.required_during_scheduling_ignored_during_execution = Some(selector);
}

/// The node a daemon pod is for: its `nodeName` once bound, else the node its
/// `metadata.name` affinity names.
pub fn target_node(pod: &Pod) -> Option<&str> {
    let spec = pod.spec.as_ref()?;
    if let Some(name) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(name);
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|r| r.key == "metadata.name" && r.operator == "In")
        .and_then(|r| r.values.as_ref()?.first())
        .map(String::as_str)
}

/// Where a pod with `spec` (already carrying the daemon tolerations) belongs on `node`.
pub fn placement(spec: &PodSpec, node: &Node) -> Placement {
    let never = Placement {
        should_run: false,
        should_continue_running: false,
    };
    let node_name = node.metadata.name.as_deref().unwrap_or_default();
    if spec
        .node_name
        .as_deref()
        .is_some_and(|n| !n.is_empty() && n != node_name)
    {
        return never;
    }
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    if !node_selector_matches(spec.node_selector.as_ref(), labels)
        || !required_affinity_matches(spec.affinity.as_ref(), labels, node_name)
    {
        return never;
    }
    let tolerations = spec.tolerations.as_deref().unwrap_or_default();
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default();
    let untolerated = |effect: &str| {
        taints.iter().filter(|t| t.effect == effect).any(|t| {
            !tolerations
                .iter()
                .any(|tol| k3rs_core::scheduling::tolerates(tol, t))
        })
    };
    let evicting = untolerated("NoExecute");
    Placement {
        should_run: !evicting && !untolerated("NoSchedule"),
        should_continue_running: !evicting,
    }
}

fn node_selector_matches(
    selector: Option<&BTreeMap<String, String>>,
    labels: &BTreeMap<String, String>,
) -> bool {
    selector
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v))
}

fn required_affinity_matches(
    affinity: Option<&Affinity>,
    labels: &BTreeMap<String, String>,
    node_name: &str,
) -> bool {
    let Some(selector) = affinity
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
    else {
        return true;
    };
    crate::matching::node_selector_matches(&selector.node_selector_terms, node_name, labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(labels: serde_json::Value, taints: serde_json::Value) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": "n1", "labels": labels},
            "spec": {"taints": taints},
        }))
        .unwrap()
    }

    fn spec(extra: serde_json::Value) -> PodSpec {
        let mut spec = json!({"containers": [{"name": "c", "image": "i"}]});
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        let mut spec: PodSpec = serde_json::from_value(spec).unwrap();
        add_daemon_tolerations(&mut spec);
        spec
    }

    const RUN: Placement = Placement {
        should_run: true,
        should_continue_running: true,
    };
    const NEVER: Placement = Placement {
        should_run: false,
        should_continue_running: false,
    };

    #[test]
    fn taints_decide_run_and_continue() {
        let plain = spec(json!({}));
        assert_eq!(placement(&plain, &node(json!({}), json!([]))), RUN);
        let no_schedule = node(json!({}), json!([{"key": "gpu", "effect": "NoSchedule"}]));
        assert_eq!(
            placement(&plain, &no_schedule),
            Placement {
                should_run: false,
                should_continue_running: true
            }
        );
        let no_execute = node(json!({}), json!([{"key": "gpu", "effect": "NoExecute"}]));
        assert_eq!(placement(&plain, &no_execute), NEVER);
        let tolerant = spec(json!({"tolerations": [{"key": "gpu", "operator": "Exists"}]}));
        assert_eq!(placement(&tolerant, &no_execute), RUN);
        let equal =
            spec(json!({"tolerations": [{"key": "gpu", "value": "a", "effect": "NoSchedule"}]}));
        let valued = node(
            json!({}),
            json!([{"key": "gpu", "value": "a", "effect": "NoSchedule"}]),
        );
        assert_eq!(placement(&equal, &valued), RUN);
        assert!(!placement(&equal, &no_schedule).should_run);
        // The automatic tolerations cover cordoned and not-ready nodes.
        let cordoned = node(
            json!({}),
            json!([
                {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
            ]),
        );
        assert_eq!(placement(&plain, &cordoned), RUN);
    }

    #[test]
    fn selectors_and_affinity_filter_nodes() {
        let selected = spec(json!({"nodeSelector": {"role": "edge"}}));
        assert_eq!(placement(&selected, &node(json!({}), json!([]))), NEVER);
        assert_eq!(
            placement(&selected, &node(json!({"role": "edge"}), json!([]))),
            RUN
        );
        let affinity = spec(
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]},
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]},
            ]}}}}),
        );
        assert_eq!(placement(&affinity, &node(json!({}), json!([]))), RUN);
        assert_eq!(
            placement(&affinity, &node(json!({"zone": "b"}), json!([]))),
            RUN
        );
        let gt = spec(
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}]}]}}}}),
        );
        assert_eq!(
            placement(&gt, &node(json!({"cores": "3"}), json!([]))),
            NEVER
        );
        assert_eq!(placement(&gt, &node(json!({"cores": "8"}), json!([]))), RUN);
    }

    #[test]
    fn pinning_names_the_node() {
        let mut pinned = spec(json!({}));
        pin_to_node(&mut pinned, "n7");
        let pod = Pod {
            spec: Some(pinned.clone()),
            ..Default::default()
        };
        assert_eq!(target_node(&pod), Some("n7"));
        let tolerations = pinned.tolerations.unwrap();
        assert_eq!(tolerations.len(), 6);
        let mut host = spec(json!({"hostNetwork": true}));
        add_daemon_tolerations(&mut host);
        assert_eq!(host.tolerations.unwrap().len(), 7);
    }
}
