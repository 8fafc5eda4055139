//! tcpSocket probes: success iff a TCP connection opens within the timeout. Also the dial
//! the HTTP probe uses, so both report connection errors in the same words
//! (`dial tcp 10.42.0.5:80: connect: connection refused`).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

use super::check::{is_ip, join_host_port, os_error_text, Outcome};

pub async fn check(host: &str, port: u16, timeout: Duration) -> Outcome {
    match dial(host, port, timeout).await {
        // Closing at once is all the probe does with the connection, as upstream.
        Ok(stream) => {
            drop(stream);
            Outcome::Success
        }
        Err(message) => Outcome::Failure(message),
    }
}

/// Open a TCP connection to `host:port` (a name is looked up first), or say why not in
/// Go's words.
pub async fn dial(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, String> {
    let address = join_host_port(host, port);
    let attempt = async {
        // Like Go's dialer, try each address a name resolves to (say ::1, then
        // 127.0.0.1) and report the first failure if none answers.
        let mut first_error = None;
        for target in resolve(host, port).await? {
            match TcpStream::connect(target).await {
                Ok(stream) => return Ok(stream),
                Err(err) => {
                    first_error.get_or_insert_with(|| {
                        format!("dial tcp {target}: connect: {}", os_error_text(&err))
                    });
                }
            }
        }
        Err(first_error.unwrap_or_else(|| format!("dial tcp: lookup {host}: no such host")))
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!("dial tcp {address}: i/o timeout")),
    }
}

async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    if is_ip(host) {
        let ip = host.parse().map_err(|_| format!("invalid IP {host}"))?;
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addresses = tokio::net::lookup_host((host, port))
        .await
        .map_err(|err| format!("dial tcp: lookup {host}: {}", os_error_text(&err)))?;
    Ok(addresses.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_open_port_succeeds() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(
            check("127.0.0.1", port, Duration::from_secs(1)).await,
            Outcome::Success
        );
    }

    #[tokio::test]
    async fn a_closed_port_fails_like_upstream() {
        // Bind then drop: the port is free and nothing listens on it.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        assert_eq!(
            check("127.0.0.1", port, Duration::from_secs(1)).await,
            Outcome::Failure(format!(
                "dial tcp 127.0.0.1:{port}: connect: connection refused"
            ))
        );
    }

    #[tokio::test]
    async fn names_are_looked_up() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(
            check("localhost", port, Duration::from_secs(1)).await,
            Outcome::Success
        );
    }
}
