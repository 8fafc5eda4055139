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
    k3rs_core::task::spawn(async move {
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
    k3rs_core::task::spawn(async move {
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
    use k3rs_core::http_upgrade::{is_upgrade, is_websocket};

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

    /// A stand-in for containerd's streaming server: answers one request with `answer`,
    /// then (after a 101) echoes what it reads in upper case. Returns its URL and the
    /// request head it received.
    async fn streaming_server(
        answer: &'static str,
    ) -> (Uri, tokio::sync::oneshot::Receiver<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/exec/token123", listener.local_addr().unwrap());
        let (head_tx, head_rx) = tokio::sync::oneshot::channel();
        k3rs_core::task::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                let mut byte = [0u8];
                conn.read_exact(&mut byte).await.unwrap();
                head.push(byte[0]);
            }
            head_tx.send(String::from_utf8(head).unwrap()).unwrap();
            conn.write_all(answer.as_bytes()).await.unwrap();
            let mut buf = [0u8; 64];
            loop {
                let n = conn.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                conn.write_all(&buf[..n].to_ascii_uppercase())
                    .await
                    .unwrap();
            }
        });
        (url.parse().unwrap(), head_rx)
    }

    /// The kubelet side: every request is proxied to `target`.
    async fn front(target: Uri) -> std::net::SocketAddr {
        let app = axum::Router::new().fallback(move |request: Request| {
            let target = target.clone();
            async move {
                use axum::response::IntoResponse;
                proxy(request, &target)
                    .await
                    .unwrap_or_else(IntoResponse::into_response)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        k3rs_core::task::spawn(async move { axum::serve(listener, app).await.unwrap() });
        address
    }

    async fn send_upgrade(address: std::net::SocketAddr) -> (tokio::net::TcpStream, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut conn = tokio::net::TcpStream::connect(address).await.unwrap();
        conn.write_all(
            b"POST /exec/default/web/app?command=sh HTTP/1.1\r\nHost: node\r\n\
              Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\
              X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\
              Authorization: Bearer secret\r\n\r\n",
        )
        .await
        .unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8];
            conn.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        (conn, String::from_utf8(head).unwrap().to_ascii_lowercase())
    }

    #[tokio::test]
    async fn switching_protocols_joins_both_connections() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (target, seen) = streaming_server(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\
             Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n",
        )
        .await;
        let (mut conn, head) = send_upgrade(front(target).await).await;
        assert!(head.starts_with("http/1.1 101"), "{head}");
        assert!(
            head.contains("x-stream-protocol-version: v4.channel.k8s.io"),
            "{head}"
        );
        let seen = seen.await.unwrap().to_ascii_lowercase();
        assert!(seen.starts_with("post /exec/token123 http/1.1"), "{seen}");
        assert!(seen.contains("upgrade: spdy/3.1"), "{seen}");
        assert!(
            !seen.contains("authorization"),
            "credentials must not reach the runtime"
        );
        conn.write_all(b"ping").await.unwrap();
        let mut echoed = [0u8; 4];
        conn.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"PING");
    }

    #[tokio::test]
    async fn a_refusal_is_passed_back_as_it_came() {
        use tokio::io::AsyncReadExt;
        let (target, _seen) = streaming_server(
            "HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope",
        )
        .await;
        let (mut conn, head) = send_upgrade(front(target).await).await;
        assert!(head.starts_with("http/1.1 403"), "{head}");
        let mut body = [0u8; 4];
        conn.read_exact(&mut body).await.unwrap();
        assert_eq!(&body, b"nope");
    }
}
