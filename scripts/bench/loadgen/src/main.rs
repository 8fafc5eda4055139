//! `k3rs-loadgen`: the load half of `scripts/bench/api.sh`.
//!
//! Against a running `k3rs server` (reached through an admin kubeconfig) it measures
//! ConfigMap create, get and list throughput with p50/p99 latency at several client
//! counts, then watch fan-out delivery latency to many watchers. Every concurrent client
//! is its own `kube::Client`, hence its own HTTP/1.1 + TLS connection, so the server sees
//! real concurrency. Latency is wall time per request around the `kube` call (request
//! encoding, TLS, server, response decoding).
//!
//! It prints figures and never judges them: the exit status is non-zero only when the
//! server failed (request errors, wrong list sizes, lost watch events), not when it was slow.

// A load generator's tasks need no span: spawning them bare is fine.
#![allow(clippy::disallowed_methods)]

mod crud;
mod process_stats;
mod schedule;
mod stats;
mod watch;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::crud::PhaseResult;
use crate::process_stats::CpuMeter;

#[derive(Parser)]
#[command(about = "Load generator for the k3rs API server benchmark")]
struct Args {
    /// Admin kubeconfig of the server under test.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Server process id, to report its CPU time and RSS per phase.
    #[arg(long)]
    server_pid: Option<String>,
    /// Concurrent client counts to run each CRUD phase with.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    concurrency: Vec<usize>,
    /// Request budget of each create and get phase.
    #[arg(long, default_value_t = 5000)]
    requests: usize,
    /// Request budget of each list phase.
    #[arg(long, default_value_t = 1000)]
    list_requests: usize,
    /// Time budget of each phase, whichever of the two budgets runs out first.
    #[arg(long, default_value_t = 5.0)]
    phase_seconds: f64,
    /// ConfigMaps in the namespace the list phases list.
    #[arg(long, default_value_t = 500)]
    list_objects: usize,
    /// Number of concurrent watchers in the fan-out phase.
    #[arg(long, default_value_t = 100)]
    watchers: usize,
    /// Serial writes (half creates, half updates) the watchers must all see.
    #[arg(long, default_value_t = 200)]
    watch_writes: usize,
}

/// Prints phase figures and tallies failures for the exit status.
struct Report {
    server_pid: Option<String>,
    failures: usize,
}

impl Report {
    fn phase(&mut self, what: &str, clients: usize, result: PhaseResult, cpu: &CpuMeter) {
        let requests = result.requests();
        let rate = result.rate();
        let errors = result.errors;
        let elapsed = result.elapsed.as_secs_f64();
        let first_error = result.first_error.clone();
        let summary = result.latencies.summary();
        println!(
            "{what:<22} {clients:>3} clients: {rate:>8.0} req/s, {summary} \
             ({requests} requests in {elapsed:.2} s, {errors} errors; {}{})",
            cpu.report(requests, "req"),
            self.rss_suffix(),
        );
        if let Some(err) = first_error {
            println!("  first error: {err}");
        }
        self.failures += errors;
    }

    fn rss_suffix(&self) -> String {
        self.server_pid
            .as_deref()
            .and_then(process_stats::rss_mib)
            .map(|mib| format!(", server RSS {mib:.1} MiB"))
            .unwrap_or_default()
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("schedule") {
        return schedule::main().await;
    }
    let args = Args::parse();
    let kubeconfig = Kubeconfig::read_from(&args.kubeconfig)?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    let budget = Duration::from_secs_f64(args.phase_seconds);
    let max_clients = args.concurrency.iter().copied().max().unwrap_or(1);

    // One client per concurrent worker; a first request opens and warms each connection so
    // TLS handshakes stay out of the measured phases.
    let mut clients = Vec::with_capacity(max_clients);
    for _ in 0..max_clients {
        let client = Client::try_from(config.clone())?;
        client.apiserver_version().await?;
        clients.push(client);
    }
    let setup = &clients[0];
    let mut report = Report {
        server_pid: args.server_pid.clone(),
        failures: 0,
    };

    for &concurrency in &args.concurrency {
        crud::ensure_namespace(setup, &format!("bench-c{concurrency}")).await?;
    }
    crud::ensure_namespace(setup, "bench-list").await?;
    crud::ensure_namespace(setup, "bench-watch").await?;

    let fill = crud::creates(
        &clients[..max_clients.min(8)],
        "bench-list",
        "cm-",
        args.list_objects,
        Duration::from_secs(120),
    )
    .await;
    if fill.errors > 0 || fill.latencies.len() < args.list_objects {
        anyhow::bail!(
            "could not fill bench-list with {} ConfigMaps: {} created, first error: {:?}",
            args.list_objects,
            fill.latencies.len(),
            fill.first_error
        );
    }

    println!(
        "# ConfigMaps with a {}-byte payload; each phase stops after {} requests ({} for lists) or {:.0} s",
        crud::PAYLOAD_BYTES,
        args.requests, args.list_requests, args.phase_seconds
    );
    let mut created = Vec::new();
    for &concurrency in &args.concurrency {
        let cpu = CpuMeter::start(args.server_pid.as_deref());
        let result = crud::creates(
            &clients[..concurrency],
            &format!("bench-c{concurrency}"),
            "cm-",
            args.requests,
            budget,
        )
        .await;
        created.push(result.requests());
        report.phase("configmap create", concurrency, result, &cpu);
    }
    for (&concurrency, &existing) in args.concurrency.iter().zip(&created) {
        let cpu = CpuMeter::start(args.server_pid.as_deref());
        let result = crud::gets(
            &clients[..concurrency],
            &format!("bench-c{concurrency}"),
            "cm-",
            existing,
            args.requests,
            budget,
        )
        .await;
        report.phase("configmap get", concurrency, result, &cpu);
    }
    let list_label = format!("configmap list ({})", args.list_objects);
    for &concurrency in &args.concurrency {
        let cpu = CpuMeter::start(args.server_pid.as_deref());
        let result = crud::lists(
            &clients[..concurrency],
            "bench-list",
            args.list_objects,
            args.list_requests,
            budget,
        )
        .await;
        report.phase(&list_label, concurrency, result, &cpu);
    }
    drop(clients);

    let mut watch_clients = Vec::with_capacity(args.watchers);
    for _ in 0..args.watchers {
        watch_clients.push(Client::try_from(config.clone())?);
    }
    let writer = Client::try_from(config.clone())?;
    writer.apiserver_version().await?;
    let cpu = CpuMeter::start(args.server_pid.as_deref());
    let result = watch::fan_out(&writer, watch_clients, "bench-watch", args.watch_writes).await?;
    let expected = result.writes * result.watchers;
    println!(
        "watch fan-out: {} watchers, {} serial writes ({} creates + {} updates) in {:.2} s; write {}",
        result.watchers,
        result.writes,
        result.writes.div_ceil(2),
        result.writes / 2,
        result.writes_elapsed.as_secs_f64(),
        result.write_latencies.summary(),
    );
    println!(
        "watch delivery latency from write response: {} ({} deliveries; {} arrived before the writer read the response and count as 0)",
        result.delivery.summary(),
        expected - result.missing,
        result.before_response,
    );
    println!(
        "watch delivery latency from write sent:     {} (upper bound, includes the write itself)",
        result.delivery_from_send.summary(),
    );
    println!(
        "watch completeness: {}/{} watchers got all {} events, {} of {expected} deliveries missing ({})",
        result.complete_watchers,
        result.watchers,
        result.writes,
        result.missing,
        cpu.report(expected, "delivery"),
    );
    if let Some(err) = &result.first_error {
        println!("  first error: {err}");
    }
    report.failures += result.missing + usize::from(result.first_error.is_some());

    if report.failures > 0 {
        eprintln!("k3rs-loadgen: server failures: {}", report.failures);
        std::process::exit(1);
    }
    Ok(())
}
