//! HTTPS to the supervisor before the agent has a kubeconfig: one HTTP/1.1 request per
//! connection (a join makes a handful), with timeouts.
//!
//! Two trust modes, kept apart by type so that credentials can only travel over the
//! pinned one:
//! - [`fetch_unverified_ca`]: `GET /cacerts` accepting any server certificate, because
//!   the agent does not know the CA yet. It takes no credentials at all; the caller
//!   verifies the bundle against the token's hash before using it.
//! - [`Pinned`]: every other request, verifying the server against that CA only.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;

use super::settings::ServerUrl;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Supervisor answers are PEM or small JSON documents.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Why a request got no answer.
#[derive(Debug)]
pub enum Failure {
    /// The server's certificate does not verify against the pinned CA (or is not valid
    /// for the host name): retrying cannot help, the agent talks to the wrong server.
    Untrusted(String),
    /// Connection refused, reset, timed out, ...: the server may come back.
    Unreachable(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Untrusted(why) | Failure::Unreachable(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for Failure {}

/// An answer: status and body.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Reply {
    /// The body as text, trimmed, for error messages (never contains a credential: the
    /// supervisor does not echo them).
    pub fn message(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let line = text.trim();
        if line.is_empty() {
            self.status
                .canonical_reason()
                .unwrap_or("no message")
                .to_string()
        } else {
            line.lines().next().unwrap_or_default().to_string()
        }
    }
}

fn unverified_config() -> Result<Arc<rustls::ClientConfig>, Failure> {
    // Any certificate passes here: the bundle is checked against the token's CA hash
    // afterwards, and nothing secret is sent on this connection.
    let mut config = k3rs_certs::unverified_client_config()
        .map_err(|e| Failure::Untrusted(format!("TLS setup: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// `GET /cacerts` without verifying the server. Only the CA bundle comes back; nothing
/// but the request line and `Host` is sent.
pub async fn fetch_unverified_ca(server: &ServerUrl) -> Result<String, Failure> {
    let reply = send(
        server,
        unverified_config()?,
        Method::GET,
        k3rs_core::join::path::CACERTS,
        &[],
        Bytes::new(),
    )
    .await?;
    if reply.status != StatusCode::OK {
        return Err(Failure::Unreachable(format!(
            "GET /cacerts answered {} ({})",
            reply.status.as_u16(),
            reply.message()
        )));
    }
    String::from_utf8(reply.body.to_vec())
        .map_err(|_| Failure::Unreachable("GET /cacerts answered something that is not PEM".into()))
}

/// Requests that verify the server against the cluster CA.
#[derive(Clone)]
pub struct Pinned {
    server: ServerUrl,
    config: Arc<rustls::ClientConfig>,
}

impl Pinned {
    pub fn new(server: &ServerUrl, ca_pem: &str) -> anyhow::Result<Pinned> {
        let base = k3rs_certs::tls::client_config(ca_pem, None)
            .map_err(|e| anyhow::anyhow!("the server's CA bundle is unusable: {e}"))?;
        // One HTTP/1.1 request per connection: no need for h2.
        let mut config = (*base).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Pinned {
            server: server.clone(),
            config: Arc::new(config),
        })
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<Reply, Failure> {
        send(
            &self.server,
            self.config.clone(),
            method,
            path,
            headers,
            body,
        )
        .await
    }
}

fn server_name(host: &str) -> Result<ServerName<'static>, Failure> {
    ServerName::try_from(host.to_string())
        .map_err(|_| Failure::Untrusted(format!("{host:?} is not a valid server name")))
}

/// Tell a certificate problem (fatal) from a network problem (worth retrying).
fn classify(err: std::io::Error, host: &str) -> Failure {
    let tls = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
        | Some(rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForNameContext { .. },
        )) => Failure::Untrusted(format!(
            "the server's certificate is not valid for {host:?}; use an address it covers \
             or add this one to the server's --tls-san"
        )),
        Some(rustls::Error::InvalidCertificate(reason)) => Failure::Untrusted(format!(
            "the server's certificate does not verify against the cluster CA it handed out: {reason:?}"
        )),
        _ => Failure::Unreachable(err.to_string()),
    }
}

async fn send(
    server: &ServerUrl,
    config: Arc<rustls::ClientConfig>,
    method: Method,
    path: &str,
    headers: &[(HeaderName, HeaderValue)],
    body: Bytes,
) -> Result<Reply, Failure> {
    let exchange = async {
        let tcp = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::TcpStream::connect((server.host.as_str(), server.port)),
        )
        .await
        .map_err(|_| Failure::Unreachable("connection timed out".into()))?
        .map_err(|e| Failure::Unreachable(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(server_name(&server.host)?, tcp)
            .await
            .map_err(|e| classify(e, &server.host))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| Failure::Unreachable(format!("HTTP handshake: {e}")))?;
        let driver = k3rs_core::task::spawn(async move {
            let _ = connection.await;
        });
        let authority = match server.host.contains(':') {
            true => format!("[{}]:{}", server.host, server.port),
            false => format!("{}:{}", server.host, server.port),
        };
        let mut request = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, authority)
            .header(http::header::USER_AGENT, "k3rs-agent")
            .body(Full::new(body))
            .map_err(|e| Failure::Unreachable(format!("building the request: {e}")))?;
        for (name, value) in headers {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| Failure::Unreachable(e.to_string()))?;
        let status = response.status();
        let body = http_body_util::Limited::new(response.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| Failure::Unreachable(format!("reading the answer: {e}")))?
            .to_bytes();
        driver.abort();
        Ok(Reply { status, body })
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| Failure::Unreachable("no answer within 30s".into()))?
}
