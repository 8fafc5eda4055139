//! `k3rs agent` flags, validated: each problem is one line naming the flag.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use k3rs_apiserver::supervisor::is_node_name;
use k3rs_certs::JoinToken;

use crate::agent::AgentSettings;
use crate::cli::AgentCmdArgs;

pub const DEFAULT_DATA_DIR: &str = "/var/lib/rancher/k3rs";
/// Where k3s keeps the node password; k3rs agents use the same file by default.
pub const DEFAULT_NODE_PASSWORD_FILE: &str = "/etc/rancher/node/password";

/// Where the supervisor is: `https://HOST[:PORT]` taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    /// As given, without a trailing slash or path: used in messages and kubeconfigs.
    pub url: String,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
}

impl ServerUrl {
    pub fn parse(value: &str) -> Result<ServerUrl> {
        let bad = |why: &str| anyhow!("invalid --server {value:?}: {why}");
        let uri: http::Uri = value
            .trim()
            .parse()
            .map_err(|_| bad("expected a URL such as https://10.0.0.1:6443"))?;
        if uri.scheme_str() != Some("https") {
            return Err(bad("only https:// URLs are supported"));
        }
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(443);
        let url = match host.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("https://[{ip}]:{port}"),
            _ => format!("https://{host}:{port}"),
        };
        Ok(ServerUrl { url, host, port })
    }
}

/// Everything `join` needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerUrl,
    pub token: JoinToken,
    pub data_dir: PathBuf,
    /// The node name before `--with-node-id` adds its suffix.
    pub node_name: String,
    pub with_node_id: bool,
    /// `--node-ip`; empty means: the address this machine reaches the server from.
    pub node_ips: Vec<IpAddr>,
    pub node_password_file: PathBuf,
    /// `--lb-server-port`: the agent's load balancer listens on 127.0.0.1 there.
    pub lb_server_port: u16,
    /// The flags shared with `k3rs server`'s own agent.
    pub agent: AgentSettings,
}

impl Settings {
    pub fn from_args(args: &AgentCmdArgs) -> Result<Settings> {
        let server = ServerUrl::parse(args.server.as_deref().ok_or_else(|| {
            anyhow!("k3rs agent needs --server (or K3RS_URL), e.g. https://10.0.0.1:6443")
        })?)?;
        let token_text = match (&args.token, &args.token_file) {
            (Some(t), _) if !t.trim().is_empty() => t.clone(),
            (_, Some(file)) => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| anyhow!("invalid --token-file {file}: {e}"))?;
                if text.trim().is_empty() {
                    bail!("invalid --token-file {file}: the file is empty");
                }
                text
            }
            _ => bail!("k3rs agent needs --token (or K3RS_TOKEN, --token-file)"),
        };
        let token = JoinToken::parse(&token_text).map_err(|e| anyhow!("invalid --token: {e}"))?;
        let node_name = args.node_name.clone().unwrap_or_else(hostname);
        if !is_node_name(&node_name) {
            bail!("invalid --node-name {node_name:?}: must be a lowercase DNS subdomain");
        }
        let node_ips = args
            .node_ip
            .iter()
            .map(|v| {
                v.trim()
                    .parse()
                    .map_err(|_| anyhow!("invalid --node-ip {v:?}: not an IP address"))
            })
            .collect::<Result<_>>()?;
        if args.lb_server_port == 0 {
            bail!("invalid --lb-server-port 0: expected a port number 1-65535");
        }
        Ok(Settings {
            lb_server_port: args.lb_server_port,
            server,
            token,
            data_dir: PathBuf::from(args.data_dir.as_deref().unwrap_or(DEFAULT_DATA_DIR)),
            node_name,
            with_node_id: args.with_node_id,
            node_ips,
            node_password_file: PathBuf::from(
                args.node_password_file
                    .as_deref()
                    .unwrap_or(DEFAULT_NODE_PASSWORD_FILE),
            ),
            agent: AgentSettings::from_args(&args.agent)?,
        })
    }

    /// `HOST:PORT` of `--server`, as the load balancer dials it.
    pub fn server_address(&self) -> String {
        match self.server.host.contains(':') {
            true => format!("[{}]:{}", self.server.host, self.server.port),
            false => format!("{}:{}", self.server.host, self.server.port),
        }
    }

    /// `<data-dir>/agent`: the agent's certificates, keys and kubeconfigs.
    pub fn agent_dir(&self) -> PathBuf {
        self.data_dir.join("agent")
    }
}

/// The machine's host name, lower-cased, as the default node name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_lowercase())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn settings(extra: &[&str]) -> Result<Settings> {
        let mut args = vec!["k3rs", "agent", "--node-name", "n2"];
        args.extend_from_slice(extra);
        let cli = crate::cli::Cli::try_parse_from(args).unwrap();
        let crate::cli::Command::Agent(agent) = cli.command else {
            panic!("agent subcommand expected");
        };
        Settings::from_args(&agent)
    }

    #[test]
    fn server_urls() {
        let u = ServerUrl::parse("https://10.0.0.1:6443/").unwrap();
        assert_eq!(
            (u.url.as_str(), u.host.as_str(), u.port),
            ("https://10.0.0.1:6443", "10.0.0.1", 6443)
        );
        let u = ServerUrl::parse("https://[fd00::1]:6443").unwrap();
        assert_eq!(
            (u.url.as_str(), u.host.as_str()),
            ("https://[fd00::1]:6443", "fd00::1")
        );
        let u = ServerUrl::parse("https://k3rs.example.com").unwrap();
        assert_eq!(u.port, 443);
        for bad in [
            "http://10.0.0.1:6443",
            "10.0.0.1:6443",
            "https://",
            "not a url",
        ] {
            let err = ServerUrl::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid --server"), "{err}");
        }
    }

    #[test]
    fn flags_are_checked_and_named() {
        let s = settings(&["--server", "https://10.0.0.1:6443", "--token", "pw"]).unwrap();
        assert_eq!(s.server.port, 6443);
        assert_eq!(s.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
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
        .starts_with("invalid --lb-server-port"));
        assert!(
            err(&["--server", "https://h:1", "--token", "K10abc::node:pw"])
                .starts_with("invalid --token")
        );
        assert!(
            err(&["--server", "https://h:1", "--token", "pw", "--node-ip", "x"])
                .starts_with("invalid --node-ip")
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
}
