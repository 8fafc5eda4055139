//! The TLS client HTTPS probes use. Upstream probes skip certificate verification (a
//! pod's serving certificate is rarely issued for its IP, and the probe only asks "is it
//! answering"), so this is `k3rs_certs::unverified_client_config`, which still checks the
//! handshake signatures.

use std::sync::{Arc, OnceLock};

use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Start TLS on `stream`; `host` gives the SNI name (none is sent for an IP, as Go does).
pub async fn connect(stream: TcpStream, host: &str) -> Result<TlsStream<TcpStream>, String> {
    let config = probe_client_config()?;
    let server_name = ServerName::try_from(host.to_string())
        .map_err(|err| format!("invalid TLS server name {host:?}: {err}"))?;
    TlsConnector::from(config)
        .connect(server_name, stream)
        .await
        .map_err(|err| format!("tls: {err}"))
}

/// Built once: the config is immutable and shared by every HTTPS probe.
fn probe_client_config() -> Result<Arc<ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            k3rs_certs::unverified_client_config()
                .map(Arc::new)
                .map_err(|err| format!("TLS client config for probes: {err}"))
        })
        .clone()
}
