//! Leaf certificates: what a serving or client certificate must contain, issuing one,
//! and deciding whether one already on disk can be kept.
//!
//! Leaves are disposable (clients trust the CA, not the leaf), so unlike CAs an
//! unreadable, expiring or insufficient leaf is simply re-issued.

use std::net::IpAddr;
use std::path::Path;

use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose, SanType,
};

use crate::atomic_file::{read_optional, write_file_with_mode};
use crate::authority::{Authority, CERT_MODE, KEY_MODE};
use crate::pem::{cert_facts, certs_from_pem, CertFacts};
use crate::subject::{encode_name, replace_subject};
use crate::validity::{needs_renewal, random_serial, set_validity, LEAF_LIFETIME};
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Usage {
    /// TLS server (extended key usage serverAuth).
    Server,
    /// TLS client (extended key usage clientAuth).
    Client,
}

/// Everything a wanted leaf certificate must contain.
#[derive(Debug, Clone)]
pub(crate) struct LeafSpec {
    pub common_name: String,
    pub organizations: Vec<String>,
    pub usage: Usage,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
}

impl LeafSpec {
    pub fn client(common_name: &str, groups: &[&str]) -> LeafSpec {
        LeafSpec {
            common_name: common_name.to_owned(),
            organizations: groups.iter().map(|g| (*g).to_owned()).collect(),
            usage: Usage::Client,
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
        }
    }

    /// A serving certificate. DNS entries that are really IP addresses (a `--tls-san`
    /// may be either) become IP SANs; duplicates are dropped, order kept.
    pub fn server(common_name: &str, dns: &[String], ips: &[IpAddr]) -> LeafSpec {
        let mut dns_names: Vec<String> = Vec::new();
        let mut ip_addresses: Vec<IpAddr> = Vec::new();
        for ip in ips {
            if !ip_addresses.contains(ip) {
                ip_addresses.push(*ip);
            }
        }
        for name in dns {
            let name = name.trim();
            if name.is_empty() {
                continue;
            }
            if let Ok(ip) = name.parse::<IpAddr>() {
                if !ip_addresses.contains(&ip) {
                    ip_addresses.push(ip);
                }
            } else {
                let name = name.to_ascii_lowercase();
                if !dns_names.contains(&name) {
                    dns_names.push(name);
                }
            }
        }
        LeafSpec {
            common_name: common_name.to_owned(),
            organizations: Vec::new(),
            usage: Usage::Server,
            dns_names,
            ip_addresses,
        }
    }

    /// Issue a new certificate and key signed by `ca`. Returns (cert PEM, key PEM).
    pub fn issue(&self, ca: &Authority) -> Result<(String, String)> {
        let what = format!("certificate for {:?}", self.common_name);
        let key = KeyPair::generate().map_err(|e| Error::generate(&what, e))?;
        let cert_pem = self.sign_public_key(&key, ca)?;
        Ok((cert_pem, key.serialize_pem()))
    }

    /// A certificate for `public_key` (a fresh key, or the key of a verified certificate
    /// signing request) signed by `ca`. Returns the certificate PEM.
    pub fn sign_public_key(
        &self,
        public_key: &impl rcgen::PublicKeyData,
        ca: &Authority,
    ) -> Result<String> {
        let what = format!("certificate for {:?}", self.common_name);
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, self.common_name.as_str());
        // rcgen holds one value per attribute type; several groups are patched in below.
        if let [org] = self.organizations.as_slice() {
            params
                .distinguished_name
                .push(DnType::OrganizationName, org.as_str());
        }
        // The same key usages k3s (client-go's certutil) sets. KeyEncipherment only matters
        // for RSA keys, but keeping the profile identical avoids surprising any verifier.
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![match self.usage {
            Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        for name in &self.dns_names {
            let ia5 = name
                .clone()
                .try_into()
                .map_err(|e| Error::generate(format!("DNS SAN {name:?}"), e))?;
            params.subject_alt_names.push(SanType::DnsName(ia5));
        }
        for ip in &self.ip_addresses {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        // Ties the leaf to its CA's key (not just its name): `Authority::is_issuer_of`
        // relies on it, and verifiers use it to pick the right CA during a rotation.
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial());
        set_validity(&mut params, LEAF_LIFETIME);
        let cert = params
            .signed_by(public_key, ca.issuer())
            .map_err(|e| Error::generate(&what, e))?;
        if self.organizations.len() < 2 {
            return Ok(cert.pem());
        }
        let subject = encode_name(&self.common_name, &self.organizations);
        let der = replace_subject(cert.der(), &subject, ca.issuer().key())
            .map_err(|reason| Error::parse(&what, reason))?;
        Ok(der_to_pem(&der))
    }

    /// Why an existing certificate cannot be kept for this spec, or `None` if it can.
    /// Extra SANs in the existing certificate are fine: the wanted set only has to be
    /// covered (so removing a `--tls-san` does not churn the certificate, as in k3s).
    fn unfit_reason(&self, facts: &CertFacts, ca: &Authority) -> Option<String> {
        if !ca.is_issuer_of(facts) {
            return Some("not signed by the current CA".into());
        }
        if needs_renewal(facts.not_after_unix) {
            return Some("expires within 90 days".into());
        }
        if facts.common_name != self.common_name {
            return Some("common name changed".into());
        }
        let mut have_orgs = facts.organizations.clone();
        let mut want_orgs = self.organizations.clone();
        have_orgs.sort();
        want_orgs.sort();
        if have_orgs != want_orgs {
            return Some("organizations changed".into());
        }
        let missing_dns: Vec<&str> = self
            .dns_names
            .iter()
            .filter(|d| !facts.dns_names.contains(&d.to_ascii_lowercase()))
            .map(String::as_str)
            .collect();
        let missing_ips: Vec<String> = self
            .ip_addresses
            .iter()
            .filter(|ip| !facts.ip_addresses.contains(ip))
            .map(IpAddr::to_string)
            .collect();
        if !missing_dns.is_empty() || !missing_ips.is_empty() {
            let mut missing: Vec<String> = missing_dns.into_iter().map(str::to_owned).collect();
            missing.extend(missing_ips);
            return Some(format!("missing SANs {}", missing.join(", ")));
        }
        None
    }
}

/// Reuse `<dir>/<name>.crt`/`.key` if they still satisfy `spec` and were signed by `ca`;
/// otherwise issue and write a new pair. Returns (cert PEM, key PEM).
pub(crate) fn load_or_issue(
    dir: &Path,
    name: &str,
    spec: &LeafSpec,
    ca: &Authority,
) -> Result<(String, String)> {
    let cert_path = dir.join(format!("{name}.crt"));
    let key_path = dir.join(format!("{name}.key"));
    let existing = match (read_optional(&cert_path)?, read_optional(&key_path)?) {
        (Some(cert), Some(key)) => Some((cert, key)),
        _ => None,
    };
    if let Some((cert_pem, key_pem)) = existing {
        match check_existing(spec, ca, &cert_pem, &key_pem) {
            Ok(()) => return Ok((cert_pem, key_pem)),
            Err(reason) => {
                tracing::info!(path = %cert_path.display(), %reason, "re-issuing certificate");
            }
        }
    }
    let (cert_pem, key_pem) = spec.issue(ca)?;
    write_file_with_mode(&key_path, key_pem.as_bytes(), KEY_MODE)?;
    write_file_with_mode(&cert_path, cert_pem.as_bytes(), CERT_MODE)?;
    Ok((cert_pem, key_pem))
}

fn check_existing(
    spec: &LeafSpec,
    ca: &Authority,
    cert_pem: &str,
    key_pem: &str,
) -> std::result::Result<(), String> {
    let der = certs_from_pem(cert_pem)?;
    let facts = cert_facts(&der[0])?;
    let key = KeyPair::from_pem(key_pem).map_err(|e| format!("unusable private key: {e}"))?;
    if key.public_key_raw() != facts.public_key_raw.as_slice() {
        return Err("private key does not match certificate".into());
    }
    match spec.unfit_reason(&facts, ca) {
        None => Ok(()),
        Some(reason) => Err(reason),
    }
}

fn der_to_pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}
