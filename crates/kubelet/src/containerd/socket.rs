//! The state of containerd's gRPC socket file: absent, stale (left by a containerd that
//! died, nobody accepts connections) or live. Probing only connects; it never speaks gRPC.

use std::io::ErrorKind;
use std::path::Path;

use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketState {
    Absent,
    /// The file exists but nothing listens on it.
    Stale,
    /// Something accepts connections on it.
    Live,
}

pub async fn probe(socket: &Path) -> Result<SocketState> {
    match tokio::net::UnixStream::connect(socket).await {
        Ok(_) => Ok(SocketState::Live),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(SocketState::Absent),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => Ok(SocketState::Stale),
        Err(e) => Err(Error::io(format!("probing {}", socket.display()), e)),
    }
}

/// Remove the socket file if it is stale, so a new containerd can bind it. Returns the
/// state found (a live socket is left alone).
pub async fn clear_stale(socket: &Path) -> Result<SocketState> {
    let state = probe(socket).await?;
    if state == SocketState::Stale {
        match std::fs::remove_file(socket) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::io(
                    format!("removing stale socket {}", socket.display()),
                    e,
                ))
            }
        }
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tells_absent_stale_and_live_apart() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("containerd.sock");
        assert_eq!(probe(&socket).await.unwrap(), SocketState::Absent);

        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        assert_eq!(clear_stale(&socket).await.unwrap(), SocketState::Live);
        assert!(socket.exists(), "a live socket must be left alone");

        // A listener that goes away leaves its file behind, as a killed containerd does.
        drop(listener);
        assert_eq!(probe(&socket).await.unwrap(), SocketState::Stale);
        assert_eq!(clear_stale(&socket).await.unwrap(), SocketState::Stale);
        assert!(!socket.exists());
        assert_eq!(probe(&socket).await.unwrap(), SocketState::Absent);
    }
}
