//! The cluster PKI as a whole: which CAs exist, which leaves they sign, and where each
//! lives under the TLS dir (k3s's file names).
//!
//! | file                                  | what                                         |
//! |---------------------------------------|----------------------------------------------|
//! | `server-ca.crt/.key`                  | trust anchor clients use for the API server  |
//! | `client-ca.crt/.key`                  | signs and verifies client certificates       |
//! | `request-header-ca.crt/.key`          | front-proxy (aggregation) client certs       |
//! | `serving-kube-apiserver.crt/.key`     | API server serving cert, signed by server CA |
//! | `client-admin.crt/.key`               | `system:admin` / `system:masters`            |
//! | `service.key`                         | service-account token signing key            |

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::KeyPair;

use crate::atomic_file::{ensure_private_dir, read_optional, write_file_with_mode};
use crate::authority::{Authority, KEY_MODE};
use crate::leaf::{load_or_issue, LeafSpec};
use crate::{Error, Result};

/// Inputs that decide what the PKI must contain.
#[derive(Debug, Clone)]
pub struct PkiConfig {
    /// `<data-dir>/server/tls`.
    pub tls_dir: PathBuf,
    /// Extra DNS SANs from `--tls-san` (entries that parse as IPs are treated as IP SANs).
    pub sans_dns: Vec<String>,
    /// Node IPs, advertise address, first service IP, `--tls-san` IPs.
    pub sans_ip: Vec<IpAddr>,
    /// Cluster DNS domain, for `kubernetes.default.svc.<domain>`.
    pub cluster_domain: String,
}

impl PkiConfig {
    /// The full SAN set the API server's serving certificate must cover.
    fn serving_spec(&self) -> LeafSpec {
        let mut dns: Vec<String> = [
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let domain = self.cluster_domain.trim().trim_matches('.');
        if !domain.is_empty() {
            dns.push(format!("kubernetes.default.svc.{domain}"));
        }
        dns.extend(self.sans_dns.iter().cloned());
        let mut ips = vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ];
        ips.extend(self.sans_ip.iter().copied());
        LeafSpec::server("kube-apiserver", &dns, &ips)
    }
}

/// The loaded cluster PKI. Cloning is cheap (CAs are shared).
///
/// Key material is in public fields because the API server and CLI need it (TLS config,
/// kubeconfig, token signing); `Debug` redacts it.
#[derive(Clone)]
pub struct Pki {
    /// Trust anchor for clients (kubeconfig `certificate-authority-data`).
    pub server_ca_pem: String,
    /// CA that signs and verifies client certificates.
    pub client_ca_pem: String,
    /// CA for front-proxy (request header) client certificates.
    pub request_header_ca_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    /// CN `system:admin`, O `system:masters`, signed by the client CA.
    pub admin_cert_pem: String,
    pub admin_key_pem: String,
    /// Service-account token signing key: ECDSA P-256 (JWT `ES256`), PKCS#8 PEM
    /// (`-----BEGIN PRIVATE KEY-----`). An existing PKCS#8 `service.key` of another
    /// algorithm (e.g. RSA) is loaded as-is.
    pub service_account_key_pem: String,
    /// Public half of the service-account key, SPKI PEM (`-----BEGIN PUBLIC KEY-----`),
    /// for verifying tokens and for the OIDC discovery JWKS.
    pub service_account_public_key_pem: String,
    server_ca: Arc<Authority>,
    client_ca: Arc<Authority>,
    request_header_ca: Arc<Authority>,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Certificates are public; keys are not printed.
        f.debug_struct("Pki")
            .field("server_ca_pem", &self.server_ca_pem)
            .field("client_ca_pem", &self.client_ca_pem)
            .field("request_header_ca_pem", &self.request_header_ca_pem)
            .field("serving_cert_pem", &self.serving_cert_pem)
            .field("admin_cert_pem", &self.admin_cert_pem)
            .field(
                "service_account_public_key_pem",
                &self.service_account_public_key_pem,
            )
            .finish_non_exhaustive()
    }
}

impl Pki {
    /// First run: create everything under `tls_dir` (dir 0700, keys 0600, certs 0644).
    /// Later runs: load and reuse. CAs that exist are never regenerated. The serving
    /// certificate is re-issued only when it does not cover the wanted SANs, was not
    /// signed by the server CA, or expires within 90 days; the admin certificate likewise
    /// on expiry or CA mismatch.
    pub fn load_or_create(cfg: &PkiConfig) -> Result<Pki> {
        let dir = cfg.tls_dir.as_path();
        ensure_private_dir(dir)?;

        let server_ca = Authority::load_or_create(dir, "server-ca", "k3rs-server-ca")?;
        let client_ca = Authority::load_or_create(dir, "client-ca", "k3rs-client-ca")?;
        let request_header_ca =
            Authority::load_or_create(dir, "request-header-ca", "k3rs-request-header-ca")?;

        let (serving_cert_pem, serving_key_pem) = load_or_issue(
            dir,
            "serving-kube-apiserver",
            &cfg.serving_spec(),
            &server_ca,
        )?;
        let (admin_cert_pem, admin_key_pem) = load_or_issue(
            dir,
            "client-admin",
            &LeafSpec::client("system:admin", &["system:masters"]),
            &client_ca,
        )?;
        let (service_account_key_pem, service_account_public_key_pem) =
            load_or_create_service_account_key(&dir.join("service.key"))?;

        Ok(Pki {
            server_ca_pem: server_ca.cert_pem.clone(),
            client_ca_pem: client_ca.cert_pem.clone(),
            request_header_ca_pem: request_header_ca.cert_pem.clone(),
            serving_cert_pem,
            serving_key_pem,
            admin_cert_pem,
            admin_key_pem,
            service_account_key_pem,
            service_account_public_key_pem,
            server_ca: Arc::new(server_ca),
            client_ca: Arc::new(client_ca),
            request_header_ca: Arc::new(request_header_ca),
        })
    }

    /// Issue a client certificate signed by the client CA (CN = user, O = groups), e.g.
    /// `("system:kube-controller-manager", &[])` or `("system:node:n1", &["system:nodes"])`.
    /// Valid for one year. Returns (cert PEM, key PEM); nothing is written to disk.
    pub fn issue_client_cert(
        &self,
        common_name: &str,
        groups: &[&str],
    ) -> Result<(String, String)> {
        LeafSpec::client(common_name, groups).issue(&self.client_ca)
    }

    /// Issue a serving certificate signed by the server CA, e.g. for a kubelet's HTTPS
    /// endpoint. Entries of `sans_dns` that parse as IPs become IP SANs. Returns
    /// (cert PEM, key PEM); nothing is written to disk.
    pub fn issue_serving_cert(
        &self,
        common_name: &str,
        sans_dns: &[String],
        sans_ip: &[IpAddr],
    ) -> Result<(String, String)> {
        LeafSpec::server(common_name, sans_dns, sans_ip).issue(&self.server_ca)
    }

    /// Sign the key of a verified certificate request as a client certificate of the
    /// client CA (CN = user, O = groups), e.g. `system:node:<name>`/`system:nodes` for
    /// a joining kubelet. The request's own subject and extensions are ignored. Returns
    /// the certificate PEM.
    pub fn sign_client_request(
        &self,
        request: &crate::csr::SigningRequest,
        common_name: &str,
        groups: &[&str],
    ) -> Result<String> {
        crate::csr::sign(
            request,
            &LeafSpec::client(common_name, groups),
            &self.client_ca,
        )
    }

    /// Sign the key of a verified certificate request as a serving certificate of the
    /// server CA (a joining kubelet's HTTPS endpoint). Returns the certificate PEM.
    pub fn sign_serving_request(
        &self,
        request: &crate::csr::SigningRequest,
        common_name: &str,
        sans_dns: &[String],
        sans_ip: &[IpAddr],
    ) -> Result<String> {
        crate::csr::sign(
            request,
            &LeafSpec::server(common_name, sans_dns, sans_ip),
            &self.server_ca,
        )
    }

    /// Issue a client certificate signed by the request-header CA, for an authenticating
    /// proxy in front of the API server (k3s's `client-auth-proxy`).
    pub fn issue_request_header_client_cert(&self, common_name: &str) -> Result<(String, String)> {
        LeafSpec::client(common_name, &[]).issue(&self.request_header_ca)
    }

    /// rustls server config: serving certificate, ALPN `h2` + `http/1.1`, client
    /// certificates optional (verified against the client CA when presented).
    pub fn rustls_server_config(&self) -> Result<Arc<rustls::ServerConfig>> {
        crate::tls::server_config(
            &self.serving_cert_pem,
            &self.serving_key_pem,
            &self.client_ca_pem,
        )
    }
}

/// Load `service.key`, or generate an ECDSA P-256 key. Returns (private PEM, public PEM).
fn load_or_create_service_account_key(path: &Path) -> Result<(String, String)> {
    if let Some(pem) = read_optional(path)? {
        let key = KeyPair::from_pem(&pem)
            .map_err(|e| Error::invalid(path, format!("unusable private key: {e}")))?;
        return Ok((pem, key.public_key_pem()));
    }
    let key = KeyPair::generate().map_err(|e| Error::generate("service-account key", e))?;
    let pem = key.serialize_pem();
    write_file_with_mode(path, pem.as_bytes(), KEY_MODE)?;
    Ok((pem, key.public_key_pem()))
}
