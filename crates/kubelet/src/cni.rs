//! The single-node CNI config: a `cni0` bridge that is the gateway of the node's pod
//! CIDR (it takes the first address, `10.42.X.1/24`), host-local IPAM handing out the
//! rest, and portmap for `hostPort`. containerd runs the `loopback` plugin by itself.
//!
//! Must not: add masquerade or other iptables rules (`ipMasq` is off); traffic leaving
//! the node is the overlay's job. portmap needs the `iptables` command at runtime.

use std::path::Path;

use ipnet::IpNet;
use serde_json::json;

use crate::{Error, Paths, Result};

/// The file containerd reads (`max_conf_num = 1`: the first file in the dir wins).
pub const CONFLIST_NAME: &str = "10-k3rs.conflist";
/// The network name, as k3s calls it; host-local keeps its leases under this name.
pub const NETWORK_NAME: &str = "cbr0";
/// The bridge the pods' veths are attached to.
pub const BRIDGE: &str = "cni0";

/// What the conflist describes: the node's pod CIDR, the whole cluster's, and the MTU
/// the overlay leaves for pods.
#[derive(Clone, Debug)]
pub struct Network {
    pub pod_cidr: IpNet,
    pub cluster_cidr: IpNet,
    pub mtu: u32,
}

/// The conflist for a node whose pods get addresses from `pod_cidr`, with host-local's
/// allocation state kept in `ipam_dir` (so agents sharing a machine do not share it).
/// Pods get a route to the cluster CIDR through the bridge besides the default route,
/// as flannel's CNI config gives them.
pub fn render_conflist(network: &Network, ipam_dir: &Path) -> String {
    let Network {
        pod_cidr,
        cluster_cidr,
        mtu,
    } = network;
    let conflist = json!({
        "cniVersion": "1.0.0",
        "name": NETWORK_NAME,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": true,
                "isDefaultGateway": true,
                // Lets a pod reach itself through a Service that picks its own endpoint.
                "hairpinMode": true,
                "ipMasq": false,
                "mtu": mtu,
                // After a host reboot or pod CIDR change, the bridge gets the gateway
                // address it should have instead of failing on the one it kept.
                "forceAddress": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{ "subnet": pod_cidr.trunc().to_string() }]],
                    "routes": [{ "dst": cluster_cidr.trunc().to_string() }],
                    "dataDir": ipam_dir.to_string_lossy(),
                },
            },
            {
                "type": "portmap",
                "capabilities": { "portMappings": true },
            },
        ],
    });
    let mut text = serde_json::to_string_pretty(&conflist).expect("a JSON value serializes");
    text.push('\n');
    text
}

/// Write the conflist for `pod_cidr` into the CNI config dir containerd reads. The file
/// is replaced atomically (containerd watches the dir and must never read half a file)
/// and only when its content changes.
pub fn write_config(paths: &Paths, network: &Network) -> Result<()> {
    let content = render_conflist(network, &paths.cni_ipam_dir);
    let dir = &paths.cni_conf_dir;
    let target = dir.join(CONFLIST_NAME);
    if std::fs::read_to_string(&target).is_ok_and(|current| current == content) {
        return Ok(());
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    // The temporary file is renamed within the dir: containerd 1.6's watch reloads on the
    // rename's event there (a file moved in from outside only produces a Create, which it
    // ignores). The dot name and `.tmp` suffix keep libcni from ever loading it.
    let temporary = dir.join(format!(".{CONFLIST_NAME}.tmp"));
    std::fs::write(&temporary, &content)
        .map_err(|e| Error::io(format!("writing {}", temporary.display()), e))?;
    std::fs::rename(&temporary, &target)
        .map_err(|e| Error::io(format!("replacing {}", target.display()), e))
}

/// Write the conflist again even if unchanged, so containerd's directory watch sees an
/// event: a file written after containerd's first load but before its watch started is
/// otherwise never noticed ("cni plugin not initialized" forever).
pub fn rewrite_config(paths: &Paths, network: &Network) -> Result<()> {
    let target = paths.cni_conf_dir.join(CONFLIST_NAME);
    match std::fs::remove_file(&target) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("removing {}", target.display()), e)),
    }
    write_config(paths, network)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn network(cidr: &str, mtu: u32) -> Network {
        Network {
            pod_cidr: cidr.parse().unwrap(),
            cluster_cidr: "10.42.0.0/16".parse().unwrap(),
            mtu,
        }
    }

    fn parsed(cidr: &str, mtu: u32) -> Value {
        let text = render_conflist(
            &network(cidr, mtu),
            Path::new("/run/k3rs/node-a/cni/networks"),
        );
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn bridge_gateway_with_host_local_ipam_and_portmap() {
        let conflist = parsed("10.42.3.0/24", 1450);
        assert_eq!(conflist["cniVersion"], "1.0.0");
        assert_eq!(conflist["name"], "cbr0");
        let plugins = conflist["plugins"].as_array().unwrap();
        assert_eq!(plugins.len(), 2);

        let bridge = &plugins[0];
        assert_eq!(bridge["type"], "bridge");
        assert_eq!(bridge["bridge"], "cni0");
        assert_eq!(bridge["isGateway"], true);
        assert_eq!(bridge["isDefaultGateway"], true);
        assert_eq!(bridge["hairpinMode"], true);
        assert_eq!(bridge["ipMasq"], false);
        assert_eq!(bridge["forceAddress"], true);
        assert_eq!(bridge["mtu"], 1450);
        assert_eq!(bridge["ipam"]["type"], "host-local");
        assert_eq!(
            bridge["ipam"]["ranges"],
            json!([[{ "subnet": "10.42.3.0/24" }]])
        );
        assert_eq!(bridge["ipam"]["dataDir"], "/run/k3rs/node-a/cni/networks");
        assert_eq!(bridge["ipam"]["routes"], json!([{ "dst": "10.42.0.0/16" }]));

        let portmap = &plugins[1];
        assert_eq!(portmap["type"], "portmap");
        assert_eq!(portmap["capabilities"]["portMappings"], true);
    }

    #[test]
    fn subnet_is_the_network_address() {
        // A CIDR given with host bits set still names the network host-local expects.
        let conflist = parsed("10.42.3.1/24", 1500);
        assert_eq!(
            conflist["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
            "10.42.3.0/24"
        );
    }

    #[test]
    fn rewritten_only_when_changed() {
        let data = tempfile::tempdir().unwrap();
        let mut paths = Paths::new(data.path(), "node-a");
        paths.cni_ipam_dir = data.path().join("ipam");
        let target = paths.cni_conf_dir.join(CONFLIST_NAME);

        write_config(&paths, &network("10.42.0.0/24", 1500)).unwrap();
        let first = std::fs::metadata(&target).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        write_config(&paths, &network("10.42.0.0/24", 1500)).unwrap();
        let again = std::fs::metadata(&target).unwrap();
        assert_eq!(first.modified().unwrap(), again.modified().unwrap());
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            first.ino(),
            again.ino(),
            "an unchanged file is not replaced"
        );

        write_config(&paths, &network("10.42.0.0/24", 1400)).unwrap();
        let text = std::fs::read_to_string(&target).unwrap();
        assert!(text.contains("\"mtu\": 1400"));
        let names: Vec<_> = std::fs::read_dir(&paths.cni_conf_dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, [CONFLIST_NAME], "no temporary file left behind");
    }
}
