//! What every controller of one leadership term shares: the client, the cluster
//! settings, the shared Pod and Node informers, and event recording.

use std::sync::Arc;
use std::time::Duration;

use k3rs_core::ClusterConfig;
use k3rs_events::{Event, EventType};
use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod};
use kube::runtime::watcher;
use kube::{Api, Client};
use tracing::debug;

use crate::informer::Informer;
use crate::Options;
pub use k3rs_events::Recorder;
use k3rs_events::Series;

pub struct Context {
    pub client: Client,
    pub cluster: ClusterConfig,
    pub options: Options,
    /// The cluster CA bundle (PEM) clients use to trust the API server; published into
    /// every namespace as `kube-root-ca.crt`.
    pub server_ca_pem: String,
    /// Every Pod in the cluster.
    pub pods: Informer<Pod>,
    /// Every Node in the cluster.
    pub nodes: Informer<Node>,
    /// Identifies this process in events (`reportingInstance`).
    instance: String,
    /// Event series shared by every recorder of this term (see [`Recorder`]).
    series: Series,
}

impl Context {
    /// Build the context and the future that drives its informers; the caller runs that
    /// future alongside the controllers.
    pub fn new(
        client: Client,
        cluster: ClusterConfig,
        options: Options,
        server_ca_pem: String,
        instance: String,
    ) -> (Arc<Context>, impl std::future::Future<Output = ()> + Send) {
        let (pods, pods_driver) =
            Informer::new(Api::<Pod>::all(client.clone()), watcher::Config::default());
        let (nodes, nodes_driver) =
            Informer::new(Api::<Node>::all(client.clone()), watcher::Config::default());
        let ctx = Arc::new(Context {
            client,
            cluster,
            options,
            server_ca_pem,
            pods,
            nodes,
            instance,
            series: Series::default(),
        });
        let drivers = async move {
            futures::join!(pods_driver, nodes_driver);
        };
        (ctx, drivers)
    }

    /// Wait until the shared informers have listed everything once.
    pub async fn wait_for_sync(&self) {
        let _ = self.pods.store().wait_until_ready().await;
        let _ = self.nodes.store().wait_until_ready().await;
    }

    /// An event recorder reporting as `controller` (e.g. `deployment-controller`,
    /// `default-scheduler`), the `From` column of `kubectl describe`.
    pub fn recorder(&self, controller: &str) -> Recorder {
        Recorder::new(
            self.client.clone(),
            controller,
            &self.instance,
            self.series.clone(),
        )
    }
}

/// Publish an event about `regarding`; failures are logged, never fatal (events are
/// best effort upstream too).
pub async fn publish(
    recorder: &Recorder,
    regarding: &ObjectReference,
    warning: bool,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = Event {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.to_string(),
        note: Some(note),
        action: action.to_string(),
        secondary: None,
    };
    if let Err(err) = recorder.publish(&event, regarding).await {
        debug!(reason, error = %err, "event not recorded");
    }
}

/// Default pause before a failed reconcile is retried.
pub const RETRY_AFTER_ERROR: Duration = Duration::from_secs(5);
