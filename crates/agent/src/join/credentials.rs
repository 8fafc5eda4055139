//! The agent's certificates and keys in `<data-dir>/agent`, under k3s's file names:
//!
//! | file                          | what                                     | from        |
//! |-------------------------------|------------------------------------------|-------------|
//! | `server-ca.crt`, `client-ca.crt` | the cluster CAs                       | supervisor  |
//! | `client-kubelet.crt/.key`     | `system:node:<name>` / `system:nodes`    | client CA   |
//! | `serving-kubelet.crt/.key`    | kubelet HTTPS (node name, node IPs)      | server CA   |
//! | `client-kube-proxy.crt/.key`  | `system:kube-proxy`                      | client CA   |
//! | `client-k3rs-controller.crt/.key` | `system:k3rs-controller` (overlay)   | client CA   |
//! | `kubelet.kubeconfig`, `kubeproxy.kubeconfig`, `k3rscontroller.kubeconfig` | rendered |
//!
//! Keys are made here and never sent: the supervisor gets a certificate request. A
//! certificate on disk is reused while it still fits (same CA, same identity, covers the
//! node's addresses, more than 90 days left); otherwise a new one is requested for the
//! same key.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use k3rs_certs::csr::{certificate_request, new_private_key, reissue_reason, Expected};
use k3rs_core::join::path;

use super::supervisor::Supervisor;
use super::Stop;

pub const CERT_MODE: u32 = 0o644;
pub const KEY_MODE: u32 = 0o600;

/// One certificate the agent holds.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    /// File stem in the agent dir, e.g. `client-kubelet`.
    pub file: &'static str,
    /// Supervisor endpoint that signs it.
    pub endpoint: &'static str,
    /// For messages.
    pub what: &'static str,
}

pub const CLIENT_KUBELET: Kind = Kind {
    file: "client-kubelet",
    endpoint: path::CLIENT_KUBELET,
    what: "kubelet client certificate",
};
pub const SERVING_KUBELET: Kind = Kind {
    file: "serving-kubelet",
    endpoint: path::SERVING_KUBELET,
    what: "kubelet serving certificate",
};
pub const CLIENT_KUBE_PROXY: Kind = Kind {
    file: "client-kube-proxy",
    endpoint: path::CLIENT_KUBE_PROXY,
    what: "kube-proxy client certificate",
};
pub const CLIENT_CONTROLLER: Kind = Kind {
    file: "client-k3rs-controller",
    endpoint: path::CLIENT_CONTROLLER,
    what: "k3rs-controller client certificate",
};

/// A certificate (as the server sent it: leaf, then CA) and its key.
#[derive(Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

fn read_optional(path: &Path) -> Result<Option<String>, Stop> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Stop::Fatal(anyhow::anyhow!(
            "reading {}: {e}",
            path.display()
        ))),
    }
}

pub fn write(path: &Path, contents: &str, mode: u32) -> Result<(), Stop> {
    k3rs_certs::write_file_with_mode(path, contents.as_bytes(), mode)
        .map_err(|e| Stop::Fatal(anyhow::anyhow!("writing {e}")))
}

/// Like [`write`], but leaves a file that already holds `contents` alone.
pub fn write_if_changed(path: &Path, contents: &str, mode: u32) -> Result<(), Stop> {
    match read_optional(path)? {
        Some(existing) if existing == contents => Ok(()),
        _ => write(path, contents, mode),
    }
}

fn paths(dir: &Path, kind: &Kind) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{}.crt", kind.file)),
        dir.join(format!("{}.key", kind.file)),
    )
}

/// The certificate of `kind` for `expected`, from disk when it still fits `ca_pem`,
/// otherwise requested from the supervisor (with `headers`, e.g. the node's name and
/// password) and stored.
pub async fn ensure(
    supervisor: &Supervisor,
    dir: &Path,
    kind: &Kind,
    expected: &Expected,
    ca_pem: &str,
    headers: &[(HeaderName, HeaderValue)],
) -> Result<Issued, Stop> {
    let (cert_path, key_path) = paths(dir, kind);
    let cached_key = read_optional(&key_path)?;
    if let (Some(cert_pem), Some(key_pem)) = (read_optional(&cert_path)?, &cached_key) {
        match reissue_reason(&cert_pem, key_pem, ca_pem, expected) {
            None => {
                return Ok(Issued {
                    cert_pem,
                    key_pem: key_pem.clone(),
                })
            }
            Some(reason) => {
                tracing::info!(certificate = kind.what, %reason, "requesting a new certificate");
            }
        }
    }
    // Keep the key across renewals when it is still usable; otherwise start afresh.
    let (key_pem, request) = match cached_key
        .as_deref()
        .and_then(|key| Some((key, certificate_request(key, &expected.common_name).ok()?)))
    {
        Some((key, request)) => (key.to_string(), request),
        None => {
            let key = new_private_key()
                .map_err(|e| Stop::Fatal(anyhow::anyhow!("{}: {e}", kind.what)))?;
            let request = certificate_request(&key, &expected.common_name)
                .map_err(|e| Stop::Fatal(anyhow::anyhow!("{}: {e}", kind.what)))?;
            (key, request)
        }
    };
    let body = supervisor
        .post(kind.endpoint, headers, Bytes::from(request))
        .await?;
    let cert_pem = String::from_utf8(body.to_vec()).map_err(|_| {
        Stop::Retry(anyhow::anyhow!(
            "{}: the server answered something that is not PEM",
            kind.what
        ))
    })?;
    if let Some(reason) = reissue_reason(&cert_pem, &key_pem, ca_pem, expected) {
        return Err(Stop::Fatal(anyhow::anyhow!(
            "the server issued a {} that cannot be used: {reason}",
            kind.what
        )));
    }
    // Key first: a certificate is never on disk without its key.
    write(&key_path, &key_pem, KEY_MODE)?;
    write(&cert_path, &cert_pem, CERT_MODE)?;
    tracing::info!(certificate = kind.what, path = %cert_path.display(), "stored certificate");
    Ok(Issued { cert_pem, key_pem })
}
