//! Watch fan-out: many watchers, each an HTTP watch stream on its own connection, follow
//! one namespace while a single writer creates and then updates ConfigMaps one after the
//! other. Delivery latency is the time from the writer receiving a write's response to a
//! watcher receiving the event with that write's resourceVersion.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ListParams, PostParams, WatchEvent, WatchParams};
use kube::{Api, Client};
use tokio::sync::{mpsc, watch};

use crate::crud::config_map;
use crate::stats::Latencies;

/// How long watchers may lag behind the last write before missing events count as lost.
const DELIVERY_GRACE: Duration = Duration::from_secs(10);

/// What one watcher saw: resourceVersion -> when it arrived.
struct Seen {
    arrivals: HashMap<String, Instant>,
    error: Option<String>,
}

pub struct WatchResult {
    pub watchers: usize,
    pub writes: usize,
    pub write_latencies: Latencies,
    pub delivery: Latencies,
    /// Same deliveries measured from when the write was sent (an upper bound).
    pub delivery_from_send: Latencies,
    /// Deliveries that arrived before the writer had read the write's response.
    pub before_response: usize,
    pub missing: usize,
    pub complete_watchers: usize,
    pub first_error: Option<String>,
    pub writes_elapsed: Duration,
}

/// Open `clients.len()` watches on ConfigMaps in `namespace`, then make `writes` writes
/// (half creates, half updates of those objects) from `writer`.
pub async fn fan_out(
    writer: &Client,
    clients: Vec<Client>,
    namespace: &str,
    writes: usize,
) -> anyhow::Result<WatchResult> {
    let api: Api<ConfigMap> = Api::namespaced(writer.clone(), namespace);
    let start_version = api
        .list(&ListParams::default().limit(1))
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();

    let watchers = clients.len();
    let (ready_tx, mut ready_rx) = mpsc::channel::<Result<(), String>>(watchers);
    let (stop_tx, stop_rx) = watch::channel(false);
    let handles: Vec<_> = clients
        .into_iter()
        .map(|client| {
            let api: Api<ConfigMap> = Api::namespaced(client, namespace);
            let start_version = start_version.clone();
            let ready_tx = ready_tx.clone();
            let mut stop_rx = stop_rx.clone();
            tokio::spawn(async move {
                let mut seen = Seen {
                    arrivals: HashMap::with_capacity(writes),
                    error: None,
                };
                let params = WatchParams::default().timeout(290);
                let stream = match api.watch(&params, &start_version).await {
                    Ok(stream) => stream,
                    Err(err) => {
                        let _ = ready_tx.send(Err(err.to_string())).await;
                        seen.error = Some(err.to_string());
                        return seen;
                    }
                };
                let _ = ready_tx.send(Ok(())).await;
                let mut stream = std::pin::pin!(stream);
                while seen.arrivals.len() < writes {
                    let event = tokio::select! {
                        event = stream.next() => event,
                        _ = stop_rx.changed() => break,
                    };
                    let now = Instant::now();
                    match event {
                        Some(Ok(WatchEvent::Added(cm) | WatchEvent::Modified(cm))) => {
                            if let Some(version) = cm.metadata.resource_version {
                                seen.arrivals.insert(version, now);
                            }
                        }
                        Some(Ok(WatchEvent::Bookmark(_) | WatchEvent::Deleted(_))) => {}
                        Some(Ok(WatchEvent::Error(status))) => {
                            seen.error = Some(format!("watch error event: {status:?}"));
                            break;
                        }
                        Some(Err(err)) => {
                            seen.error = Some(err.to_string());
                            break;
                        }
                        None => {
                            seen.error = Some("watch stream ended early".to_string());
                            break;
                        }
                    }
                }
                seen
            })
        })
        .collect();
    drop(ready_tx);

    // Every watch has its response headers before the first write.
    let mut ready_errors = Vec::new();
    for _ in 0..watchers {
        match ready_rx.recv().await {
            Some(Ok(())) => {}
            Some(Err(err)) => ready_errors.push(err),
            None => break,
        }
    }

    let mut write_latencies = Latencies::default();
    // resourceVersion -> (write sent, write response read)
    let mut responded: HashMap<String, (Instant, Instant)> = HashMap::with_capacity(writes);
    let mut first_error = ready_errors.first().cloned();
    let creates = writes.div_ceil(2);
    let mut created: Vec<ConfigMap> = Vec::with_capacity(creates);
    let writes_started = Instant::now();
    for n in 0..writes {
        let sent = Instant::now();
        let result = if n < creates {
            api.create(&PostParams::default(), &config_map(&format!("w-{n}"), 0))
                .await
        } else {
            let mut cm = created[n - creates].clone();
            if let Some(data) = cm.data.as_mut() {
                data.insert("generation".to_string(), "1".to_string());
            }
            let name = cm.metadata.name.clone().unwrap_or_default();
            api.replace(&name, &PostParams::default(), &cm).await
        };
        let done = Instant::now();
        match result {
            Ok(cm) => {
                write_latencies.push(done - sent);
                if let Some(version) = cm.metadata.resource_version.clone() {
                    responded.insert(version, (sent, done));
                }
                if n < creates {
                    created.push(cm);
                }
            }
            Err(err) => {
                first_error.get_or_insert_with(|| format!("write {n}: {err}"));
            }
        }
    }
    let writes_elapsed = writes_started.elapsed();

    let stopper = tokio::spawn(async move {
        tokio::time::sleep(DELIVERY_GRACE).await;
        let _ = stop_tx.send(true);
    });
    let mut result = WatchResult {
        watchers,
        writes,
        write_latencies,
        delivery: Latencies::default(),
        delivery_from_send: Latencies::default(),
        before_response: 0,
        missing: 0,
        complete_watchers: 0,
        first_error,
        writes_elapsed,
    };
    for handle in handles {
        let seen = match handle.await {
            Ok(seen) => seen,
            Err(join) => Seen {
                arrivals: HashMap::new(),
                error: Some(join.to_string()),
            },
        };
        let mut got = 0;
        for (version, (sent, done)) in &responded {
            match seen.arrivals.get(version) {
                Some(arrived) => {
                    got += 1;
                    if arrived < done {
                        result.before_response += 1;
                    }
                    result
                        .delivery
                        .push(arrived.saturating_duration_since(*done));
                    result
                        .delivery_from_send
                        .push(arrived.saturating_duration_since(*sent));
                }
                None => result.missing += 1,
            }
        }
        if got == writes {
            result.complete_watchers += 1;
        }
        if let Some(err) = seen.error {
            result.first_error.get_or_insert(err);
        }
    }
    stopper.abort();
    // Writes that failed never got a response, so their events were never expected.
    result.missing += (writes - responded.len()) * watchers;
    Ok(result)
}
