//! Watches replay history and then follow live writes with no gaps or duplicates, and
//! refuse to start (or continue) below the compacted revision.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k3rs_store::{Backend, Error, Event, EventKind, KeyValue};

use crate::{db_path, open};

/// Writes a mix of creates, updates and deletes under two prefixes; returns every
/// committed event under `/w/` as (revision, kind, key, value).
async fn churn(
    store: Arc<dyn Backend>,
    rounds: usize,
    offset: usize,
) -> Vec<(i64, EventKind, String, Vec<u8>)> {
    let mut events = Vec::new();
    for i in 0..rounds {
        let key = format!("/w/{}", (offset + i) % 17);
        let value = format!("{offset}-{i}").into_bytes();
        let kv = match store.get(&key).await.unwrap() {
            Some(kv) if i % 5 == 0 => {
                let deleted = store.delete(&key, Some(kv.mod_revision)).await.unwrap();
                events.push((
                    deleted.mod_revision,
                    EventKind::Delete,
                    key.clone(),
                    kv.value,
                ));
                continue;
            }
            Some(kv) => store
                .update(&key, value.clone(), kv.mod_revision)
                .await
                .unwrap(),
            None => store.create(&key, value.clone()).await.unwrap(),
        };
        events.push((kv.mod_revision, EventKind::Put, key, value));
        // Noise outside the watched prefix.
        store
            .create(&format!("/other/{offset}-{i}"), vec![])
            .await
            .unwrap();
    }
    events
}

fn summary(event: &Event) -> (i64, EventKind, String, Vec<u8>) {
    (
        event.revision(),
        event.kind.clone(),
        event.kv.key.clone(),
        event.kv.value.clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_old_revision_is_complete_while_writes_continue() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir)).await;
    let backend: Arc<dyn Backend> = store.clone();
    let before = churn(backend.clone(), 150, 0).await;
    let start = before[20].0;

    let mut stream = store.watch("/w/", start).await.unwrap();
    let writer = tokio::spawn(churn(backend.clone(), 300, 1000));
    let mut expected: Vec<_> = before.into_iter().filter(|e| e.0 > start).collect();
    let during = writer.await.unwrap();
    expected.extend(during);
    let last = expected.last().unwrap().0;

    let mut received = Vec::new();
    let mut previous: std::collections::HashMap<String, KeyValue> = Default::default();
    while received
        .last()
        .map(|e: &(i64, EventKind, String, Vec<u8>)| e.0)
        != Some(last)
    {
        let event = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("watch stalled")
            .expect("watch ended")
            .expect("watch error");
        // prev is the key's previous state as delivered earlier in this watch.
        if let Some(seen) = previous.get(&event.kv.key) {
            assert_eq!(
                event.prev.as_ref(),
                Some(seen),
                "prev of {}",
                event.revision()
            );
        }
        match event.kind {
            EventKind::Put => {
                previous.insert(event.kv.key.clone(), event.kv.clone());
            }
            EventKind::Delete => {
                previous.remove(&event.kv.key);
            }
        }
        received.push(summary(&event));
    }
    assert_eq!(received, expected);
    store.close().await.unwrap();
    // After close the stream ends with an error rather than hanging.
    let end = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("stream did not end on close");
    assert!(matches!(end, Some(Err(Error::Closed)) | None));
}

#[tokio::test]
async fn watch_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir)).await;
    let backend: Arc<dyn Backend> = store.clone();
    let history = churn(backend.clone(), 120, 0).await;
    let compact_at = history[60].0;

    // Started before the compaction but not yet replayed: must not skip the gap.
    let mut early = store.watch("/w/", 5).await.unwrap();
    store.compact(compact_at).await.unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), compact_at);
    match early.next().await {
        Some(Err(Error::Compacted {
            requested,
            compacted,
        })) => assert_eq!((requested, compacted), (5, compact_at)),
        other => panic!("expected Compacted, got {other:?}"),
    }
    assert!(early.next().await.is_none());

    assert!(matches!(
        store.watch("/w/", compact_at - 1).await,
        Err(Error::Compacted { .. })
    ));

    // From the compacted revision on, history is complete, including prev values and
    // the values of deleted keys.
    let mut late = store.watch("/w/", compact_at).await.unwrap();
    let more = churn(backend.clone(), 20, 500).await;
    let expected: Vec<_> = history
        .into_iter()
        .filter(|e| e.0 > compact_at)
        .chain(more)
        .collect();
    let mut received = Vec::new();
    while received.len() < expected.len() {
        let event = tokio::time::timeout(Duration::from_secs(10), late.next())
            .await
            .expect("watch stalled")
            .unwrap()
            .unwrap();
        if event.kind == EventKind::Delete || event.kv.create_revision != event.revision() {
            assert!(event.prev.is_some(), "missing prev at {}", event.revision());
        }
        received.push(summary(&event));
    }
    assert_eq!(received, expected);

    // Current state is intact after compaction.
    let live = store
        .list(k3rs_store::ListOptions {
            prefix: "/w/",
            revision: Some(compact_at),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(live.revision, compact_at);
    store.close().await.unwrap();
}
