//! Create/update/delete semantics, compare-and-swap errors, revisions across reopen.

use k3rs_store::{Backend, Error, ListOptions};

use crate::{db_path, open, value_of};

#[tokio::test]
async fn crud_and_cas_semantics() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir)).await;
    assert_eq!(store.current_revision().await.unwrap(), 0);
    assert!(store.get("/a").await.unwrap().is_none());

    let a = store.create("/a", b"1".to_vec()).await.unwrap();
    assert_eq!((a.create_revision, a.mod_revision), (1, 1));
    match store.create("/a", b"x".to_vec()).await {
        Err(Error::AlreadyExists { key }) => assert_eq!(key, "/a"),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    // A rejected write does not consume a revision.
    assert_eq!(store.current_revision().await.unwrap(), 1);

    let a2 = store.update("/a", b"2".to_vec(), 1).await.unwrap();
    assert_eq!((a2.create_revision, a2.mod_revision), (1, 2));
    match store.update("/a", b"3".to_vec(), 1).await {
        Err(Error::Conflict {
            key,
            expected,
            actual,
        }) => assert_eq!((key.as_str(), expected, actual), ("/a", 1, 2)),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert!(matches!(
        store.update("/missing", b"3".to_vec(), 1).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.delete("/a", Some(1)).await,
        Err(Error::Conflict { actual: 2, .. })
    ));
    assert_eq!(value_of(store.as_ref(), "/a").await.as_deref(), Some("2"));

    let deleted = store.delete("/a", Some(2)).await.unwrap();
    assert_eq!(deleted.value, b"2");
    assert_eq!((deleted.create_revision, deleted.mod_revision), (1, 3));
    assert!(store.get("/a").await.unwrap().is_none());
    assert!(matches!(
        store.delete("/a", None).await,
        Err(Error::NotFound { .. })
    ));

    // Re-creating starts a new incarnation with a new create_revision.
    let again = store.create("/a", b"new".to_vec()).await.unwrap();
    assert_eq!((again.create_revision, again.mod_revision), (4, 4));
    let unconditional = store.delete("/a", None).await.unwrap();
    assert_eq!(unconditional.mod_revision, 5);
    store.close().await.unwrap();
    assert!(matches!(store.get("/a").await, Err(Error::Closed)));
    assert!(matches!(
        store.create("/b", vec![]).await,
        Err(Error::Closed)
    ));
}

#[tokio::test]
async fn revisions_survive_reopen_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let store = open(&path).await;
    store.create("/k/1", b"a".to_vec()).await.unwrap();
    store.create("/k/2", b"b".to_vec()).await.unwrap();
    store.update("/k/1", b"c".to_vec(), 1).await.unwrap();
    // The newest row is a tombstone; compacting it away must not rewind the counter.
    store.delete("/k/2", None).await.unwrap();
    store.compact(4).await.unwrap();
    store.close().await.unwrap();
    drop(store);

    let store = open(&path).await;
    assert_eq!(store.current_revision().await.unwrap(), 4);
    assert_eq!(store.compacted_revision().await.unwrap(), 4);
    let one = store.get("/k/1").await.unwrap().unwrap();
    assert_eq!(
        (one.value.as_slice(), one.create_revision, one.mod_revision),
        (&b"c"[..], 1, 3)
    );
    assert!(store.get("/k/2").await.unwrap().is_none());
    let next = store.create("/k/3", vec![]).await.unwrap();
    assert_eq!(next.mod_revision, 5);
    assert_eq!(store.count("/k/").await.unwrap(), 2);
    let all = store
        .list(ListOptions {
            prefix: "/k/",
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.revision, 5);
    let keys: Vec<_> = all.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/k/1", "/k/3"]);
    store.close().await.unwrap();
}

#[tokio::test]
async fn reads_below_compaction_and_in_the_future_fail() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir)).await;
    for i in 0..10 {
        store.create(&format!("/x/{i}"), vec![]).await.unwrap();
    }
    store.compact(5).await.unwrap();
    let at = |revision| ListOptions {
        prefix: "/x/",
        revision: Some(revision),
        ..Default::default()
    };
    assert!(matches!(
        store.list(at(4)).await,
        Err(Error::Compacted {
            requested: 4,
            compacted: 5
        })
    ));
    assert!(matches!(
        store.list(at(11)).await,
        Err(Error::FutureRevision {
            requested: 11,
            current: 10
        })
    ));
    assert_eq!(store.list(at(5)).await.unwrap().items.len(), 5);
    assert!(matches!(
        store.compact(11).await,
        Err(Error::FutureRevision { .. })
    ));
    assert!(matches!(
        store.watch("/x/", 3).await,
        Err(Error::Compacted { .. })
    ));
    store.close().await.unwrap();
}
