//! `/run/flannel/subnet.env`, in flannel's format: CNI plugins and scripts written for
//! flannel read the node's subnet and MTU from it.

use std::io::Write;
use std::path::Path;

use ipnet::Ipv4Net;

use crate::{Error, Result};

/// The file's content: the cluster CIDR, the node's pod subnet written as its first
/// address (the gateway the CNI bridge takes, as flannel writes it), the pod MTU and
/// whether flannel masquerades.
pub fn render_subnet_env(
    cluster_cidr: &Ipv4Net,
    pod_subnet: &Ipv4Net,
    mtu: u32,
    ip_masq: bool,
) -> String {
    let network = pod_subnet.trunc();
    let gateway = Ipv4Net::new(
        std::net::Ipv4Addr::from(u32::from(network.network()).wrapping_add(1)),
        network.prefix_len(),
    )
    .expect("the prefix length comes from a valid network");
    format!(
        "FLANNEL_NETWORK={}\nFLANNEL_SUBNET={gateway}\nFLANNEL_MTU={mtu}\nFLANNEL_IPMASQ={ip_masq}\n",
        cluster_cidr.trunc()
    )
}

/// Write `content` to `path` only if it differs, through a temporary file in the same
/// directory and a rename, so a reader never sees half a file. Returns whether it wrote.
pub fn write_if_changed(path: &Path, content: &str) -> Result<bool> {
    if std::fs::read_to_string(path).is_ok_and(|current| current == content) {
        return Ok(false);
    }
    write_atomically(path, content)?;
    Ok(true)
}

/// Replace `path` with `content` atomically (temporary file, fsync, rename).
pub(crate) fn write_atomically(path: &Path, content: &str) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::file("creating the directory of", path, e))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir.join(format!(".{file_name}.tmp"));
    let mut file =
        std::fs::File::create(&temporary).map_err(|e| Error::file("creating", &temporary, e))?;
    file.write_all(content.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::file("writing", &temporary, e))?;
    std::fs::rename(&temporary, path).map_err(|e| Error::file("replacing", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flannel_format() {
        let text = render_subnet_env(
            &"10.42.0.0/16".parse().unwrap(),
            &"10.42.3.0/24".parse().unwrap(),
            1450,
            true,
        );
        assert_eq!(
            text,
            "FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.3.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
        );
        let text = render_subnet_env(
            &"10.42.0.0/16".parse().unwrap(),
            &"10.42.0.0/24".parse().unwrap(),
            1500,
            false,
        );
        assert!(text.contains("FLANNEL_SUBNET=10.42.0.1/24\n"));
        assert!(text.ends_with("FLANNEL_MTU=1500\nFLANNEL_IPMASQ=false\n"));
    }

    #[test]
    fn written_atomically_and_only_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/flannel/subnet.env");
        assert!(write_if_changed(&path, "A=1\n").unwrap());
        assert!(!write_if_changed(&path, "A=1\n").unwrap());
        assert!(write_if_changed(&path, "A=2\n").unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "A=2\n");
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("subnet.env")]);
    }
}
