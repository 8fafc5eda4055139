//! The worker's observe → plan → apply loop against the fake runtime and a fake API:
//! each test drives `sync` and checks the runtime calls it made, in order.

use std::sync::Mutex;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::json;

use super::*;
use crate::runtime::fake::{FakeRuntime, Recorded};

/// The API as far as the worker uses it: status patches are answered with the status
/// they set, events and deletions are accepted, Service lists are empty.
#[derive(Clone, Default)]
struct FakeApi {
    requests: Arc<Mutex<Vec<(http::Method, String)>>>,
}

impl FakeApi {
    fn client(&self) -> kube::Client {
        let requests = self.requests.clone();
        let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
            let requests = requests.clone();
            async move {
                let (parts, body) = request.into_parts();
                let body = body.collect().await?.to_bytes();
                let path = parts.uri.path().to_string();
                requests
                    .lock()
                    .unwrap()
                    .push((parts.method.clone(), path.clone()));
                let (code, answer) = answer(&parts.method, &path, &body);
                let response = http::Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(answer.to_string())))
                    .unwrap();
                Ok::<_, kube::Error>(response)
            }
        });
        kube::Client::new(service, "default")
    }

    fn saw(&self, method: http::Method, path: &str) -> bool {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .any(|(m, p)| *m == method && p == path)
    }
}

fn answer(method: &http::Method, path: &str, body: &[u8]) -> (u16, Value) {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("PATCH", ["api", "v1", "namespaces", ns, "pods", name, "status"]) => (
            200,
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": ns, "uid": "uid-1"},
                "status": body["status"],
            }),
        ),
        ("DELETE", ["api", "v1", "namespaces", ns, "pods", name]) => (
            200,
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": ns, "uid": "uid-1"},
            }),
        ),
        ("GET", ["api", "v1", "namespaces", _, "services"]) => (
            200,
            json!({"apiVersion": "v1", "kind": "ServiceList", "metadata": {}, "items": []}),
        ),
        ("POST", ["api", "v1", "namespaces", _, "events"]) => (201, body),
        _ => (
            404,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                   "reason": "NotFound", "code": 404, "message": "not found"}),
        ),
    }
}

struct Harness {
    worker: Worker,
    runtime: Arc<FakeRuntime>,
    api: FakeApi,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn new(pod: Value) -> Harness {
        let runtime = Arc::new(FakeRuntime::new());
        let api = FakeApi::default();
        let client = api.client();
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path(), "node-a");
        let shared = Arc::new(Shared {
            client: client.clone(),
            node_name: "node-a".into(),
            cluster: ClusterConfig::default(),
            runtime: runtime.clone(),
            events: Recorder::new(client.clone(), "node-a".into()),
            volumes: VolumeContext {
                client,
                paths: paths.clone(),
                node_name: "node-a".into(),
            },
            paths,
            host_resolv_conf: "nameserver 192.0.2.53\n".into(),
            host_ips: vec!["192.0.2.10".into()],
        });
        let pod: Pod = serde_json::from_value(pod).unwrap();
        Harness {
            worker: Worker::new(shared, pod),
            runtime,
            api,
            _dir: dir,
        }
    }

    /// One sync; the runtime calls that changed something.
    async fn sync(&mut self) -> Vec<Recorded> {
        self.worker.sync().await.expect("sync");
        self.runtime.take_changes()
    }

    fn id(&self, name: &str) -> String {
        self.runtime.container_id(name).expect("container")
    }

    fn sandbox(&self) -> String {
        let ready = self.runtime.ready_sandboxes();
        assert_eq!(ready.len(), 1, "{ready:?}");
        ready[0].clone()
    }

    fn status(&self) -> &Value {
        self.worker
            .last_status
            .as_ref()
            .expect("a status was written")
    }
}

fn pod(policy: &str, inits: Value, containers: Value) -> Value {
    json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "uid-1"},
        "spec": {
            "restartPolicy": policy,
            "initContainers": inits,
            "containers": containers,
        },
        "status": {"phase": "Pending"},
    })
}

fn create(name: &str, attempt: u32) -> Recorded {
    Recorded::CreateContainer {
        name: name.into(),
        attempt,
    }
}

#[tokio::test]
async fn a_new_pod_gets_a_sandbox_then_init_containers_in_order_then_its_containers() {
    let mut h = Harness::new(pod(
        "Always",
        json!([{"name": "setup", "image": "busybox"}]),
        json!([{"name": "app", "image": "busybox"}]),
    ));
    let changes = h.sync().await;
    let setup = h.id("setup");
    assert_eq!(
        changes,
        [
            Recorded::RunPodSandbox { attempt: 0 },
            create("setup", 0),
            Recorded::StartContainer(setup),
        ]
    );
    // The init container runs: nothing else starts.
    assert_eq!(h.sync().await, []);
    assert_eq!(h.status()["phase"], "Pending");

    h.runtime.exit("setup", 0);
    let changes = h.sync().await;
    assert_eq!(
        changes,
        [create("app", 0), Recorded::StartContainer(h.id("app"))]
    );
    assert_eq!(h.status()["phase"], "Running");
    assert_eq!(h.sync().await, []);
}

#[tokio::test]
async fn a_crashed_container_restarts_at_once_then_backs_off() {
    let mut h = Harness::new(pod(
        "Always",
        json!([]),
        json!([{"name": "app", "image": "busybox"}]),
    ));
    h.sync().await;
    let first = h.id("app");

    h.runtime.exit("app", 1);
    let changes = h.sync().await;
    let second = h.id("app");
    assert_ne!(first, second);
    assert_eq!(
        changes,
        [create("app", 1), Recorded::StartContainer(second.clone())]
    );
    // The restart count travels with the container, for adoption after a restart.
    assert_eq!(h.status()["containerStatuses"][0]["restartCount"], 1);

    h.runtime.exit("app", 1);
    assert_eq!(h.sync().await, [], "the second exit waits 10 s");
    let waiting = &h.status()["containerStatuses"][0]["state"]["waiting"];
    assert_eq!(waiting["reason"], "CrashLoopBackOff");
    assert!(
        waiting["message"]
            .as_str()
            .unwrap()
            .starts_with("back-off 10s restarting failed container=app pod=web_default(uid-1)"),
        "{waiting}"
    );
    let wake = h
        .worker
        .wake_at
        .expect("a wake-up for the end of the back-off");
    let left = wake.saturating_duration_since(Instant::now());
    assert!(left > Duration::from_secs(9) && left <= Duration::from_secs(11));
    // Looking again does not restart it early.
    assert_eq!(h.sync().await, []);
    // The instance a restart replaces stays, for `--previous` logs and lastState.
    assert_eq!(
        h.runtime.state_of(&first),
        Some(api::ContainerState::ContainerExited)
    );
}

#[tokio::test]
async fn a_failed_liveness_probe_kills_the_container_and_the_next_sync_restarts_it() {
    let mut h = Harness::new(json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "uid-1"},
        "spec": {
            "terminationGracePeriodSeconds": 7,
            "containers": [{"name": "app", "image": "busybox"}],
        },
        "status": {"phase": "Pending"},
    }));
    h.sync().await;
    let id = h.id("app");
    h.worker
        .on_probe(ProbeUpdate {
            container_name: "app".into(),
            container_id: id.clone(),
            kind: ProbeKind::Liveness,
            success: false,
            message: "HTTP probe failed with statuscode: 500".into(),
        })
        .await;
    assert_eq!(
        h.sync().await,
        [Recorded::StopContainer {
            id: id.clone(),
            timeout: 7
        }]
    );
    // The verdict is used up: the new instance is not killed for it.
    let changes = h.sync().await;
    let new = h.id("app");
    assert_eq!(changes, [create("app", 1), Recorded::StartContainer(new)]);
    assert_eq!(h.sync().await, []);
}

#[tokio::test]
async fn a_new_image_replaces_the_running_container() {
    let mut h = Harness::new(pod(
        "Never",
        json!([]),
        json!([{"name": "app", "image": "busybox:1"}]),
    ));
    h.sync().await;
    let old = h.id("app");
    let mut updated = h.worker.pod.clone();
    updated.spec.as_mut().unwrap().containers[0].image = Some("busybox:2".into());
    h.worker.receive(Message::Update(Box::new(updated)));
    let changes = h.sync().await;
    let new = h.id("app");
    assert_eq!(
        changes,
        [
            Recorded::StopContainer {
                id: old,
                timeout: 30
            },
            create("app", 1),
            Recorded::StartContainer(new),
        ]
    );
    assert_eq!(h.status()["phase"], "Running");
    assert_eq!(h.status()["containerStatuses"][0]["restartCount"], 1);
    assert_eq!(h.sync().await, []);
}

#[tokio::test]
async fn deletion_runs_pre_stop_hooks_stops_everything_and_removes_the_pod() {
    let mut h = Harness::new(pod(
        "Always",
        json!([]),
        json!([{
            "name": "app", "image": "busybox",
            "lifecycle": {"preStop": {"exec": {"command": ["/bin/drain"]}}},
        }]),
    ));
    h.sync().await;
    let (id, sandbox) = (h.id("app"), h.sandbox());

    let mut deleted = h.worker.pod.clone();
    deleted.metadata.deletion_timestamp =
        Some(serde_json::from_value(json!("2026-01-01T00:00:00Z")).unwrap());
    deleted.metadata.deletion_grace_period_seconds = Some(5);
    h.worker.receive(Message::Update(Box::new(deleted)));
    assert!(matches!(h.worker.sync().await, Ok(Flow::Finished)));
    let changes = h.runtime.take_changes();
    assert_eq!(
        changes[0],
        Recorded::ExecSync {
            id: id.clone(),
            command: vec!["/bin/drain".into()],
        }
    );
    match &changes[1] {
        // What is left of the 5 s after the hook, rounded up.
        Recorded::StopContainer {
            id: stopped,
            timeout,
        } => {
            assert_eq!(stopped, &id);
            assert!((4..=5).contains(timeout), "{timeout}");
        }
        other => panic!("expected StopContainer, got {other:?}"),
    }
    assert_eq!(
        changes[2..],
        [
            Recorded::StopPodSandbox(sandbox.clone()),
            Recorded::RemovePodSandbox(sandbox),
        ]
    );
    assert!(h
        .api
        .saw(http::Method::DELETE, "/api/v1/namespaces/default/pods/web"));
}

#[tokio::test]
async fn a_dead_sandbox_is_replaced_and_its_containers_start_again() {
    let mut h = Harness::new(pod(
        "Always",
        json!([]),
        json!([{"name": "app", "image": "busybox"}, {"name": "sidecar", "image": "busybox"}]),
    ));
    h.sync().await;
    let old = h.sandbox();
    h.runtime.kill_sandbox(&old);

    let mut changes = h.sync().await;
    assert_eq!(
        changes[..2],
        [
            Recorded::StopPodSandbox(old.clone()),
            Recorded::RunPodSandbox { attempt: 1 },
        ]
    );
    let new = h.sandbox();
    assert_ne!(new, old);
    // Both containers start again in the new sandbox (their order follows the spec).
    let started: Vec<Recorded> = changes.drain(2..).collect();
    assert_eq!(
        started,
        [
            create("app", 1),
            Recorded::StartContainer(h.id("app")),
            create("sidecar", 1),
            Recorded::StartContainer(h.id("sidecar")),
        ]
    );
}

#[tokio::test]
async fn a_finished_pod_has_its_sandbox_stopped_and_nothing_restarted() {
    let mut h = Harness::new(pod(
        "Never",
        json!([]),
        json!([{"name": "job", "image": "busybox"}]),
    ));
    h.sync().await;
    let sandbox = h.sandbox();
    h.runtime.exit("job", 0);
    assert_eq!(h.sync().await, [Recorded::StopPodSandbox(sandbox)]);
    assert_eq!(h.status()["phase"], "Succeeded");
    assert_eq!(
        h.worker.pod.status.as_ref().unwrap().phase.as_deref(),
        Some("Succeeded")
    );
    // Nothing runs any more: later syncs change nothing.
    assert_eq!(h.sync().await, []);
}

#[tokio::test]
async fn a_sandbox_that_cannot_be_created_is_retried_shortly() {
    let mut h = Harness::new(pod(
        "Always",
        json!([]),
        json!([{"name": "app", "image": "busybox"}]),
    ));
    h.runtime
        .fail_next("RunPodSandbox", tonic::Status::unavailable("CNI not ready"));
    assert_eq!(h.sync().await, [Recorded::RunPodSandbox { attempt: 0 }]);
    let wake = h.worker.wake_at.expect("a retry");
    assert!(wake.saturating_duration_since(Instant::now()) <= Duration::from_secs(5));
    let changes = h.sync().await;
    assert_eq!(changes[0], Recorded::RunPodSandbox { attempt: 0 });
    assert_eq!(changes[1], create("app", 0));
}
