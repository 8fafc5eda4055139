//! Shared informers: one watch per high-volume kind (Pods, Nodes) for the whole process,
//! a reflector store every controller reads, and a fan-out of changes to each subscriber.
//!
//! kube-runtime's own shared streams only forward applied objects, not deletions, and an
//! unpolled subscriber stalls every other one. Controllers here need deletions (a
//! ReplicaSet replaces a deleted pod at once), so the fan-out is ours: every subscriber
//! gets an unbounded channel, and a subscriber that joins late first receives the current
//! contents of the store, so subscribing never races with the initial list.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};
use kube::runtime::reflector::{self, Lookup, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tracing::warn;

type Subscribers<K> = Arc<Mutex<Vec<mpsc::UnboundedSender<Arc<K>>>>>;

/// A watched kind: its store and the subscribers its driver feeds.
pub struct Informer<K>
where
    K: Lookup + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    store: Store<K>,
    subscribers: Subscribers<K>,
}

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()>
        + Lookup<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
{
    /// Create the informer and the future that drives its watch; the caller runs the
    /// future for as long as the informer is used (dropping it stops the watch).
    pub fn new(
        api: Api<K>,
        config: watcher::Config,
    ) -> (Self, impl std::future::Future<Output = ()> + Send) {
        let (store, mut writer) = reflector::store::<K>();
        let subscribers: Subscribers<K> = Arc::default();
        let fan_out = subscribers.clone();
        let driver = async move {
            let mut events = std::pin::pin!(watcher::watcher(api, config).default_backoff());
            while let Some(event) = events.next().await {
                let event = match event {
                    Ok(event) => event,
                    Err(err) => {
                        warn!(kind = %<K as Resource>::kind(&()), error = %err, "informer watch failed; retrying");
                        continue;
                    }
                };
                // Apply and fan out under one lock, so that `subscribe` sees either the
                // state before this event (and then the event) or the state after it.
                let mut subscribers = fan_out.lock().expect("informer lock");
                writer.apply_watcher_event(&event);
                let changed = match &event {
                    Event::Apply(obj) | Event::Delete(obj) | Event::InitApply(obj) => {
                        Some(Arc::new(obj.clone()))
                    }
                    Event::Init | Event::InitDone => None,
                };
                if let Some(obj) = changed {
                    subscribers.retain(|tx| tx.send(obj.clone()).is_ok());
                }
            }
        };
        (Informer { store, subscribers }, driver)
    }

    /// The informer's store (empty until the first list completes; see
    /// [`Store::wait_until_ready`]).
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Every object currently in the store, then every change (including deletions, as
    /// the object's last state), in the shape kube-runtime's `Controller::*_stream`
    /// builders take.
    pub fn subscribe(&self) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut subscribers = self.subscribers.lock().expect("informer lock");
        for obj in self.store.state() {
            let _ = tx.send(obj);
        }
        subscribers.push(tx);
        receiver_stream(rx).map(|obj| Ok(Arc::unwrap_or_clone(obj)))
    }
}

fn receiver_stream<T: Send + 'static>(
    mut rx: mpsc::UnboundedReceiver<T>,
) -> impl Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
