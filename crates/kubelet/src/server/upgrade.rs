//! Handing a client's upgrade request (SPDY or WebSocket) to the container runtime's
//! streaming server and joining the two upgraded connections.
//!
//! CRI `Exec`/`Attach`/`PortForward` only return a one-time URL on containerd's streaming
//! server (plain HTTP on 127.0.0.1, an ephemeral port). The kubelet replays the client's
//! request there with just the headers that negotiate the upgrade; on `101 Switching
//! Protocols` both sides are upgraded and bytes are copied between them until either
//! closes. Any other answer (a refused protocol, an expired URL) goes back as it came.

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName};
use http::{StatusCode, Uri};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tracing::debug;

use super::HttpError;

/// Request headers that take part in negotiating an upgrade: the generic ones, kubectl's
/// SPDY protocol versions, and every `Sec-WebSocket-*` header.
const NEGOTIATION_HEADERS: &[HeaderName] = &[header::CONNECTION, header::UPGRADE, header::ORIGIN];
const STREAM_PROTOCOL_VERSION: &str = "x-stream-protocol-version";

/// The headers of `from` that the streaming server needs to negotiate the upgrade. Other
/// headers (the caller's credentials above all) stay here.
pub fn negotiation_headers(from: &HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in from {
        let wanted = NEGOTIATION_HEADERS.contains(name)
            || name.as_str() == STREAM_PROTOCOL_VERSION
            || name.as_str().starts_with("sec-websocket-");
        if wanted {
            headers.append(name.clone(), value.clone());
        }
    }
    headers
}

fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .to_str()
            .unwrap_or_default()
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    })
}

/// Whether the request asks to switch protocols at all.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    has_token(headers, header::CONNECTION, "upgrade") && headers.contains_key(header::UPGRADE)
}

pub fn is_websocket(headers: &HeaderMap) -> bool {
    has_token(headers, header::UPGRADE, "websocket")
}

/// The WebSocket subprotocols the client offers, in its order of preference.
pub fn websocket_protocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or_default().split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Replay `request`'s upgrade at `target` (a streaming-server URL from CRI) and splice the
/// connections once both sides switched protocols.
pub async fn proxy(mut request: Request, target: &Uri) -> Result<Response, HttpError> {
    let authority = target
        .authority()
        .ok_or_else(|| HttpError::internal(format!("streaming URL {target} has no host")))?
        .clone();
    let address = match authority.port_u16() {
        Some(_) => authority.as_str().to_string(),
        None => format!("{}:80", authority.host()),
    };
    let tcp = tokio::net::TcpStream::connect(&address)
        .await
        .map_err(|e| {
            HttpError::internal(format!(
                "connecting to the runtime's streaming server at {address}: {e}"
            ))
        })?;
    let _ = tcp.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| HttpError::internal(format!("streaming server handshake: {e}")))?;
    tokio::spawn(async move {
        if let Err(err) = connection.with_upgrades().await {
            debug!(error = %err, "streaming server connection ended");
        }
    });

    let path = target.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut forwarded = http::Request::builder()
        .method(request.method().clone())
        .uri(path)
        .body(Empty::<Bytes>::new())
        .map_err(|e| HttpError::internal(format!("building the streaming request: {e}")))?;
    *forwarded.headers_mut() = negotiation_headers(request.headers());
    forwarded.headers_mut().insert(
        header::HOST,
        authority
            .as_str()
            .parse()
            .map_err(|_| HttpError::internal("streaming server address is not a valid host"))?,
    );

    let mut answer = sender
        .send_request(forwarded)
        .await
        .map_err(|e| HttpError::internal(format!("streaming server request: {e}")))?;
    if answer.status() != StatusCode::SWITCHING_PROTOCOLS {
        debug!(status = %answer.status(), "streaming server refused the upgrade");
        let (parts, body) = answer.into_parts();
        return Ok(Response::from_parts(parts, Body::new(body)));
    }

    let runtime_side = hyper::upgrade::on(&mut answer);
    let client_side = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let (client, runtime) = tokio::join!(client_side, runtime_side);
        match (client, runtime) {
            (Ok(client), Ok(runtime)) => {
                let mut client = TokioIo::new(client);
                let mut runtime = TokioIo::new(runtime);
                match tokio::io::copy_bidirectional(&mut client, &mut runtime).await {
                    Ok((up, down)) => debug!(up, down, "stream closed"),
                    Err(err) => debug!(error = %err, "stream ended with an error"),
                }
            }
            (Err(err), _) | (_, Err(err)) => debug!(error = %err, "upgrade did not complete"),
        }
    });
    let (parts, _) = answer.into_parts();
    Ok(Response::from_parts(parts, Body::empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn only_negotiation_headers_are_forwarded() {
        let from = headers(&[
            ("Connection", "Upgrade"),
            ("Upgrade", "SPDY/3.1"),
            ("X-Stream-Protocol-Version", "v4.channel.k8s.io"),
            ("X-Stream-Protocol-Version", "v3.channel.k8s.io"),
            ("Sec-WebSocket-Key", "abc"),
            ("Sec-WebSocket-Version", "13"),
            ("Authorization", "Bearer secret"),
            ("User-Agent", "kubectl"),
        ]);
        let h = negotiation_headers(&from);
        assert_eq!(h.get_all("x-stream-protocol-version").iter().count(), 2);
        assert_eq!(h["upgrade"], "SPDY/3.1");
        assert_eq!(h["sec-websocket-key"], "abc");
        assert!(!h.contains_key(header::AUTHORIZATION));
        assert!(!h.contains_key(header::USER_AGENT));
        assert_eq!(h.len(), 6);
    }

    #[test]
    fn recognises_upgrades_and_protocols() {
        let spdy = headers(&[
            ("Connection", "keep-alive, Upgrade"),
            ("Upgrade", "SPDY/3.1"),
        ]);
        assert!(is_upgrade(&spdy) && !is_websocket(&spdy));
        let ws = headers(&[
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            (
                "Sec-WebSocket-Protocol",
                "v5.channel.k8s.io, v4.channel.k8s.io",
            ),
            ("Sec-WebSocket-Protocol", "channel.k8s.io"),
        ]);
        assert!(is_upgrade(&ws) && is_websocket(&ws));
        assert_eq!(
            websocket_protocols(&ws),
            ["v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"]
        );
        assert!(!is_upgrade(&headers(&[("Upgrade", "websocket")])));
    }
}
