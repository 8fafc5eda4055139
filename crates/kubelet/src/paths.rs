//! Where one agent keeps its files. Every path is derived from the data dir and the node
//! name, so several agents (each in its own network namespace) can share one machine.

use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct Paths {
    /// `<data-dir>/agent`.
    pub agent: PathBuf,
    /// containerd's persistent root: `<data-dir>/agent/containerd`.
    pub containerd_root: PathBuf,
    /// containerd's state dir and socket dir: `/run/k3rs/<node>/containerd`.
    pub containerd_state: PathBuf,
    /// The generated containerd config: `<data-dir>/agent/etc/containerd/config.toml`.
    pub containerd_config: PathBuf,
    /// Air-gap image tarballs imported at start: `<data-dir>/agent/images`.
    pub images: PathBuf,
    /// CNI config dir read by containerd: `<data-dir>/agent/etc/cni/net.d`.
    pub cni_conf_dir: PathBuf,
    /// CNI plugin binaries: Debian's `containernetworking-plugins` put them here.
    pub cni_bin_dir: PathBuf,
    /// host-local IPAM state (allocated pod IPs): `/run/k3rs/<node>/cni/networks`.
    pub cni_ipam_dir: PathBuf,
    /// Per-pod volumes and generated files: `<data-dir>/agent/kubelet/pods/<uid>`.
    pub pods: PathBuf,
    /// Container logs: `<data-dir>/agent/kubelet/logs/<ns>_<pod>_<uid>/<container>/<n>.log`.
    pub pod_logs: PathBuf,
    /// The kubelet's serving certificate and key.
    pub kubelet_tls: PathBuf,
    /// cgroupfs parent of every pod of this node, e.g. `/k3rs-<node>/kubepods`.
    pub cgroup_parent: String,
}

impl Paths {
    pub fn new(data_dir: &Path, node_name: &str) -> Paths {
        let agent = data_dir.join("agent");
        let run = PathBuf::from("/run/k3rs").join(node_name);
        Paths {
            containerd_root: agent.join("containerd"),
            containerd_state: run.join("containerd"),
            containerd_config: agent.join("etc/containerd/config.toml"),
            images: agent.join("images"),
            cni_conf_dir: agent.join("etc/cni/net.d"),
            cni_bin_dir: PathBuf::from("/usr/lib/cni"),
            cni_ipam_dir: run.join("cni/networks"),
            pods: agent.join("kubelet/pods"),
            pod_logs: agent.join("kubelet/logs"),
            kubelet_tls: agent.join("kubelet/tls"),
            cgroup_parent: format!("/k3rs-{node_name}/kubepods"),
            agent,
        }
    }

    /// containerd's CRI socket.
    pub fn containerd_socket(&self) -> PathBuf {
        self.containerd_state.join("containerd.sock")
    }

    /// The directory of one pod's volumes and generated files.
    pub fn pod_dir(&self, uid: &str) -> PathBuf {
        self.pods.join(uid)
    }

    /// The CRI log directory of one pod (the sandbox's `log_directory`).
    pub fn pod_log_dir(&self, namespace: &str, name: &str, uid: &str) -> PathBuf {
        self.pod_logs.join(format!("{namespace}_{name}_{uid}"))
    }
}
