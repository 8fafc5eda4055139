//! Running the pods bound to this node: a watch of the node's pods feeds one worker task
//! per pod (`worker`), and a relist of the runtime every second (upstream's PLEG) tells
//! workers when their containers changed state. Sandboxes of pods that no longer exist
//! (deleted while the agent was down) are torn down.

pub mod backoff;
pub mod dns;
pub mod env;
mod events;
mod plan;
pub mod probe;
mod runtime_state;
mod spec;
mod status;
mod worker;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k3rs_core::Shutdown;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher;
use tokio::sync::mpsc;
use tracing::{info, warn, Instrument};

use crate::cri::labels;
use crate::runtime::RuntimeService;
use crate::volumes::VolumeContext;
use crate::{Config, Error, Result};
use worker::{Message, Shared, Worker};

/// How often the runtime is relisted.
const RELIST_INTERVAL: Duration = Duration::from_secs(1);

struct Workers {
    shared: Arc<Shared>,
    inboxes: HashMap<String, mpsc::UnboundedSender<Message>>,
}

impl Workers {
    fn apply(&mut self, pod: Pod) {
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        if let Some(inbox) = self.inboxes.get(&uid) {
            if inbox.send(Message::Update(Box::new(pod.clone()))).is_ok() {
                return;
            }
            // The worker finished (pod terminated); a still-listed pod is done.
            self.inboxes.remove(&uid);
            return;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        self.inboxes.insert(uid, tx);
        let span = tracing::info_span!(
            "pod",
            pod = %format!(
                "{}/{}",
                pod.metadata.namespace.as_deref().unwrap_or_default(),
                pod.metadata.name.as_deref().unwrap_or_default()
            )
        );
        let worker = Worker::new(self.shared.clone(), pod);
        // The task keeps the kubelet's span (node) and adds the pod's, so every line the
        // worker logs says which pod it is about.
        k3rs_core::task::spawn(worker.run(rx).instrument(span));
    }

    fn delete(&mut self, pod: &Pod) {
        if let Some(inbox) = pod
            .metadata
            .uid
            .as_ref()
            .and_then(|u| self.inboxes.remove(u))
        {
            let _ = inbox.send(Message::Deleted);
        }
    }

    fn nudge(&mut self, uid: &str) {
        if let Some(inbox) = self.inboxes.get(uid) {
            let _ = inbox.send(Message::Relist);
        }
    }
}

fn host_resolv_conf() -> String {
    std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
}

pub async fn run(
    config: Config,
    runtime: Arc<dyn RuntimeService>,
    shutdown: Shutdown,
) -> Result<()> {
    let paths = config.paths();
    let shared = Arc::new(Shared {
        events: events::Recorder::new(config.client.clone(), config.node_name.clone()),
        volumes: VolumeContext {
            client: config.client.clone(),
            paths: paths.clone(),
            node_name: config.node_name.clone(),
        },
        host_resolv_conf: host_resolv_conf(),
        host_ips: config.node_ips.iter().map(|ip| ip.to_string()).collect(),
        paths,
        client: config.client.clone(),
        node_name: config.node_name.clone(),
        cluster: config.cluster.clone(),
        runtime: runtime.clone(),
    });
    let mut workers = Workers {
        shared,
        inboxes: HashMap::new(),
    };
    let pods: Api<Pod> = Api::all(config.client.clone());
    let watch_config =
        watcher::Config::default().fields(&format!("spec.nodeName={}", config.node_name));
    let mut stream = watcher(pods, watch_config).boxed();
    let mut relist = tokio::time::interval(RELIST_INTERVAL);
    let mut signatures: HashMap<String, String> = HashMap::new();
    let mut listed: Option<HashSet<String>> = None;
    let mut init_uids: HashSet<String> = HashSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            event = stream.next() => match event {
                None => return Err(Error::Other("pod watch ended".into())),
                Some(Err(err)) => {
                    warn!(error = %err, "watching pods");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Some(Ok(watcher::Event::Init)) => init_uids.clear(),
                Some(Ok(watcher::Event::InitApply(pod))) => {
                    init_uids.extend(pod.metadata.uid.clone());
                    workers.apply(pod);
                }
                Some(Ok(watcher::Event::InitDone)) => {
                    // Pods that vanished during a watch gap get their workers told.
                    let gone: Vec<String> = workers.inboxes.keys().filter(|u| !init_uids.contains(*u)).cloned().collect();
                    for uid in gone {
                        if let Some(inbox) = workers.inboxes.remove(&uid) {
                            let _ = inbox.send(Message::Deleted);
                        }
                    }
                    listed = Some(init_uids.clone());
                }
                Some(Ok(watcher::Event::Apply(pod))) => workers.apply(pod),
                Some(Ok(watcher::Event::Delete(pod))) => workers.delete(&pod),
            },
            _ = relist.tick() => {
                if let Err(err) = relist_runtime(runtime.as_ref(), &mut workers, &mut signatures, listed.is_some()).await {
                    warn!(error = %err, "relisting the container runtime");
                }
            }
        }
    }
}

/// One pass of upstream's PLEG: compare every container's state with the last pass and
/// nudge the workers of pods whose containers changed. Once the pod list is known,
/// sandboxes belonging to no known pod are stopped and removed.
async fn relist_runtime(
    runtime: &dyn RuntimeService,
    workers: &mut Workers,
    signatures: &mut HashMap<String, String>,
    pods_known: bool,
) -> Result<()> {
    let containers = runtime
        .list_containers(None)
        .await
        .map_err(|s| Error::cri("ListContainers", s))?;
    let mut current: HashMap<String, String> = HashMap::new();
    for c in &containers {
        let Some(uid) = c.labels.get(labels::POD_UID) else {
            continue;
        };
        let entry = current.entry(uid.clone()).or_default();
        entry.push_str(&format!("{}:{};", c.id, c.state));
    }
    for (uid, signature) in &current {
        if signatures.get(uid) != Some(signature) {
            workers.nudge(uid);
        }
    }
    for uid in signatures.keys() {
        if !current.contains_key(uid) {
            workers.nudge(uid);
        }
    }
    *signatures = current;
    if pods_known {
        let sandboxes = runtime
            .list_pod_sandboxes(None)
            .await
            .map_err(|s| Error::cri("ListPodSandbox", s))?;
        for s in sandboxes {
            let Some(uid) = s.labels.get(labels::POD_UID) else {
                continue;
            };
            if workers.inboxes.contains_key(uid) {
                continue;
            }
            info!(sandbox = %s.id, pod_uid = %uid, "removing the sandbox of a pod that no longer exists");
            let _ = runtime.stop_pod_sandbox(&s.id).await;
            let _ = runtime.remove_pod_sandbox(&s.id).await;
            if let Err(err) = crate::volumes::cleanup(&workers.shared.paths, uid).await {
                warn!(pod_uid = %uid, error = %err, "cleaning up volumes");
            }
        }
    }
    Ok(())
}
