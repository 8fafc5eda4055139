//! DNS for pods: the CRI `DNSConfig` from the pod's dnsPolicy (ClusterFirst, Default, None,
//! ClusterFirstWithHostNet) and dnsConfig, and the kubelet-managed `/etc/hosts`, both as
//! upstream's kubelet writes them.
//!
//! `Default` (and host-network pods with `ClusterFirst`) take the node's resolv.conf as it
//! is. If that names only a loopback resolver (systemd-resolved's 127.0.0.53), such pods
//! cannot reach it from their own network namespace; k3s then points the kubelet at
//! another resolv.conf (`--resolv-conf`), and so should the caller here: pass the text of
//! a file with reachable servers (e.g. `/run/systemd/resolve/resolv.conf`).

use k3rs_core::ClusterConfig;
use k8s_openapi::api::core::v1::{HostAlias, Pod, PodDNSConfig};
use tracing::warn;

use crate::cri::api;

/// Upstream's limits (validation and glibc's): nameservers, search domains, the length of
/// the search line, and of one search domain.
const MAX_NAMESERVERS: usize = 3;
const MAX_SEARCH_DOMAINS: usize = 32;
const MAX_SEARCH_LINE_CHARS: usize = 2048;
const MAX_SEARCH_DOMAIN_CHARS: usize = 253;
/// Linux host names are at most 63 bytes.
const MAX_HOSTNAME_CHARS: usize = 63;

/// The sandbox's DNS config; `host_resolv_conf` is the node's `/etc/resolv.conf` text
/// (used by `Default` and for host-network pods). Always `Some`: even `None` policy gets
/// an explicit (possibly empty) config, so the runtime never falls back to its own.
pub fn dns_config(
    pod: &Pod,
    cluster: &ClusterConfig,
    host_resolv_conf: &str,
) -> Option<api::DnsConfig> {
    let spec = pod.spec.as_ref();
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    let host = parse_resolv_conf(host_resolv_conf);
    let mut config = match spec.and_then(|s| s.dns_policy.as_deref()) {
        Some("None") => api::DnsConfig::default(),
        Some("Default") => host,
        Some("ClusterFirst") | None if host_network => host,
        // ClusterFirst, ClusterFirstWithHostNet, and anything unknown (upstream falls
        // back to ClusterFirst): the cluster DNS only; it forwards the rest itself.
        _ => {
            let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
            let domain = &cluster.cluster_domain;
            // Without a cluster domain there is nothing to search but the host's domains.
            let mut searches = if domain.is_empty() {
                Vec::new()
            } else {
                vec![
                    format!("{namespace}.svc.{domain}"),
                    format!("svc.{domain}"),
                    domain.clone(),
                ]
            };
            searches.extend(host.searches);
            api::DnsConfig {
                servers: vec![cluster.cluster_dns.to_string()],
                searches: without_duplicates(searches),
                options: vec!["ndots:5".into()],
            }
        }
    };
    if let Some(extra) = spec.and_then(|s| s.dns_config.as_ref()) {
        merge_pod_dns_config(&mut config, extra);
    }
    fit_limits(&mut config, pod);
    Some(config)
}

/// The parts of a resolv.conf the sandbox needs: every `nameserver`, the last `search`
/// line (trailing dots dropped, `.` ignored), and `options` merged by name, later winning.
pub fn parse_resolv_conf(text: &str) -> api::DnsConfig {
    let mut config = api::DnsConfig::default();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("nameserver") => config.servers.extend(fields.next().map(str::to_string)),
            Some("search") => {
                config.searches = fields
                    .filter(|s| *s != ".")
                    .map(|s| s.trim_end_matches('.').to_string())
                    .collect();
            }
            Some("options") => {
                for option in fields {
                    set_option(&mut config.options, option.to_string());
                }
            }
            _ => {}
        }
    }
    config
}

/// Add `option` (`name` or `name:value`), replacing an option of the same name in place.
fn set_option(options: &mut Vec<String>, option: String) {
    let name = |o: &str| o.split(':').next().unwrap_or_default().to_string();
    let new_name = name(&option);
    match options.iter_mut().find(|o| name(o) == new_name) {
        Some(existing) => *existing = option,
        None => options.push(option),
    }
}

/// `spec.dnsConfig` is appended: nameservers and searches after the policy's (without
/// duplicates), options merged by name with the pod's winning.
fn merge_pod_dns_config(config: &mut api::DnsConfig, extra: &PodDNSConfig) {
    let servers = config
        .servers
        .drain(..)
        .chain(extra.nameservers.iter().flatten().cloned())
        .collect();
    config.servers = without_duplicates(servers);
    let searches = config
        .searches
        .drain(..)
        .chain(extra.searches.iter().flatten().cloned())
        .collect();
    config.searches = without_duplicates(searches);
    for option in extra.options.iter().flatten() {
        let Some(name) = option.name.as_deref().filter(|n| !n.is_empty()) else {
            continue;
        };
        let text = match option.value.as_deref() {
            Some(value) if !value.is_empty() => format!("{name}:{value}"),
            _ => name.to_string(),
        };
        set_option(&mut config.options, text);
    }
}

fn without_duplicates(items: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    items
        .into_iter()
        .filter(|item| seen.insert(item.clone()))
        .collect()
}

/// Cut the config to what resolvers accept, as upstream: at most 3 nameservers, 32
/// search domains, none longer than 253 characters, a search line of at most 2048.
/// Upstream reports the cut as a `DNSConfigForming` event; here it is logged.
fn fit_limits(config: &mut api::DnsConfig, pod: &Pod) {
    let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
    let mut search_cut = config.searches.len() > MAX_SEARCH_DOMAINS;
    config.searches.truncate(MAX_SEARCH_DOMAINS);
    let before = config.searches.len();
    config
        .searches
        .retain(|s| s.len() <= MAX_SEARCH_DOMAIN_CHARS);
    search_cut |= config.searches.len() != before;
    while config.searches.join(" ").len() > MAX_SEARCH_LINE_CHARS {
        config.searches.pop();
        search_cut = true;
    }
    if search_cut {
        warn!(
            pod = %pod_name,
            search = %config.searches.join(" "),
            "Search Line limits were exceeded, some search paths have been omitted"
        );
    }
    if config.servers.len() > MAX_NAMESERVERS {
        config.servers.truncate(MAX_NAMESERVERS);
        warn!(
            pod = %pod_name,
            nameservers = %config.servers.join(" "),
            "Nameserver limits were exceeded, some nameservers have been omitted"
        );
    }
}

/// The pod's host name: `spec.hostname` or the pod name, cut to 63 characters without a
/// trailing `-` or `.`, as upstream.
pub fn pod_hostname(pod: &Pod) -> String {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let hostname = pod
        .spec
        .as_ref()
        .and_then(|s| s.hostname.as_deref())
        .filter(|h| !h.is_empty())
        .unwrap_or(name);
    if hostname.len() <= MAX_HOSTNAME_CHARS {
        return hostname.to_string();
    }
    // Names are DNS labels/subdomains (ASCII), so byte slicing is safe; be careful anyway.
    let mut cut = MAX_HOSTNAME_CHARS;
    while !hostname.is_char_boundary(cut) {
        cut -= 1;
    }
    hostname[..cut].trim_end_matches(['-', '.']).to_string()
}

/// `/etc/hosts` for a pod-network pod: localhost entries, the pod's IPs with its hostname
/// (and FQDN with subdomain), then `hostAliases`.
pub fn etc_hosts(pod: &Pod, pod_ips: &[String], cluster_domain: &str) -> String {
    let hostname = pod_hostname(pod);
    let spec = pod.spec.as_ref();
    let subdomain = spec
        .and_then(|s| s.subdomain.as_deref())
        .filter(|s| !s.is_empty());
    let mut hosts = String::from(
        "# Kubernetes-managed hosts file.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         fe00::0\tip6-mcastprefix\n\
         fe00::1\tip6-allnodes\n\
         fe00::2\tip6-allrouters\n",
    );
    for ip in pod_ips {
        match subdomain {
            Some(subdomain) => {
                let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
                hosts.push_str(&format!(
                    "{ip}\t{hostname}.{subdomain}.{namespace}.svc.{cluster_domain}\t{hostname}\n"
                ));
            }
            None => hosts.push_str(&format!("{ip}\t{hostname}\n")),
        }
    }
    hosts.push_str(&host_aliases(
        spec.and_then(|s| s.host_aliases.as_deref())
            .unwrap_or_default(),
    ));
    hosts
}

fn host_aliases(aliases: &[HostAlias]) -> String {
    if aliases.is_empty() {
        return String::new();
    }
    let mut text = String::from("\n# Entries added by HostAliases.\n");
    for alias in aliases {
        let names = alias.hostnames.as_deref().unwrap_or_default().join("\t");
        text.push_str(&format!("{}\t{names}\n", alias.ip));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodDNSConfigOption, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    const HOST_RESOLV: &str = "\
# generated
nameserver 192.168.1.1
nameserver 8.8.8.8
search corp.example. lab.example
options edns0 ndots:2
options ndots:1
";

    fn pod(policy: Option<&str>, host_network: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-1".into()),
                namespace: Some("shop".into()),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                dns_policy: policy.map(str::to_string),
                host_network: Some(host_network),
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    fn config(pod: &Pod) -> api::DnsConfig {
        dns_config(pod, &ClusterConfig::default(), HOST_RESOLV).unwrap()
    }

    #[test]
    fn parses_resolv_conf() {
        let parsed = parse_resolv_conf(HOST_RESOLV);
        assert_eq!(parsed.servers, vec!["192.168.1.1", "8.8.8.8"]);
        assert_eq!(parsed.searches, vec!["corp.example", "lab.example"]);
        assert_eq!(parsed.options, vec!["edns0", "ndots:1"]);
        let later = parse_resolv_conf("search a\nsearch b .\nnameserver\n");
        assert_eq!(later.searches, vec!["b"]);
        assert!(later.servers.is_empty());
    }

    #[test]
    fn cluster_first_uses_the_cluster_dns() {
        let expected = api::DnsConfig {
            servers: vec!["10.43.0.10".into()],
            searches: vec![
                "shop.svc.cluster.local".into(),
                "svc.cluster.local".into(),
                "cluster.local".into(),
                "corp.example".into(),
                "lab.example".into(),
            ],
            options: vec!["ndots:5".into()],
        };
        assert_eq!(config(&pod(Some("ClusterFirst"), false)), expected);
        assert_eq!(config(&pod(None, false)), expected);
        assert_eq!(
            config(&pod(Some("ClusterFirstWithHostNet"), true)),
            expected
        );
    }

    #[test]
    fn default_and_host_network_use_the_host() {
        let host = parse_resolv_conf(HOST_RESOLV);
        assert_eq!(config(&pod(Some("Default"), false)), host);
        assert_eq!(config(&pod(Some("ClusterFirst"), true)), host);
        assert_eq!(config(&pod(None, true)), host);
    }

    #[test]
    fn none_takes_only_the_pod_dns_config() {
        let mut pod = pod(Some("None"), false);
        assert_eq!(config(&pod), api::DnsConfig::default());
        pod.spec.as_mut().unwrap().dns_config = Some(PodDNSConfig {
            nameservers: Some(vec!["1.1.1.1".into()]),
            searches: Some(vec!["my.dns.search.suffix".into()]),
            options: Some(vec![
                PodDNSConfigOption {
                    name: Some("ndots".into()),
                    value: Some("2".into()),
                },
                PodDNSConfigOption {
                    name: Some("edns0".into()),
                    value: None,
                },
            ]),
        });
        assert_eq!(
            config(&pod),
            api::DnsConfig {
                servers: vec!["1.1.1.1".into()],
                searches: vec!["my.dns.search.suffix".into()],
                options: vec!["ndots:2".into(), "edns0".into()],
            }
        );
    }

    #[test]
    fn pod_dns_config_is_merged_and_limited() {
        let mut pod = pod(Some("ClusterFirst"), false);
        pod.spec.as_mut().unwrap().dns_config = Some(PodDNSConfig {
            nameservers: Some(vec![
                "10.43.0.10".into(),
                "1.1.1.1".into(),
                "9.9.9.9".into(),
                "8.8.4.4".into(),
            ]),
            searches: Some(
                std::iter::once("svc.cluster.local".to_string())
                    .chain((0..40).map(|i| format!("d{i}.example")))
                    .collect(),
            ),
            options: Some(vec![PodDNSConfigOption {
                name: Some("ndots".into()),
                value: Some("1".into()),
            }]),
        });
        let merged = config(&pod);
        assert_eq!(merged.servers, vec!["10.43.0.10", "1.1.1.1", "9.9.9.9"]);
        assert_eq!(merged.searches.len(), 32);
        assert_eq!(merged.searches[1], "svc.cluster.local");
        assert_eq!(merged.searches[5], "d0.example");
        assert_eq!(merged.options, vec!["ndots:1"]);
    }

    #[test]
    fn overlong_search_domains_and_lines_are_cut() {
        let mut config = api::DnsConfig {
            searches: vec!["a".repeat(254), "ok".into()],
            ..api::DnsConfig::default()
        };
        fit_limits(&mut config, &Pod::default());
        assert_eq!(config.searches, vec!["ok"]);
        let mut config = api::DnsConfig {
            searches: (0..10).map(|i| format!("{i}{}", "x".repeat(249))).collect(),
            ..api::DnsConfig::default()
        };
        fit_limits(&mut config, &Pod::default());
        assert_eq!(config.searches.len(), 8);
        assert!(config.searches.join(" ").len() <= MAX_SEARCH_LINE_CHARS);
    }

    #[test]
    fn hostnames() {
        let mut pod = pod(None, false);
        assert_eq!(pod_hostname(&pod), "web-1");
        pod.spec.as_mut().unwrap().hostname = Some("db-0".into());
        assert_eq!(pod_hostname(&pod), "db-0");
        let long = format!("{}-{}", "a".repeat(62), "b".repeat(10));
        pod.spec.as_mut().unwrap().hostname = None;
        pod.metadata.name = Some(long);
        assert_eq!(pod_hostname(&pod), "a".repeat(62));
    }

    #[test]
    fn etc_hosts_like_upstream() {
        let mut pod = pod(None, false);
        let header = "# Kubernetes-managed hosts file.\n\
                      127.0.0.1\tlocalhost\n\
                      ::1\tlocalhost ip6-localhost ip6-loopback\n\
                      fe00::0\tip6-localnet\n\
                      fe00::0\tip6-mcastprefix\n\
                      fe00::1\tip6-allnodes\n\
                      fe00::2\tip6-allrouters\n";
        assert_eq!(
            etc_hosts(&pod, &["10.42.0.7".into()], "cluster.local"),
            format!("{header}10.42.0.7\tweb-1\n")
        );

        let spec = pod.spec.as_mut().unwrap();
        spec.hostname = Some("db-0".into());
        spec.subdomain = Some("db".into());
        spec.host_aliases = Some(vec![
            HostAlias {
                ip: "127.0.0.1".into(),
                hostnames: Some(vec!["foo.local".into(), "bar.local".into()]),
            },
            HostAlias {
                ip: "10.1.2.3".into(),
                hostnames: Some(vec!["foo.remote".into()]),
            },
        ]);
        assert_eq!(
            etc_hosts(
                &pod,
                &["10.42.0.7".into(), "fd00::7".into()],
                "cluster.local"
            ),
            format!(
                "{header}\
                 10.42.0.7\tdb-0.db.shop.svc.cluster.local\tdb-0\n\
                 fd00::7\tdb-0.db.shop.svc.cluster.local\tdb-0\n\
                 \n\
                 # Entries added by HostAliases.\n\
                 127.0.0.1\tfoo.local\tbar.local\n\
                 10.1.2.3\tfoo.remote\n"
            )
        );
    }
}
