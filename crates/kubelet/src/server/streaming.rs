//! `exec`, `attach` and `portForward`: find the container (or sandbox) by its CRI labels,
//! ask the runtime for a streaming URL, and proxy the client's upgrade there
//! (`upgrade.rs`).
//!
//! containerd 1.6's streaming server is upstream's kubelet streaming library of its era. It
//! speaks SPDY/3.1 (`v4.channel.k8s.io` down to `channel.k8s.io` for exec/attach,
//! `portforward.k8s.io` for port-forward) and WebSocket with the older channel protocols
//! only: not `v5.channel.k8s.io`, and not `SPDY/3.1+portforward.k8s.io` (kubectl's
//! SPDY-over-WebSocket port-forward). A WebSocket request offering none of the protocols it
//! knows is refused here with 400, before any CRI call: kubectl takes any non-101 answer
//! to its WebSocket attempt as an upgrade failure and retries with SPDY.

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, Uri};
use std::collections::HashMap;

use super::lookup::{self, PodRef};
use super::upgrade;
use super::{HttpError, SharedState};
use crate::cri::api;

/// WebSocket subprotocols containerd's streaming server accepts for exec and attach
/// (`""`: the client named none).
const COMMAND_WEBSOCKET_PROTOCOLS: &[&str] = &[
    "",
    "channel.k8s.io",
    "base64.channel.k8s.io",
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
];
/// ... and for port-forward.
const PORT_FORWARD_WEBSOCKET_PROTOCOLS: &[&str] =
    &["", "v4.channel.k8s.io", "v4.base64.channel.k8s.io"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Exec,
    Attach,
    PortForward,
}

impl Kind {
    fn websocket_protocols(self) -> &'static [&'static str] {
        match self {
            Kind::Exec | Kind::Attach => COMMAND_WEBSOCKET_PROTOCOLS,
            Kind::PortForward => PORT_FORWARD_WEBSOCKET_PROTOCOLS,
        }
    }
}

/// Why a WebSocket upgrade cannot be passed to the runtime, if it cannot.
fn refuse_websocket(kind: Kind, offered: &[String]) -> Option<String> {
    let supported = kind.websocket_protocols();
    let acceptable = if offered.is_empty() {
        supported.contains(&"")
    } else {
        offered.iter().any(|p| supported.contains(&p.as_str()))
    };
    if acceptable {
        return None;
    }
    let known: Vec<&str> = supported
        .iter()
        .copied()
        .filter(|p| !p.is_empty())
        .collect();
    Some(format!(
        "the container runtime's streaming server does not support the WebSocket protocol(s) {offered:?}; it supports {known:?} and SPDY/3.1"
    ))
}

/// What an exec or attach request asks for, from its query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct StreamOptions {
    command: Vec<String>,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
    ports: Vec<i32>,
}

impl StreamOptions {
    fn parse(query: &str, kind: Kind) -> Result<StreamOptions, String> {
        let mut options = StreamOptions::default();
        // Upstream's API server sends `1`; clients talking to the kubelet directly may
        // send `true`.
        let yes = |v: &str| matches!(v, "1" | "true" | "True" | "TRUE");
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "command" => options.command.push(value.into_owned()),
                "input" | "stdin" => options.stdin = yes(&value),
                "output" | "stdout" => options.stdout = yes(&value),
                "error" | "stderr" => options.stderr = yes(&value),
                "tty" => options.tty = yes(&value),
                "port" => {
                    for port in value.split(',') {
                        match port.trim().parse::<u16>() {
                            Ok(p) if p > 0 => options.ports.push(p as i32),
                            _ => return Err(format!("unable to parse {value:?} as a port")),
                        }
                    }
                }
                _ => {}
            }
        }
        if kind == Kind::PortForward {
            return Ok(options);
        }
        // A TTY merges stderr into stdout; the runtime refuses both at once.
        if options.tty {
            options.stderr = false;
        }
        if !options.stdin && !options.stdout && !options.stderr {
            return Err("you must specify at least 1 of stdin, stdout, stderr".into());
        }
        if kind == Kind::Exec && options.command.is_empty() {
            return Err("you must specify at least one command for the container".into());
        }
        Ok(options)
    }
}

/// The pod (and, for exec/attach, the container) named by the route's parameters; the
/// `/{uid}/` variants of each route add the pod's UID.
fn target(params: &HashMap<String, String>) -> (PodRef, Option<String>) {
    let pod = PodRef {
        namespace: params.get("namespace").cloned().unwrap_or_default(),
        name: params.get("pod").cloned().unwrap_or_default(),
        uid: params.get("uid").cloned(),
    };
    (pod, params.get("container").cloned())
}

pub async fn exec(
    State(state): State<SharedState>,
    Path(params): Path<HashMap<String, String>>,
    request: Request,
) -> Response {
    let (pod, container) = target(&params);
    respond(serve(state, Kind::Exec, pod, container, request).await)
}

pub async fn attach(
    State(state): State<SharedState>,
    Path(params): Path<HashMap<String, String>>,
    request: Request,
) -> Response {
    let (pod, container) = target(&params);
    respond(serve(state, Kind::Attach, pod, container, request).await)
}

pub async fn port_forward(
    State(state): State<SharedState>,
    Path(params): Path<HashMap<String, String>>,
    request: Request,
) -> Response {
    let (pod, _) = target(&params);
    respond(serve(state, Kind::PortForward, pod, None, request).await)
}

fn respond(result: Result<Response, HttpError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn serve(
    state: SharedState,
    kind: Kind,
    pod: PodRef,
    container: Option<String>,
    request: Request,
) -> Result<Response, HttpError> {
    let headers = request.headers();
    if !k3rs_core::http_upgrade::is_upgrade(headers) {
        return Err(HttpError::bad_request("Upgrade request required"));
    }
    if k3rs_core::http_upgrade::is_websocket(headers) {
        if let Some(why) = refuse_websocket(kind, &upgrade::websocket_protocols(headers)) {
            return Err(HttpError::bad_request(why));
        }
    }
    let options = StreamOptions::parse(request.uri().query().unwrap_or_default(), kind)
        .map_err(HttpError::bad_request)?;
    let runtime = state.config.runtime.as_ref();
    let url = match (kind, container) {
        (Kind::PortForward, _) => {
            let sandbox = lookup::sandbox(runtime, &pod)
                .await
                .map_err(HttpError::internal)?
                .filter(|s| s.state == api::PodSandboxState::SandboxReady as i32)
                .ok_or_else(|| {
                    HttpError::new(
                        StatusCode::NOT_FOUND,
                        format!("pod {:?} does not exist", pod.name),
                    )
                })?;
            runtime
                .port_forward(&sandbox.id, options.ports)
                .await
                .map_err(|s| HttpError::internal(format!("PortForward: {}", s.message())))?
        }
        (_, Some(container)) => {
            let found = lookup::running_container(runtime, &pod, &container)
                .await
                .map_err(HttpError::internal)?
                .ok_or_else(|| {
                    HttpError::new(
                        StatusCode::NOT_FOUND,
                        format!("container not found ({container:?})"),
                    )
                })?;
            if kind == Kind::Exec {
                runtime
                    .exec(api::ExecRequest {
                        container_id: found.id,
                        cmd: options.command,
                        tty: options.tty,
                        stdin: options.stdin,
                        stdout: options.stdout,
                        stderr: options.stderr,
                    })
                    .await
                    .map_err(|s| HttpError::internal(format!("Exec: {}", s.message())))?
            } else {
                runtime
                    .attach(api::AttachRequest {
                        container_id: found.id,
                        stdin: options.stdin,
                        tty: options.tty,
                        stdout: options.stdout,
                        stderr: options.stderr,
                    })
                    .await
                    .map_err(|s| HttpError::internal(format!("Attach: {}", s.message())))?
            }
        }
        (_, None) => return Err(HttpError::bad_request("a container name is required")),
    };
    let target: Uri = url.parse().map_err(|_| {
        HttpError::internal(format!("the runtime returned a bad streaming URL {url:?}"))
    })?;
    upgrade::proxy(request, &target).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_protocols_containerd_speaks() {
        let offered = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // kubectl 1.30+ asks only for v5: refused so that it falls back to SPDY.
        let why = refuse_websocket(Kind::Exec, &offered(&["v5.channel.k8s.io"])).unwrap();
        assert!(why.contains("v5.channel.k8s.io"), "{why}");
        assert!(refuse_websocket(
            Kind::Exec,
            &offered(&["v5.channel.k8s.io", "v4.channel.k8s.io"])
        )
        .is_none());
        assert!(refuse_websocket(Kind::Attach, &offered(&["base64.channel.k8s.io"])).is_none());
        assert!(refuse_websocket(Kind::Exec, &[]).is_none());
        assert!(refuse_websocket(
            Kind::PortForward,
            &offered(&["SPDY/3.1+portforward.k8s.io"])
        )
        .is_some());
        assert!(refuse_websocket(Kind::PortForward, &offered(&["channel.k8s.io"])).is_some());
        assert!(refuse_websocket(Kind::PortForward, &offered(&["v4.channel.k8s.io"])).is_none());
    }

    #[test]
    fn exec_options_from_the_query() {
        let o = StreamOptions::parse(
            "command=sh&command=-c&command=echo%20hi&stdin=true&stdout=1&stderr=1&tty=1",
            Kind::Exec,
        )
        .unwrap();
        assert_eq!(o.command, ["sh", "-c", "echo hi"]);
        assert!(o.stdin && o.stdout && o.tty);
        assert!(!o.stderr, "a TTY has no separate stderr");
        assert!(StreamOptions::parse("command=ls", Kind::Exec)
            .unwrap_err()
            .contains("at least 1 of stdin"));
        assert!(StreamOptions::parse("stdout=1", Kind::Exec)
            .unwrap_err()
            .contains("at least one command"));
        assert!(StreamOptions::parse("stdout=1", Kind::Attach).is_ok());
    }

    #[test]
    fn port_forward_ports() {
        let o = StreamOptions::parse("port=8080&port=53,54", Kind::PortForward).unwrap();
        assert_eq!(o.ports, [8080, 53, 54]);
        assert!(StreamOptions::parse("port=0", Kind::PortForward).is_err());
        assert!(StreamOptions::parse("port=x", Kind::PortForward).is_err());
        assert!(StreamOptions::parse("", Kind::PortForward)
            .unwrap()
            .ports
            .is_empty());
    }
}
