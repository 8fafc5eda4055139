//! The built-in periodic compactor keeps `retain_revisions` of history.

use std::time::Duration;

use k3rs_store::{Backend, Sqlite, SqliteOptions};

use crate::db_path;

#[tokio::test]
async fn periodic_compaction_keeps_recent_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Sqlite::open(
        &db_path(&dir),
        SqliteOptions {
            compact_interval: Duration::from_millis(50),
            retain_revisions: 10,
        },
    )
    .await
    .unwrap();
    store.create("/c", b"0".to_vec()).await.unwrap();
    for i in 1..100 {
        let kv = store.get("/c").await.unwrap().unwrap();
        store
            .update("/c", i.to_string().into_bytes(), kv.mod_revision)
            .await
            .unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while store.compacted_revision().await.unwrap() < 90 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "compactor did not run"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(store.compacted_revision().await.unwrap(), 90);
    assert_eq!(store.get("/c").await.unwrap().unwrap().value, b"99");
    store.close().await.unwrap();
}

#[tokio::test]
async fn spawn_compactor_works_for_any_backend() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::open(&db_path(&dir)).await;
    for i in 0..30 {
        store.create(&format!("/s/{i}"), vec![]).await.unwrap();
    }
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = k3rs_store::spawn_compactor(
        store.clone(),
        Duration::from_millis(20),
        5,
        shutdown.clone(),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while store.compacted_revision().await.unwrap() < 25 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "compactor did not run"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.cancel();
    task.await.unwrap();
    assert_eq!(store.count("/s/").await.unwrap(), 30);
    store.close().await.unwrap();
}
