//! Where on which kubelet a pod subresource request goes, as pure functions of the Pod,
//! its Node and the request's query: the container (defaulted as upstream and kubectl
//! do), the node's address and kubelet port, and the kubelet path and query.

use std::net::IpAddr;

use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// The annotation naming the container `kubectl` and the API use when none is given.
pub const DEFAULT_CONTAINER_ANNOTATION: &str = "kubectl.kubernetes.io/default-container";
/// The kubelet port when the Node does not report one.
const DEFAULT_KUBELET_PORT: u16 = 10250;

/// The pod subresources served by a kubelet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subresource {
    Log,
    Exec,
    Attach,
    PortForward,
}

impl Subresource {
    pub fn parse(name: &str) -> Option<Subresource> {
        match name {
            "log" => Some(Subresource::Log),
            "exec" => Some(Subresource::Exec),
            "attach" => Some(Subresource::Attach),
            "portforward" => Some(Subresource::PortForward),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Subresource::Log => "log",
            Subresource::Exec => "exec",
            Subresource::Attach => "attach",
            Subresource::PortForward => "portforward",
        }
    }

    /// Whether the subresource opens a bidirectional stream (an HTTP upgrade).
    pub fn is_stream(self) -> bool {
        self != Subresource::Log
    }
}

fn names<'a>(spec: &'a Value, field: &str) -> impl Iterator<Item = &'a str> {
    spec.get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
}

/// Every container name of the pod: init containers, containers, ephemeral containers,
/// in the order upstream lists them.
fn all_containers(pod: &Value) -> Vec<&str> {
    let spec = &pod["spec"];
    names(spec, "initContainers")
        .chain(names(spec, "containers"))
        .chain(names(spec, "ephemeralContainers"))
        .collect()
}

/// The container a request is for: the one named, or the pod's default one.
pub fn container(pod: &Value, requested: Option<&str>) -> ApiResult<String> {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let all = all_containers(pod);
    if let Some(name) = requested.filter(|n| !n.is_empty()) {
        if all.contains(&name) {
            return Ok(name.to_string());
        }
        return Err(ApiError::bad_request(format!(
            "container {name} is not valid for pod {pod_name}"
        )));
    }
    let regular: Vec<&str> = names(&pod["spec"], "containers").collect();
    if let Some(default) = pod["metadata"]["annotations"][DEFAULT_CONTAINER_ANNOTATION].as_str() {
        if regular.contains(&default) {
            return Ok(default.to_string());
        }
    }
    match regular.as_slice() {
        [only] => Ok(only.to_string()),
        [] => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {pod_name}"
        ))),
        _ => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {pod_name}, choose one of: [{}]",
            all.join(" ")
        ))),
    }
}

/// How to reach a node's kubelet: the address to dial (also the name its serving
/// certificate must carry) and the port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeletAddress {
    pub host: String,
    pub port: u16,
}

impl KubeletAddress {
    /// `host:port`, with brackets around an IPv6 address.
    pub fn authority(&self) -> String {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("[{ip}]:{}", self.port),
            _ => format!("{}:{}", self.host, self.port),
        }
    }
}

/// The kubelet of a Node: its first InternalIP (then ExternalIP, then Hostname, as k3s
/// configures `--kubelet-preferred-address-types`) and its reported kubelet port.
pub fn kubelet_address(node: &Value) -> ApiResult<KubeletAddress> {
    let addresses: Vec<(&str, &str)> = node["status"]["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| Some((a["type"].as_str()?, a["address"].as_str()?)))
        .collect();
    let host = ["InternalIP", "ExternalIP", "Hostname"]
        .iter()
        .find_map(|wanted| {
            addresses
                .iter()
                .find(|(kind, address)| kind == wanted && !address.is_empty())
        })
        .map(|(_, address)| address.to_string())
        .ok_or_else(|| {
            let known: Vec<String> = addresses
                .iter()
                .map(|(kind, address)| format!("{kind}:{address}"))
                .collect();
            ApiError::bad_request(format!(
                "no preferred addresses found; known addresses: [{}]",
                known.join(" ")
            ))
        })?;
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
        .unwrap_or(DEFAULT_KUBELET_PORT);
    Ok(KubeletAddress { host, port })
}

/// The kubelet path for a request on a pod's subresource.
pub fn kubelet_path(
    subresource: Subresource,
    namespace: &str,
    pod: &str,
    container: Option<&str>,
) -> String {
    let container = container.unwrap_or_default();
    match subresource {
        Subresource::Log => format!("/containerLogs/{namespace}/{pod}/{container}"),
        Subresource::Exec => format!("/exec/{namespace}/{pod}/{container}"),
        Subresource::Attach => format!("/attach/{namespace}/{pod}/{container}"),
        Subresource::PortForward => format!("/portForward/{namespace}/{pod}"),
    }
}

/// The kubelet query for the API request's query, as upstream's API server rewrites it:
/// `container` is in the path; exec and attach name their streams `input`, `output`,
/// `error` and `tty` with the value `1`; port-forward's `ports` become `port`. Log options
/// keep their names.
pub fn kubelet_query(subresource: Subresource, query: &str) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let truthy = matches!(value.as_ref(), "true" | "1" | "True" | "TRUE");
        match (subresource, key.as_ref()) {
            (_, "container") => {}
            (
                Subresource::Exec | Subresource::Attach,
                stream @ ("stdin" | "stdout" | "stderr" | "tty"),
            ) => {
                if truthy {
                    let kubelet_name = match stream {
                        "stdin" => "input",
                        "stdout" => "output",
                        "stderr" => "error",
                        _ => "tty",
                    };
                    out.append_pair(kubelet_name, "1");
                }
            }
            (Subresource::PortForward, "ports") => {
                out.append_pair("port", &value);
            }
            _ => {
                out.append_pair(&key, &value);
            }
        }
    }
    out.finish()
}

/// The value of one query parameter.
pub fn query_value(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(containers: &[&str], init: &[&str], default: Option<&str>) -> Value {
        let list = |names: &[&str]| -> Vec<Value> {
            names
                .iter()
                .map(|n| json!({"name": n, "image": "busybox"}))
                .collect()
        };
        let mut pod = json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"containers": list(containers), "initContainers": list(init)},
        });
        if let Some(default) = default {
            pod["metadata"]["annotations"] = json!({DEFAULT_CONTAINER_ANNOTATION: default});
        }
        pod
    }

    #[test]
    fn containers_are_defaulted_as_upstream() {
        assert_eq!(container(&pod(&["app"], &[], None), None).unwrap(), "app");
        assert_eq!(
            container(&pod(&["app"], &[], None), Some("")).unwrap(),
            "app"
        );
        let two = pod(&["a", "b"], &["init"], None);
        assert_eq!(
            container(&two, None).unwrap_err().message,
            "a container name must be specified for pod web, choose one of: [init a b]"
        );
        assert_eq!(container(&two, Some("init")).unwrap(), "init");
        assert_eq!(
            container(&two, Some("c")).unwrap_err().message,
            "container c is not valid for pod web"
        );
        let annotated = pod(&["a", "b"], &[], Some("b"));
        assert_eq!(container(&annotated, None).unwrap(), "b");
        // An annotation naming no container is ignored.
        let stale = pod(&["a"], &[], Some("gone"));
        assert_eq!(container(&stale, None).unwrap(), "a");
        assert!(container(&pod(&[], &[], None), None)
            .unwrap_err()
            .message
            .ends_with("for pod web"));
    }

    #[test]
    fn kubelet_address_prefers_internal_ip() {
        let node = json!({"status": {
            "addresses": [
                {"type": "Hostname", "address": "node-1"},
                {"type": "ExternalIP", "address": "203.0.113.5"},
                {"type": "InternalIP", "address": "10.0.0.5"},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10251}},
        }});
        let a = kubelet_address(&node).unwrap();
        assert_eq!(a.authority(), "10.0.0.5:10251");
        let v6 = json!({"status": {"addresses": [{"type": "InternalIP", "address": "fd00::5"}]}});
        assert_eq!(kubelet_address(&v6).unwrap().authority(), "[fd00::5]:10250");
        let hostname_only =
            json!({"status": {"addresses": [{"type": "Hostname", "address": "n"}]}});
        assert_eq!(kubelet_address(&hostname_only).unwrap().host, "n");
        let none =
            json!({"status": {"addresses": [{"type": "InternalDNS", "address": "n.local"}]}});
        assert_eq!(
            kubelet_address(&none).unwrap_err().message,
            "no preferred addresses found; known addresses: [InternalDNS:n.local]"
        );
    }

    #[test]
    fn queries_are_rewritten_for_the_kubelet() {
        assert_eq!(
            kubelet_query(
                Subresource::Exec,
                "command=sh&command=-c&command=echo%20hi&container=app&stdin=true&stdout=true&stderr=false&tty=true"
            ),
            "command=sh&command=-c&command=echo+hi&input=1&output=1&tty=1"
        );
        assert_eq!(
            kubelet_query(
                Subresource::Log,
                "container=app&follow=true&tailLines=10&sinceTime=2024-05-01T10%3A00%3A00Z"
            ),
            "follow=true&tailLines=10&sinceTime=2024-05-01T10%3A00%3A00Z"
        );
        assert_eq!(
            kubelet_query(Subresource::PortForward, "ports=8080&ports=53"),
            "port=8080&port=53"
        );
        assert_eq!(
            query_value("a=1&container=x%20y", "container").as_deref(),
            Some("x y")
        );
        assert_eq!(
            kubelet_path(Subresource::Exec, "ns", "p", Some("c")),
            "/exec/ns/p/c"
        );
        assert_eq!(
            kubelet_path(Subresource::PortForward, "ns", "p", None),
            "/portForward/ns/p"
        );
    }
}
