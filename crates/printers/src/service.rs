//! Services, Endpoints and EndpointSlices: cluster and external addresses,
//! port lists and the "a,b,c + N more..." endpoint summaries.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::columns::{Column, AGE, NAME};
use crate::duration::since;
use crate::fields::{
    array_at, at, creation_timestamp, int_at, name, opt_int_at, opt_str_at, str_at,
};
use crate::selector::format_labels;

/// At most this many endpoints are listed before "+ N more...".
const MAX_LISTED: usize = 3;

pub(crate) fn service_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::string("Type", "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer."),
        Column::string("Cluster-IP", "clusterIP is the IP address of the service and is usually assigned randomly."),
        Column::string("External-IP", "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service."),
        Column::string("Port(s)", "The list of ports that are exposed by this service."),
        AGE,
        Column::string("Selector", "Route service traffic to pods with label keys and values matching this selector.").wide(),
    ]
}

/// Distinct load-balancer ingress IPs (or hostnames when no IP), sorted and
/// joined with `,` (upstream's `loadBalancerStatusStringer` in wide mode).
pub(crate) fn load_balancer_addresses(status: Option<&Value>) -> String {
    let mut addresses = BTreeSet::new();
    for ingress in status.map(|s| array_at(s, &["ingress"])).unwrap_or(&[]) {
        let ip = str_at(ingress, &["ip"]);
        let hostname = str_at(ingress, &["hostname"]);
        if !ip.is_empty() {
            addresses.insert(ip);
        } else if !hostname.is_empty() {
            addresses.insert(hostname);
        }
    }
    addresses.into_iter().collect::<Vec<_>>().join(",")
}

fn external_ip(service: &Value, service_type: &str) -> String {
    let external_ips: Vec<&str> = array_at(service, &["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match service_type {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer_addresses(at(service, &["status", "loadBalancer"]));
            if !external_ips.is_empty() {
                let mut all: Vec<&str> = lb.split(',').filter(|s| !s.is_empty()).collect();
                all.extend(external_ips);
                all.join(",")
            } else if !lb.is_empty() {
                lb
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => str_at(service, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    }
}

/// "80/TCP,443:30443/TCP".
fn port_string(service: &Value) -> String {
    array_at(service, &["spec", "ports"])
        .iter()
        .map(|port| {
            let number = int_at(port, &["port"]);
            let protocol = opt_str_at(port, &["protocol"]).unwrap_or("TCP");
            match int_at(port, &["nodePort"]) {
                node_port if node_port > 0 => format!("{number}:{node_port}/{protocol}"),
                _ => format!("{number}/{protocol}"),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn service_cells(service: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // Stored objects may carry only the legacy singular clusterIP.
    let cluster_ip = array_at(service, &["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
        .or_else(|| opt_str_at(service, &["spec", "clusterIP"]))
        .filter(|ip| !ip.is_empty())
        .unwrap_or("<none>");
    let service_type = opt_str_at(service, &["spec", "type"]).unwrap_or("ClusterIP");
    let ports = match port_string(service) {
        p if p.is_empty() => "<none>".to_string(),
        p => p,
    };
    vec![
        json!(name(service)),
        json!(service_type),
        json!(cluster_ip),
        json!(external_ip(service, service_type)),
        json!(ports),
        json!(since(creation_timestamp(service), now)),
        json!(format_labels(at(service, &["spec", "selector"]))),
    ]
}

pub(crate) fn endpoints_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::string("Endpoints", "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service."),
        AGE,
    ]
}

/// `host:port` with IPv6 hosts bracketed, like Go's `net.JoinHostPort`.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Ready endpoint addresses (with each port), at most three, then "+ N more...".
fn format_endpoints(endpoints: &Value) -> String {
    let subsets = array_at(endpoints, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    let mut listed: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for subset in subsets {
        let addresses = array_at(subset, &["addresses"]);
        let ports = array_at(subset, &["ports"]);
        if ports.is_empty() {
            // Headless services may have no ports.
            count += addresses.len();
            for address in addresses {
                if listed.len() == MAX_LISTED {
                    more = true;
                    break;
                }
                listed.push(str_at(address, &["ip"]).to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for address in addresses {
                if listed.len() == MAX_LISTED {
                    more = true;
                    break;
                }
                listed.push(join_host_port(
                    str_at(address, &["ip"]),
                    int_at(port, &["port"]),
                ));
            }
        }
    }
    let text = listed.join(",");
    if more {
        format!("{text} + {} more...", count - MAX_LISTED)
    } else {
        text
    }
}

pub(crate) fn endpoints_cells(endpoints: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(endpoints)),
        json!(format_endpoints(endpoints)),
        json!(since(creation_timestamp(endpoints), now)),
    ]
}

pub(crate) fn endpoint_slice_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::string("AddressType", "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name."),
        Column::string("Ports", "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. When ports is empty, it indicates that there are no defined ports. When a port is defined with a nil port value, it indicates \"all ports\". Each slice may include a maximum of 100 ports."),
        Column::string("Endpoints", "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints."),
        AGE,
    ]
}

/// First three items joined with `,` then "+ N more...", or "<unset>" if none.
pub(crate) fn list_with_more(items: Vec<String>) -> String {
    let count = items.len();
    let text = items
        .into_iter()
        .take(MAX_LISTED)
        .collect::<Vec<_>>()
        .join(",");
    if count > MAX_LISTED {
        format!("{text} + {} more...", count - MAX_LISTED)
    } else if text.is_empty() {
        "<unset>".to_string()
    } else {
        text
    }
}

pub(crate) fn endpoint_slice_cells(slice: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let ports = array_at(slice, &["ports"])
        .iter()
        .map(|port| match opt_int_at(port, &["port"]) {
            Some(number) => number.to_string(),
            None => opt_str_at(port, &["name"]).unwrap_or("*").to_string(),
        })
        .collect();
    let addresses = array_at(slice, &["endpoints"])
        .iter()
        .flat_map(|endpoint| array_at(endpoint, &["addresses"]))
        .map(|address| address.as_str().unwrap_or("").to_string())
        .collect();
    vec![
        json!(name(slice)),
        json!(str_at(slice, &["addressType"])),
        json!(list_with_more(ports)),
        json!(list_with_more(addresses)),
        json!(since(creation_timestamp(slice), now)),
    ]
}
