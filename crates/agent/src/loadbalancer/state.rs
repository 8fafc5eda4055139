//! The load balancer's server list on disk, in k3s's shape:
//! `{"ServerURL": "https://10.0.0.1:6443", "ServerAddresses": ["10.0.0.1:6443", ...]}`.

use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct State {
    #[serde(rename = "ServerURL")]
    server_url: String,
    #[serde(rename = "ServerAddresses", default)]
    server_addresses: Vec<String>,
}

/// The saved list, if it was saved for the same `--server`; a missing, unreadable or
/// foreign file gives an empty list (the agent then starts from `--server` alone).
pub fn load(path: &Path, server_url: &str) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    match serde_json::from_str::<State>(&text) {
        Ok(state) if state.server_url == server_url => state.server_addresses,
        Ok(_) => Vec::new(),
        Err(err) => {
            tracing::warn!(file = %path.display(), error = %err, "ignoring an unreadable load balancer state file");
            Vec::new()
        }
    }
}

/// Write the list atomically (a temporary file renamed over the old one).
pub fn save(path: &Path, server_url: &str, servers: &[String]) -> anyhow::Result<()> {
    let state = State {
        server_url: server_url.to_string(),
        server_addresses: servers.to_vec(),
    };
    let text = serde_json::to_string_pretty(&state)? + "\n";
    k3rs_certs::write_file_with_mode(path, text.as_bytes(), 0o600)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_only_for_the_same_server() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc/lb.json");
        assert!(load(&path, "https://a:6443").is_empty());
        let list = vec!["10.0.0.1:6443".to_string(), "10.0.0.2:6443".to_string()];
        save(&path, "https://a:6443", &list).unwrap();
        assert_eq!(load(&path, "https://a:6443"), list);
        assert!(load(&path, "https://b:6443").is_empty());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"ServerAddresses\""), "{text}");
        std::fs::write(&path, "{not json").unwrap();
        assert!(load(&path, "https://a:6443").is_empty());
    }
}
