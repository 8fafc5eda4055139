//! Certificates for keys that never leave another machine.
//!
//! A joining agent generates its private keys itself and sends only certificate signing
//! requests (PKCS#10) to the server's supervisor endpoints; the server signs the requested
//! public key with the identity *it* decides on (the CSR's own subject and extensions are
//! ignored, so an agent cannot ask for `system:masters`). The agent later checks whether
//! a certificate it kept on disk can still be used, so it only asks again when needed.

use std::net::IpAddr;

use rcgen::{CertificateParams, CertificateSigningRequestParams, KeyPair};

use crate::leaf::LeafSpec;
use crate::pem::{cert_facts, certs_from_pem};
use crate::validity::needs_renewal;
use crate::{Error, Result};

/// Key types a request may carry: what Go's crypto/x509 and rcgen produce by default.
const ACCEPTED_ALGORITHMS: [&rcgen::SignatureAlgorithm; 5] = [
    &rcgen::PKCS_ECDSA_P256_SHA256,
    &rcgen::PKCS_ECDSA_P384_SHA384,
    &rcgen::PKCS_ED25519,
    &rcgen::PKCS_RSA_SHA256,
    &rcgen::PKCS_RSA_SHA384,
];

/// A fresh ECDSA P-256 private key, PKCS#8 PEM.
pub fn new_private_key() -> Result<String> {
    let key = KeyPair::generate().map_err(|e| Error::generate("private key", e))?;
    Ok(key.serialize_pem())
}

/// A PEM certificate signing request for `key_pem` naming `common_name`. The server
/// decides the certificate's real subject; the name only makes the request readable.
pub fn certificate_request(key_pem: &str, common_name: &str) -> Result<String> {
    let key = KeyPair::from_pem(key_pem)
        .map_err(|e| Error::parse("private key", format!("unusable private key: {e}")))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let request = params
        .serialize_request(&key)
        .map_err(|e| Error::generate("certificate request", e))?;
    request
        .pem()
        .map_err(|e| Error::generate("certificate request", e))
}

/// A certificate signing request whose self-signature has been verified, i.e. the sender
/// holds the private key of the public key it asks a certificate for.
#[derive(Debug, Clone)]
pub struct SigningRequest {
    public_key: rcgen::PublicKey,
}

impl SigningRequest {
    /// Parse a PEM `CERTIFICATE REQUEST`, verify its signature and key type.
    pub fn from_pem(pem: &str) -> Result<SigningRequest> {
        let what = "certificate request";
        if !pem.contains("-----BEGIN CERTIFICATE REQUEST-----") {
            return Err(Error::parse(
                what,
                "expected a PEM \"CERTIFICATE REQUEST\" block",
            ));
        }
        let parsed = CertificateSigningRequestParams::from_pem(pem).map_err(|e| match e {
            rcgen::Error::InvalidCertificationRequestSignature => {
                Error::parse(what, "its signature does not verify")
            }
            other => Error::parse(what, other.to_string()),
        })?;
        let algorithm = parsed.public_key.algorithm();
        if !ACCEPTED_ALGORITHMS.contains(&algorithm) {
            return Err(Error::parse(
                what,
                "unsupported key type (use ECDSA P-256/P-384, Ed25519 or RSA)",
            ));
        }
        Ok(SigningRequest {
            public_key: parsed.public_key,
        })
    }

    pub(crate) fn public_key(&self) -> &rcgen::PublicKey {
        &self.public_key
    }
}

/// What a certificate kept on disk must still satisfy to be reused.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    pub common_name: String,
    /// Groups (`O`), compared as a set.
    pub organizations: Vec<String>,
    /// SANs the certificate must cover (it may have more).
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
}

/// Why a certificate (first block of `cert_pem`) with key `key_pem` can no longer be used
/// against `ca_pem`, or `None` when it can: it must parse, belong to the key, name that CA
/// as issuer, not expire within 90 days, and carry the expected identity and SANs.
pub fn reissue_reason(
    cert_pem: &str,
    key_pem: &str,
    ca_pem: &str,
    expected: &Expected,
) -> Option<String> {
    let check = || -> std::result::Result<Option<String>, String> {
        let facts = cert_facts(&certs_from_pem(cert_pem)?[0])?;
        let key = KeyPair::from_pem(key_pem).map_err(|e| format!("unusable private key: {e}"))?;
        if key.public_key_raw() != facts.public_key_raw.as_slice() {
            return Ok(Some(
                "the private key does not match the certificate".into(),
            ));
        }
        let ca = cert_facts(&certs_from_pem(ca_pem)?[0])?;
        let same_key_id = match (&ca.subject_key_id, &facts.authority_key_id) {
            (Some(ca_id), Some(leaf_id)) => ca_id == leaf_id,
            _ => true,
        };
        if facts.issuer_raw != ca.subject_raw || !same_key_id {
            return Ok(Some("not signed by the cluster's current CA".into()));
        }
        if needs_renewal(facts.not_after_unix) {
            return Ok(Some("expires within 90 days".into()));
        }
        if facts.common_name != expected.common_name {
            return Ok(Some("issued for another name".into()));
        }
        let mut have = facts.organizations.clone();
        let mut want = expected.organizations.clone();
        have.sort();
        want.sort();
        if have != want {
            return Ok(Some("issued for other groups".into()));
        }
        let missing_dns = expected
            .dns_names
            .iter()
            .any(|d| !facts.dns_names.contains(&d.to_ascii_lowercase()));
        let missing_ip = expected
            .ip_addresses
            .iter()
            .any(|ip| !facts.ip_addresses.contains(ip));
        if missing_dns || missing_ip {
            return Ok(Some(
                "does not cover the node's current names and addresses".into(),
            ));
        }
        Ok(None)
    };
    check().unwrap_or_else(Some)
}

/// Sign `request`'s key with `spec`'s identity (used by [`crate::Pki`]).
pub(crate) fn sign(
    request: &SigningRequest,
    spec: &LeafSpec,
    ca: &crate::authority::Authority,
) -> Result<String> {
    spec.sign_public_key(request.public_key(), ca)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::PublicKeyData as _;

    #[test]
    fn request_round_trips_and_keeps_only_the_key() {
        let key = new_private_key().unwrap();
        let csr = certificate_request(&key, "system:node:n1").unwrap();
        assert!(csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
        let request = SigningRequest::from_pem(&csr).unwrap();
        let key_pair = KeyPair::from_pem(&key).unwrap();
        assert_eq!(request.public_key().der_bytes(), key_pair.public_key_raw());
    }

    #[test]
    fn tampered_or_foreign_requests_are_refused() {
        let key = new_private_key().unwrap();
        let csr = certificate_request(&key, "n1").unwrap();
        // Flip one bit inside the base64 body: the signature (or the DER) breaks.
        let body_start = csr.find('\n').unwrap() + 40;
        let mut bytes = csr.clone().into_bytes();
        bytes[body_start] = if bytes[body_start] == b'A' {
            b'B'
        } else {
            b'A'
        };
        let tampered = String::from_utf8(bytes).unwrap();
        assert!(SigningRequest::from_pem(&tampered).is_err());

        let not_a_csr = key.clone();
        let err = SigningRequest::from_pem(&not_a_csr)
            .unwrap_err()
            .to_string();
        assert!(err.contains("CERTIFICATE REQUEST"), "{err}");
        assert!(!err.contains("PRIVATE KEY-----"), "{err}");
    }

    #[test]
    fn reissue_reasons() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = crate::Pki::load_or_create(&crate::PkiConfig {
            tls_dir: tmp.path().join("tls"),
            sans_dns: vec![],
            sans_ip: vec![],
            cluster_domain: "cluster.local".into(),
        })
        .unwrap();
        let key = new_private_key().unwrap();
        let request = SigningRequest::from_pem(&certificate_request(&key, "x").unwrap()).unwrap();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let cert = pki
            .sign_serving_request(&request, "n1", &["n1".into()], &[ip])
            .unwrap();
        let expected = Expected {
            common_name: "n1".into(),
            organizations: vec![],
            dns_names: vec!["n1".into()],
            ip_addresses: vec![ip],
        };
        assert_eq!(
            reissue_reason(&cert, &key, &pki.server_ca_pem, &expected),
            None
        );
        // Signed by the server CA, not the client CA.
        assert!(reissue_reason(&cert, &key, &pki.client_ca_pem, &expected).is_some());
        // Another key.
        let other = new_private_key().unwrap();
        assert!(reissue_reason(&cert, &other, &pki.server_ca_pem, &expected).is_some());
        // The node got a new address.
        let moved = Expected {
            ip_addresses: vec!["192.0.2.8".parse().unwrap()],
            ..expected.clone()
        };
        assert!(reissue_reason(&cert, &key, &pki.server_ca_pem, &moved)
            .unwrap()
            .contains("addresses"));
        // Garbage on disk is a reason too, not a panic.
        assert!(reissue_reason("junk", &key, &pki.server_ca_pem, &expected).is_some());

        // A client certificate carries the identity the server chose, not the request's.
        let client = pki
            .sign_client_request(&request, "system:node:n1", &["system:nodes"])
            .unwrap();
        let der = &certs_from_pem(&client).unwrap()[0];
        let (user, groups) = crate::client_identity(der).unwrap();
        assert_eq!(
            (user.as_str(), groups),
            ("system:node:n1", vec!["system:nodes".to_string()])
        );
        let expected_client = Expected {
            common_name: "system:node:n1".into(),
            organizations: vec!["system:nodes".into()],
            ..Expected::default()
        };
        assert_eq!(
            reissue_reason(&client, &key, &pki.client_ca_pem, &expected_client),
            None
        );
    }
}
