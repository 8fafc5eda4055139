//! Turning pod changes into Service reconciles, for both endpoints controllers.
//!
//! A changed pod maps to the Services of its namespace that select it now, and to those
//! that listed it at their last reconcile: the informer hands over only a pod's new state,
//! so a pod whose labels stopped matching is found through [`Membership`]. Requests are
//! held for a short batch period (upstream's endpoint updates batch period), so a
//! Deployment of 1,000 pods turning ready costs a handful of writes per Service, not 1,000.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use tokio::time::Instant;

use super::service_pods::service_selects_pod;

type Key = (String, String);

/// Which pods each Service listed at its last reconcile, indexed both ways.
#[derive(Default)]
pub struct Membership {
    inner: Mutex<Index>,
}

#[derive(Default)]
struct Index {
    pods_of_service: HashMap<Key, Vec<String>>,
    services_of_pod: HashMap<Key, BTreeSet<String>>,
}

impl Membership {
    /// Replace the pods listed for `namespace/service`.
    pub fn record(&self, namespace: &str, service: &str, pods: Vec<String>) {
        let mut index = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        index.remove_service(namespace, service);
        for pod in &pods {
            index
                .services_of_pod
                .entry((namespace.to_string(), pod.clone()))
                .or_default()
                .insert(service.to_string());
        }
        if !pods.is_empty() {
            index
                .pods_of_service
                .insert((namespace.to_string(), service.to_string()), pods);
        }
    }

    /// The Service lists no pods any more (deleted, or lost its selector).
    pub fn forget(&self, namespace: &str, service: &str) {
        let mut index = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        index.remove_service(namespace, service);
    }

    /// The Services that listed `namespace/pod` at their last reconcile.
    pub fn services_of(&self, namespace: &str, pod: &str) -> Vec<String> {
        let index = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        index
            .services_of_pod
            .get(&(namespace.to_string(), pod.to_string()))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

impl Index {
    fn remove_service(&mut self, namespace: &str, service: &str) {
        let key = (namespace.to_string(), service.to_string());
        for pod in self.pods_of_service.remove(&key).unwrap_or_default() {
            let pod_key = (namespace.to_string(), pod);
            if let Some(services) = self.services_of_pod.get_mut(&pod_key) {
                services.remove(service);
                if services.is_empty() {
                    self.services_of_pod.remove(&pod_key);
                }
            }
        }
    }
}

/// The Services a change of `pod` concerns.
pub fn services_for_pod(
    services: &Store<Service>,
    membership: &Membership,
    pod: &Pod,
) -> Vec<ObjectRef<Service>> {
    let (Some(namespace), Some(name)) = (&pod.metadata.namespace, &pod.metadata.name) else {
        return Vec::new();
    };
    let mut names: BTreeSet<String> = membership
        .services_of(namespace, name)
        .into_iter()
        .collect();
    names.extend(
        services
            .state()
            .iter()
            .filter(|svc| service_selects_pod(svc, pod))
            .filter_map(|svc| svc.metadata.name.clone()),
    );
    names
        .into_iter()
        .map(|n| ObjectRef::new(&n).within(namespace))
        .collect()
}

/// Map every pod of `pods` through `concerns`, and emit each concerned Service once per
/// batch: the first request for a Service starts a `period` timer, later ones join it.
pub fn batched<F>(
    pods: impl Stream<Item = Result<Pod, watcher::Error>> + Send + 'static,
    concerns: F,
    period: Duration,
) -> impl Stream<Item = ObjectRef<Service>> + Send + 'static
where
    F: Fn(&Pod) -> Vec<ObjectRef<Service>> + Send + 'static,
{
    let state = Batch {
        pods: Box::pin(pods),
        concerns,
        period,
        pending: HashSet::new(),
        deadline: None,
        ready: Vec::new(),
        ended: false,
    };
    futures::stream::unfold(state, |mut batch| async move {
        let next = batch.next().await?;
        Some((next, batch))
    })
}

type PodStream = Pin<Box<dyn Stream<Item = Result<Pod, watcher::Error>> + Send>>;

struct Batch<F> {
    pods: PodStream,
    concerns: F,
    period: Duration,
    pending: HashSet<ObjectRef<Service>>,
    deadline: Option<Instant>,
    ready: Vec<ObjectRef<Service>>,
    ended: bool,
}

impl<F: Fn(&Pod) -> Vec<ObjectRef<Service>>> Batch<F> {
    async fn next(&mut self) -> Option<ObjectRef<Service>> {
        loop {
            if let Some(next) = self.ready.pop() {
                return Some(next);
            }
            if self.ended && self.pending.is_empty() {
                return None;
            }
            match self.deadline {
                Some(deadline) if self.ended => {
                    tokio::time::sleep_until(deadline).await;
                    self.flush();
                }
                Some(deadline) => tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => self.flush(),
                    pod = self.pods.next() => self.take(pod),
                },
                None => {
                    let pod = self.pods.next().await;
                    self.take(pod);
                }
            }
        }
    }

    fn take(&mut self, pod: Option<Result<Pod, watcher::Error>>) {
        match pod {
            Some(Ok(pod)) => {
                self.pending.extend((self.concerns)(&pod));
                if self.deadline.is_none() && !self.pending.is_empty() {
                    self.deadline = Some(Instant::now() + self.period);
                }
            }
            Some(Err(_)) => {}
            None => self.ended = true,
        }
    }

    fn flush(&mut self) {
        self.ready.extend(self.pending.drain());
        self.deadline = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_follows_the_last_record() {
        let m = Membership::default();
        m.record("ns", "a", vec!["p1".into(), "p2".into()]);
        m.record("ns", "b", vec!["p2".into()]);
        assert_eq!(m.services_of("ns", "p2"), vec!["a", "b"]);
        m.record("ns", "a", vec!["p1".into()]);
        assert_eq!(m.services_of("ns", "p2"), vec!["b"]);
        m.forget("ns", "b");
        assert!(m.services_of("ns", "p2").is_empty());
        assert_eq!(m.services_of("ns", "p1"), vec!["a"]);
        assert!(m.services_of("other", "p1").is_empty());
    }

    #[tokio::test]
    async fn requests_are_batched_per_service() {
        let pods: Vec<Result<Pod, watcher::Error>> = ["p1", "p2", "p3"]
            .iter()
            .map(|name| {
                Ok(serde_json::from_value(
                    serde_json::json!({"metadata": {"name": name, "namespace": "ns"}}),
                )
                .unwrap())
            })
            .collect();
        let concerns = |pod: &Pod| {
            let mut refs = vec![ObjectRef::new("s").within("ns")];
            if pod.metadata.name.as_deref() == Some("p3") {
                refs.push(ObjectRef::new("t").within("ns"));
            }
            refs
        };
        let source = futures::stream::iter(pods).chain(futures::stream::pending());
        let started = Instant::now();
        let mut out = Box::pin(batched(source, concerns, Duration::from_millis(100)));
        let mut first: Vec<String> = vec![
            out.next().await.unwrap().name,
            out.next().await.unwrap().name,
        ];
        first.sort();
        assert_eq!(first, vec!["s", "t"]);
        assert!(started.elapsed() >= Duration::from_millis(100));
        // Nothing else is pending: three pod changes became one request per Service.
        let more = tokio::time::timeout(Duration::from_millis(300), out.next()).await;
        assert!(more.is_err());
    }
}
