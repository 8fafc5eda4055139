//! The load balancer against real TCP servers on loopback: each answers every
//! connection with its own name, so the test sees where a connection went.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::*;

/// A server that writes `name` to each connection and then echoes. Aborting the task
/// closes only the listener: the accepted connections stay open and silent, as they do
/// towards a server that hangs or is cut off, so only the health check can end them.
async fn named_server(name: &'static str) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let task = k3rs_core::task::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            k3rs_core::task::spawn(async move {
                socket.write_all(name.as_bytes()).await.unwrap();
                let mut buf = [0u8; 64];
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 || socket.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (address, task)
}

/// Connect through the load balancer and read which server answered.
async fn who(lb: &LoadBalancer) -> (String, TcpStream) {
    let mut stream = TcpStream::connect(lb.local_addr()).await.unwrap();
    let mut buf = [0u8; 1];
    stream.read_exact(&mut buf).await.unwrap();
    (String::from_utf8_lossy(&buf).to_string(), stream)
}

/// Whether the connection was closed (EOF or reset) within `within`.
async fn closed(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 16];
    matches!(
        tokio::time::timeout(within, stream.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn fails_over_to_the_next_server_and_closes_connections_to_the_dead_one() {
    let (a, a_task) = named_server("a").await;
    let (b, _b_task) = named_server("b").await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("lb.json");
    let shutdown = CancellationToken::new();
    let lb = LoadBalancer::start(
        "127.0.0.1:0".parse().unwrap(),
        "https://a.example:6443",
        a.clone(),
        state.clone(),
        shutdown.clone(),
    )
    .await
    .unwrap();

    // Only --server is known: connections go there, and the proxy carries data both ways.
    let (name, mut to_a) = who(&lb).await;
    assert_eq!(name, "a");
    to_a.write_all(b"ping").await.unwrap();
    let mut echo = [0u8; 4];
    to_a.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"ping");

    // The cluster's list arrives and is saved; the server in use stays.
    lb.update_servers(vec![a.clone(), b.clone()]);
    assert_eq!(
        state::load(&state, "https://a.example:6443"),
        vec![a.clone(), b.clone()]
    );
    assert_eq!(who(&lb).await.0, "a");
    assert_eq!(lb.current().as_deref(), Some(a.as_str()));

    // a stops answering: the health check closes the connection to it, new ones go to b.
    a_task.abort();
    let started = Instant::now();
    assert!(
        closed(&mut to_a, HEALTH_INTERVAL * 3).await,
        "the connection to the dead server stayed open"
    );
    println!(
        "connection to the dead server closed after {:?}",
        started.elapsed()
    );
    assert_eq!(who(&lb).await.0, "b");
    assert_eq!(lb.current().as_deref(), Some(b.as_str()));

    // A restarted agent starts from the saved list, even though --server is dead.
    shutdown.cancel();
    let again = LoadBalancer::start(
        "127.0.0.1:0".parse().unwrap(),
        "https://a.example:6443",
        a.clone(),
        state.clone(),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(who(&again).await.0, "b");
}

#[tokio::test]
async fn a_server_removed_from_the_list_loses_its_connections() {
    let (a, _a_task) = named_server("a").await;
    let (b, _b_task) = named_server("b").await;
    let dir = tempfile::tempdir().unwrap();
    let lb = LoadBalancer::start(
        "127.0.0.1:0".parse().unwrap(),
        "https://a:6443",
        a.clone(),
        dir.path().join("lb.json"),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    lb.update_servers(vec![a.clone(), b.clone()]);
    let (name, mut to_a) = who(&lb).await;
    assert_eq!(name, "a");
    // `a` is still --server (the last resort) but no longer one of the cluster's servers
    // in use: its connection is closed and b takes over.
    lb.update_servers(vec![b.clone()]);
    assert!(closed(&mut to_a, Duration::from_secs(2)).await);
    assert_eq!(who(&lb).await.0, "b");
}

#[tokio::test]
async fn a_port_in_use_is_a_clear_error() {
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = LoadBalancer::start(
        taken.local_addr().unwrap(),
        "https://a:6443",
        "127.0.0.1:1".into(),
        std::env::temp_dir().join("k3rs-lb-unused.json"),
        CancellationToken::new(),
    )
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("--lb-server-port"), "{err}");
}
