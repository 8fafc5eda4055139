//! Metadata-only reads (`Accept: ...;as=PartialObjectMetadata[List]`), which metadata
//! informers such as the garbage collector's use: only `metadata` travels.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::{json, Value};

use k3rs_e2e::K3rs;

#[tokio::test]
async fn metadata_only_get_list_and_watch() {
    let k = K3rs::start();
    let client = k.client().await;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "big", "labels": {"a": "b"}},
        "data": {"payload": "x".repeat(10_000)},
    }))
    .unwrap();
    maps.create(&PostParams::default(), &cm).await.unwrap();

    let meta = maps.get_metadata("big").await.unwrap();
    assert_eq!(meta.metadata.labels.unwrap()["a"], "b");
    let list = maps.list_metadata(&ListParams::default()).await.unwrap();
    assert!(list
        .items
        .iter()
        .any(|m| m.metadata.name.as_deref() == Some("big")));

    // On the wire: no data, and the kinds upstream sends.
    let raw = |accept: &'static str, path: String| {
        let client = client.clone();
        async move {
            let request = http::Request::get(path)
                .header(http::header::ACCEPT, accept)
                .body(Vec::new())
                .unwrap();
            serde_json::from_str::<Value>(&client.request_text(request).await.unwrap()).unwrap()
        }
    };
    let one = raw(
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
        "/api/v1/namespaces/default/configmaps/big".into(),
    )
    .await;
    assert_eq!(one["kind"], "PartialObjectMetadata");
    assert_eq!(one["apiVersion"], "meta.k8s.io/v1");
    assert!(one.get("data").is_none(), "{one}");
    let all = raw(
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
        "/api/v1/namespaces/default/configmaps".into(),
    )
    .await;
    assert_eq!(all["kind"], "PartialObjectMetadataList");
    assert!(all["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i.get("data").is_none()));

    let rv = list.metadata.resource_version.unwrap();
    let mut events = maps
        .watch_metadata(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    maps.delete("big", &Default::default()).await.unwrap();
    match events.try_next().await.unwrap() {
        Some(WatchEvent::Deleted(m)) => assert_eq!(m.metadata.name.as_deref(), Some("big")),
        other => panic!("expected the deletion, got {other:?}"),
    }
}
