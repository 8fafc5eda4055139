//! One request to a kubelet: TLS to its address (its serving certificate must be signed
//! by the server CA and name that address), the API server's kubelet client certificate,
//! HTTP/1.1 so that upgrades work. Log bodies are streamed back as they arrive; an
//! upgrade answered `101` joins the client's and the kubelet's upgraded connections.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::request::Parts;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use tokio_rustls::TlsConnector;
use tracing::debug;

use super::location::KubeletAddress;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// How long connecting to a kubelet (TCP and TLS) may take; an unreachable node must not
/// hold the request for the kernel's minutes-long connect timeout.
const DIAL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// A kubelet's error answer is read up to this size to become the Status message.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Request headers passed to the kubelet: only those that negotiate an upgrade. The
/// caller's own credentials never leave the API server; it authenticates to the kubelet
/// with its client certificate.
pub fn forwarded_headers(from: &HeaderMap) -> HeaderMap {
    let negotiation = [header::CONNECTION, header::UPGRADE, header::ORIGIN];
    let mut headers = HeaderMap::new();
    for (name, value) in from {
        let keep = negotiation.contains(name)
            || name.as_str() == "x-stream-protocol-version"
            || name.as_str().starts_with("sec-websocket-");
        if keep {
            headers.append(name.clone(), value.clone());
        }
    }
    headers
}

/// The rustls client config for kubelets: trust the server CA, present the kubelet
/// client certificate, and offer only HTTP/1.1 (upgrades do not exist in HTTP/2).
fn tls_config(state: &AppState) -> ApiResult<Arc<rustls::ClientConfig>> {
    let config = &state.config;
    let base = k3rs_certs::tls::client_config(
        &config.server_ca_pem,
        Some((
            &config.kubelet_client_cert_pem,
            &config.kubelet_client_key_pem,
        )),
    )
    .map_err(|e| ApiError::internal(format!("kubelet client TLS configuration: {e}")))?;
    let mut tls = (*base).clone();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(tls))
}

fn dial_error(err: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("error dialing backend: {err}"))
}

/// The Status upstream's API server makes of a kubelet's error answer.
fn status_from_kubelet(code: StatusCode, body: &[u8]) -> ApiError {
    let text = String::from_utf8_lossy(body).trim().to_string();
    let reason = match code {
        StatusCode::BAD_REQUEST => "BadRequest",
        StatusCode::UNAUTHORIZED => "Unauthorized",
        StatusCode::FORBIDDEN => "Forbidden",
        StatusCode::NOT_FOUND => "NotFound",
        StatusCode::METHOD_NOT_ALLOWED => "MethodNotAllowed",
        StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailable",
        StatusCode::GATEWAY_TIMEOUT => "Timeout",
        _ if code.is_server_error() => "InternalError",
        _ => "Unknown",
    };
    let message = if text.is_empty() {
        format!(
            "the server responded with the status code {} but did not return more information",
            code.as_u16()
        )
    } else {
        text
    };
    ApiError {
        code,
        reason,
        message,
        details: None,
    }
}

/// Send the client's request (`parts`, no body: none of these subresources has one) to
/// the kubelet at `address` on `path_and_query`, and answer with what the kubelet says.
pub async fn forward(
    state: &AppState,
    address: &KubeletAddress,
    path_and_query: &str,
    mut parts: Parts,
) -> ApiResult<Response> {
    let authority = address.authority();
    let server_name = rustls::pki_types::ServerName::try_from(address.host.clone())
        .map_err(|e| dial_error(format!("{}: {e}", address.host)))?;
    let connector = TlsConnector::from(tls_config(state)?);
    let dial = async {
        let tcp = tokio::net::TcpStream::connect(&authority)
            .await
            .map_err(|e| dial_error(format!("dial tcp {authority}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        connector
            .connect(server_name, tcp)
            .await
            .map_err(|e| dial_error(format!("tls handshake with {authority}: {e}")))
    };
    let tls = tokio::time::timeout(DIAL_TIMEOUT, dial)
        .await
        .map_err(|_| dial_error(format!("dial tcp {authority}: i/o timeout")))??;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(dial_error)?;
    k3rs_core::task::spawn(async move {
        if let Err(err) = connection.with_upgrades().await {
            debug!(error = %err, "kubelet connection ended");
        }
    });

    let upgrade = k3rs_core::http_upgrade::is_upgrade(&parts.headers);
    let method = if upgrade {
        parts.method.clone()
    } else {
        Method::GET
    };
    let mut request = http::Request::builder()
        .method(method)
        .uri(path_and_query)
        .body(Empty::<Bytes>::new())
        .map_err(|e| ApiError::internal(format!("building the kubelet request: {e}")))?;
    *request.headers_mut() = forwarded_headers(&parts.headers);
    request.headers_mut().insert(
        header::HOST,
        authority
            .parse()
            .map_err(|_| ApiError::internal(format!("invalid kubelet address {authority}")))?,
    );

    let mut answer = sender
        .send_request(request)
        .await
        .map_err(|e| dial_error(format!("request to kubelet {authority}: {e}")))?;
    let status = answer.status();

    if upgrade {
        if status != StatusCode::SWITCHING_PROTOCOLS {
            // Passed back as it came: kubectl shows a kubelet's refusal as upstream's does
            // ("unable to upgrade connection: ..."), and falls back from WebSocket to SPDY
            // on any non-101 answer.
            let (parts, body) = answer.into_parts();
            return Ok(Response::from_parts(parts, Body::new(body)));
        }
        let kubelet_side = hyper::upgrade::on(&mut answer);
        let client_side = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
        let Some(client_side) = client_side else {
            return Err(ApiError::bad_request(
                "the connection cannot be upgraded (upgrades need HTTP/1.1)",
            ));
        };
        k3rs_core::task::spawn(async move {
            match tokio::join!(client_side, kubelet_side) {
                (Ok(client), Ok(kubelet)) => {
                    let mut client = TokioIo::new(client);
                    let mut kubelet = TokioIo::new(kubelet);
                    match tokio::io::copy_bidirectional(&mut client, &mut kubelet).await {
                        Ok((up, down)) => debug!(up, down, "kubelet stream closed"),
                        Err(err) => debug!(error = %err, "kubelet stream ended with an error"),
                    }
                }
                (Err(err), _) | (_, Err(err)) => debug!(error = %err, "upgrade did not complete"),
            }
        });
        let (parts, _) = answer.into_parts();
        return Ok(Response::from_parts(parts, Body::empty()));
    }

    if !status.is_success() {
        let body = Limited::new(answer.into_body(), ERROR_BODY_LIMIT)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Err(status_from_kubelet(status, &body));
    }
    // Stream the body (a followed log never ends) with the kubelet's content type.
    let content_type = answer
        .headers()
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| header::HeaderValue::from_static("text/plain"));
    let mut response = Response::new(Body::new(answer.into_body()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k3rs_core::http_upgrade::is_upgrade;

    #[test]
    fn only_upgrade_negotiation_reaches_the_kubelet() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, "Upgrade".parse().unwrap());
        h.insert(header::UPGRADE, "SPDY/3.1".parse().unwrap());
        h.append(
            "x-stream-protocol-version",
            "v5.channel.k8s.io".parse().unwrap(),
        );
        h.append(
            "x-stream-protocol-version",
            "v4.channel.k8s.io".parse().unwrap(),
        );
        h.insert(
            "sec-websocket-protocol",
            "v5.channel.k8s.io".parse().unwrap(),
        );
        h.insert(header::AUTHORIZATION, "Bearer admin-token".parse().unwrap());
        h.insert("impersonate-user", "bob".parse().unwrap());
        let f = forwarded_headers(&h);
        assert_eq!(f.len(), 5);
        assert!(!f.contains_key(header::AUTHORIZATION));
        assert!(!f.contains_key("impersonate-user"));
        assert!(is_upgrade(&h));
        assert!(!is_upgrade(&HeaderMap::new()));
    }

    #[test]
    fn kubelet_errors_become_statuses() {
        let e = status_from_kubelet(
            StatusCode::BAD_REQUEST,
            b"previous terminated container \"app\" in pod \"web\" not found\n",
        );
        assert_eq!(e.reason, "BadRequest");
        assert_eq!(
            e.message,
            "previous terminated container \"app\" in pod \"web\" not found"
        );
        let e = status_from_kubelet(StatusCode::BAD_GATEWAY, b"");
        assert_eq!(e.reason, "InternalError");
        assert!(e.message.contains("502"));
        assert_eq!(
            status_from_kubelet(StatusCode::FORBIDDEN, b"no").reason,
            "Forbidden"
        );
    }
}
