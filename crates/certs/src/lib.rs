//! Certificates and credentials for a k3rs cluster.
//!
//! This crate owns the cluster's certificate authorities and the leaf certificates they
//! sign (API server serving cert, admin and component client certs), the service-account
//! signing key, the rustls configurations built from them, kubeconfig rendering and the
//! join token (`K10<ca-hash>::<user>:<password>`), bootstrap tokens, and signing the
//! certificate requests of joining agents (whose keys never leave their machine).
//!
//! Everything lives on disk under `<data-dir>/server/tls` with k3s's file names, so an
//! operator who knows k3s finds the same files in the same places. The crate reads and
//! writes files but serves nothing: HTTP belongs to the API server.
//!
//! Key material and token passwords are never logged and never appear in `Debug` output
//! or error messages.

mod atomic_file;
mod authority;
pub mod bootstrap_token;
pub mod csr;
mod error;
pub mod join_token;
pub mod kubeconfig;
mod leaf;
mod pem;
mod pki;
mod subject;
pub mod tls;
pub mod token;
mod unverified;
mod validity;

pub use atomic_file::write_file_with_mode;
pub use bootstrap_token::BootstrapToken;
pub use error::{Error, Result};
pub use join_token::JoinToken;
pub use kubeconfig::render_kubeconfig;
pub use pki::{Pki, PkiConfig};
pub use tls::client_identity;
pub use token::{ca_hash, ensure_agent_token, ensure_server_token, Token};
pub use unverified::unverified_client_config;
