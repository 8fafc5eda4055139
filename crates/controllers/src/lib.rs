//! The control plane's loops: the scheduler and the controllers a k3s cluster runs
//! (workloads, service endpoints, node IPAM and lifecycle, garbage collection, namespaces,
//! service accounts).
//!
//! Every loop is a client of the API over HTTPS through `kube::Client`, exactly as it
//! would be from another machine; nothing here touches the datastore. The controllers and
//! the scheduler each run under their own Lease (`kube-controller-manager`,
//! `kube-scheduler` in `kube-system`), so several servers sharing one datastore run each
//! loop once. A leadership term builds a fresh [`Context`] (shared Pod and Node
//! informers) and ends by dropping every task of the term.

pub mod context;
pub mod controller_revision;
pub mod error;
pub mod informer;
pub mod leader;
pub mod matching;
pub mod pod_control;

pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod endpoints;
pub mod endpointslice;
pub mod garbage_collector;
pub mod job;
pub mod namespace;
pub mod node_ipam;
pub mod node_lifecycle;
pub mod node_password;
pub mod pod_gc;
pub mod replicaset;
pub mod scheduler;
pub mod serviceaccount;
pub mod statefulset;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use k3rs_core::{ClusterConfig, Shutdown};
use kube::Client;
use tokio::task::JoinSet;
use tracing::{info_span, Instrument};

pub use context::Context;
pub use error::{Error, Result};

/// Tunables with upstream's defaults (kube-controller-manager flags in parentheses).
#[derive(Clone, Debug)]
pub struct Options {
    /// A node whose Lease is older than this becomes `Ready=Unknown`
    /// (`--node-monitor-grace-period`, 40 s).
    pub node_monitor_grace_period: Duration,
    /// How often node health is evaluated (`--node-monitor-period`, 5 s).
    pub node_monitor_period: Duration,
    /// Whether to take part in leader election (`--leader-elect`, true). Without it the
    /// loops start at once; only for a single server.
    pub leader_elect: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            node_monitor_grace_period: Duration::from_secs(40),
            node_monitor_period: Duration::from_secs(5),
            leader_elect: true,
        }
    }
}

/// What `k3rs server` hands to the control plane.
pub struct Config {
    /// A client authenticated as the controller manager.
    pub controller_client: Client,
    /// A client authenticated as the scheduler.
    pub scheduler_client: Client,
    pub cluster: ClusterConfig,
    pub options: Options,
    /// The cluster CA bundle (PEM).
    pub server_ca_pem: String,
    /// This server's identity in leases and events (its node name).
    pub identity: String,
    /// `--disable-controller-manager` / `--disable-scheduler` turn these off.
    pub run_controllers: bool,
    pub run_scheduler: bool,
}

type Loop = fn(Arc<Context>) -> Pin<Box<dyn Future<Output = Result<()>> + Send>>;

/// The controller manager's loops, by the name upstream gives each controller.
const CONTROLLERS: &[(&str, Loop)] = &[
    ("deployment", |c| Box::pin(deployment::run(c))),
    ("replicaset", |c| Box::pin(replicaset::run(c))),
    ("daemonset", |c| Box::pin(daemonset::run(c))),
    ("statefulset", |c| Box::pin(statefulset::run(c))),
    ("job", |c| Box::pin(job::run(c))),
    ("cronjob", |c| Box::pin(cronjob::run(c))),
    ("endpoints", |c| Box::pin(endpoints::run(c))),
    ("endpointslice", |c| Box::pin(endpointslice::run(c))),
    ("node-ipam", |c| Box::pin(node_ipam::run(c))),
    ("node-lifecycle", |c| Box::pin(node_lifecycle::run(c))),
    // k3s's own controller, not upstream's: it runs with the controller manager here.
    ("node-password", |c| Box::pin(node_password::run(c))),
    ("garbage-collector", |c| Box::pin(garbage_collector::run(c))),
    ("namespace", |c| Box::pin(namespace::run(c))),
    ("pod-garbage-collector", |c| Box::pin(pod_gc::run(c))),
    ("serviceaccount", |c| Box::pin(serviceaccount::run(c))),
];

const SCHEDULER: &[(&str, Loop)] = &[("scheduler", |c| Box::pin(scheduler::run(c)))];

/// Run the controller manager and the scheduler until shutdown.
pub async fn run(cfg: Config, shutdown: Shutdown) -> Result<()> {
    let instance = format!("{}_{}", cfg.identity, uuid::Uuid::new_v4());
    let none: &'static [(&'static str, Loop)] = &[];
    let manager = elected(
        &cfg,
        cfg.controller_client.clone(),
        "kube-controller-manager",
        &instance,
        if cfg.run_controllers {
            CONTROLLERS
        } else {
            none
        },
        &shutdown,
    );
    let scheduler = elected(
        &cfg,
        cfg.scheduler_client.clone(),
        "kube-scheduler",
        &instance,
        if cfg.run_scheduler { SCHEDULER } else { none },
        &shutdown,
    );
    futures::join!(manager, scheduler);
    Ok(())
}

async fn elected(
    cfg: &Config,
    client: Client,
    lease: &str,
    instance: &str,
    loops: &'static [(&'static str, Loop)],
    shutdown: &Shutdown,
) {
    if loops.is_empty() {
        return;
    }
    let term = || term(cfg, client.clone(), instance, loops);
    if cfg.options.leader_elect {
        leader::Elector::new(client.clone(), lease, instance)
            .run(shutdown, term)
            .await;
    } else {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            result = term() => if let Err(err) = result {
                tracing::error!(error = %err, lease, "control loops stopped");
            },
        }
    }
}

/// One leadership term: fresh informers, every loop spawned, and the term ends (dropping
/// all of them) as soon as one loop stops.
async fn term(
    cfg: &Config,
    client: Client,
    instance: &str,
    loops: &'static [(&'static str, Loop)],
) -> Result<()> {
    let (ctx, informers) = Context::new(
        client,
        cfg.cluster.clone(),
        cfg.options.clone(),
        cfg.server_ca_pem.clone(),
        instance.to_string(),
    );
    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        informers.await;
        ("informers", Ok(()))
    });
    ctx.wait_for_sync().await;
    for (name, start) in loops {
        let fut = start(ctx.clone()).instrument(info_span!("controller", name = *name));
        tasks.spawn(async move { (*name, fut.await) });
    }
    // JoinSet aborts every remaining task when dropped, which ends the term cleanly.
    match tasks.join_next().await {
        Some(Ok((name, Ok(())))) => Err(Error::Stopped {
            controller: name.into(),
            reason: "returned".into(),
        }),
        Some(Ok((name, Err(err)))) => Err(Error::Stopped {
            controller: name.into(),
            reason: err.to_string(),
        }),
        Some(Err(join)) => Err(Error::Stopped {
            controller: "task".into(),
            reason: join.to_string(),
        }),
        None => Ok(()),
    }
}
