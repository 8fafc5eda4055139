//! ConfigMap create / get / list phases: `concurrency` workers, each on its own
//! `kube::Client` (so its own HTTP/1.1 connection), pull request numbers from a shared
//! counter until the phase's request budget or time budget runs out.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::{Api, Client};

use crate::stats::Latencies;

/// Bytes of filler in each ConfigMap, so objects are not trivially small.
pub const PAYLOAD_BYTES: usize = 256;

/// What one phase measured.
pub struct PhaseResult {
    pub latencies: Latencies,
    pub errors: usize,
    pub first_error: Option<String>,
    pub elapsed: Duration,
}

impl PhaseResult {
    pub fn requests(&self) -> usize {
        self.latencies.len() + self.errors
    }

    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A ConfigMap named `name` with a small data payload.
pub fn config_map(name: &str, generation: usize) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(BTreeMap::from([(
                "app".to_string(),
                "k3rs-bench".to_string(),
            )])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([
            ("generation".to_string(), generation.to_string()),
            ("payload".to_string(), "x".repeat(PAYLOAD_BYTES)),
        ])),
        ..ConfigMap::default()
    }
}

/// Create `name` unless it exists.
pub async fn ensure_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// Run `op(client, request_number)` on every client concurrently until `total` requests
/// were issued or `budget` elapsed.
pub async fn run_phase<F, Fut>(
    clients: &[Client],
    total: usize,
    budget: Duration,
    op: F,
) -> PhaseResult
where
    F: Fn(Client, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), kube::Error>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = clients
        .iter()
        .cloned()
        .map(|client| {
            let next = next.clone();
            let op = op.clone();
            tokio::spawn(async move {
                let mut latencies = Latencies::default();
                let mut errors = 0;
                let mut first_error = None;
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= total || start.elapsed() >= budget {
                        break;
                    }
                    let sent = Instant::now();
                    match op(client.clone(), n).await {
                        Ok(()) => latencies.push(sent.elapsed()),
                        Err(err) => {
                            errors += 1;
                            first_error.get_or_insert_with(|| err.to_string());
                        }
                    }
                }
                (latencies, errors, first_error)
            })
        })
        .collect();
    let mut result = PhaseResult {
        latencies: Latencies::default(),
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
    };
    for worker in workers {
        match worker.await {
            Ok((latencies, errors, first_error)) => {
                result.latencies.extend(latencies);
                result.errors += errors;
                if result.first_error.is_none() {
                    result.first_error = first_error;
                }
            }
            Err(join) => {
                result.errors += 1;
                result.first_error.get_or_insert_with(|| join.to_string());
            }
        }
    }
    result.elapsed = start.elapsed();
    result
}

/// Create ConfigMaps `{prefix}{n}` in `namespace`.
pub async fn creates(
    clients: &[Client],
    namespace: &str,
    prefix: &str,
    total: usize,
    budget: Duration,
) -> PhaseResult {
    let namespace = namespace.to_string();
    let prefix = prefix.to_string();
    run_phase(clients, total, budget, move |client, n| {
        let api: Api<ConfigMap> = Api::namespaced(client, &namespace);
        let cm = config_map(&format!("{prefix}{n}"), 0);
        async move { api.create(&PostParams::default(), &cm).await.map(drop) }
    })
    .await
}

/// Get ConfigMaps `{prefix}{n % existing}` from `namespace`.
pub async fn gets(
    clients: &[Client],
    namespace: &str,
    prefix: &str,
    existing: usize,
    total: usize,
    budget: Duration,
) -> PhaseResult {
    let namespace = namespace.to_string();
    let prefix = prefix.to_string();
    let existing = existing.max(1);
    run_phase(clients, total, budget, move |client, n| {
        let api: Api<ConfigMap> = Api::namespaced(client, &namespace);
        let name = format!("{prefix}{}", n % existing);
        async move { api.get(&name).await.map(drop) }
    })
    .await
}

/// List the benchmark's ConfigMaps in `namespace` (by label, since the server also
/// publishes `kube-root-ca.crt` there); a list with the wrong size counts as an error.
pub async fn lists(
    clients: &[Client],
    namespace: &str,
    expected: usize,
    total: usize,
    budget: Duration,
) -> PhaseResult {
    let namespace = namespace.to_string();
    run_phase(clients, total, budget, move |client, _| {
        let api: Api<ConfigMap> = Api::namespaced(client, &namespace);
        async move {
            let list = api
                .list(&ListParams::default().labels("app=k3rs-bench"))
                .await?;
            if list.items.len() == expected {
                Ok(())
            } else {
                // Not a transport error, but a wrong answer is a server failure.
                Err(kube::Error::Service(
                    format!(
                        "list returned {} items, expected {expected}",
                        list.items.len()
                    )
                    .into(),
                ))
            }
        }
    })
    .await
}
