//! `k3rs-loadgen schedule`: the load half of `scripts/bench/scheduler.sh`.
//!
//! Registers fake Ready nodes (Node objects with status and Leases, no kubelet), then
//! measures how fast the server's scheduler binds (1) bare pods created as fast as the
//! clients can, and (2) the pods of one large Deployment (which also needs the
//! deployment and replicaset controllers). A pod counts as bound when a watch shows its
//! `spec.nodeName`. The server's CPU time and memory are sampled throughout.
//!
//! Figures are printed, never judged; the exit status is non-zero only when requests
//! fail or a phase does not complete in its time budget.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::serde_json::{self, json, Value};
use kube::api::{Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube::{Api, Client, Config};

use crate::crud::ensure_namespace;
use crate::process_stats::{cpu_time, rss_mib};

#[derive(Parser)]
#[command(
    name = "k3rs-loadgen schedule",
    about = "Scheduler throughput benchmark"
)]
struct Args {
    /// Admin kubeconfig of the server under test.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Server process id, to sample its CPU time and memory.
    #[arg(long)]
    server_pid: Option<String>,
    /// Fake nodes to register.
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Bare pods created in phase 1.
    #[arg(long, default_value_t = 3000)]
    pods: usize,
    /// Replicas of the Deployment in phase 2 (0 skips the phase).
    #[arg(long, default_value_t = 1000)]
    replicas: usize,
    /// Concurrent creating clients in phase 1.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Time budget of each phase.
    #[arg(long, default_value_t = 120.0)]
    timeout_seconds: f64,
}

const LABEL: &str = "k3rs-bench";

pub async fn main() -> anyhow::Result<()> {
    // `k3rs-loadgen schedule ARGS...`: parse what follows the subcommand.
    let args = Args::parse_from(std::env::args().skip(1));
    let kubeconfig = Kubeconfig::read_from(&args.kubeconfig)?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    let mut clients = Vec::with_capacity(args.concurrency.max(1));
    for _ in 0..args.concurrency.max(1) {
        let client = Client::try_from(config.clone())?;
        client.apiserver_version().await?;
        clients.push(client);
    }
    let admin = clients[0].clone();
    let sampler = Sampler::start(args.server_pid.clone());
    let budget = Duration::from_secs_f64(args.timeout_seconds);
    let mut failures = 0;

    let started = Instant::now();
    let node_names: Vec<String> = (0..args.nodes)
        .map(|i| format!("bench-node-{i:03}"))
        .collect();
    futures::stream::iter(node_names.iter().enumerate())
        .map(|(i, name)| register_node(clients[i % clients.len()].clone(), name.clone()))
        .buffer_unordered(clients.len())
        .try_for_each(|()| futures::future::ready(Ok(())))
        .await?;
    println!(
        "registered {} Ready nodes (32 CPU, 128 GiB, 110 pods each) in {:.2} s",
        args.nodes,
        started.elapsed().as_secs_f64()
    );
    let leases = tokio::spawn(keep_leases(admin.clone(), node_names));

    ensure_namespace(&admin, "bench-sched").await?;
    wait_for_default_service_account(&admin, "bench-sched").await;
    sampler.mark();
    let phase = bare_pods(&clients, args.pods, budget).await?;
    phase.print("bare pods", args.pods, &sampler);
    failures += phase.errors + usize::from(phase.bound < args.pods);

    if args.replicas > 0 {
        ensure_namespace(&admin, "bench-deploy").await?;
        wait_for_default_service_account(&admin, "bench-deploy").await;
        sampler.mark();
        let phase = deployment(&admin, args.replicas, budget).await?;
        phase.print("deployment", args.replicas, &sampler);
        if phase.bound < args.replicas {
            println!(
                "  deployment phase incomplete: {} of {} pods created, {} bound within {:.0} s",
                phase.created,
                args.replicas,
                phase.bound,
                budget.as_secs_f64()
            );
            failures += 1;
        }
    }

    tokio::time::sleep(Duration::from_secs(2)).await;
    sampler.summary();
    leases.abort();
    if failures > 0 {
        eprintln!("k3rs-loadgen schedule: {failures} failures");
        std::process::exit(1);
    }
    Ok(())
}

/// What a phase measured.
struct Phase {
    created: usize,
    errors: usize,
    bound: usize,
    /// How the pods were created, with timing when the benchmark created them.
    creates: String,
    /// First create sent to the last pod seen bound.
    bind_time: Duration,
    first_error: Option<String>,
}

impl Phase {
    fn print(&self, what: &str, wanted: usize, sampler: &Sampler) {
        let secs = self.bind_time.as_secs_f64().max(1e-9);
        println!(
            "{what}: {wanted} pods, {} created ({}), {} bound after {:.2} s \
             => {:.0} pods bound/s; {}",
            self.created,
            self.creates,
            self.bound,
            secs,
            self.bound as f64 / secs,
            sampler.since_mark(),
        );
        if let Some(err) = &self.first_error {
            println!("  {} create errors, first: {err}", self.errors);
        }
    }
}

/// Phase 1: `count` pods created by all clients at once; timed until all are bound.
async fn bare_pods(clients: &[Client], count: usize, budget: Duration) -> anyhow::Result<Phase> {
    let pods: Api<Pod> = Api::namespaced(clients[0].clone(), "bench-sched");
    let counter = BoundCounter::start(pods.clone(), &format!("{LABEL}=bare")).await?;
    let errors = AtomicUsize::new(0);
    let first_error = Mutex::new(None);
    let started = Instant::now();
    futures::stream::iter(0..count)
        .map(|i| {
            let api: Api<Pod> = Api::namespaced(clients[i % clients.len()].clone(), "bench-sched");
            let (errors, first_error) = (&errors, &first_error);
            async move {
                let pod = bare_pod(i);
                if let Err(err) = api.create(&PostParams::default(), &pod).await {
                    errors.fetch_add(1, Ordering::Relaxed);
                    first_error
                        .lock()
                        .expect("error slot")
                        .get_or_insert(err.to_string());
                }
            }
        })
        .buffer_unordered(clients.len())
        .collect::<()>()
        .await;
    let create_time = started.elapsed().as_secs_f64();
    let errors = errors.into_inner();
    let bound = counter
        .wait_for(count - errors.min(count), started, budget)
        .await;
    Ok(Phase {
        created: count - errors,
        errors,
        bound: bound.0,
        creates: format!(
            "by {} clients in {create_time:.2} s, {:.0}/s",
            clients.len(),
            (count - errors) as f64 / create_time.max(1e-9)
        ),
        bind_time: bound.1,
        first_error: first_error.into_inner().expect("error slot"),
    })
}

/// Phase 2: one Deployment of `replicas`; timed from its creation until all its pods
/// are bound.
async fn deployment(client: &Client, replicas: usize, budget: Duration) -> anyhow::Result<Phase> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "bench-deploy");
    let counter = BoundCounter::start(pods, &format!("{LABEL}=deploy")).await?;
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "bench"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {LABEL: "deploy"}},
            "template": {
                "metadata": {"labels": {LABEL: "deploy"}},
                "spec": pod_spec(),
            },
        },
    }))?;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "bench-deploy");
    let started = Instant::now();
    api.create(&PostParams::default(), &deployment).await?;
    let (bound, bind_time) = counter.wait_for(replicas, started, budget).await;
    Ok(Phase {
        created: counter.seen(),
        errors: 0,
        bound,
        creates: "by the deployment and replicaset controllers".into(),
        bind_time,
        first_error: None,
    })
}

fn pod_spec() -> Value {
    json!({
        "automountServiceAccountToken": false,
        "containers": [{
            "name": "app",
            "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
        }],
    })
}

fn bare_pod(i: usize) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": format!("bench-{i:05}"), "labels": {LABEL: "bare"}},
        "spec": pod_spec(),
    }))
    .expect("pod literal")
}

/// Watches pods with a label and counts those seen with a node.
struct BoundCounter {
    seen: Arc<Mutex<(HashSet<String>, HashSet<String>)>>,
    task: tokio::task::JoinHandle<()>,
}

impl BoundCounter {
    /// Start watching; returns once the watch has listed, so no create is missed.
    async fn start(api: Api<Pod>, selector: &str) -> anyhow::Result<BoundCounter> {
        let seen: Arc<Mutex<(HashSet<String>, HashSet<String>)>> = Arc::default();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let state = seen.clone();
        let config = watcher::Config::default().labels(selector);
        let task = tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            let mut events = std::pin::pin!(watcher::watcher(api, config));
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::Apply(pod)) | Ok(watcher::Event::InitApply(pod)) => {
                        let name = pod.metadata.name.clone().unwrap_or_default();
                        let on_node = pod
                            .spec
                            .as_ref()
                            .and_then(|s| s.node_name.as_ref())
                            .is_some_and(|n| !n.is_empty());
                        let mut state = state.lock().expect("counter");
                        if on_node {
                            state.1.insert(name.clone());
                        }
                        state.0.insert(name);
                    }
                    Ok(watcher::Event::InitDone) => {
                        if let Some(tx) = ready.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(_) => {}
                    Err(err) => eprintln!("pod watch error: {err}"),
                }
            }
        });
        ready_rx.await?;
        Ok(BoundCounter { seen, task })
    }

    fn seen(&self) -> usize {
        self.seen.lock().expect("counter").0.len()
    }

    fn bound(&self) -> usize {
        self.seen.lock().expect("counter").1.len()
    }

    /// Wait until `count` pods are bound or `budget` has passed since `started`;
    /// returns how many were bound and when the last one was seen.
    async fn wait_for(
        &self,
        count: usize,
        started: Instant,
        budget: Duration,
    ) -> (usize, Duration) {
        let mut last = (0, started.elapsed());
        while started.elapsed() < budget {
            let bound = self.bound();
            if bound != last.0 {
                last = (bound, started.elapsed());
            }
            if bound >= count {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        last
    }
}

impl Drop for BoundCounter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A Node as a kubelet registers it, then its Ready status and its Lease.
async fn register_node(client: Client, name: String) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}},
    }))?;
    nodes.create(&PostParams::default(), &node).await?;
    let now = k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let resources = json!({"cpu": "32", "memory": "128Gi", "pods": "110"});
    let status = json!({"status": {
        "capacity": resources, "allocatable": resources,
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
            "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now}],
        "addresses": [{"type": "InternalIP", "address": "192.0.2.1"}, {"type": "Hostname", "address": name}],
    }});
    // A status write may race with a controller's first write to the new node.
    let mut attempt = 0;
    loop {
        match nodes
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
            .await
        {
            Ok(_) => break,
            Err(kube::Error::Api(s)) if s.code == 409 && attempt < 20 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => return Err(err.into()),
        }
    }
    renew_lease(&client, &name).await
}

async fn renew_lease(client: &Client, name: &str) -> anyhow::Result<()> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let now = k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": name},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now},
    });
    leases
        .patch(
            name,
            &PatchParams::apply("k3rs-loadgen").force(),
            &Patch::Apply(&lease),
        )
        .await?;
    Ok(())
}

/// Renew every node's Lease every 10 s, as kubelets do, so no node goes NotReady.
async fn keep_leases(client: Client, names: Vec<String>) {
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        for name in &names {
            if let Err(err) = renew_lease(&client, name).await {
                eprintln!("lease renewal for {name} failed: {err}");
            }
        }
    }
}

/// Pods in a new namespace wait for its `default` ServiceAccount (created by a
/// controller); give it a few seconds.
async fn wait_for_default_service_account(client: &Client, namespace: &str) {
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(client.clone(), namespace);
    for _ in 0..50 {
        if let Ok(Some(_)) = accounts.get_opt("default").await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Samples the server's RSS every 100 ms in the background and reports CPU time and
/// memory per phase.
struct Sampler {
    pid: Option<String>,
    peak_rss: Arc<Mutex<f64>>,
    mark: Mutex<(Instant, Option<Duration>)>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Sampler {
    fn start(pid: Option<String>) -> Sampler {
        let peak_rss: Arc<Mutex<f64>> = Arc::default();
        let task = pid.clone().map(|pid| {
            let peak = peak_rss.clone();
            tokio::spawn(async move {
                loop {
                    if let Some(mib) = rss_mib(&pid) {
                        let mut peak = peak.lock().expect("peak");
                        *peak = peak.max(mib);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        });
        Sampler {
            mark: Mutex::new((Instant::now(), pid.as_deref().and_then(cpu_time))),
            pid,
            peak_rss,
            task,
        }
    }

    /// Start of a phase: CPU time and peak RSS are reported from here.
    fn mark(&self) {
        *self.mark.lock().expect("mark") = (Instant::now(), self.pid.as_deref().and_then(cpu_time));
        if let Some(pid) = &self.pid {
            *self.peak_rss.lock().expect("peak") = rss_mib(pid).unwrap_or(0.0);
        }
    }

    /// `server CPU x s (y% of one core), RSS now / peak in phase`.
    fn since_mark(&self) -> String {
        let Some(pid) = &self.pid else {
            return "server not sampled".into();
        };
        let (at, cpu_start) = *self.mark.lock().expect("mark");
        let wall = at.elapsed().as_secs_f64().max(1e-9);
        let cpu = match (cpu_start, cpu_time(pid)) {
            (Some(start), Some(now)) => now.saturating_sub(start).as_secs_f64(),
            _ => 0.0,
        };
        format!(
            "server CPU {cpu:.2} s ({:.0}% of one core), RSS {:.1} MiB now, {:.1} MiB peak in phase",
            cpu / wall * 100.0,
            rss_mib(pid).unwrap_or(0.0),
            *self.peak_rss.lock().expect("peak"),
        )
    }

    fn summary(&self) {
        let Some(pid) = &self.pid else { return };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| -> f64 {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
                .map_or(0.0, |kib| kib / 1024.0)
        };
        println!(
            "server after the load: RSS {:.1} MiB (VmRSS), peak {:.1} MiB (VmHWM), total CPU time {:.2} s",
            field("VmRSS:"),
            field("VmHWM:"),
            cpu_time(pid).map_or(0.0, |d| d.as_secs_f64()),
        );
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
