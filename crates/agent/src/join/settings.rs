//! What joining needs: the server's URL taken apart, the token, and where the node keeps
//! its state. The binary fills these in from `k3rs agent`'s flags.

use std::net::IpAddr;
use std::path::PathBuf;

use k3rs_certs::JoinToken;

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
    /// `value` taken apart, or why it is not an https URL with a host.
    pub fn parse(value: &str) -> Result<ServerUrl, String> {
        let bad = |why: &str| why.to_string();
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

/// Everything `join` needs, validated by the binary.
#[derive(Debug, Clone)]
pub struct JoinSettings {
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
    pub agent: crate::Config,
}

impl JoinSettings {
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

#[cfg(test)]
mod tests {
    use super::*;

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
            assert!(ServerUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
