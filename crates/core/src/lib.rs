//! Shared vocabulary of k3rs, with no IO: the table of built-in API resources, label and
//! field selectors, the validation of names and labels, toleration matching, Go-style
//! durations, the cluster-wide network settings, the join wire contract, spawning tasks
//! with their span, and the shutdown handle every
//! long-running part selects against.
//!
//! Nothing here talks to the network, the disk or the datastore; components depend on
//! this crate instead of on each other.

pub mod cluster;
pub mod duration;
pub mod http_upgrade;
pub mod join;
pub mod quantity;
pub mod resource;
pub mod scheduling;
pub mod selector;
pub mod shutdown;
pub mod task;
pub mod validation;

pub use cluster::ClusterConfig;
pub use resource::{ResourceDef, Scope};
pub use shutdown::Shutdown;

/// The Kubernetes release k3rs implements, as the API server's `/version` and the
/// kubelet's `nodeInfo.kubeletVersion` report it.
pub const KUBE_GIT_VERSION: &str = "v1.33.5+k3rs1";
