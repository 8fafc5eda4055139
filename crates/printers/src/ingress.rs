//! networking.k8s.io resources: Ingresses (class, hosts, load-balancer address,
//! ports), IngressClasses and NetworkPolicies.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::columns::{Column, AGE, NAME};
use crate::duration::since;
use crate::fields::{array_at, at, creation_timestamp, name, opt_str_at, str_at};
use crate::selector::format_label_selector;
use crate::service::load_balancer_addresses;

pub(crate) fn ingress_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::string("Class", "The name of the IngressClass resource that should be used for additional configuration"),
        Column::string("Hosts", "Hosts that incoming requests are matched against before the ingress rule"),
        Column::string("Address", "Address is a list containing ingress points for the load-balancer"),
        Column::string("Ports", "Ports of TLS configurations that open"),
        AGE,
    ]
}

/// Hosts of the first three rules that have one, then "+ N more..." counted
/// over all rules; "*" when no rule names a host.
fn format_hosts(rules: &[Value]) -> String {
    const MAX: usize = 3;
    let mut hosts: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if hosts.len() == MAX {
            more = true;
        }
        let host = str_at(rule, &["host"]);
        if !more && !host.is_empty() {
            hosts.push(host);
        }
    }
    if hosts.is_empty() {
        return "*".to_string();
    }
    let text = hosts.join(",");
    if more {
        format!("{text} + {} more...", rules.len() - MAX)
    } else {
        text
    }
}

pub(crate) fn ingress_cells(ingress: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let class = opt_str_at(ingress, &["spec", "ingressClassName"]).unwrap_or("<none>");
    let ports = if array_at(ingress, &["spec", "tls"]).is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        json!(name(ingress)),
        json!(class),
        json!(format_hosts(array_at(ingress, &["spec", "rules"]))),
        json!(load_balancer_addresses(at(
            ingress,
            &["status", "loadBalancer"]
        ))),
        json!(ports),
        json!(since(creation_timestamp(ingress), now)),
    ]
}

pub(crate) fn ingress_class_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::string(
            "Controller",
            "Controller that is responsible for handling this class",
        ),
        Column::string(
            "Parameters",
            "A reference to a resource with additional parameters",
        ),
        AGE,
    ]
}

pub(crate) fn ingress_class_cells(class: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let parameters = match at(class, &["spec", "parameters"]).filter(|p| p.is_object()) {
        None => "<none>".to_string(),
        Some(p) => {
            let mut text = str_at(p, &["kind"]).to_string();
            if let Some(group) = opt_str_at(p, &["apiGroup"]) {
                text = format!("{text}.{group}");
            }
            format!("{text}/{}", str_at(p, &["name"]))
        }
    };
    vec![
        json!(name(class)),
        json!(str_at(class, &["spec", "controller"])),
        json!(parameters),
        json!(since(creation_timestamp(class), now)),
    ]
}

pub(crate) fn network_policy_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::string("Pod-Selector", "Selects the pods to which this NetworkPolicy object applies. The array of ingress rules is applied to any pods selected by this field. Multiple network policies can select the same set of pods. In this case, the ingress rules for each are combined additively. This field is NOT optional and follows standard label selector semantics. An empty podSelector matches all pods in this namespace."),
        AGE,
    ]
}

pub(crate) fn network_policy_cells(policy: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(policy)),
        json!(format_label_selector(at(policy, &["spec", "podSelector"]))),
        json!(since(creation_timestamp(policy), now)),
    ]
}
