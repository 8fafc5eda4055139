//! Certificate authorities: self-signed CA certificates with their keys, loaded from
//! `<name>.crt`/`<name>.key` or created once. A CA that exists on disk is never
//! replaced: every certificate and kubeconfig in the cluster trusts it, so a silent
//! regeneration would lock every client and node out. A half-present or mismatched CA
//! is an error for the operator to resolve, not something to paper over.

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::atomic_file::{read_optional, write_file_with_mode};
use crate::pem::{cert_facts, certs_from_pem};
use crate::validity::{now_unix, random_serial, set_validity, CA_LIFETIME};
use crate::{Error, Result};

pub(crate) const CERT_MODE: u32 = 0o644;
pub(crate) const KEY_MODE: u32 = 0o600;

/// A CA that can sign certificates.
pub(crate) struct Authority {
    pub cert_pem: String,
    /// DER of the CA's subject name: a leaf whose issuer equals it was signed by this CA
    /// (the CN carries the creation time, so a different CA has a different name).
    pub subject_raw: Vec<u8>,
    /// The CA's subject key identifier, which leaves it signs carry as their authority
    /// key identifier. Tells apart CAs whose names collide (created in the same second).
    pub key_id: Option<Vec<u8>>,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Deliberately omits the signing key.
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

impl Authority {
    /// Load `<dir>/<name>.crt` + `.key`, or create a CA named `<cn_prefix>@<unix time>`
    /// when neither file exists.
    pub fn load_or_create(dir: &Path, name: &str, cn_prefix: &str) -> Result<Authority> {
        let cert_path = dir.join(format!("{name}.crt"));
        let key_path = dir.join(format!("{name}.key"));
        match (read_optional(&cert_path)?, read_optional(&key_path)?) {
            (Some(cert_pem), Some(key_pem)) => {
                Self::load(&cert_path, cert_pem, &key_path, &key_pem)
            }
            (None, None) => {
                let ca = Self::create(cn_prefix)?;
                // Key first: a crash in between leaves a lone key, which the next start
                // reports instead of trusting a certificate whose key is gone.
                write_file_with_mode(
                    &key_path,
                    ca.issuer.key().serialize_pem().as_bytes(),
                    KEY_MODE,
                )?;
                write_file_with_mode(&cert_path, ca.cert_pem.as_bytes(), CERT_MODE)?;
                tracing::info!(path = %cert_path.display(), "created certificate authority");
                Ok(ca)
            }
            (Some(_), None) => Err(Error::invalid(
                &key_path,
                format!(
                    "missing, but {} exists; refusing to replace an existing CA",
                    cert_path.display()
                ),
            )),
            (None, Some(_)) => Err(Error::invalid(
                &cert_path,
                format!(
                    "missing, but {} exists; refusing to replace an existing CA",
                    key_path.display()
                ),
            )),
        }
    }

    fn create(cn_prefix: &str) -> Result<Authority> {
        let what = format!("{cn_prefix} CA");
        let key = KeyPair::generate().map_err(|e| Error::generate(&what, e))?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{cn_prefix}@{}", now_unix()));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(random_serial());
        set_validity(&mut params, CA_LIFETIME);
        let cert = params
            .self_signed(&key)
            .map_err(|e| Error::generate(&what, e))?;
        let facts = cert_facts(cert.der()).map_err(|reason| Error::parse(&what, reason))?;
        Ok(Authority {
            cert_pem: cert.pem(),
            subject_raw: facts.subject_raw,
            key_id: facts.subject_key_id,
            issuer: Issuer::new(params, key),
        })
    }

    fn load(
        cert_path: &Path,
        cert_pem: String,
        key_path: &Path,
        key_pem: &str,
    ) -> Result<Authority> {
        let der = certs_from_pem(&cert_pem).map_err(|r| Error::invalid(cert_path, r))?;
        let facts = cert_facts(&der[0]).map_err(|r| Error::invalid(cert_path, r))?;
        // rcgen's error for a bad key names no key bytes.
        let key = KeyPair::from_pem(key_pem)
            .map_err(|e| Error::invalid(key_path, format!("unusable private key: {e}")))?;
        if key.public_key_raw() != facts.public_key_raw.as_slice() {
            return Err(Error::invalid(
                key_path,
                format!("private key does not match {}", cert_path.display()),
            ));
        }
        let issuer = Issuer::from_ca_cert_der(&der[0], key)
            .map_err(|e| Error::invalid(cert_path, format!("not usable as a CA: {e}")))?;
        Ok(Authority {
            cert_pem,
            subject_raw: facts.subject_raw,
            key_id: facts.subject_key_id,
            issuer,
        })
    }

    /// Whether a certificate with these facts names this CA as its issuer.
    pub fn is_issuer_of(&self, leaf: &crate::pem::CertFacts) -> bool {
        leaf.issuer_raw == self.subject_raw
            && match &self.key_id {
                Some(id) => leaf.authority_key_id.as_ref() == Some(id),
                None => true,
            }
    }

    pub fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }
}
