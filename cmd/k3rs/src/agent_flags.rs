//! From flags to the node agent's settings: the flags every node has (`k3rs server`
//! without `--disable-agent`, and `k3rs agent`), and `k3rs agent`'s join flags. Also the
//! one reader of `--token`/`--token-file` style pairs.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use k3rs_agent::join::{JoinSettings, DEFAULT_NODE_PASSWORD_FILE};
use k3rs_certs::JoinToken;

use crate::cli::{AgentArgs, AgentCmdArgs};

/// The secret of a `--<flag>` / `--<flag>-file` pair: the value if given, else the
/// trimmed contents of the file, else `None`. An unreadable or empty file is an error
/// naming the file flag.
pub fn secret(flag: &str, value: Option<&str>, file: Option<&Path>) -> Result<Option<String>> {
    if let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) {
        return Ok(Some(value.to_string()));
    }
    let Some(file) = file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow!("invalid --{flag}-file {}: {e}", file.display()))?;
    match text.trim() {
        "" => bail!(
            "invalid --{flag}-file {}: the file is empty",
            file.display()
        ),
        text => Ok(Some(text.to_string())),
    }
}

/// `--node-name`, or this machine's host name, which must then be a valid node name too.
pub fn node_name(given: Option<&String>) -> Result<String> {
    match given {
        Some(name) => Ok(name.clone()),
        None => {
            let host = k3rs_agent::hostname();
            crate::parse::node_name(&host)
                .map_err(|why| anyhow!("invalid --node-name {host:?} (the host name): {why}"))
        }
    }
}

/// The node agent's settings from the flags shared by `k3rs server` and `k3rs agent`.
pub fn node_agent_config(args: &AgentArgs) -> Result<k3rs_agent::Config> {
    let mut kubelet_port = k3rs_kubelet::DEFAULT_KUBELET_PORT;
    let mut eviction_hard = Default::default();
    for arg in &args.kubelet_arg {
        let (key, value) = arg
            .split_once('=')
            .ok_or_else(|| anyhow!("invalid --kubelet-arg {arg:?}: expected KEY=VALUE"))?;
        match key.trim_start_matches("--") {
            "port" => {
                kubelet_port = crate::parse::nonzero_port(value)
                    .map_err(|why| anyhow!("invalid --kubelet-arg {arg:?}: {why}"))?
            }
            "eviction-hard" => {
                eviction_hard = k3rs_kubelet::node::eviction::Thresholds::parse(value)
                    .map_err(|err| anyhow!("invalid --kubelet-arg {arg:?}: {err}"))?
            }
            _ => bail!("invalid --kubelet-arg {arg:?}: k3rs supports port and eviction-hard"),
        }
    }
    Ok(k3rs_agent::Config {
        node_external_ips: args.node_external_ip.clone(),
        labels: args.node_label.clone(),
        taints: args.node_taint.clone(),
        pause_image: args
            .pause_image
            .clone()
            .unwrap_or_else(|| k3rs_kubelet::DEFAULT_PAUSE_IMAGE.to_string()),
        container_runtime_endpoint: args
            .container_runtime_endpoint
            .as_deref()
            .map(|e| PathBuf::from(e.strip_prefix("unix://").unwrap_or(e))),
        kubelet_port,
        eviction_hard,
        flannel_backend: args.flannel_backend.unwrap_or_default(),
        flannel_iface: args.flannel_iface.clone(),
        flannel_external_ip: args.flannel_external_ip,
        flannel_subnet_env: args
            .flannel_subnet_env
            .clone()
            .unwrap_or_else(|| PathBuf::from(k3rs_flannel::DEFAULT_SUBNET_ENV_PATH)),
        flannel_tx_checksum_off: args.flannel_tx_checksum_off,
    })
}

/// `k3rs agent`'s settings: where to join and with what, and the node's own flags.
pub fn join_settings(args: &AgentCmdArgs) -> Result<JoinSettings> {
    let server = args.server.clone().ok_or_else(|| {
        anyhow!("k3rs agent needs --server (or K3RS_URL), e.g. https://10.0.0.1:6443")
    })?;
    let token_text = secret("token", args.token.as_deref(), args.token_file.as_deref())?
        .ok_or_else(|| anyhow!("k3rs agent needs --token (or K3RS_TOKEN, --token-file)"))?;
    let token = JoinToken::parse(&token_text).map_err(|e| anyhow!("invalid --token: {e}"))?;
    Ok(JoinSettings {
        lb_server_port: args.lb_server_port,
        server,
        token,
        data_dir: args
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(k3rs_agent::DEFAULT_DATA_DIR)),
        node_name: node_name(args.node_name.as_ref())?,
        with_node_id: args.with_node_id,
        node_ips: args.node_ip.clone(),
        node_password_file: args
            .node_password_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_NODE_PASSWORD_FILE)),
        agent: node_agent_config(&args.agent)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn settings(extra: &[&str]) -> Result<JoinSettings> {
        let mut args = vec!["k3rs", "agent", "--node-name", "n2"];
        args.extend_from_slice(extra);
        let cli = crate::cli::Cli::try_parse_from(args).map_err(|e| anyhow!(e.to_string()))?;
        let crate::cli::Command::Agent(agent) = cli.command else {
            panic!("agent subcommand expected");
        };
        join_settings(&agent)
    }

    #[test]
    fn flags_are_checked_and_named() {
        let s = settings(&["--server", "https://10.0.0.1:6443", "--token", "pw"]).unwrap();
        assert_eq!(s.server.port, 6443);
        assert_eq!(s.data_dir, PathBuf::from(k3rs_agent::DEFAULT_DATA_DIR));
        assert_eq!(
            s.node_password_file,
            PathBuf::from(DEFAULT_NODE_PASSWORD_FILE)
        );
        assert_eq!(s.agent_dir(), PathBuf::from("/var/lib/rancher/k3rs/agent"));
        assert_eq!(
            (s.lb_server_port, s.server_address().as_str()),
            (6444, "10.0.0.1:6443")
        );

        let err = |extra: &[&str]| settings(extra).unwrap_err().to_string();
        assert!(err(&["--token", "pw"]).contains("--server"));
        assert!(err(&["--server", "https://h:1"]).contains("--token"));
        assert!(err(&[
            "--server",
            "https://h:1",
            "--token",
            "pw",
            "--lb-server-port",
            "0"
        ])
        .contains("--lb-server-port"));
        assert!(err(&["--server", "http://h:1", "--token", "pw"]).contains("--server"));
        assert!(
            err(&["--server", "https://h:1", "--token", "K10abc::node:pw"])
                .starts_with("invalid --token")
        );
        assert!(
            err(&["--server", "https://h:1", "--token", "pw", "--node-ip", "x"])
                .contains("--node-ip")
        );
        assert!(
            err(&["--server", "https://h:1", "--token-file", "/nonexistent/t"])
                .starts_with("invalid --token-file")
        );
        assert!(!err(&[
            "--server",
            "https://h:1",
            "--token",
            "K10abc::node:secretpw"
        ])
        .contains("secretpw"));
    }

    #[test]
    fn kubelet_args() {
        let cli = crate::cli::Cli::try_parse_from([
            "k3rs",
            "agent",
            "--kubelet-arg",
            "port=10260",
            "--node-label",
            "a=b",
        ])
        .unwrap();
        let crate::cli::Command::Agent(agent) = cli.command else {
            panic!("agent subcommand expected");
        };
        let config = node_agent_config(&agent.agent).unwrap();
        assert_eq!(config.kubelet_port, 10260);
        assert_eq!(config.labels, [("a".to_string(), "b".to_string())]);
        let cli = crate::cli::Cli::try_parse_from(["k3rs", "agent", "--kubelet-arg", "max-pods=5"])
            .unwrap();
        let crate::cli::Command::Agent(agent) = cli.command else {
            panic!("agent subcommand expected");
        };
        assert!(node_agent_config(&agent.agent)
            .unwrap_err()
            .to_string()
            .starts_with("invalid --kubelet-arg"));
    }
}
