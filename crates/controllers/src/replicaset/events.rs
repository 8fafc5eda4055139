//! Event recording off the reconcile path: reconciles queue events and one background
//! drain publishes them, so a burst of a thousand `SuccessfulCreate` events never slows
//! the creates themselves.

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use tokio::sync::mpsc;

use crate::context::{self, Context};

/// How many events are published at once.
const CONCURRENCY: usize = 4;

struct Pending {
    regarding: ObjectReference,
    warning: bool,
    reason: &'static str,
    action: &'static str,
    note: String,
}

/// A queue of events to publish as `controller`.
#[derive(Clone)]
pub struct EventSink {
    tx: mpsc::UnboundedSender<Pending>,
}

impl EventSink {
    /// The sink and the future that publishes what it queues; run the future alongside
    /// the controller (it ends when every sink clone is dropped).
    pub fn new(ctx: Arc<Context>, controller: &'static str) -> (Self, impl Future<Output = ()>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<Pending>();
        let queued = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let drain = queued.for_each_concurrent(CONCURRENCY, move |event| {
            // Recorders share the term's series table, so cloning one per event is cheap.
            let recorder = ctx.recorder(controller);
            async move {
                context::publish(
                    &recorder,
                    &event.regarding,
                    event.warning,
                    event.reason,
                    event.action,
                    event.note,
                )
                .await;
            }
        });
        (EventSink { tx }, drain)
    }

    pub fn normal(
        &self,
        regarding: &ObjectReference,
        reason: &'static str,
        action: &'static str,
        note: String,
    ) {
        self.push(regarding, false, reason, action, note);
    }

    pub fn warning(
        &self,
        regarding: &ObjectReference,
        reason: &'static str,
        action: &'static str,
        note: String,
    ) {
        self.push(regarding, true, reason, action, note);
    }

    fn push(
        &self,
        regarding: &ObjectReference,
        warning: bool,
        reason: &'static str,
        action: &'static str,
        note: String,
    ) {
        // The drain only stops with the controller, so a failed send has nobody to tell.
        let _ = self.tx.send(Pending {
            regarding: regarding.clone(),
            warning,
            reason,
            action,
            note,
        });
    }
}
