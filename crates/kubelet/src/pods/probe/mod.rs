//! Liveness, readiness and startup probes (exec, httpGet, tcpSocket, gRPC) for one
//! container, with upstream's timing: initialDelaySeconds, periodSeconds, timeoutSeconds,
//! successThreshold, failureThreshold; liveness and readiness wait for startup to succeed.
//!
//! Each declared probe is a loop in one task per container; the loops only tell the pod
//! worker when a result flips (`ProbeUpdate`). Acting on a result (marking the container
//! ready, killing it) is the worker's business, not this module's. The pure threshold and
//! timing rules live in `timing`, resolving and running one check in `check`, and each
//! mechanism in its own module.

mod check;
mod exec;
mod grpc;
mod http;
mod tcp;
mod timing;
mod tls;
mod url;

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use futures::future::join_all;
use k8s_openapi::api::core::v1::{Container, Pod, Probe};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tracing::{debug, info, warn, Instrument};

use self::check::{Check, Outcome};
use self::timing::{first_check_wait, ProbeSettings, ResultTracker};
use crate::runtime::RuntimeService;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

impl ProbeKind {
    /// The word upstream's events start with: `Liveness probe failed: ...`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
            ProbeKind::Startup => "Startup",
        }
    }
}

impl fmt::Display for ProbeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A probe's result changed (after its thresholds): sent to the pod worker.
///
/// What is sent, per probe:
/// - at spawn, the result that holds before any check: readiness `success: false`
///   (not ready), liveness `success: true`; nothing for startup (no verdict yet);
/// - afterwards, every flip of the result;
/// - for liveness and startup, a failure each time `failureThreshold` consecutive
///   failures are seen, even if the last report was already a failure: each one means
///   "kill this container". Probing goes on until the worker aborts the task, so a
///   container that outlives the kill is reported again after another full threshold.
///
/// A container without a startup probe counts as started at once; one with a startup
/// probe is started when its startup update with `success: true` arrives (that probe
/// then stops, and liveness and readiness begin).
#[derive(Clone, Debug)]
pub struct ProbeUpdate {
    pub container_name: String,
    pub container_id: String,
    pub kind: ProbeKind,
    pub success: bool,
    /// Why it failed, for the `Unhealthy` event and the kill message: the text upstream
    /// puts after `Liveness probe failed: ` (`HTTP probe failed with statuscode: 500`, an
    /// exec probe's output). Empty for the initial result and for most successes.
    pub message: String,
}

/// Start every probe the container declares; the task ends when aborted (the worker aborts
/// it when the container stops), when `updates` closes, or when nothing is left to probe
/// (only a startup probe, which succeeded).
///
/// `started_at` is when the container started (the CRI status's `startedAt`):
/// `initialDelaySeconds` counts from it, so a container adopted after an agent restart is
/// not held back a second time.
pub fn spawn_container_probes(
    runtime: Arc<dyn RuntimeService>,
    pod: &Pod,
    container: &Container,
    container_id: String,
    pod_ip: Option<String>,
    started_at: SystemTime,
    updates: mpsc::Sender<ProbeUpdate>,
) -> JoinHandle<()> {
    let declared: Vec<(ProbeKind, &Probe)> = [
        (ProbeKind::Startup, container.startup_probe.as_ref()),
        (ProbeKind::Liveness, container.liveness_probe.as_ref()),
        (ProbeKind::Readiness, container.readiness_probe.as_ref()),
    ]
    .into_iter()
    .filter_map(|(kind, probe)| probe.map(|probe| (kind, probe)))
    .collect();
    // Resolved now, while the pod and container are at hand; a handler that cannot be
    // resolved (a port name the container does not declare) never runs, as upstream,
    // where such a check errors every period and its result is thrown away.
    let probes: Vec<ProbeLoop> = declared
        .into_iter()
        .map(|(kind, probe)| ProbeLoop {
            kind,
            settings: ProbeSettings::new(kind, probe),
            check: Check::resolve(probe, container, pod_ip.as_deref()),
        })
        .collect();

    let (started, _) = watch::channel(container.startup_probe.is_none());
    let context = ProbeContext {
        runtime,
        container_name: container.name.clone(),
        container_id,
        started_at,
        updates,
        started,
    };
    let span = tracing::info_span!(
        "probes",
        pod = %format!(
            "{}/{}",
            pod.metadata.namespace.as_deref().unwrap_or_default(),
            pod.metadata.name.as_deref().unwrap_or_default()
        ),
        container = %container.name,
    );
    k3rs_core::task::spawn(
        async move {
            let loops = join_all(probes.into_iter().map(|probe| probe.run(&context)));
            tokio::select! {
                _ = loops => {}
                _ = context.updates.closed() => {}
            }
        }
        .instrument(span),
    )
}

/// What every probe loop of one container shares.
struct ProbeContext {
    /// For exec checks.
    runtime: Arc<dyn RuntimeService>,
    container_name: String,
    container_id: String,
    started_at: SystemTime,
    updates: mpsc::Sender<ProbeUpdate>,
    /// Whether the container counts as started (its startup probe succeeded, or it has
    /// none); liveness and readiness wait for it.
    started: watch::Sender<bool>,
}

impl ProbeContext {
    /// Tell the worker; `false` if it no longer listens.
    async fn report(&self, kind: ProbeKind, success: bool, message: String) -> bool {
        let update = ProbeUpdate {
            container_name: self.container_name.clone(),
            container_id: self.container_id.clone(),
            kind,
            success,
            message,
        };
        self.updates.send(update).await.is_ok()
    }
}

struct ProbeLoop {
    kind: ProbeKind,
    settings: ProbeSettings,
    check: Result<Check, String>,
}

impl ProbeLoop {
    async fn run(self, context: &ProbeContext) {
        let kind = self.kind;
        let mut tracker = ResultTracker::new(kind, &self.settings);
        if let Some(initial) = tracker.initial() {
            if !context.report(kind, initial, String::new()).await {
                return;
            }
        }
        let check = match self.check {
            Ok(check) => check,
            Err(reason) => {
                warn!(probe = %kind, %reason, "probe cannot run");
                return;
            }
        };
        if kind != ProbeKind::Startup {
            let mut started = context.started.subscribe();
            if started.wait_for(|started| *started).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(first_check_wait(
            self.settings.initial_delay,
            context.started_at,
            SystemTime::now(),
        ))
        .await;

        // The first tick is immediate; a check slower than the period delays the next
        // one instead of bunching them up.
        let mut ticker = tokio::time::interval(self.settings.period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut could_not_run = false;
        loop {
            ticker.tick().await;
            let outcome = check
                .run(
                    context.runtime.as_ref(),
                    &context.container_id,
                    self.settings.timeout,
                )
                .await;
            let (success, message) = match outcome {
                Outcome::Success => (true, String::new()),
                Outcome::Warning(message) => {
                    debug!(probe = %kind, %message, "probe succeeded with a warning");
                    (true, message)
                }
                Outcome::Failure(message) => {
                    debug!(probe = %kind, %message, "probe failed");
                    (false, message)
                }
                Outcome::Error(reason) => {
                    // Not counted either way; said once per streak, not every period.
                    if !could_not_run {
                        warn!(probe = %kind, %reason, "probe could not run");
                    }
                    could_not_run = true;
                    continue;
                }
            };
            could_not_run = false;
            let Some(result) = tracker.observe(success) else {
                continue;
            };
            info!(probe = %kind, success = result, %message, "probe result");
            if !context.report(kind, result, message).await {
                return;
            }
            if kind == ProbeKind::Startup && result {
                // Started for good: a container is not "unstarted" again until it is
                // replaced, and its replacement gets new probes.
                context.started.send_replace(true);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use k8s_openapi::api::core::v1::{HTTPGetAction, TCPSocketAction};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A bare HTTP/1.1 server on 127.0.0.1 that answers 200 to its first `healthy`
    /// requests and 500 afterwards.
    async fn flaky_server(healthy: usize) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let served = Arc::new(AtomicUsize::new(0));
        k3rs_core::task::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let served = served.clone();
                k3rs_core::task::spawn(async move {
                    let mut request = [0u8; 1024];
                    let _ = stream.read(&mut request).await;
                    let status = if served.fetch_add(1, Ordering::SeqCst) < healthy {
                        "200 OK"
                    } else {
                        "500 Internal Server Error"
                    };
                    let response = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        port
    }

    fn http_probe(port: u16, failure_threshold: i32, initial_delay: i32) -> Probe {
        Probe {
            http_get: Some(HTTPGetAction {
                port: IntOrString::Int(port.into()),
                path: Some("/healthz".to_string()),
                ..HTTPGetAction::default()
            }),
            period_seconds: Some(1),
            failure_threshold: Some(failure_threshold),
            initial_delay_seconds: Some(initial_delay),
            ..Probe::default()
        }
    }

    async fn next(updates: &mut mpsc::Receiver<ProbeUpdate>) -> (ProbeKind, bool, String) {
        let update = tokio::time::timeout(Duration::from_secs(10), updates.recv())
            .await
            .expect("a probe update within 10 s")
            .expect("the probe task keeps the channel open");
        assert_eq!(update.container_name, "app");
        assert_eq!(update.container_id, "c1");
        (update.kind, update.success, update.message)
    }

    #[tokio::test]
    async fn probes_report_initial_results_then_flips_after_startup() {
        let app_port = flaky_server(2).await;
        let startup_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let startup_port = startup_listener.local_addr().unwrap().port();
        let container = Container {
            name: "app".to_string(),
            startup_probe: Some(Probe {
                tcp_socket: Some(TCPSocketAction {
                    host: None,
                    port: IntOrString::Int(startup_port.into()),
                }),
                period_seconds: Some(1),
                ..Probe::default()
            }),
            liveness_probe: Some(http_probe(app_port, 2, 0)),
            // Its initial delay is long past for a container that started a minute ago.
            readiness_probe: Some(http_probe(app_port, 1, 30)),
            ..Container::default()
        };
        let runtime = Arc::new(crate::runtime::fake::FakeRuntime::new());
        let (sender, mut updates) = mpsc::channel(16);
        let task = spawn_container_probes(
            runtime,
            &Pod::default(),
            &container,
            "c1".to_string(),
            Some("127.0.0.1".to_string()),
            SystemTime::now() - Duration::from_secs(60),
            sender,
        );

        let mut seen = Vec::new();
        for _ in 0..6 {
            seen.push(next(&mut updates).await);
        }
        let of = |kind: ProbeKind| -> Vec<(bool, String)> {
            seen.iter()
                .filter(|(k, _, _)| *k == kind)
                .map(|(_, success, message)| (*success, message.clone()))
                .collect()
        };
        let failed = "HTTP probe failed with statuscode: 500".to_string();
        assert_eq!(of(ProbeKind::Startup), [(true, String::new())]);
        // The server's first two answers are 200: one check each makes readiness flip to
        // ready, then both probes see 500s.
        assert_eq!(
            of(ProbeKind::Readiness),
            [
                (false, String::new()),
                (true, String::new()),
                (false, failed.clone())
            ]
        );
        assert_eq!(
            of(ProbeKind::Liveness),
            [(true, String::new()), (false, failed)]
        );
        // Startup reports before the probes it gates.
        let startup_at = seen
            .iter()
            .position(|(k, _, _)| *k == ProbeKind::Startup)
            .unwrap();
        let ready_at = seen
            .iter()
            .position(|(k, success, _)| *k == ProbeKind::Readiness && *success)
            .unwrap();
        assert!(startup_at < ready_at);

        task.abort();
        drop(startup_listener);
    }

    #[tokio::test]
    async fn the_task_ends_when_the_worker_stops_listening() {
        let container = Container {
            name: "app".to_string(),
            readiness_probe: Some(http_probe(1, 3, 0)),
            ..Container::default()
        };
        let runtime = Arc::new(crate::runtime::fake::FakeRuntime::new());
        let (sender, updates) = mpsc::channel(16);
        drop(updates);
        let task = spawn_container_probes(
            runtime,
            &Pod::default(),
            &container,
            "c1".to_string(),
            Some("127.0.0.1".to_string()),
            SystemTime::now(),
            sender,
        );
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the task ends")
            .unwrap();
    }
}
