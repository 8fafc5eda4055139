//! A container's environment: `env` (values, configMap/secret keys, fieldRef,
//! resourceFieldRef, `$(VAR)` expansion), `envFrom`, and the service variables
//! (`KUBERNETES_SERVICE_HOST`, `<SVC>_SERVICE_HOST`, ... when enableServiceLinks).
//!
//! The rules are upstream's, so workloads see the same variables as on any cluster:
//! `envFrom` first (later sources overriding earlier ones), then `env` in order (overriding
//! `envFrom`), each `value` expanded against the variables defined before it and the
//! service variables; then the service variables not already defined. The `kubernetes`
//! Service of `default` is always included, even with `enableServiceLinks: false`.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, Service};
use tracing::warn;

use crate::cri::api;
use crate::volumes::api_message;
use crate::volumes::downward_api::{self, Allocatable};
use crate::{Error, Result};

/// The container's environment for CRI, in a stable order: `envFrom`/`env` variables
/// in the order they were first defined, then the service variables by name.
pub async fn container_env(
    client: &kube::Client,
    pod: &Pod,
    container: &Container,
    node_name: &str,
    pod_ips: &[String],
    host_ip: &str,
) -> Result<Vec<api::KeyValue>> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let spec = pod.spec.as_ref();
    let enable_service_links = spec.and_then(|s| s.enable_service_links).unwrap_or(true);
    let service_env = service_env(client, namespace, enable_service_links).await?;
    let mut objects = Objects::new(client, namespace);
    let mut env = OrderedEnv::default();

    for source in container.env_from.iter().flatten() {
        let prefix = source.prefix.as_deref().unwrap_or_default();
        let (kind, name, entries) = if let Some(reference) = &source.config_map_ref {
            let optional = reference.optional.unwrap_or(false);
            let Some(config_map) = objects.config_map(&reference.name, optional).await? else {
                continue;
            };
            let entries: Vec<(String, String)> =
                config_map.data.clone().into_iter().flatten().collect();
            ("configMap", reference.name.as_str(), entries)
        } else if let Some(reference) = &source.secret_ref {
            let optional = reference.optional.unwrap_or(false);
            let Some(secret) = objects.secret(&reference.name, optional).await? else {
                continue;
            };
            let entries = secret
                .data
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
                .collect();
            ("secret", reference.name.as_str(), entries)
        } else {
            continue;
        };
        let mut invalid = Vec::new();
        for (key, value) in entries {
            let key = format!("{prefix}{key}");
            if is_env_var_name(&key) {
                env.set(key, value);
            } else {
                invalid.push(key);
            }
        }
        if !invalid.is_empty() {
            // Upstream reports these as an `InvalidEnvironmentVariableNames` event.
            warn!(
                pod = %pod.metadata.name.as_deref().unwrap_or_default(),
                keys = %invalid.join(", "),
                "keys from the envFrom {kind} {namespace}/{name} were skipped since they are \
                 considered invalid environment variable names"
            );
        }
    }

    let mut allocatable: Option<Allocatable> = None;
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (Some(value), _) if !value.is_empty() => expand(value, |name| {
                env.get(name)
                    .or_else(|| service_env.get(name).map(String::as_str))
                    .map(str::to_string)
            }),
            (_, Some(from)) => {
                if let Some(field) = &from.field_ref {
                    downward_api::check_field_api_version(field.api_version.as_deref())
                        .and_then(|()| pod_field(pod, &field.field_path, pod_ips, host_ip))
                        .map_err(Error::Other)?
                } else if let Some(selector) = &from.resource_field_ref {
                    let target = match selector.container_name.as_deref() {
                        Some(name) if !name.is_empty() => downward_api::find_container(pod, name)
                            .ok_or_else(|| {
                            Error::Other(format!("container {name} not found"))
                        })?,
                        _ => container,
                    };
                    if allocatable.is_none() && downward_api::needs_allocatable(selector, target) {
                        allocatable =
                            Some(downward_api::node_allocatable(client, node_name).await?);
                    }
                    downward_api::container_resource(selector, target, allocatable.as_ref())
                        .map_err(Error::Other)?
                } else if let Some(key_ref) = &from.config_map_key_ref {
                    let optional = key_ref.optional.unwrap_or(false);
                    let Some(config_map) = objects.config_map(&key_ref.name, optional).await?
                    else {
                        continue;
                    };
                    match config_map.data.as_ref().and_then(|d| d.get(&key_ref.key)) {
                        Some(value) => value.clone(),
                        None if optional => continue,
                        None => {
                            return Err(Error::Other(format!(
                                "couldn't find key {} in ConfigMap {namespace}/{}",
                                key_ref.key, key_ref.name
                            )))
                        }
                    }
                } else if let Some(key_ref) = &from.secret_key_ref {
                    let optional = key_ref.optional.unwrap_or(false);
                    let Some(secret) = objects.secret(&key_ref.name, optional).await? else {
                        continue;
                    };
                    match secret.data.as_ref().and_then(|d| d.get(&key_ref.key)) {
                        Some(value) => String::from_utf8_lossy(&value.0).into_owned(),
                        None if optional => continue,
                        None => {
                            return Err(Error::Other(format!(
                                "couldn't find key {} in Secret {namespace}/{}",
                                key_ref.key, key_ref.name
                            )))
                        }
                    }
                } else {
                    String::new()
                }
            }
            _ => String::new(),
        };
        env.set(var.name.clone(), value);
    }

    let mut result: Vec<api::KeyValue> = env
        .entries
        .into_iter()
        .map(|(key, value)| api::KeyValue { key, value })
        .collect();
    for (key, value) in service_env {
        if !env.index.contains_key(&key) {
            result.push(api::KeyValue { key, value });
        }
    }
    Ok(result)
}

/// Variables in the order first defined; redefining one changes its value in place.
#[derive(Default)]
struct OrderedEnv {
    entries: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl OrderedEnv {
    fn set(&mut self, key: String, value: String) {
        match self.index.get(&key) {
            Some(&i) => self.entries[i].1 = value,
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, value));
            }
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.index.get(key).map(|&i| self.entries[i].1.as_str())
    }
}

/// ConfigMaps and Secrets of the pod's namespace, each read at most once per container.
struct Objects<'a> {
    client: &'a kube::Client,
    namespace: &'a str,
    config_maps: HashMap<String, Option<ConfigMap>>,
    secrets: HashMap<String, Option<Secret>>,
}

impl<'a> Objects<'a> {
    fn new(client: &'a kube::Client, namespace: &'a str) -> Objects<'a> {
        Objects {
            client,
            namespace,
            config_maps: HashMap::new(),
            secrets: HashMap::new(),
        }
    }

    /// The ConfigMap; `None` if it is missing and `optional`, an error naming it if it is
    /// missing otherwise.
    async fn config_map(&mut self, name: &str, optional: bool) -> Result<Option<&ConfigMap>> {
        if !self.config_maps.contains_key(name) {
            let api: kube::Api<ConfigMap> =
                kube::Api::namespaced(self.client.clone(), self.namespace);
            let found = api.get_opt(name).await.map_err(|err| {
                Error::Other(format!(
                    "couldn't get configMap {}/{name}: {}",
                    self.namespace,
                    api_message(&err)
                ))
            })?;
            self.config_maps.insert(name.to_string(), found);
        }
        match self.config_maps.get(name).and_then(Option::as_ref) {
            Some(found) => Ok(Some(found)),
            None if optional => Ok(None),
            None => Err(Error::Other(format!("configmap {name:?} not found"))),
        }
    }

    async fn secret(&mut self, name: &str, optional: bool) -> Result<Option<&Secret>> {
        if !self.secrets.contains_key(name) {
            let api: kube::Api<Secret> = kube::Api::namespaced(self.client.clone(), self.namespace);
            let found = api.get_opt(name).await.map_err(|err| {
                Error::Other(format!(
                    "couldn't get secret {}/{name}: {}",
                    self.namespace,
                    api_message(&err)
                ))
            })?;
            self.secrets.insert(name.to_string(), found);
        }
        match self.secrets.get(name).and_then(Option::as_ref) {
            Some(found) => Ok(Some(found)),
            None if optional => Ok(None),
            None => Err(Error::Other(format!("secret {name:?} not found"))),
        }
    }
}

/// The service variables by name: the `kubernetes` Service of `default` always, and
/// with service links every Service of the pod's namespace (which wins over `default`'s
/// when both are named `kubernetes`).
async fn service_env(
    client: &kube::Client,
    namespace: &str,
    enable_service_links: bool,
) -> Result<BTreeMap<String, String>> {
    let mut services: BTreeMap<String, Service> = BTreeMap::new();
    let defaults: kube::Api<Service> = kube::Api::namespaced(client.clone(), "default");
    let master = defaults.get_opt("kubernetes").await.map_err(|err| {
        Error::Other(format!(
            "reading service default/kubernetes: {}",
            api_message(&err)
        ))
    })?;
    if let Some(master) = master {
        services.insert("kubernetes".into(), master);
    }
    if enable_service_links {
        let api: kube::Api<Service> = kube::Api::namespaced(client.clone(), namespace);
        let listed = api.list(&Default::default()).await.map_err(|err| {
            Error::Other(format!(
                "listing services of namespace {namespace}: {}",
                api_message(&err)
            ))
        })?;
        for service in listed.items {
            let name = service.metadata.name.clone().unwrap_or_default();
            services.insert(name, service);
        }
    }
    Ok(service_variables(services.values()).into_iter().collect())
}

/// Upstream's service variables for each Service with a cluster IP: `<NAME>_SERVICE_HOST`,
/// `<NAME>_SERVICE_PORT` (the first port), `<NAME>_SERVICE_PORT_<PORTNAME>` for named
/// ports, and the Docker-link variables `<NAME>_PORT`, `<NAME>_PORT_<port>_<PROTO>` with
/// `_PROTO`, `_PORT` and `_ADDR`.
pub fn service_variables<'a>(
    services: impl IntoIterator<Item = &'a Service>,
) -> Vec<(String, String)> {
    let mut vars = Vec::new();
    for service in services {
        let Some(spec) = &service.spec else { continue };
        let cluster_ip = spec.cluster_ip.as_deref().unwrap_or_default();
        if cluster_ip.is_empty() || cluster_ip == "None" {
            continue;
        }
        let prefix = variable_name(service.metadata.name.as_deref().unwrap_or_default());
        vars.push((format!("{prefix}_SERVICE_HOST"), cluster_ip.to_string()));
        let ports = spec.ports.as_deref().unwrap_or_default();
        let Some(first) = ports.first() else { continue };
        vars.push((format!("{prefix}_SERVICE_PORT"), first.port.to_string()));
        for port in ports {
            if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
                vars.push((
                    format!("{prefix}_SERVICE_PORT_{}", variable_name(name)),
                    port.port.to_string(),
                ));
            }
        }
        // IPv6 addresses are bracketed in URLs, as Go's JoinHostPort does.
        let host = if cluster_ip.contains(':') {
            format!("[{cluster_ip}]")
        } else {
            cluster_ip.to_string()
        };
        for (i, port) in ports.iter().enumerate() {
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            let url = format!("{}://{host}:{}", protocol.to_lowercase(), port.port);
            if i == 0 {
                vars.push((format!("{prefix}_PORT"), url.clone()));
            }
            let port_prefix = format!("{prefix}_PORT_{}_{}", port.port, protocol.to_uppercase());
            vars.push((port_prefix.clone(), url));
            vars.push((format!("{port_prefix}_PROTO"), protocol.to_lowercase()));
            vars.push((format!("{port_prefix}_PORT"), port.port.to_string()));
            vars.push((format!("{port_prefix}_ADDR"), cluster_ip.to_string()));
        }
    }
    vars
}

/// `my-svc` → `MY_SVC`.
fn variable_name(name: &str) -> String {
    name.replace('-', "_").to_uppercase()
}

/// Upstream's rule for names taken from `envFrom` keys: `[-._a-zA-Z][-._a-zA-Z0-9]*`,
/// and not `.`, `..` or anything starting with `..`.
pub fn is_env_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    !first.is_ascii_digit()
        && allowed(first)
        && chars.all(allowed)
        && name != "."
        && !name.starts_with("..")
}

/// Expand `$(NAME)` references with `lookup`, as upstream: `$$` is a literal `$`,
/// references to unknown names and unterminated `$(` stay as written, and a `$` before
/// anything else is kept with that character.
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let Some(next) = after.chars().next() else {
            out.push('$');
            rest = after;
            break;
        };
        match next {
            '$' => {
                out.push('$');
                rest = &after[1..];
            }
            '(' => match after.find(')') {
                Some(close) => {
                    let name = &after[1..close];
                    match lookup(name) {
                        Some(value) => out.push_str(&value),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &after[close + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = &after[1..];
                }
            },
            other => {
                out.push('$');
                out.push(other);
                rest = &after[other.len_utf8()..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A pod field for an environment variable: the `metadata.*` paths of the downward API
/// plus `spec.nodeName`, `spec.serviceAccountName`, `status.hostIP(s)` and
/// `status.podIP(s)`. Pod IPs are listed host-IP family first, as upstream orders them.
pub fn pod_field(
    pod: &Pod,
    field_path: &str,
    pod_ips: &[String],
    host_ip: &str,
) -> Result<String, String> {
    let spec = pod.spec.as_ref();
    let host_is_v6 = host_ip.contains(':');
    let mut ips: Vec<&str> = pod_ips.iter().map(String::as_str).collect();
    ips.sort_by_key(|ip| ip.contains(':') != host_is_v6);
    Ok(match field_path {
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => host_ip.to_string(),
        "status.podIP" => ips.first().map(|ip| ip.to_string()).unwrap_or_default(),
        "status.podIPs" => ips.join(","),
        other => return downward_api::metadata_field(pod, other),
    })
}

/// The variables `subPathExpr` can use without asking the API: literal values and pod
/// fields (IPs from the pod's status, if it has them yet). Values from ConfigMaps,
/// Secrets and resources are not available there.
pub fn sub_path_env(pod: &Pod, container: &Container) -> HashMap<String, String> {
    let status = pod.status.as_ref();
    let pod_ips: Vec<String> = status
        .and_then(|s| s.pod_ips.as_ref())
        .map(|ips| ips.iter().map(|ip| ip.ip.clone()).collect())
        .or_else(|| status.and_then(|s| s.pod_ip.clone()).map(|ip| vec![ip]))
        .unwrap_or_default();
    let host_ip = status.and_then(|s| s.host_ip.clone()).unwrap_or_default();
    let mut env = HashMap::new();
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (Some(value), _) if !value.is_empty() => expand(value, |name| env.get(name).cloned()),
            (_, Some(from)) => match &from.field_ref {
                Some(field) => match pod_field(pod, &field.field_path, &pod_ips, &host_ip) {
                    Ok(value) => value,
                    Err(_) => continue,
                },
                None => continue,
            },
            _ => String::new(),
        };
        env.insert(var.name.clone(), value);
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        EnvVar, EnvVarSource, ObjectFieldSelector, PodSpec, PodStatus, ServicePort, ServiceSpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn expansion_follows_upstream() {
        let known = vars(&[("A", "alpha"), ("EMPTY", "")]);
        let e = |input: &str| expand(input, |name| known.get(name).cloned());
        assert_eq!(e("$(A)-$(A)"), "alpha-alpha");
        assert_eq!(e("x$(EMPTY)y"), "xy");
        assert_eq!(e("$(MISSING)"), "$(MISSING)");
        assert_eq!(e("$$(A)"), "$(A)");
        assert_eq!(e("$$$(A)"), "$alpha");
        assert_eq!(e("cost: $5"), "cost: $5");
        assert_eq!(e("trailing $"), "trailing $");
        assert_eq!(e("$(A"), "$(A");
        assert_eq!(e("$($(A))"), "$($(A))");
        assert_eq!(e("$é$(A)"), "$éalpha");
        assert_eq!(e("no refs"), "no refs");
    }

    fn service(name: &str, ip: &str, ports: &[(Option<&str>, i32, Option<&str>)]) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some(ip.into()),
                ports: Some(
                    ports
                        .iter()
                        .map(|(name, port, protocol)| ServicePort {
                            name: name.map(str::to_string),
                            port: *port,
                            protocol: protocol.map(str::to_string),
                            ..ServicePort::default()
                        })
                        .collect(),
                ),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        }
    }

    #[test]
    fn service_variables_match_upstream() {
        let kubernetes = service(
            "kubernetes",
            "10.43.0.1",
            &[(Some("https"), 443, Some("TCP"))],
        );
        let dns = service(
            "kube-dns",
            "10.43.0.10",
            &[
                (Some("dns"), 53, Some("UDP")),
                (Some("dns-tcp"), 53, Some("TCP")),
            ],
        );
        let headless = service("db", "None", &[(None, 5432, None)]);
        let got = service_variables([&kubernetes, &dns, &headless]);
        let expected = [
            ("KUBERNETES_SERVICE_HOST", "10.43.0.1"),
            ("KUBERNETES_SERVICE_PORT", "443"),
            ("KUBERNETES_SERVICE_PORT_HTTPS", "443"),
            ("KUBERNETES_PORT", "tcp://10.43.0.1:443"),
            ("KUBERNETES_PORT_443_TCP", "tcp://10.43.0.1:443"),
            ("KUBERNETES_PORT_443_TCP_PROTO", "tcp"),
            ("KUBERNETES_PORT_443_TCP_PORT", "443"),
            ("KUBERNETES_PORT_443_TCP_ADDR", "10.43.0.1"),
            ("KUBE_DNS_SERVICE_HOST", "10.43.0.10"),
            ("KUBE_DNS_SERVICE_PORT", "53"),
            ("KUBE_DNS_SERVICE_PORT_DNS", "53"),
            ("KUBE_DNS_SERVICE_PORT_DNS_TCP", "53"),
            ("KUBE_DNS_PORT", "udp://10.43.0.10:53"),
            ("KUBE_DNS_PORT_53_UDP", "udp://10.43.0.10:53"),
            ("KUBE_DNS_PORT_53_UDP_PROTO", "udp"),
            ("KUBE_DNS_PORT_53_UDP_PORT", "53"),
            ("KUBE_DNS_PORT_53_UDP_ADDR", "10.43.0.10"),
            ("KUBE_DNS_PORT_53_TCP", "tcp://10.43.0.10:53"),
            ("KUBE_DNS_PORT_53_TCP_PROTO", "tcp"),
            ("KUBE_DNS_PORT_53_TCP_PORT", "53"),
            ("KUBE_DNS_PORT_53_TCP_ADDR", "10.43.0.10"),
        ];
        let got: Vec<(&str, &str)> = got.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, expected);

        let v6 = service("web", "fd00::10", &[(None, 80, None)]);
        let got = service_variables([&v6]);
        assert!(got.contains(&("WEB_PORT".into(), "tcp://[fd00::10]:80".into())));
        assert!(got.contains(&("WEB_PORT_80_TCP_ADDR".into(), "fd00::10".into())));
    }

    #[test]
    fn env_var_names() {
        for good in ["A", "my.var", "-x", "_1", "a-b.c_d"] {
            assert!(is_env_var_name(good), "{good}");
        }
        for bad in ["", "1A", "a b", ".", "..", "..a", "a=b", "é"] {
            assert!(!is_env_var_name(bad), "{bad}");
        }
    }

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-1".into()),
                namespace: Some("shop".into()),
                uid: Some("u-1".into()),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: Some("node-a".into()),
                service_account_name: Some("builder".into()),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                pod_ip: Some("10.42.0.7".into()),
                host_ip: Some("192.168.1.5".into()),
                ..PodStatus::default()
            }),
        }
    }

    #[test]
    fn pod_fields() {
        let pod = pod();
        let ips = ["fd00::7".to_string(), "10.42.0.7".to_string()];
        let field = |path| pod_field(&pod, path, &ips, "192.168.1.5").unwrap();
        assert_eq!(field("metadata.name"), "web-1");
        assert_eq!(field("metadata.labels['app']"), "web");
        assert_eq!(field("spec.nodeName"), "node-a");
        assert_eq!(field("spec.serviceAccountName"), "builder");
        assert_eq!(field("status.hostIP"), "192.168.1.5");
        assert_eq!(field("status.hostIPs"), "192.168.1.5");
        assert_eq!(field("status.podIP"), "10.42.0.7");
        assert_eq!(field("status.podIPs"), "10.42.0.7,fd00::7");
        assert!(pod_field(&pod, "spec.hostname", &ips, "").is_err());
    }

    #[test]
    fn sub_path_variables() {
        let field = |name: &str, path: &str| EnvVar {
            name: name.into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    api_version: None,
                    field_path: path.into(),
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        };
        let container = Container {
            env: Some(vec![
                field("POD", "metadata.name"),
                field("IP", "status.podIP"),
                EnvVar {
                    name: "DIR".into(),
                    value: Some("logs/$(POD)".into()),
                    ..EnvVar::default()
                },
            ]),
            ..Container::default()
        };
        let env = sub_path_env(&pod(), &container);
        assert_eq!(env["POD"], "web-1");
        assert_eq!(env["IP"], "10.42.0.7");
        assert_eq!(env["DIR"], "logs/web-1");
    }
}
