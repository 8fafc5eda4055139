//! Watches seen through the `kube` crate: the runtime `watcher` (including across a server
//! restart) and raw `Api::watch` replay from an old resourceVersion.

use std::time::Duration;

use futures::{Stream, StreamExt, TryStreamExt};
use k3rs_e2e::K3rs;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use serde_json::json;

const EVENT_DEADLINE: Duration = Duration::from_secs(20);

fn config_map(name: &str, labels: &[(&str, &str)], value: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {
            "name": name,
            "labels": labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        },
        "data": {"value": value},
    }))
    .unwrap()
}

fn value_of(cm: &ConfigMap) -> String {
    cm.data
        .as_ref()
        .and_then(|d| d.get("value").cloned())
        .unwrap_or_default()
}

fn name_of(cm: &ConfigMap) -> String {
    cm.metadata.name.clone().unwrap_or_default()
}

/// A change the runtime watcher reported, reduced to what the tests compare.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Apply(String, String),
    Delete(String),
}

/// Pull watcher events until `want` has been seen in order (other events may come in
/// between, e.g. re-list after a reconnect), or fail after the deadline.
async fn expect_in_order<S>(stream: &mut S, want: &[Seen])
where
    S: Stream<Item = Result<Event<ConfigMap>, watcher::Error>> + Unpin,
{
    let mut next = 0;
    let mut log = Vec::new();
    let deadline = tokio::time::Instant::now() + EVENT_DEADLINE;
    while next < want.len() {
        let item = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "timed out waiting for {:?}; got so far: {log:?}",
                    &want[next..]
                )
            })
            .expect("watcher stream ended");
        let seen = match item {
            Ok(Event::Apply(cm)) | Ok(Event::InitApply(cm)) => {
                Seen::Apply(name_of(&cm), value_of(&cm))
            }
            Ok(Event::Delete(cm)) => Seen::Delete(name_of(&cm)),
            Ok(Event::Init) | Ok(Event::InitDone) => continue,
            // Connection errors while the server restarts; the backoff retries.
            Err(err) => {
                log.push(format!("error: {err}"));
                continue;
            }
        };
        log.push(format!("{seen:?}"));
        if seen == want[next] {
            next += 1;
        }
    }
}

/// Consume the watcher's initial list.
async fn wait_init_done<S>(stream: &mut S)
where
    S: Stream<Item = Result<Event<ConfigMap>, watcher::Error>> + Unpin,
{
    loop {
        let item = tokio::time::timeout(EVENT_DEADLINE, stream.next())
            .await
            .expect("initial list in time")
            .expect("stream open")
            .expect("no error during the initial list");
        if matches!(item, Event::InitDone) {
            return;
        }
    }
}

#[tokio::test]
async fn watcher_sees_applies_and_deletes() {
    let server = K3rs::start();
    let client = server.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(
        &PostParams::default(),
        &config_map("old", &[("app", "w")], "0"),
    )
    .await
    .unwrap();

    let mut stream = watcher::watcher(cms.clone(), watcher::Config::default().labels("app=w"))
        .default_backoff()
        .boxed();
    // The initial list delivers the existing object.
    expect_in_order(&mut stream, &[Seen::Apply("old".into(), "0".into())]).await;

    cms.create(
        &PostParams::default(),
        &config_map("new", &[("app", "w")], "1"),
    )
    .await
    .unwrap();
    cms.create(
        &PostParams::default(),
        &config_map("other", &[("app", "x")], "1"),
    )
    .await
    .unwrap();
    cms.patch(
        "new",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"value": "2"}})),
    )
    .await
    .unwrap();
    cms.delete("old", &DeleteParams::default()).await.unwrap();
    // Relabelled out of the selector: a filtered watch reports it deleted.
    cms.patch(
        "new",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "gone"}}})),
    )
    .await
    .unwrap();
    // Relabelled into the selector: it appears.
    cms.patch(
        "other",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "w"}}})),
    )
    .await
    .unwrap();

    expect_in_order(
        &mut stream,
        &[
            Seen::Apply("new".into(), "1".into()),
            Seen::Apply("new".into(), "2".into()),
            Seen::Delete("old".into()),
            Seen::Delete("new".into()),
            Seen::Apply("other".into(), "1".into()),
        ],
    )
    .await;
}

#[tokio::test]
async fn raw_watch_from_old_resource_version_replays_every_change_in_order() {
    let server = K3rs::start();
    let client = server.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let created = cms
        .create(&PostParams::default(), &config_map("counter", &[], "0"))
        .await
        .unwrap();
    let first_rv = created.metadata.resource_version.clone().unwrap();
    const UPDATES: usize = 50;
    let mut acknowledged = Vec::new();
    for i in 1..=UPDATES {
        let cm = cms
            .patch(
                "counter",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"value": i.to_string()}})),
            )
            .await
            .unwrap();
        acknowledged.push(cm.metadata.resource_version.unwrap());
        // Noise on another object that a per-name watch must not see.
        if i % 10 == 0 {
            cms.create(
                &PostParams::default(),
                &config_map(&format!("noise-{i}"), &[], "n"),
            )
            .await
            .unwrap();
        }
    }
    cms.delete("counter", &DeleteParams::default())
        .await
        .unwrap();

    // Collection watch, restricted to the one object by a field selector.
    let params = WatchParams::default().fields("metadata.name=counter");
    let events: Vec<WatchEvent<ConfigMap>> = tokio::time::timeout(
        EVENT_DEADLINE,
        cms.watch(&params, &first_rv)
            .await
            .unwrap()
            .take(UPDATES + 1)
            .try_collect(),
    )
    .await
    .expect("all events within the deadline")
    .unwrap();

    let mut last_rv: i64 = first_rv.parse().unwrap();
    for (i, event) in events.iter().enumerate() {
        let (kind, cm) = match event {
            WatchEvent::Modified(cm) => ("MODIFIED", cm),
            WatchEvent::Deleted(cm) => ("DELETED", cm),
            other => panic!("event {i}: unexpected {other:?}"),
        };
        let rv: i64 = cm
            .metadata
            .resource_version
            .as_deref()
            .unwrap()
            .parse()
            .unwrap();
        assert!(rv > last_rv, "event {i}: rv {rv} after {last_rv}");
        last_rv = rv;
        assert_eq!(name_of(cm), "counter");
        if i < UPDATES {
            assert_eq!(kind, "MODIFIED", "event {i}");
            assert_eq!(
                value_of(cm),
                (i + 1).to_string(),
                "event {i}: gap or duplicate"
            );
            assert_eq!(
                cm.metadata.resource_version.as_deref(),
                Some(acknowledged[i].as_str())
            );
        } else {
            assert_eq!(kind, "DELETED", "event {i}");
            assert_eq!(value_of(cm), UPDATES.to_string());
        }
    }

    // A watch on the single object by name (`?watch` on the collection with
    // metadata.name is what kube sends) replays the same sequence from the middle.
    let middle = &acknowledged[UPDATES / 2 - 1];
    let events: Vec<WatchEvent<ConfigMap>> = tokio::time::timeout(
        EVENT_DEADLINE,
        cms.watch(&params, middle)
            .await
            .unwrap()
            .take(UPDATES / 2 + 1)
            .try_collect(),
    )
    .await
    .expect("all events within the deadline")
    .unwrap();
    let values: Vec<String> = events
        .iter()
        .map(|e| match e {
            WatchEvent::Modified(cm) => value_of(cm),
            WatchEvent::Deleted(_) => "deleted".into(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    let expected: Vec<String> = (UPDATES / 2 + 1..=UPDATES)
        .map(|i| i.to_string())
        .chain(["deleted".to_string()])
        .collect();
    assert_eq!(values, expected);
}

#[tokio::test]
async fn watcher_resumes_across_a_server_restart() {
    let mut server = K3rs::start();
    let client = server.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &config_map("before", &[], "1"))
        .await
        .unwrap();

    let mut stream = watcher::watcher(cms.clone(), watcher::Config::default())
        .default_backoff()
        .boxed();
    wait_init_done(&mut stream).await;
    cms.create(&PostParams::default(), &config_map("pre", &[], "1"))
        .await
        .unwrap();
    expect_in_order(&mut stream, &[Seen::Apply("pre".into(), "1".into())]).await;

    server.restart();

    // Writes go through a fresh client; the watcher keeps its own.
    let after_client = server.client().await;
    let after: Api<ConfigMap> = Api::namespaced(after_client, "default");
    after
        .create(&PostParams::default(), &config_map("after", &[], "1"))
        .await
        .unwrap();
    after
        .patch(
            "before",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"value": "2"}})),
        )
        .await
        .unwrap();
    after.delete("pre", &DeleteParams::default()).await.unwrap();

    expect_in_order(
        &mut stream,
        &[
            Seen::Apply("after".into(), "1".into()),
            Seen::Apply("before".into(), "2".into()),
            Seen::Delete("pre".into()),
        ],
    )
    .await;
}
