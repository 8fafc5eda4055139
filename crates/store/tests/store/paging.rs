//! Paged lists at a fixed revision stay a consistent snapshot while writes continue.

use k3rs_store::{Backend, KeyValue, ListOptions};

use crate::{db_path, open};

#[tokio::test]
async fn paging_at_a_revision_is_a_consistent_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir)).await;
    for i in 0..50 {
        store
            .create(
                &format!("/registry/pods/default/p{i:02}"),
                format!("v{i}").into_bytes(),
            )
            .await
            .unwrap();
    }
    store
        .create("/registry/pods/kube-system/dns", vec![])
        .await
        .unwrap();
    store
        .create("/registry/services/default/s", vec![])
        .await
        .unwrap();

    let prefix = "/registry/pods/default/";
    let snapshot = store
        .list(ListOptions {
            prefix,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(snapshot.items.len(), 50);
    assert!(!snapshot.more);

    let first = store
        .list(ListOptions {
            prefix,
            limit: Some(10),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(first.revision, snapshot.revision);
    assert!(first.more);
    assert_eq!(first.remaining, Some(40));

    let mut collected: Vec<KeyValue> = first.items.clone();
    let mut last = collected.last().unwrap().key.clone();
    let mut round = 0;
    loop {
        // Writes between pages: change keys already returned and keys still to come,
        // delete some, add some inside the range.
        round += 1;
        let ahead = format!("{prefix}p{:02}", (10 * round + 5).min(49));
        let kv = store.get(&ahead).await.unwrap();
        if let Some(kv) = kv {
            store
                .update(&ahead, b"changed".to_vec(), kv.mod_revision)
                .await
                .unwrap();
        }
        store
            .delete(&format!("{prefix}p{:02}", round), None)
            .await
            .unwrap();
        store
            .create(&format!("{prefix}p{round:02}-new"), vec![])
            .await
            .unwrap();

        let page = store
            .list(ListOptions {
                prefix,
                start_after: Some(&last),
                limit: Some(10),
                revision: Some(snapshot.revision),
            })
            .await
            .unwrap();
        assert_eq!(page.revision, snapshot.revision);
        collected.extend(page.items.iter().cloned());
        if !page.more {
            assert_eq!(page.remaining, None);
            break;
        }
        assert_eq!(page.remaining, Some(50 - collected.len() as i64));
        last = page.items.last().unwrap().key.clone();
    }
    assert_eq!(collected, snapshot.items);

    // The current state did move on.
    let now = store
        .list(ListOptions {
            prefix,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(now.revision > snapshot.revision);
    assert_ne!(now.items, snapshot.items);
    assert_eq!(
        store.count("/registry/pods/").await.unwrap(),
        now.items.len() as i64 + 1
    );
    store.close().await.unwrap();
}
