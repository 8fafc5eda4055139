//! One probe check, mechanism-independent: the spec's handler resolved once against the
//! container (named ports) and the pod (its IP), and run with a timeout. The four
//! mechanisms live in their own modules; this one owns what they share: the outcome
//! type, the target resolution and the Go-style error texts users know from upstream's
//! events.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{exec, grpc, http, tcp};
use crate::pods::env::expand;
use crate::runtime::RuntimeService;

/// What one check found, in upstream's four kinds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Counts as a success, with a caveat worth logging (a redirect to another host was
    /// not followed).
    Warning(String),
    /// The container answered wrongly or not at all; the text is what upstream puts in
    /// the `Unhealthy` event.
    Failure(String),
    /// The check could not be run (the runtime refused the exec, ...): upstream throws
    /// such a result away instead of counting it against the container.
    Error(String),
}

/// A probe handler with everything resolved that does not change while the container
/// runs.
#[derive(Clone, Debug)]
pub enum Check {
    Exec {
        command: Vec<String>,
    },
    Http(http::HttpTarget),
    Tcp {
        host: String,
        port: u16,
    },
    Grpc {
        host: String,
        port: u16,
        service: String,
    },
}

impl Check {
    /// Resolve the probe's handler. `pod_ip` is the host for handlers that name none
    /// (always, for gRPC), which for a hostNetwork pod is the node's IP, as upstream.
    pub fn resolve(
        probe: &Probe,
        container: &Container,
        pod_ip: Option<&str>,
    ) -> Result<Check, String> {
        let host_or_pod_ip = |host: Option<&String>| -> Result<String, String> {
            match host.filter(|h| !h.is_empty()) {
                Some(host) => Ok(host.clone()),
                None => pod_ip
                    .filter(|ip| !ip.is_empty())
                    .map(str::to_string)
                    .ok_or_else(|| "the pod has no IP to probe".to_string()),
            }
        };
        if let Some(action) = &probe.exec {
            let command = action.command.clone().unwrap_or_default();
            if command.is_empty() {
                return Err("exec probe has an empty command".to_string());
            }
            return Ok(Check::Exec {
                command: expand_static_env(&command, container),
            });
        }
        if let Some(action) = &probe.http_get {
            let host = host_or_pod_ip(action.host.as_ref())?;
            let port = resolve_port(&action.port, container)?;
            return Ok(Check::Http(http::HttpTarget::new(action, host, port)?));
        }
        if let Some(action) = &probe.tcp_socket {
            let host = host_or_pod_ip(action.host.as_ref())?;
            let port = resolve_port(&action.port, container)?;
            return Ok(Check::Tcp { host, port });
        }
        if let Some(action) = &probe.grpc {
            let host = host_or_pod_ip(None)?;
            let port = port_number(action.port.into())?;
            let service = action.service.clone().unwrap_or_default();
            return Ok(Check::Grpc {
                host,
                port,
                service,
            });
        }
        Err("probe declares no handler (exec, httpGet, tcpSocket or grpc)".to_string())
    }

    /// Run the check once, bounded by `timeout` (exec leaves the bound to the runtime,
    /// which kills the command, and only guards against a runtime that never answers).
    pub async fn run(
        &self,
        runtime: &dyn RuntimeService,
        container_id: &str,
        timeout: Duration,
    ) -> Outcome {
        match self {
            Check::Exec { command } => exec::check(runtime, container_id, command, timeout).await,
            Check::Http(target) => http::check(target, timeout).await,
            Check::Tcp { host, port } => tcp::check(host, *port, timeout).await,
            Check::Grpc {
                host,
                port,
                service,
            } => grpc::check(host, *port, service, timeout).await,
        }
    }
}

/// `$(VAR)` in an exec probe's command, as upstream expands it: only with the values
/// written in the container's `env` (a variable set from a configMap, secret or field
/// counts as empty), never with `envFrom` or service variables.
fn expand_static_env(command: &[String], container: &Container) -> Vec<String> {
    let values: HashMap<&str, &str> = container
        .env
        .iter()
        .flatten()
        .map(|var| (var.name.as_str(), var.value.as_deref().unwrap_or_default()))
        .collect();
    command
        .iter()
        .map(|arg| expand(arg, |name| values.get(name).map(|value| value.to_string())))
        .collect()
}

/// A probe port: a number, or the name of one of the container's ports. Like upstream, a
/// name that matches no port is tried as a number before giving up.
pub fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, String> {
    match port {
        IntOrString::Int(number) => port_number((*number).into()),
        IntOrString::String(name) => {
            let named = container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .map(|p| p.container_port);
            match named {
                Some(number) => port_number(number.into()),
                None => match name.parse::<i64>() {
                    Ok(number) => port_number(number),
                    Err(_) => Err(format!(
                        "container {} has no port named {name:?}",
                        container.name
                    )),
                },
            }
        }
    }
}

fn port_number(number: i64) -> Result<u16, String> {
    match u16::try_from(number) {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!("invalid port number: {number}")),
    }
}

/// `kube-probe/<major>.<minor>`: the User-Agent upstream's HTTP and gRPC probes send,
/// which some applications match to keep probes out of their access logs.
pub fn user_agent() -> String {
    let version = k3rs_core::KUBE_GIT_VERSION.trim_start_matches('v');
    let major_minor: Vec<&str> = version.split(['.', '+', '-']).take(2).collect();
    format!("kube-probe/{}", major_minor.join("."))
}

/// `host:port`, with brackets around an IPv6 address, as Go's `net.JoinHostPort`.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Whether `host` is an IP literal rather than a name to look up.
pub fn is_ip(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok()
}

/// An OS error as Go prints it (`connection refused`), without Rust's ` (os error 111)`
/// suffix, so probe messages read like upstream's.
pub fn os_error_text(err: &std::io::Error) -> String {
    let text = err.to_string();
    let text = match text.rfind(" (os error ") {
        Some(at) if err.raw_os_error().is_some() => &text[..at],
        _ => text.as_str(),
    };
    text.to_lowercase()
}

/// An error and its sources, `outer: inner: root`: the transport crates put the useful
/// part (`connection refused`) in the innermost source.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        // Some layers repeat their source in their own message.
        if !text.ends_with(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        ContainerPort, EnvVar, EnvVarSource, ExecAction, GRPCAction, HTTPGetAction, TCPSocketAction,
    };

    use super::*;

    fn container() -> Container {
        Container {
            name: "web".to_string(),
            ports: Some(vec![ContainerPort {
                name: Some("http".to_string()),
                container_port: 8080,
                ..ContainerPort::default()
            }]),
            ..Container::default()
        }
    }

    #[test]
    fn ports_resolve_by_number_name_or_numeric_string() {
        let c = container();
        assert_eq!(resolve_port(&IntOrString::Int(80), &c), Ok(80));
        assert_eq!(
            resolve_port(&IntOrString::String("http".into()), &c),
            Ok(8080)
        );
        assert_eq!(
            resolve_port(&IntOrString::String("9090".into()), &c),
            Ok(9090)
        );
        assert_eq!(
            resolve_port(&IntOrString::String("metrics".into()), &c),
            Err("container web has no port named \"metrics\"".to_string())
        );
        assert!(resolve_port(&IntOrString::Int(0), &c).is_err());
        assert!(resolve_port(&IntOrString::Int(70000), &c).is_err());
    }

    #[test]
    fn handlers_default_to_the_pod_ip() {
        let probe = Probe {
            tcp_socket: Some(TCPSocketAction {
                host: None,
                port: IntOrString::String("http".into()),
            }),
            ..Probe::default()
        };
        match Check::resolve(&probe, &container(), Some("10.42.0.5")) {
            Ok(Check::Tcp { host, port }) => assert_eq!((host.as_str(), port), ("10.42.0.5", 8080)),
            other => panic!("unexpected {other:?}"),
        }
        let named_host = Probe {
            tcp_socket: Some(TCPSocketAction {
                host: Some("127.0.0.1".into()),
                port: IntOrString::Int(22),
            }),
            ..Probe::default()
        };
        match Check::resolve(&named_host, &container(), None) {
            Ok(Check::Tcp { host, .. }) => assert_eq!(host, "127.0.0.1"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(Check::resolve(&probe, &container(), None).is_err());

        let grpc = Probe {
            grpc: Some(GRPCAction {
                port: 9000,
                service: Some("db".into()),
            }),
            ..Probe::default()
        };
        match Check::resolve(&grpc, &container(), Some("10.42.0.5")) {
            Ok(Check::Grpc {
                host,
                port,
                service,
            }) => assert_eq!(
                (host.as_str(), port, service.as_str()),
                ("10.42.0.5", 9000, "db")
            ),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn exec_commands_expand_static_env_only() {
        let mut c = container();
        c.env = Some(vec![
            EnvVar {
                name: "FILE".into(),
                value: Some("/tmp/healthy".into()),
                ..EnvVar::default()
            },
            EnvVar {
                name: "FROM_SECRET".into(),
                value_from: Some(EnvVarSource::default()),
                ..EnvVar::default()
            },
        ]);
        let probe = Probe {
            exec: Some(ExecAction {
                command: Some(vec![
                    "cat".into(),
                    "$(FILE)".into(),
                    "[$(FROM_SECRET)]".into(),
                    "$(UNKNOWN)".into(),
                ]),
            }),
            ..Probe::default()
        };
        match Check::resolve(&probe, &c, None) {
            Ok(Check::Exec { command }) => {
                assert_eq!(command, ["cat", "/tmp/healthy", "[]", "$(UNKNOWN)"])
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn handlerless_or_empty_probes_are_refused() {
        assert!(Check::resolve(&Probe::default(), &container(), Some("10.0.0.1")).is_err());
        let empty_exec = Probe {
            exec: Some(ExecAction { command: None }),
            ..Probe::default()
        };
        assert!(Check::resolve(&empty_exec, &container(), Some("10.0.0.1")).is_err());
        let bad_port = Probe {
            http_get: Some(HTTPGetAction {
                port: IntOrString::String("nope".into()),
                ..HTTPGetAction::default()
            }),
            ..Probe::default()
        };
        assert!(Check::resolve(&bad_port, &container(), Some("10.0.0.1")).is_err());
    }

    #[test]
    fn texts_read_like_go() {
        assert_eq!(join_host_port("10.0.0.1", 80), "10.0.0.1:80");
        assert_eq!(join_host_port("fd00::1", 80), "[fd00::1]:80");
        let refused = std::io::Error::from_raw_os_error(111);
        assert_eq!(os_error_text(&refused), "connection refused");
        let plain = std::io::Error::other("Weird");
        assert_eq!(os_error_text(&plain), "weird");
        assert!(user_agent().starts_with("kube-probe/1."));
        assert_eq!(user_agent().matches('.').count(), 1);
        assert!(is_ip("::1") && is_ip("10.1.2.3") && !is_ip("example.com"));
    }
}
