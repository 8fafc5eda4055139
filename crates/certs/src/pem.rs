//! PEM decoding and the few X.509 facts this crate reads back from existing certificates.

use std::net::IpAddr;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::extensions::{GeneralName, ParsedExtension};

/// All certificates in a PEM string, in order. Errors when there is none.
pub(crate) fn certs_from_pem(
    pem: &str,
) -> std::result::Result<Vec<CertificateDer<'static>>, String> {
    let certs = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("bad PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no CERTIFICATE block found".into());
    }
    Ok(certs)
}

/// The first private key (PKCS#8, SEC1 or PKCS#1) in a PEM string.
pub(crate) fn key_from_pem(pem: &str) -> std::result::Result<PrivateKeyDer<'static>, String> {
    // The parse error of rustls_pemfile names no key bytes, so it is safe to pass on.
    rustls_pemfile::private_key(&mut pem.as_bytes())
        .map_err(|e| format!("bad PEM: {e}"))?
        .ok_or_else(|| "no PRIVATE KEY block found".to_string())
}

/// What this crate needs to know about an existing certificate to decide whether it can
/// be reused.
#[derive(Debug, Clone)]
pub(crate) struct CertFacts {
    pub common_name: String,
    pub organizations: Vec<String>,
    /// DER of the subject and issuer names, compared byte-wise to tell which CA signed it.
    pub subject_raw: Vec<u8>,
    pub issuer_raw: Vec<u8>,
    /// Subject key identifier (set on CAs) and authority key identifier (set on leaves):
    /// names alone cannot tell two CAs created in the same second apart, key ids can.
    pub subject_key_id: Option<Vec<u8>>,
    pub authority_key_id: Option<Vec<u8>>,
    /// Raw subject public key (for EC keys: the uncompressed point), compared with the key
    /// file to detect a key that does not belong to the certificate.
    pub public_key_raw: Vec<u8>,
    /// DNS SANs, lower-cased (DNS names compare case-insensitively).
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    pub not_after_unix: i64,
}

pub(crate) fn cert_facts(der: &[u8]) -> std::result::Result<CertFacts, String> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| format!("bad certificate: {e}"))?;
    let text = |attr: &x509_parser::x509::AttributeTypeAndValue<'_>| {
        attr.as_str()
            .map(str::to_owned)
            .map_err(|e| format!("bad subject attribute: {e}"))
    };
    let common_name = match cert.subject().iter_common_name().next() {
        Some(cn) => text(cn)?,
        None => String::new(),
    };
    let organizations = cert
        .subject()
        .iter_organization()
        .map(text)
        .collect::<std::result::Result<Vec<_>, _>>()?;

    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    let san = cert
        .subject_alternative_name()
        .map_err(|e| format!("bad subjectAltName: {e}"))?;
    for name in san.iter().flat_map(|ext| ext.value.general_names.iter()) {
        match name {
            GeneralName::DNSName(d) => dns_names.push(d.to_ascii_lowercase()),
            GeneralName::IPAddress(bytes) => {
                if let Some(ip) = ip_from_bytes(bytes) {
                    ip_addresses.push(ip);
                }
            }
            _ => {}
        }
    }

    let mut subject_key_id = None;
    let mut authority_key_id = None;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => subject_key_id = Some(id.0.to_vec()),
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                authority_key_id = aki.key_identifier.as_ref().map(|id| id.0.to_vec());
            }
            _ => {}
        }
    }

    Ok(CertFacts {
        common_name,
        organizations,
        subject_raw: cert.subject().as_raw().to_vec(),
        issuer_raw: cert.issuer().as_raw().to_vec(),
        subject_key_id,
        authority_key_id,
        public_key_raw: cert.public_key().subject_public_key.data.to_vec(),
        dns_names,
        ip_addresses,
        not_after_unix: cert.validity().not_after.timestamp(),
    })
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}
