//! Certificates for joining agents, signed from the certificate requests they send.
//!
//! The order of checks is what keeps a failed join from leaving anything behind:
//! authenticate, read and verify the request (and the node headers), and only then
//! check or store the node password, then sign. Nothing is written before the caller has
//! proven both its token and, for node certificates, its claim on the node name.
//!
//! The answer is the certificate followed by its CA, as k3s sends it, so the agent can
//! store one file that verifies on its own.

use std::net::{IpAddr, Ipv4Addr};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use k3rs_certs::csr::SigningRequest;
use k3rs_core::validation::is_dns1123_subdomain;

use super::caller::{self, Caller};
use super::{node_password, settings, text, Refusal};
use crate::AppState;
use k3rs_core::join::{CONTROLLER_USER, NODE_IP_HEADER, NODE_NAME_HEADER, NODE_PASSWORD_HEADER};

/// Anything much larger than a PEM certificate request is not one.
const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// The node a kubelet certificate request is for.
struct NodeClaim {
    name: String,
    password: String,
    ips: Vec<IpAddr>,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Read the node headers. The name is lower-cased as k3s does.
fn node_claim(headers: &HeaderMap) -> Result<NodeClaim, Refusal> {
    let name = header(headers, NODE_NAME_HEADER)
        .ok_or_else(|| Refusal::bad_request(format!("missing {NODE_NAME_HEADER} header")))?
        .to_ascii_lowercase();
    if !is_dns1123_subdomain(&name) {
        return Err(Refusal::bad_request(format!(
            "invalid {NODE_NAME_HEADER} header {name:?}: not a lowercase DNS subdomain"
        )));
    }
    let password = header(headers, NODE_PASSWORD_HEADER)
        .ok_or_else(|| Refusal::bad_request(format!("missing {NODE_PASSWORD_HEADER} header")))?
        .to_string();
    let mut ips = Vec::new();
    if let Some(list) = header(headers, NODE_IP_HEADER) {
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let ip: IpAddr = item.parse().map_err(|_| {
                Refusal::bad_request(format!(
                    "invalid {NODE_IP_HEADER} header: {item:?} is not an IP address"
                ))
            })?;
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
    }
    Ok(NodeClaim {
        name,
        password,
        ips,
    })
}

/// The request body, bounded: a PEM request is well under 2 KiB. Read before any
/// refusal that follows authentication, so the client always gets to see the answer
/// (an HTTP/1.1 server that closes on an unread body can cut off a client still sending).
async fn read_body(body: Body) -> Result<Bytes, Refusal> {
    axum::body::to_bytes(body, MAX_REQUEST_BYTES)
        .await
        .map_err(|_| Refusal::bad_request("the request body is not a certificate request"))
}

/// Verify the body as a PEM certificate request.
fn signing_request(body: &[u8]) -> Result<SigningRequest, Refusal> {
    let pem = std::str::from_utf8(body)
        .map_err(|_| Refusal::bad_request("the request body is not a PEM certificate request"))?;
    SigningRequest::from_pem(pem).map_err(|e| Refusal::bad_request(e.to_string()))
}

/// Authenticate, read the node claim and the request, then check the node password.
async fn admit_node(
    state: &AppState,
    req: Request,
) -> Result<(Caller, NodeClaim, SigningRequest), Refusal> {
    let (parts, body) = req.into_parts();
    let caller = caller::authenticate(state, &parts).await?;
    let body = read_body(body).await?;
    settings(state)?;
    let claim = node_claim(&parts.headers)?;
    if let Caller::Node { name } = &caller {
        if *name != claim.name {
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                format!(
                    "the client certificate of node {name:?} cannot request certificates for node {:?}",
                    claim.name
                ),
            ));
        }
    }
    let request = signing_request(&body)?;
    node_password::ensure(state, &claim.name, &claim.password).await?;
    Ok((caller, claim, request))
}

fn issued(cert_pem: String, ca_pem: &str) -> Response {
    let mut body = cert_pem;
    if !body.ends_with('\n') {
        body.push('\n');
    }
    body.push_str(ca_pem);
    text(StatusCode::OK, body)
}

fn sign_failed(err: k3rs_certs::Error) -> Refusal {
    Refusal::internal(format!("signing the certificate: {err}"))
}

/// `POST /v1-k3rs/serving-kubelet.crt`: the kubelet's HTTPS certificate, from the server
/// CA, for the node name, `localhost`, 127.0.0.1 and the node's IPs.
pub(crate) async fn serving_kubelet(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, Refusal> {
    let (caller, claim, request) = admit_node(&state, req).await?;
    let pki = &settings(&state)?.pki;
    let mut ips = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    ips.extend(claim.ips.iter().copied());
    let dns = [claim.name.clone(), "localhost".to_string()];
    let cert = pki
        .sign_serving_request(&request, &claim.name, &dns, &ips)
        .map_err(sign_failed)?;
    tracing::info!(node = %claim.name, via = %caller.describe(), "issued kubelet serving certificate");
    Ok(issued(cert, &pki.server_ca_pem))
}

/// `POST /v1-k3rs/client-kubelet.crt`: `system:node:<name>` in `system:nodes`, from the
/// client CA.
pub(crate) async fn client_kubelet(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, Refusal> {
    let (caller, claim, request) = admit_node(&state, req).await?;
    let pki = &settings(&state)?.pki;
    let user = format!("system:node:{}", claim.name);
    let cert = pki
        .sign_client_request(&request, &user, &["system:nodes"])
        .map_err(sign_failed)?;
    tracing::info!(node = %claim.name, via = %caller.describe(), "issued kubelet client certificate");
    Ok(issued(cert, &pki.client_ca_pem))
}

/// A client certificate of the client CA for a fixed component identity: the caller
/// only needs to be an agent.
async fn component_certificate(
    state: &AppState,
    req: Request,
    user: &str,
    what: &str,
) -> Result<Response, Refusal> {
    let (parts, body) = req.into_parts();
    let caller = caller::authenticate(state, &parts).await?;
    let body = read_body(body).await?;
    let pki = &settings(state)?.pki;
    let request = signing_request(&body)?;
    let cert = pki
        .sign_client_request(&request, user, &[])
        .map_err(sign_failed)?;
    tracing::info!(via = %caller.describe(), "issued {what} client certificate");
    Ok(issued(cert, &pki.client_ca_pem))
}

/// `POST /v1-k3rs/client-kube-proxy.crt`: `system:kube-proxy`, from the client CA.
pub(crate) async fn client_kube_proxy(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, Refusal> {
    component_certificate(&state, req, "system:kube-proxy", "kube-proxy").await
}

/// `POST /v1-k3rs/client-k3rs-controller.crt`: `system:k3rs-controller` (k3s's
/// `system:k3s-controller`), the identity of the agent's own controllers such as the
/// overlay, from the client CA.
pub(crate) async fn client_controller(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, Refusal> {
    component_certificate(&state, req, CONTROLLER_USER, "k3rs-controller").await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn node_claims() {
        let claim = node_claim(&headers(&[
            ("K3rs-Node-Name", "Worker-1"),
            ("K3rs-Node-Password", "pw"),
            ("K3rs-Node-IP", "192.0.2.5, 2001:db8::5,192.0.2.5"),
        ]))
        .unwrap();
        assert_eq!(claim.name, "worker-1");
        assert_eq!(claim.password, "pw");
        assert_eq!(
            claim.ips,
            [
                "192.0.2.5".parse::<IpAddr>().unwrap(),
                "2001:db8::5".parse().unwrap()
            ]
        );

        let err = |pairs: &[(&str, &str)]| node_claim(&headers(pairs)).err().unwrap().message;
        assert!(err(&[("K3rs-Node-Password", "pw")]).contains("missing K3rs-Node-Name"));
        assert!(err(&[("K3rs-Node-Name", "n1")]).contains("missing K3rs-Node-Password"));
        assert!(
            err(&[("K3rs-Node-Name", "n_1"), ("K3rs-Node-Password", "pw")])
                .contains("invalid K3rs-Node-Name")
        );
        assert!(err(&[
            ("K3rs-Node-Name", "n1"),
            ("K3rs-Node-Password", "pw"),
            ("K3rs-Node-IP", "nope")
        ])
        .contains("invalid K3rs-Node-IP"));
    }

    #[test]
    fn node_names() {
        let ok = |name: &str| {
            node_claim(&headers(&[
                ("K3rs-Node-Name", name),
                ("K3rs-Node-Password", "pw"),
            ]))
            .is_ok()
        };
        assert!(ok("n1"));
        assert!(ok("node-1.example.com"));
        // The header is lower-cased first, as k3s does.
        assert!(ok("N1"));
        assert!(!ok("-n1"));
        assert!(!ok("n1."));
        assert!(!ok("n_1"));
    }
}
