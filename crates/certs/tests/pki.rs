//! PKI creation, reuse and re-issuing on disk.

use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use k3rs_certs::{Pki, PkiConfig};
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

fn config(dir: &Path) -> PkiConfig {
    PkiConfig {
        tls_dir: dir.join("server/tls"),
        sans_dns: vec!["k3rs.example.com".into()],
        sans_ip: vec!["10.0.0.5".parse().unwrap(), "10.43.0.1".parse().unwrap()],
        cluster_domain: "cluster.local".into(),
    }
}

fn der(pem: &str) -> CertificateDer<'static> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .next()
        .expect("a certificate")
        .expect("valid PEM")
}

/// Verify `leaf_pem` chains to `ca_pem` and is valid for `name`, the way a TLS client would.
fn verify_server(ca_pem: &str, leaf_pem: &str, name: &str) -> Result<(), rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der(ca_pem)).unwrap();
    let verifier = WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .unwrap();
    verifier
        .verify_server_cert(
            &der(leaf_pem),
            &[],
            &ServerName::try_from(name.to_owned()).unwrap(),
            &[],
            UnixTime::now(),
        )
        .map(|_| ())
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn creates_layout_with_private_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    Pki::load_or_create(&cfg).unwrap();
    let dir = &cfg.tls_dir;
    assert_eq!(mode(dir), 0o700);
    for name in [
        "server-ca",
        "client-ca",
        "request-header-ca",
        "serving-kube-apiserver",
        "client-admin",
    ] {
        assert_eq!(mode(&dir.join(format!("{name}.key"))), 0o600, "{name}.key");
        assert_eq!(mode(&dir.join(format!("{name}.crt"))), 0o644, "{name}.crt");
    }
    assert_eq!(mode(&dir.join("service.key")), 0o600);
}

#[test]
fn second_run_reuses_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let first = Pki::load_or_create(&cfg).unwrap();
    let second = Pki::load_or_create(&cfg).unwrap();
    assert_eq!(first.server_ca_pem, second.server_ca_pem);
    assert_eq!(first.client_ca_pem, second.client_ca_pem);
    assert_eq!(first.request_header_ca_pem, second.request_header_ca_pem);
    assert_eq!(first.serving_cert_pem, second.serving_cert_pem);
    assert_eq!(first.serving_key_pem, second.serving_key_pem);
    assert_eq!(first.admin_cert_pem, second.admin_cert_pem);
    assert_eq!(
        first.service_account_key_pem,
        second.service_account_key_pem
    );
    assert_eq!(
        first.service_account_public_key_pem,
        second.service_account_public_key_pem
    );
    assert!(first.service_account_key_pem.contains("BEGIN PRIVATE KEY"));
    assert!(first
        .service_account_public_key_pem
        .contains("BEGIN PUBLIC KEY"));
}

#[test]
fn new_san_reissues_only_the_serving_cert() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    let first = Pki::load_or_create(&cfg).unwrap();

    cfg.sans_dns.push("new.example.com".into());
    cfg.sans_ip.push("192.168.1.10".parse().unwrap());
    let second = Pki::load_or_create(&cfg).unwrap();
    assert_ne!(first.serving_cert_pem, second.serving_cert_pem);
    assert_eq!(first.server_ca_pem, second.server_ca_pem);
    assert_eq!(first.client_ca_pem, second.client_ca_pem);
    assert_eq!(first.request_header_ca_pem, second.request_header_ca_pem);
    assert_eq!(first.admin_cert_pem, second.admin_cert_pem);
    verify_server(
        &second.server_ca_pem,
        &second.serving_cert_pem,
        "new.example.com",
    )
    .unwrap();
    verify_server(
        &second.server_ca_pem,
        &second.serving_cert_pem,
        "192.168.1.10",
    )
    .unwrap();
    // The file on disk is the new certificate.
    let on_disk = fs::read_to_string(cfg.tls_dir.join("serving-kube-apiserver.crt")).unwrap();
    assert_eq!(on_disk, second.serving_cert_pem);

    // Dropping a SAN again does not churn the certificate: the wanted set is covered.
    cfg.sans_dns.pop();
    let third = Pki::load_or_create(&cfg).unwrap();
    assert_eq!(second.serving_cert_pem, third.serving_cert_pem);
    // A SAN given as a DNS entry that is really an IP, in another case, is covered too.
    cfg.sans_dns = vec!["K3RS.example.com".into(), "192.168.1.10".into()];
    let fourth = Pki::load_or_create(&cfg).unwrap();
    assert_eq!(second.serving_cert_pem, fourth.serving_cert_pem);
}

#[test]
fn serving_cert_chains_to_server_ca_and_has_all_sans() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let pki = Pki::load_or_create(&cfg).unwrap();
    for name in [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "k3rs.example.com",
        "127.0.0.1",
        "::1",
        "10.0.0.5",
        "10.43.0.1",
    ] {
        verify_server(&pki.server_ca_pem, &pki.serving_cert_pem, name)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert!(verify_server(
        &pki.server_ca_pem,
        &pki.serving_cert_pem,
        "other.example.com"
    )
    .is_err());
    // Not valid under the client CA: the CAs are distinct.
    assert!(verify_server(&pki.client_ca_pem, &pki.serving_cert_pem, "localhost").is_err());

    // Issuer and key usages, read with x509-parser.
    let leaf_der = der(&pki.serving_cert_pem);
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf_der).unwrap();
    let ca_der = der(&pki.server_ca_pem);
    let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
    assert_eq!(cert.issuer().as_raw(), ca.subject().as_raw());
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth);
    assert!(ca.is_ca());
    let cn = ca
        .subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap();
    assert!(cn.starts_with("k3rs-server-ca@"), "{cn}");
    // CA ~10 years, leaf ~1 year.
    let ca_days =
        (ca.validity().not_after.timestamp() - ca.validity().not_before.timestamp()) / 86400;
    assert!((3649..=3651).contains(&ca_days), "{ca_days}");
    let leaf_days =
        (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp()) / 86400;
    assert!((364..=366).contains(&leaf_days), "{leaf_days}");
}

#[test]
fn admin_and_issued_client_certs() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(&config(tmp.path())).unwrap();
    let admin = der(&pki.admin_cert_pem);
    assert_eq!(
        k3rs_certs::client_identity(&admin).unwrap(),
        ("system:admin".to_owned(), vec!["system:masters".to_owned()])
    );
    let (_, cert) = x509_parser::parse_x509_certificate(&admin).unwrap();
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);

    let (cert_pem, key_pem) = pki
        .issue_client_cert("system:node:n1", &["system:nodes", "extra"])
        .unwrap();
    assert!(key_pem.contains("PRIVATE KEY"));
    assert_eq!(
        k3rs_certs::client_identity(&der(&cert_pem)).unwrap(),
        (
            "system:node:n1".to_owned(),
            vec!["system:nodes".to_owned(), "extra".to_owned()]
        )
    );

    let (kubelet_pem, _) = pki
        .issue_serving_cert(
            "n1",
            &["n1".into()],
            &["10.0.0.7".parse::<IpAddr>().unwrap()],
        )
        .unwrap();
    verify_server(&pki.server_ca_pem, &kubelet_pem, "10.0.0.7").unwrap();
    verify_server(&pki.server_ca_pem, &kubelet_pem, "n1").unwrap();
}

#[test]
fn damaged_leaf_is_reissued_but_damaged_ca_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let first = Pki::load_or_create(&cfg).unwrap();

    fs::write(cfg.tls_dir.join("client-admin.crt"), "garbage").unwrap();
    let second = Pki::load_or_create(&cfg).unwrap();
    assert_ne!(first.admin_cert_pem, second.admin_cert_pem);
    assert_eq!(first.client_ca_pem, second.client_ca_pem);

    fs::remove_file(cfg.tls_dir.join("client-ca.key")).unwrap();
    let err = Pki::load_or_create(&cfg).unwrap_err().to_string();
    assert!(err.contains("client-ca.key"), "{err}");
    // The CA certificate was left alone.
    assert_eq!(
        fs::read_to_string(cfg.tls_dir.join("client-ca.crt")).unwrap(),
        first.client_ca_pem
    );
}

#[test]
fn debug_output_has_no_private_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(&config(tmp.path())).unwrap();
    let debug = format!("{pki:?}");
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");
}

#[test]
fn leaf_signed_by_another_ca_is_reissued() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let pki = Pki::load_or_create(&cfg).unwrap();
    let other = Pki::load_or_create(&config(&tmp.path().join("other"))).unwrap();
    // Same SANs, valid dates, matching key, but issued by a foreign CA.
    fs::write(
        cfg.tls_dir.join("serving-kube-apiserver.crt"),
        &other.serving_cert_pem,
    )
    .unwrap();
    fs::write(
        cfg.tls_dir.join("serving-kube-apiserver.key"),
        &other.serving_key_pem,
    )
    .unwrap();
    let reloaded = Pki::load_or_create(&cfg).unwrap();
    assert_eq!(reloaded.server_ca_pem, pki.server_ca_pem);
    assert_ne!(reloaded.serving_cert_pem, other.serving_cert_pem);
    verify_server(&pki.server_ca_pem, &reloaded.serving_cert_pem, "localhost").unwrap();
}

#[test]
fn several_groups_are_all_in_the_subject() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(&config(tmp.path())).unwrap();
    let (cert_pem, _) = pki.issue_client_cert("u", &["a", "b", "c"]).unwrap();
    let cert_der = der(&cert_pem);
    let (_, cert) = x509_parser::parse_x509_certificate(&cert_der).unwrap();
    let orgs: Vec<&str> = cert
        .subject()
        .iter_organization()
        .map(|o| o.as_str().unwrap())
        .collect();
    assert_eq!(orgs, ["a", "b", "c"]);
    // Re-signing kept the rest of the certificate intact.
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth);
    let ca_der = der(&pki.client_ca_pem);
    let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
    assert_eq!(cert.issuer().as_raw(), ca.subject().as_raw());
}
