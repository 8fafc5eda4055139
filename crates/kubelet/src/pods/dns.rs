//! DNS for pods: the CRI `DNSConfig` from the pod's dnsPolicy (ClusterFirst, Default, None,
//! ClusterFirstWithHostNet) and dnsConfig, and the kubelet-managed `/etc/hosts`.

use k3rs_core::ClusterConfig;
use k8s_openapi::api::core::v1::Pod;

use crate::cri::api;

/// The sandbox's DNS config; `host_resolv_conf` is the node's `/etc/resolv.conf` text
/// (used by `Default` and for host-network pods).
pub fn dns_config(
    pod: &Pod,
    cluster: &ClusterConfig,
    host_resolv_conf: &str,
) -> Option<api::DnsConfig> {
    let _ = (pod, cluster, host_resolv_conf);
    None
}

/// `/etc/hosts` for a pod-network pod: localhost entries, the pod's IPs with its hostname
/// (and FQDN with subdomain), then `hostAliases`.
pub fn etc_hosts(pod: &Pod, pod_ips: &[String], cluster_domain: &str) -> String {
    let _ = (pod, pod_ips, cluster_domain);
    String::new()
}
