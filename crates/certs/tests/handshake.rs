//! Real TLS handshakes against `Pki::rustls_server_config`, in-process over loopback TCP.

// Test tasks need no span: spawning them bare is fine.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::sync::Arc;

use k3rs_certs::{client_identity, Pki, PkiConfig};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

fn pki(dir: &Path) -> Pki {
    Pki::load_or_create(&PkiConfig {
        tls_dir: dir.join("tls"),
        sans_dns: vec![],
        sans_ip: vec![],
        cluster_domain: "cluster.local".into(),
    })
    .unwrap()
}

/// What the server saw: the identity of the verified client certificate (if any) and the
/// negotiated ALPN protocol, or the handshake error.
type Seen = Result<(Option<(String, Vec<String>)>, Option<Vec<u8>>), String>;

/// Accept one connection with the PKI's server config, connect to it as a client
/// presenting `identity`, and report what each side saw.
async fn handshake(pki: &Pki, identity: Option<(&str, &str)>, ca_pem: &str) -> (Seen, bool) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(pki.rustls_server_config().unwrap());
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        match acceptor.accept(tcp).await {
            Err(e) => Err(e.to_string()),
            Ok(mut tls) => {
                let (_, conn) = tls.get_ref();
                let who = conn
                    .peer_certificates()
                    .and_then(|certs| certs.first())
                    .map(|der| client_identity(der).unwrap());
                let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
                tls.write_all(b"hello").await.map_err(|e| e.to_string())?;
                tls.shutdown().await.ok();
                Ok((who, alpn))
            }
        }
    });

    let config = k3rs_certs::tls::client_config(ca_pem, identity).unwrap();
    let connector = TlsConnector::from(Arc::clone(&config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    // With TLS 1.3 the client finishes its handshake before the server has judged the
    // client certificate, so a rejection shows up as a failed read, not a failed connect.
    let client_ok = match connector.connect(name, tcp).await {
        Err(_) => false,
        Ok(mut tls) => {
            let mut buf = Vec::new();
            tls.read_to_end(&mut buf).await.is_ok() && buf == b"hello"
        }
    };
    (server.await.unwrap(), client_ok)
}

#[tokio::test]
async fn admin_client_certificate_is_verified_and_identified() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = pki(tmp.path());
    let (seen, client_ok) = handshake(
        &pki,
        Some((&pki.admin_cert_pem, &pki.admin_key_pem)),
        &pki.server_ca_pem,
    )
    .await;
    let (who, alpn) = seen.unwrap();
    assert!(client_ok);
    assert_eq!(
        who,
        Some(("system:admin".to_owned(), vec!["system:masters".to_owned()]))
    );
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
}

#[tokio::test]
async fn issued_certificate_with_several_groups_is_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = pki(tmp.path());
    let (cert, key) = pki
        .issue_client_cert("jane", &["dev", "ops", "system:authenticated"])
        .unwrap();
    let (seen, client_ok) = handshake(&pki, Some((&cert, &key)), &pki.server_ca_pem).await;
    assert!(client_ok);
    assert_eq!(
        seen.unwrap().0,
        Some((
            "jane".to_owned(),
            vec!["dev".into(), "ops".into(), "system:authenticated".into()]
        ))
    );
}

#[tokio::test]
async fn anonymous_client_is_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = pki(tmp.path());
    let (seen, client_ok) = handshake(&pki, None, &pki.server_ca_pem).await;
    assert!(client_ok);
    assert_eq!(seen.unwrap().0, None);
}

#[tokio::test]
async fn client_certificate_from_another_ca_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = pki(tmp.path());
    let other = self::pki(&tmp.path().join("other"));
    assert_ne!(pki.client_ca_pem, other.client_ca_pem);
    let (seen, client_ok) = handshake(
        &pki,
        Some((&other.admin_cert_pem, &other.admin_key_pem)),
        &pki.server_ca_pem,
    )
    .await;
    assert!(
        seen.is_err(),
        "server accepted a foreign client cert: {seen:?}"
    );
    assert!(!client_ok);
}

#[tokio::test]
async fn server_certificate_from_another_ca_is_not_trusted() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = pki(tmp.path());
    let other = self::pki(&tmp.path().join("other"));
    let (_, client_ok) = handshake(&pki, None, &other.server_ca_pem).await;
    assert!(!client_ok);
}
