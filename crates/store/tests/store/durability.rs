//! Acknowledged writes survive `kill -9`: a child process (this test binary re-run with
//! an environment switch) writes keys as fast as it can and prints each acknowledged
//! key; the parent kills it mid-burst, reopens the database and finds every one.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use k3rs_store::Backend;

use crate::open;

const CHILD_ENV: &str = "K3RS_STORE_DURABILITY_CHILD_DB";

/// Does nothing in a normal run; in the child process it is the write burst.
#[test]
fn durability_child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store = open(std::path::Path::new(&path)).await;
        let mut tasks = Vec::new();
        for t in 0..8 {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                for i in 0..100_000 {
                    let key = format!("/burst/{t}/{i}");
                    store.create(&key, key.as_bytes().to_vec()).await.unwrap();
                    // Rust's stdout is line buffered: the line leaves the process now.
                    println!("ACK {key}");
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "durability::durability_child_writer",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut acked = Vec::new();
    while acked.len() < 300 {
        let line = lines.next().expect("child exited before the kill").unwrap();
        if let Some(key) = line.strip_prefix("ACK ") {
            acked.push(key.to_owned());
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Acknowledgements already in the pipe when the child died count too.
    for line in lines {
        if let Some(key) = line.unwrap().strip_prefix("ACK ") {
            acked.push(key.to_owned());
        }
    }

    let store = open(&path).await;
    for key in &acked {
        let kv = store.get(key).await.unwrap();
        assert!(kv.is_some(), "acknowledged key {key} lost after kill -9");
    }
    let count = store.count("/burst/").await.unwrap();
    assert!(count >= acked.len() as i64);
    assert_eq!(store.current_revision().await.unwrap(), count);
    eprintln!(
        "{} acknowledged, {count} present after kill -9",
        acked.len()
    );
    store.close().await.unwrap();
}
