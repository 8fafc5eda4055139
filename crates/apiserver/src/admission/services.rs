//! Services without IO: validation, the `clusterIP`/`clusterIPs` normalisation, and what
//! an update keeps from the stored object. Allocating IPs and node ports against the store
//! is [`super::allocator`]'s job.

use std::collections::{HashMap, HashSet};

use k3rs_core::validation;
use serde_json::{json, Value};

use super::fields::{self, Path};
use crate::error::FieldCause;

const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

fn spec(obj: &Value) -> Option<&Value> {
    obj.get("spec")
}

/// `spec.type`, `ClusterIP` when unset.
pub fn service_type(obj: &Value) -> &str {
    spec(obj)
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .unwrap_or("ClusterIP")
}

/// The requested or assigned primary cluster IP: `None` for unset or empty.
pub fn cluster_ip(obj: &Value) -> Option<&str> {
    spec(obj)
        .and_then(|s| s.get("clusterIP"))
        .and_then(Value::as_str)
        .filter(|ip| !ip.is_empty())
}

pub fn is_headless(obj: &Value) -> bool {
    cluster_ip(obj) == Some("None")
}

/// Whether the type carries a cluster IP at all (upstream's `needsClusterIP`).
pub fn needs_cluster_ip(obj: &Value) -> bool {
    service_type(obj) != "ExternalName"
}

/// Whether the type gets node ports (upstream's `needsNodePort`).
pub fn needs_node_ports(obj: &Value) -> bool {
    matches!(service_type(obj), "NodePort" | "LoadBalancer")
}

/// Whether ports without a `nodePort` get one allocated.
pub fn allocates_node_ports(obj: &Value) -> bool {
    match service_type(obj) {
        "NodePort" => true,
        "LoadBalancer" => spec(obj)
            .and_then(|s| s.get("allocateLoadBalancerNodePorts"))
            .and_then(Value::as_bool)
            .unwrap_or(true),
        _ => false,
    }
}

fn ports(obj: &Value) -> &[Value] {
    spec(obj)
        .and_then(|s| s.get("ports"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// `(index, nodePort)` of every port with a non-zero `nodePort`.
pub fn node_ports(obj: &Value) -> Vec<(usize, i64)> {
    ports(obj)
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let n = p.get("nodePort").and_then(Value::as_i64)?;
            (n != 0).then_some((i, n))
        })
        .collect()
}

fn port_name(port: &Value) -> &str {
    port.get("name").and_then(Value::as_str).unwrap_or_default()
}

/// Tidy what clients send before validation: empty `clusterIP`/`clusterIPs` and
/// `nodePort: 0` (protobuf clients send zero values) mean unset; one of `clusterIP` and
/// `clusterIPs` fills the other.
pub fn normalize(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if spec
        .get("clusterIP")
        .is_some_and(|v| v.is_null() || v.as_str() == Some(""))
    {
        spec.remove("clusterIP");
    }
    if spec
        .get("clusterIPs")
        .is_some_and(|v| v.is_null() || v.as_array().is_some_and(Vec::is_empty))
    {
        spec.remove("clusterIPs");
    }
    match (
        spec.get("clusterIP").cloned(),
        spec.get("clusterIPs").cloned(),
    ) {
        (Some(ip), None) => {
            spec.insert("clusterIPs".into(), json!([ip]));
        }
        (None, Some(ips)) => {
            if let Some(first) = ips
                .get(0)
                .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
            {
                spec.insert("clusterIP".into(), first.clone());
            }
        }
        _ => {}
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            if port.get("nodePort").is_some_and(|n| n.is_null() || n == 0) {
                port.remove("nodePort");
            }
        }
    }
}

/// Upstream's `ValidateService`, for the parts clients run into.
pub fn validate(obj: &Value) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let spec_path = Path::new("spec");
    let spec = spec(obj).cloned().unwrap_or(json!({}));
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    if !TYPES.contains(&ty) {
        causes.push(fields::not_supported(
            &spec_path.child("type"),
            &json!(ty),
            TYPES,
        ));
    }
    validate_cluster_ips(obj, ty, &spec_path, &mut causes);
    if ty == "ExternalName"
        && spec
            .get("externalName")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    {
        causes.push(fields::required(&spec_path.child("externalName"), ""));
    }

    let ports = ports(obj);
    let ports_path = spec_path.child("ports");
    if ports.is_empty() && ty != "ExternalName" && !is_headless(obj) {
        causes.push(fields::required(&ports_path, ""));
    }
    let require_name = ports.len() > 1;
    let mut names = HashSet::new();
    let mut port_protocols = HashSet::new();
    let mut node_port_protocols = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let path = ports_path.index(i);
        let name = port_name(port);
        if name.is_empty() {
            if require_name {
                causes.push(fields::required(&path.child("name"), ""));
            }
        } else {
            for message in validation::dns1123_label_errors(name) {
                causes.push(fields::invalid(&path.child("name"), &json!(name), &message));
            }
            if !names.insert(name.to_string()) {
                causes.push(fields::duplicate(&path.child("name"), &json!(name)));
            }
        }
        fields::port_number(&path.child("port"), port.get("port"), &mut causes);
        let protocol = port
            .get("protocol")
            .and_then(Value::as_str)
            .unwrap_or("TCP");
        if !PROTOCOLS.contains(&protocol) {
            causes.push(fields::not_supported(
                &path.child("protocol"),
                &json!(protocol),
                PROTOCOLS,
            ));
        }
        match port.get("targetPort") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => {
                for problem in fields::port_name_problems(s) {
                    causes.push(fields::invalid(
                        &path.child("targetPort"),
                        &json!(s),
                        problem,
                    ));
                }
            }
            Some(v) => {
                if !v.as_i64().is_some_and(|n| (1..=65535).contains(&n)) {
                    causes.push(fields::invalid(
                        &path.child("targetPort"),
                        v,
                        fields::PORT_RANGE_MSG,
                    ));
                }
            }
        }
        if let Some(number) = port.get("port").and_then(Value::as_i64) {
            if !port_protocols.insert((number, protocol.to_string())) {
                causes.push(fields::duplicate(
                    &path,
                    &json!({"port": number, "protocol": protocol}),
                ));
            }
        }
        if let Some(node_port) = port.get("nodePort").and_then(Value::as_i64) {
            if !matches!(ty, "NodePort" | "LoadBalancer") {
                causes.push(fields::forbidden(
                    &path.child("nodePort"),
                    &format!("may not be used when `type` is '{ty}'"),
                ));
            } else if !(1..=65535).contains(&node_port) {
                causes.push(fields::invalid(
                    &path.child("nodePort"),
                    &json!(node_port),
                    fields::PORT_RANGE_MSG,
                ));
            } else if !node_port_protocols.insert((node_port, protocol.to_string())) {
                causes.push(fields::duplicate(
                    &path.child("nodePort"),
                    &json!(node_port),
                ));
            }
        }
    }
    causes
}

fn validate_cluster_ips(obj: &Value, ty: &str, spec_path: &Path, causes: &mut Vec<FieldCause>) {
    let spec = spec(obj);
    let ips: Vec<Value> = spec
        .and_then(|s| s.get("clusterIPs"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let ips_path = spec_path.child("clusterIPs");
    if ty == "ExternalName" {
        if !ips.is_empty() {
            causes.push(fields::forbidden(
                &ips_path,
                "may not be set for ExternalName services",
            ));
        }
        return;
    }
    if let (Some(ip), Some(first)) = (cluster_ip(obj), ips.first()) {
        if first.as_str() != Some(ip) {
            causes.push(fields::invalid(
                &ips_path,
                &json!(ips),
                "first value must match `clusterIP`",
            ));
        }
    }
    for (i, ip) in ips.iter().enumerate() {
        let path = ips_path.index(i);
        let text = ip.as_str().unwrap_or_default();
        if text == "None" {
            if i > 0 || ips.len() > 1 {
                causes.push(fields::invalid(
                    &path,
                    ip,
                    "must be empty when the first element is 'None'",
                ));
            } else if matches!(ty, "NodePort" | "LoadBalancer") {
                causes.push(fields::invalid(
                    &path,
                    ip,
                    &format!("may not be set to 'None' for {ty} services"),
                ));
            }
            continue;
        }
        if text.parse::<std::net::IpAddr>().is_err() {
            causes.push(fields::invalid(
                &path,
                ip,
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ));
        } else if i > 0 {
            causes.push(fields::invalid(
                &path,
                ip,
                "may specify no more than one IP for each IP family",
            ));
        }
    }
}

/// Fill in what an update may leave out (upstream's `patchAllocatedValues`): the cluster
/// IP, and the node port of each port (matched by name) that kept its type.
pub fn keep_allocated(old: &Value, new: &mut Value) {
    if needs_cluster_ip(old) && needs_cluster_ip(new) {
        if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
            let old_spec = &old["spec"];
            if spec.get("clusterIP").is_none() {
                if let Some(ip) = old_spec.get("clusterIP").filter(|v| !v.is_null()) {
                    spec.insert("clusterIP".into(), ip.clone());
                }
            }
            if spec.get("clusterIPs").is_none() {
                if let Some(ips) = old_spec.get("clusterIPs").filter(|v| !v.is_null()) {
                    spec.insert("clusterIPs".into(), ips.clone());
                }
            }
        }
    }
    if needs_node_ports(old) && needs_node_ports(new) {
        let old_by_name: HashMap<String, i64> = old_ports_by_name(old);
        let in_both: HashSet<i64> = {
            let olds: HashSet<i64> = node_ports(old).into_iter().map(|(_, n)| n).collect();
            node_ports(new)
                .into_iter()
                .map(|(_, n)| n)
                .filter(|n| olds.contains(n))
                .collect()
        };
        if let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
            for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                if port.get("nodePort").is_some() {
                    continue;
                }
                let name = port.get("name").and_then(Value::as_str).unwrap_or_default();
                if let Some(n) = old_by_name.get(name).filter(|n| !in_both.contains(n)) {
                    port.insert("nodePort".into(), json!(n));
                }
            }
        }
    }
}

fn old_ports_by_name(old: &Value) -> HashMap<String, i64> {
    ports(old)
        .iter()
        .filter_map(|p| {
            let n = p.get("nodePort").and_then(Value::as_i64)?;
            Some((port_name(p).to_string(), n))
        })
        .collect()
}

/// Clear what a type change made meaningless, unless the client changed it too (upstream's
/// `dropTypeDependentFields`): leaving ExternalName-less types drops the cluster IP, leaving
/// NodePort/LoadBalancer drops the node ports.
pub fn drop_type_dependent(old: &Value, new: &mut Value) {
    if needs_cluster_ip(old) && !needs_cluster_ip(new) {
        if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
            let old_spec = &old["spec"];
            for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
                if spec.get(field) == old_spec.get(field) {
                    spec.remove(field);
                }
            }
        }
    }
    let values = |o: &Value| -> Vec<Option<i64>> {
        ports(o)
            .iter()
            .map(|p| p.get("nodePort").and_then(Value::as_i64))
            .collect()
    };
    if needs_node_ports(old) && !needs_node_ports(new) && values(old) == values(new) {
        if let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
            for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                port.remove("nodePort");
            }
        }
    }
    if service_type(new) != "LoadBalancer" && service_type(old) == "LoadBalancer" {
        if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
            if spec.get("allocateLoadBalancerNodePorts")
                == old["spec"].get("allocateLoadBalancerNodePorts")
            {
                spec.remove("allocateLoadBalancerNodePorts");
            }
        }
    }
    if !needs_node_ports(new) && needs_node_ports(old) {
        if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
            if spec.get("externalTrafficPolicy") == old["spec"].get("externalTrafficPolicy") {
                spec.remove("externalTrafficPolicy");
            }
        }
    }
}

/// Update-only rules: the cluster IP may not change once set (except to or from
/// ExternalName, and between headless variants).
pub fn validate_update(old: &Value, new: &Value) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    if !needs_cluster_ip(old) || !needs_cluster_ip(new) {
        return causes;
    }
    if is_headless(old) && is_headless(new) {
        return causes;
    }
    let ips = |o: &Value| -> Vec<Value> {
        o.pointer("/spec/clusterIPs")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (old_ips, new_ips) = (ips(old), ips(new));
    let path = Path::new("spec").child("clusterIPs");
    if new_ips.is_empty() && !old_ips.is_empty() {
        causes.push(fields::invalid(
            &path.index(0),
            &json!(new_ips),
            "primary clusterIP can not be unset",
        ));
        return causes;
    }
    for (i, ip) in old_ips.iter().enumerate() {
        if new_ips.get(i).is_some_and(|n| n != ip) {
            causes.push(fields::invalid(
                &path.index(i),
                &json!(new_ips),
                "may not change once set",
            ));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields_of(causes: &[FieldCause]) -> Vec<String> {
        causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn normalize_fills_cluster_ips_and_drops_zero_node_ports() {
        let mut svc = json!({"spec": {"clusterIP": "", "clusterIPs": ["10.43.0.9"], "ports": [{"port": 80, "nodePort": 0}]}});
        normalize(&mut svc);
        assert_eq!(svc["spec"]["clusterIP"], "10.43.0.9");
        assert!(svc["spec"]["ports"][0].get("nodePort").is_none());
        let mut headless = json!({"spec": {"clusterIP": "None"}});
        normalize(&mut headless);
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
        assert!(is_headless(&headless));
        assert!(validate(&headless).is_empty());
    }

    #[test]
    fn validation_names_fields() {
        let svc = json!({"spec": {"type": "Weird", "ports": [
            {"name": "web", "port": 0, "protocol": "ICMP"},
            {"name": "web", "port": 80, "targetPort": "Bad_Name"},
            {"port": 81, "targetPort": 70000},
        ]}});
        let got = fields_of(&validate(&svc));
        assert!(got.contains(&"spec.type: Unsupported value: \"Weird\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"".to_string()), "{got:?}");
        assert!(got.contains(
            &"spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"
                .to_string()
        ));
        assert!(got.contains(&"spec.ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"".to_string()));
        assert!(got.contains(&"spec.ports[1].name: Duplicate value: \"web\"".to_string()));
        assert!(got.contains(&"spec.ports[1].targetPort: Invalid value: \"Bad_Name\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string()), "{got:?}");
        assert!(got.contains(&"spec.ports[2].name: Required value".to_string()));
        assert!(got.contains(
            &"spec.ports[2].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive"
                .to_string()
        ));
        let no_ports = json!({"spec": {"type": "ClusterIP"}});
        assert_eq!(
            fields_of(&validate(&no_ports)),
            ["spec.ports: Required value"]
        );
        let dup = json!({"spec": {"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80, "protocol": "TCP"}]}});
        assert_eq!(
            fields_of(&validate(&dup)),
            ["spec.ports[1]: Duplicate value: {\"port\":80,\"protocol\":\"TCP\"}"]
        );
        let node_port_on_cluster_ip = json!({"spec": {"ports": [{"port": 80, "nodePort": 30001}]}});
        assert_eq!(
            fields_of(&validate(&node_port_on_cluster_ip)),
            ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]
        );
    }

    #[test]
    fn updates_keep_allocations_and_forbid_ip_changes() {
        let old = json!({"spec": {"type": "NodePort", "clusterIP": "10.43.5.5", "clusterIPs": ["10.43.5.5"],
            "ports": [{"name": "a", "port": 80, "nodePort": 30080}, {"name": "b", "port": 81, "nodePort": 30081}]}});
        let mut new = json!({"spec": {"type": "NodePort", "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81, "nodePort": 30090}]}});
        keep_allocated(&old, &mut new);
        assert_eq!(new["spec"]["clusterIP"], "10.43.5.5");
        assert_eq!(new["spec"]["ports"][0]["nodePort"], 30080);
        assert_eq!(new["spec"]["ports"][1]["nodePort"], 30090);
        assert!(validate_update(&old, &new).is_empty());

        let mut changed = old.clone();
        changed["spec"]["clusterIP"] = json!("10.43.9.9");
        changed["spec"]["clusterIPs"] = json!(["10.43.9.9"]);
        assert_eq!(
            fields_of(&validate_update(&old, &changed)),
            ["spec.clusterIPs[0]: Invalid value: [\"10.43.9.9\"]: may not change once set"]
        );

        let mut to_cluster_ip = old.clone();
        to_cluster_ip["spec"]["type"] = json!("ClusterIP");
        drop_type_dependent(&old, &mut to_cluster_ip);
        assert!(node_ports(&to_cluster_ip).is_empty());
        assert_eq!(to_cluster_ip["spec"]["clusterIP"], "10.43.5.5");

        let mut to_external = old.clone();
        to_external["spec"]["type"] = json!("ExternalName");
        to_external["spec"]["externalName"] = json!("example.com");
        drop_type_dependent(&old, &mut to_external);
        assert!(cluster_ip(&to_external).is_none());
        assert!(validate(&to_external).is_empty());
    }
}
