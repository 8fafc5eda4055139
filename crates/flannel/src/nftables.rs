//! The overlay's packet filtering, as one nftables table owned by this crate: masquerade
//! for pod traffic leaving the cluster CIDR (never between pods, so a receiving pod sees
//! the sender's pod IP) and forwarding accepted for the cluster CIDR.
//!
//! Must not: touch other tables or set a drop policy; the host's own firewall stays in
//! charge of everything else. The table is replaced whole in one `nft -f -`
//! transaction, so there is never a moment with half a ruleset.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use ipnet::Ipv4Net;

use crate::{netns, Error, Result};

/// The table this crate owns (family `ip`).
pub const TABLE: &str = "k3rs-flannel";

/// The ruleset text for a node with `pod_subnet` in `cluster_cidr`. The forward chain
/// is always there (k3s's flannel sets it whatever `--ip-masq`); the masquerade chain
/// only with `ip_masq`.
pub fn render_ruleset(cluster_cidr: &Ipv4Net, pod_subnet: &Ipv4Net, ip_masq: bool) -> String {
    let cluster = cluster_cidr.trunc();
    let pods = pod_subnet.trunc();
    let mut text = replace_table_prelude();
    text.push_str(&format!("table ip {TABLE} {{\n"));
    text.push_str(&format!(
        "\tchain forward {{\n\
         \t\ttype filter hook forward priority filter; policy accept;\n\
         \t\tip saddr {cluster} accept comment \"from pods\"\n\
         \t\tip daddr {cluster} accept comment \"to pods\"\n\
         \t}}\n"
    ));
    if ip_masq {
        text.push_str(&format!(
            "\tchain postrouting {{\n\
             \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
             \t\tip saddr {pods} ip daddr {cluster} return comment \"pod to pod keeps its address\"\n\
             \t\tip saddr {cluster} ip daddr {pods} return comment \"pod to pod keeps its address\"\n\
             \t\tip saddr != {cluster} ip daddr {pods} return comment \"outside to local pods keeps the client address\"\n\
             \t\tip saddr {cluster} ip daddr != 224.0.0.0/4 masquerade fully-random comment \"pods leaving the cluster\"\n\
             \t\tip saddr != {cluster} ip daddr {cluster} masquerade fully-random comment \"outside to remote pods: replies come back here\"\n\
             \t}}\n"
        ));
    }
    text.push_str("}\n");
    text
}

/// The ruleset that removes the table (backend none, shutdown cleanup).
pub fn render_removal() -> String {
    replace_table_prelude()
}

/// Declaring the table first makes the delete succeed whether or not it exists, all in
/// the same transaction as what follows.
fn replace_table_prelude() -> String {
    format!("table ip {TABLE} {{}}\ndelete table ip {TABLE}\n")
}

/// Load `ruleset` with `nft -f -`, inside `netns` if given.
pub async fn apply_ruleset(ruleset: String, netns: Option<PathBuf>) -> Result<()> {
    netns::run_in(netns, move || run_nft(&ruleset)).await
}

fn run_nft(ruleset: &str) -> Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io("running nft (is nftables installed?)", e))?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(ruleset.as_bytes())
        .map_err(|e| Error::io("writing the ruleset to nft", e))?;
    let output = child
        .wait_with_output()
        .map_err(|e| Error::io("waiting for nft", e))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let first = stderr
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no message");
    Err(Error::Nftables(format!(
        "loading table ip {TABLE} failed ({}): {first}",
        output.status
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_table_atomically_with_forward_and_masquerade() {
        let text = render_ruleset(
            &"10.42.0.0/16".parse().unwrap(),
            &"10.42.1.0/24".parse().unwrap(),
            true,
        );
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        assert_eq!(lines[0], "table ip k3rs-flannel {}");
        assert_eq!(lines[1], "delete table ip k3rs-flannel");
        assert_eq!(lines[2], "table ip k3rs-flannel {");
        for expected in [
            "type filter hook forward priority filter; policy accept;",
            "ip saddr 10.42.0.0/16 accept comment \"from pods\"",
            "ip daddr 10.42.0.0/16 accept comment \"to pods\"",
            "type nat hook postrouting priority srcnat; policy accept;",
            "ip saddr 10.42.1.0/24 ip daddr 10.42.0.0/16 return comment \"pod to pod keeps its address\"",
            "ip saddr 10.42.0.0/16 ip daddr 10.42.1.0/24 return comment \"pod to pod keeps its address\"",
            "ip saddr != 10.42.0.0/16 ip daddr 10.42.1.0/24 return comment \"outside to local pods keeps the client address\"",
            "ip saddr 10.42.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random comment \"pods leaving the cluster\"",
            "ip saddr != 10.42.0.0/16 ip daddr 10.42.0.0/16 masquerade fully-random comment \"outside to remote pods: replies come back here\"",
        ] {
            assert!(lines.contains(&expected), "missing {expected:?} in\n{text}");
        }
        // The pod-to-pod exemptions come before the masquerade rules.
        let first_masquerade = lines.iter().position(|l| l.contains("masquerade")).unwrap();
        let last_return = lines.iter().rposition(|l| l.contains(" return ")).unwrap();
        assert!(last_return < first_masquerade);
        assert!(!text.contains("drop"));
        assert_eq!(text.matches('{').count(), text.matches('}').count());
    }

    #[test]
    fn without_ip_masq_only_forwarding() {
        let text = render_ruleset(
            &"10.42.0.0/16".parse().unwrap(),
            &"10.42.1.0/24".parse().unwrap(),
            false,
        );
        assert!(text.contains("chain forward"));
        assert!(!text.contains("masquerade"));
        assert!(!text.contains("chain postrouting"));
    }

    #[test]
    fn removal_deletes_only_our_table() {
        assert_eq!(
            render_removal(),
            "table ip k3rs-flannel {}\ndelete table ip k3rs-flannel\n"
        );
    }
}
