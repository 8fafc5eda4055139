//! Knowing when the watched slices are behind this controller's own writes.
//!
//! Slices are created with generated names, so a sync working from a cache that has not
//! yet seen the previous sync's creates would create them again. Every write is
//! remembered (the resourceVersion it produced, or that the slice is gone) until the watch
//! shows it; a Service whose slices are not yet caught up waits briefly instead of
//! syncing. Expectations lapse after [`EXPECTATION_TTL`], so a lost watch event can delay
//! a Service but never block it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher::Event;

use super::plan::LABEL_SERVICE_NAME;

pub const EXPECTATION_TTL: Duration = Duration::from_secs(10);

type Key = (String, String);
/// Per slice name: what we expect of it, and since when.
type Expectations = HashMap<String, (Expect, Instant)>;

#[derive(Debug)]
enum Expect {
    /// The slice exists at this resourceVersion or later.
    Version(String),
    /// The slice is deleted.
    Gone,
}

#[derive(Default)]
pub struct Tracker {
    expected: Mutex<HashMap<Key, Expectations>>,
}

impl Tracker {
    /// We created or updated `slice` (as the API returned it) for `namespace/service`.
    pub fn wrote(&self, namespace: &str, service: &str, slice: &EndpointSlice) {
        let (Some(name), Some(version)) = (&slice.metadata.name, &slice.metadata.resource_version)
        else {
            return;
        };
        self.expect(namespace, service, name, Expect::Version(version.clone()));
    }

    /// We deleted the slice `name` of `namespace/service`.
    pub fn deleted(&self, namespace: &str, service: &str, name: &str) {
        self.expect(namespace, service, name, Expect::Gone);
    }

    fn expect(&self, namespace: &str, service: &str, name: &str, expect: Expect) {
        let mut expected = self.expected.lock().unwrap_or_else(|e| e.into_inner());
        expected
            .entry((namespace.to_string(), service.to_string()))
            .or_default()
            .insert(name.to_string(), (expect, Instant::now()));
    }

    /// Feed every watch event through here: a deletion settles whatever we expected of
    /// that slice, and a relist may have hidden deletions, so it settles everything.
    pub fn observe(&self, event: &Event<EndpointSlice>) {
        let mut expected = self.expected.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::Delete(slice) => {
                let service = slice
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(LABEL_SERVICE_NAME));
                let namespace = slice.metadata.namespace.clone().unwrap_or_default();
                if let (Some(service), Some(name)) = (service, &slice.metadata.name) {
                    if let Some(slices) = expected.get_mut(&(namespace, service.clone())) {
                        slices.remove(name);
                    }
                }
            }
            Event::InitDone => expected.clear(),
            Event::Init | Event::InitApply(_) | Event::Apply(_) => {}
        }
    }

    /// True while `cached` (the watched slices of `namespace/service`) lacks one of our
    /// writes. Settled expectations are dropped.
    pub fn is_stale(&self, namespace: &str, service: &str, cached: &[Arc<EndpointSlice>]) -> bool {
        let mut expected = self.expected.lock().unwrap_or_else(|e| e.into_inner());
        let key = (namespace.to_string(), service.to_string());
        let Some(slices) = expected.get_mut(&key) else {
            return false;
        };
        slices.retain(|name, (expect, since)| {
            let seen = cached
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(name.as_str()));
            let settled = match (expect, seen) {
                (Expect::Gone, seen) => seen.is_none(),
                (Expect::Version(_), None) => false,
                (Expect::Version(want), Some(slice)) => {
                    version_at_least(slice.metadata.resource_version.as_deref(), want)
                }
            };
            !settled && since.elapsed() < EXPECTATION_TTL
        });
        let stale = !slices.is_empty();
        if !stale {
            expected.remove(&key);
        }
        stale
    }

    /// The Service is gone or no longer ours to sync.
    pub fn forget(&self, namespace: &str, service: &str) {
        let mut expected = self.expected.lock().unwrap_or_else(|e| e.into_inner());
        expected.remove(&(namespace.to_string(), service.to_string()));
    }
}

/// resourceVersions are opaque to clients, but every store k3rs runs on (and etcd) uses
/// increasing integers; anything else only settles on an exact match.
fn version_at_least(seen: Option<&str>, want: &str) -> bool {
    match (
        seen.and_then(|s| s.parse::<u64>().ok()),
        want.parse::<u64>(),
    ) {
        (Some(seen), Ok(want)) => seen >= want,
        _ => seen == Some(want),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(name: &str, version: &str) -> EndpointSlice {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "ns", "resourceVersion": version,
                "labels": {LABEL_SERVICE_NAME: "web"}},
            "addressType": "IPv4", "endpoints": [],
        }))
        .unwrap()
    }

    #[test]
    fn writes_wait_for_the_cache() {
        let t = Tracker::default();
        assert!(!t.is_stale("ns", "web", &[]));
        t.wrote("ns", "web", &slice("web-abc", "10"));
        assert!(t.is_stale("ns", "web", &[]));
        assert!(t.is_stale("ns", "web", &[Arc::new(slice("web-abc", "9"))]));
        assert!(!t.is_stale("ns", "web", &[Arc::new(slice("web-abc", "11"))]));
        // Settled expectations are gone.
        assert!(!t.is_stale("ns", "web", &[]));

        t.deleted("ns", "web", "web-abc");
        assert!(t.is_stale("ns", "web", &[Arc::new(slice("web-abc", "11"))]));
        assert!(!t.is_stale("ns", "web", &[]));

        // A created slice deleted by someone else settles through the watch.
        t.wrote("ns", "web", &slice("web-xyz", "12"));
        t.observe(&Event::Delete(slice("web-xyz", "13")));
        assert!(!t.is_stale("ns", "web", &[]));
        t.wrote("ns", "web", &slice("web-xyz", "12"));
        t.observe(&Event::InitDone);
        assert!(!t.is_stale("ns", "web", &[]));
    }
}
