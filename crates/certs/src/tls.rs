//! rustls configurations built from PEM, and reading the identity out of a verified
//! client certificate.
//!
//! The ring crypto provider is passed explicitly instead of relying on a process-wide
//! default, so these configs work no matter which other crates in the binary install or
//! fail to install a default provider.

use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

use crate::pem::{cert_facts, certs_from_pem, key_from_pem};
use crate::{Error, Result};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn root_store(ca_pem: &str, what: &str) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in certs_from_pem(ca_pem).map_err(|r| Error::parse(what, r))? {
        roots
            .add(cert)
            .map_err(|e| Error::parse(what, e.to_string()))?;
    }
    Ok(roots)
}

/// Server config presenting `cert_pem` (leaf first, optional chain after) with
/// `key_pem`; ALPN `h2` then `http/1.1`. Client certificates are requested but optional:
/// when presented they must chain to `client_ca_pem`, otherwise the handshake fails;
/// anonymous clients are accepted so that bearer tokens and `/version` work.
pub fn server_config(
    cert_pem: &str,
    key_pem: &str,
    client_ca_pem: &str,
) -> Result<Arc<rustls::ServerConfig>> {
    let provider = provider();
    let chain = certs_from_pem(cert_pem).map_err(|r| Error::parse("serving certificate", r))?;
    let key = key_from_pem(key_pem).map_err(|r| Error::parse("serving key", r))?;
    let roots = root_store(client_ca_pem, "client CA")?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|source| Error::ClientVerifier { source })?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| Error::Tls { source })?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|source| Error::Tls { source })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Client config trusting only `ca_pem`, optionally presenting a client certificate
/// `(cert_pem, key_pem)`; ALPN `h2` then `http/1.1`. For components that speak TLS to
/// the API server or supervisor without going through `kube::Client`.
pub fn client_config(
    ca_pem: &str,
    identity: Option<(&str, &str)>,
) -> Result<Arc<rustls::ClientConfig>> {
    let roots = root_store(ca_pem, "server CA")?;
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|source| Error::Tls { source })?
        .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert_pem, key_pem)) => {
            let chain =
                certs_from_pem(cert_pem).map_err(|r| Error::parse("client certificate", r))?;
            let key = key_from_pem(key_pem).map_err(|r| Error::parse("client key", r))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|source| Error::Tls { source })?
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Kubernetes identity of a client certificate (DER): (CN = user name, O = groups).
///
/// Only call this on a certificate the TLS layer has already verified against the client
/// CA (e.g. the first of `ServerConnection::peer_certificates()`); this function checks
/// nothing about trust.
pub fn client_identity(cert_der: &[u8]) -> Result<(String, Vec<String>)> {
    let facts = cert_facts(cert_der).map_err(|r| Error::parse("client certificate", r))?;
    if facts.common_name.is_empty() {
        return Err(Error::parse(
            "client certificate",
            "subject has no common name (user name)",
        ));
    }
    Ok((facts.common_name, facts.organizations))
}
