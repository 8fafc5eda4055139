//! The node agent: everything that runs on a node besides the API server. `k3rs agent`
//! joins a cluster first ([`join`]: the supervisor protocol, certificates from CSRs, the
//! client-side API load balancer of [`loadbalancer`]) and then runs the node's
//! components; `k3rs server` runs the same components for its own node ([`local`]),
//! with credentials from its own PKI instead of a join.
//!
//! The components ([`node::start`]) are the overlay (`k3rs-flannel`) and the kubelet
//! (`k3rs-kubelet`), each a task with its own span, all stopped by one
//! [`k3rs_core::Shutdown`]. Every one of them is a client of the API over HTTPS, as it
//! would be on another machine.
//!
//! The binary only parses flags into the settings types here and handles signals.

pub mod bootstrap_tokens;
pub mod config;
pub mod join;
pub mod loadbalancer;
pub mod local;
pub mod node;
mod run;

pub use config::{Config, NodeCredentials};
pub use join::JoinSettings;
pub use run::run;

/// Where k3s keeps its state; k3rs uses the same layout under its own name.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/rancher/k3rs";
/// The admin kubeconfig `k3rs server` writes (k3s: `/etc/rancher/k3s/k3s.yaml`).
pub const DEFAULT_KUBECONFIG: &str = "/etc/rancher/k3rs/k3rs.yaml";

/// The machine's host name, lower-cased: the default node name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_lowercase())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
