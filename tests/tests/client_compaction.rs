//! Compaction as clients see it: a watch or list from a compacted revision is answered
//! with 410 Expired. The server is started with `K3RS_COMPACT_INTERVAL=1s` and
//! `K3RS_COMPACT_RETAIN=100` so compaction happens within the test; this file holds a
//! single test so the environment variables cannot leak into other tests' servers.

use std::time::{Duration, Instant};

use futures::StreamExt;
use k3rs_e2e::K3rs;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, ListParams, Patch, PatchParams, PostParams, VersionMatch, WatchEvent, WatchParams,
};
use serde_json::json;

/// The status of a watch that must fail at once with an error event.
async fn first_watch_error(cms: &Api<ConfigMap>, rv: &str) -> Option<Box<kube::core::Status>> {
    let mut stream = cms
        .watch(&WatchParams::default().timeout(2), rv)
        .await
        .ok()?
        .boxed();
    match tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
        Ok(Some(Ok(WatchEvent::Error(status)))) => Some(status),
        Ok(Some(Err(kube::Error::Api(status)))) => Some(status),
        _ => None,
    }
}

#[tokio::test]
async fn watch_and_list_from_a_compacted_revision_are_expired() {
    // Children inherit the environment; this is the only test in this binary.
    std::env::set_var("K3RS_COMPACT_INTERVAL", "1s");
    std::env::set_var("K3RS_COMPACT_RETAIN", "100");
    let server = K3rs::start();
    let client = server.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    let created = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "churn"}, "data": {"n": "0"}}))
                .unwrap(),
        )
        .await
        .unwrap();
    let first_rv = created.metadata.resource_version.unwrap();
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "second"}})).unwrap(),
    )
    .await
    .unwrap();
    // A continue token pinned to the old snapshot.
    let page = cms.list(&ListParams::default().limit(1)).await.unwrap();
    let token = page.metadata.continue_.clone();

    for i in 1..=150 {
        cms.patch(
            "churn",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"n": i.to_string()}})),
        )
        .await
        .unwrap();
    }

    // Compaction runs every second; wait until it has passed the first revision.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = first_watch_error(&cms, &first_rv).await {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "no 410 from a watch at {first_rv} within 20 s; log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status.code, 410, "{status:?}");
    assert_eq!(status.reason, "Expired", "{status:?}");

    // An exact list at the compacted revision is 410 too.
    let err = cms
        .list(
            &ListParams::default()
                .at(&first_rv)
                .matching(VersionMatch::Exact),
        )
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(status) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
        }
        other => panic!("expected 410, got {other:?}"),
    }
    // As is a continue token from before compaction.
    let token = token
        .filter(|t| !t.is_empty())
        .expect("two objects, limit 1: a next page");
    {
        match cms
            .list(&ListParams::default().limit(1).continue_token(&token))
            .await
            .unwrap_err()
        {
            kube::Error::Api(status) => {
                assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
            }
            other => panic!("expected 410, got {other:?}"),
        }
    }

    // Recent history is still there: a watch from 50 revisions back replays.
    let current: i64 = cms
        .get("churn")
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap()
        .parse()
        .unwrap();
    let recent = (current - 50).to_string();
    let events: Vec<_> = tokio::time::timeout(
        Duration::from_secs(10),
        cms.watch(&WatchParams::default(), &recent)
            .await
            .unwrap()
            .take(50)
            .collect::<Vec<_>>(),
    )
    .await
    .expect("recent history replays");
    for event in &events {
        assert!(matches!(event, Ok(WatchEvent::Modified(_))), "{event:?}");
    }
    assert_eq!(events.len(), 50);
}
