//! The Job, TTL-after-finished and CronJob controllers inside `k3rs server`: completions
//! and parallelism, the pod tracking finalizer, backoffLimit, activeDeadlineSeconds,
//! Indexed mode, suspend and resume, ttlSecondsAfterFinished, CronJob history limits,
//! `kubectl create job --from=cronjob/...`, and one real schedule tick with
//! concurrencyPolicy Forbid.
//!
//! No kubelet runs and no node exists: the tests report pod outcomes the way a kubelet
//! would (`set_pod_finished`), and pods stay unscheduled, so deleting one is immediate.

use std::time::Duration;

use k3rs_e2e::fake_nodes::set_pod_finished;
use k3rs_e2e::wait::eventually;
use k3rs_e2e::{ok, K3rs};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);
const TRACKING: &str = "batch.kubernetes.io/job-tracking";
const INDEX: &str = "batch.kubernetes.io/job-completion-index";

fn job(name: &str, spec: Value) -> Job {
    let mut spec = spec;
    spec["template"] = json!({"spec": {
        "restartPolicy": "Never",
        "containers": [{"name": "work", "image": "busybox:1.36", "command": ["true"]}],
    }});
    serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap()
}

async fn create_job(client: &Client, name: &str, spec: Value) -> Job {
    let jobs: Api<Job> = Api::default_namespaced(client.clone());
    jobs.create(&PostParams::default(), &job(name, spec))
        .await
        .unwrap()
}

/// The job's pods (by the label the API server puts on its template), oldest first.
async fn job_pods(client: &Client, job: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::default_namespaced(client.clone());
    let mut pods = api
        .list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job}")))
        .await
        .unwrap()
        .items;
    pods.sort_by_key(|p| (p.creation_timestamp().map(|t| t.0), p.name_any()));
    pods
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

fn running(pods: &[Pod]) -> Vec<&Pod> {
    pods.iter()
        .filter(|p| phase(p) == "Pending" && p.metadata.deletion_timestamp.is_none())
        .collect()
}

/// Wait until the job has exactly `n` pods that are neither finished nor deleted.
async fn wait_running(client: &Client, job: &str, n: usize) -> Vec<Pod> {
    eventually(WAIT, &format!("{n} running pods of job {job}"), || async {
        let pods = job_pods(client, job).await;
        (running(&pods).len() == n).then(|| running(&pods).into_iter().cloned().collect())
    })
    .await
}

async fn get_job(client: &Client, name: &str) -> Job {
    Api::<Job>::default_namespaced(client.clone())
        .get(name)
        .await
        .unwrap()
}

fn condition<'a>(
    job: &'a Job,
    type_: &str,
) -> Option<&'a k8s_openapi::api::batch::v1::JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
}

async fn wait_condition(client: &Client, name: &str, type_: &str) -> Job {
    eventually(WAIT, &format!("job {name} condition {type_}"), || async {
        let job = get_job(client, name).await;
        condition(&job, type_).is_some().then_some(job)
    })
    .await
}

/// Events about `kind/name`, as `(reason, message)`.
async fn events(client: &Client, kind: &str, name: &str) -> Vec<(String, String)> {
    let api: Api<Event> = Api::default_namespaced(client.clone());
    let selector = format!("involvedObject.kind={kind},involvedObject.name={name}");
    api.list(&ListParams::default().fields(&selector))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect()
}

async fn wait_event(client: &Client, kind: &str, name: &str, reason: &str) -> String {
    eventually(
        WAIT,
        &format!("{reason} event on {kind}/{name}"),
        || async {
            events(client, kind, name)
                .await
                .into_iter()
                .find(|(r, _)| r == reason)
                .map(|(_, message)| message)
        },
    )
    .await
}

fn status_of(job: &Job) -> Value {
    serde_json::to_value(job.status.clone().unwrap_or_default()).unwrap()
}

#[tokio::test]
async fn job_runs_completions_in_parallel_and_completes() {
    let k = K3rs::start();
    let client = k.client().await;
    create_job(&client, "pi", json!({"completions": 3, "parallelism": 2})).await;

    let first = wait_running(&client, "pi", 2).await;
    for pod in &first {
        assert!(pod.name_any().starts_with("pi-"), "{}", pod.name_any());
        assert!(
            pod.finalizers().iter().any(|f| f == TRACKING),
            "{:?}",
            pod.metadata
        );
        let owner = &pod.owner_references()[0];
        assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Job", "pi"));
        assert_eq!(owner.controller, Some(true));
        assert_eq!(pod.labels()["job-name"], "pi");
    }
    let job = eventually(WAIT, "status.active 2", || async {
        let job = get_job(&client, "pi").await;
        (job.status.as_ref()?.active == Some(2)).then_some(job)
    })
    .await;
    assert!(job.status.as_ref().unwrap().start_time.is_some());
    // Parallelism 2 holds: no third pod while two run.
    assert_eq!(job_pods(&client, "pi").await.len(), 2);

    for pod in &first {
        set_pod_finished(&client, "default", &pod.name_any(), true).await;
    }
    // Two done, one to go: exactly one more pod.
    let last = wait_running(&client, "pi", 1).await;
    let job = eventually(WAIT, "two counted successes", || async {
        let job = get_job(&client, "pi").await;
        (job.status.as_ref()?.succeeded == Some(2)).then_some(job)
    })
    .await;
    assert_eq!(job.status.as_ref().unwrap().active, Some(1));
    // Counted pods lose the tracking finalizer.
    eventually(WAIT, "finalizers released", || async {
        let pods = job_pods(&client, "pi").await;
        pods.iter()
            .filter(|p| phase(p) == "Succeeded")
            .all(|p| !p.finalizers().iter().any(|f| f == TRACKING))
            .then_some(())
    })
    .await;

    set_pod_finished(&client, "default", &last[0].name_any(), true).await;
    ok(k.kubectl(&[
        "wait",
        "--for=condition=complete",
        "job/pi",
        "--timeout=30s",
    ]));
    let job = get_job(&client, "pi").await;
    let status = status_of(&job);
    assert_eq!(status["succeeded"], 3, "{status}");
    assert_eq!(status["active"], 0, "{status}");
    assert!(status["completionTime"].is_string(), "{status}");
    assert!(status.get("failed").is_none_or(|f| f == 0), "{status}");
    assert!(
        status["uncountedTerminatedPods"].get("succeeded").is_none(),
        "{status}"
    );
    let success = condition(&job, "SuccessCriteriaMet").expect("SuccessCriteriaMet");
    assert_eq!(success.reason.as_deref(), Some("CompletionsReached"));
    assert_eq!(job_pods(&client, "pi").await.len(), 3);

    let table = ok(k.kubectl(&["get", "jobs"]));
    assert!(table.contains("3/3"), "{table}");
    let created = wait_event(&client, "Job", "pi", "SuccessfulCreate").await;
    assert!(created.starts_with("Created pod: pi-"), "{created}");
    assert_eq!(
        wait_event(&client, "Job", "pi", "Completed").await,
        "Job completed"
    );
    let described = ok(k.kubectl(&["describe", "job", "pi"]));
    assert!(described.contains("SuccessfulCreate"), "{described}");
}

#[tokio::test]
async fn jobs_fail_on_backoff_limit_and_deadline_and_expire_after_ttl() {
    let k = K3rs::start();
    let client = k.client().await;

    // Two failures exceed backoffLimit 1.
    create_job(
        &client,
        "flaky",
        json!({"completions": 2, "parallelism": 2, "backoffLimit": 1}),
    )
    .await;
    // Pods of a job past its deadline are deleted and counted as failed.
    create_job(&client, "slow", json!({"activeDeadlineSeconds": 2})).await;
    // A finished job with a TTL is deleted.
    create_job(&client, "brief", json!({"ttlSecondsAfterFinished": 1})).await;

    for pod in wait_running(&client, "flaky", 2).await {
        set_pod_finished(&client, "default", &pod.name_any(), false).await;
    }
    let flaky = wait_condition(&client, "flaky", "Failed").await;
    let failed = condition(&flaky, "Failed").unwrap();
    assert_eq!(failed.reason.as_deref(), Some("BackoffLimitExceeded"));
    assert_eq!(
        failed.message.as_deref(),
        Some("Job has reached the specified backoff limit")
    );
    assert!(condition(&flaky, "FailureTarget").is_some());
    let status = status_of(&flaky);
    assert_eq!(status["failed"], 2, "{status}");
    assert!(status.get("completionTime").is_none(), "{status}");
    assert_eq!(
        wait_event(&client, "Job", "flaky", "BackoffLimitExceeded").await,
        "Job has reached the specified backoff limit"
    );
    // No replacement was started for the failed pods.
    assert_eq!(job_pods(&client, "flaky").await.len(), 2);

    let slow = wait_condition(&client, "slow", "Failed").await;
    assert_eq!(
        condition(&slow, "Failed").unwrap().reason.as_deref(),
        Some("DeadlineExceeded")
    );
    let status = status_of(&slow);
    assert_eq!(
        (status["active"].clone(), status["failed"].clone()),
        (json!(0), json!(1)),
        "{status}"
    );
    eventually(WAIT, "the slow job's pod deleted", || async {
        running(&job_pods(&client, "slow").await)
            .is_empty()
            .then_some(())
    })
    .await;

    let brief = wait_running(&client, "brief", 1).await;
    set_pod_finished(&client, "default", &brief[0].name_any(), true).await;
    wait_condition(&client, "brief", "Complete").await;
    let jobs: Api<Job> = Api::default_namespaced(client.clone());
    eventually(WAIT, "job brief deleted after its TTL", || async {
        jobs.get_opt("brief").await.unwrap().is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn indexed_jobs_and_suspend_resume() {
    let k = K3rs::start();
    let client = k.client().await;

    create_job(
        &client,
        "idx",
        json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed"}),
    )
    .await;
    let pods = wait_running(&client, "idx", 3).await;
    let mut indexes: Vec<String> = pods
        .iter()
        .map(|p| p.annotations()[INDEX].clone())
        .collect();
    indexes.sort();
    assert_eq!(indexes, vec!["0", "1", "2"]);
    for pod in &pods {
        let index = &pod.annotations()[INDEX];
        assert_eq!(&pod.labels()[INDEX], index);
        assert!(
            pod.name_any().starts_with(&format!("idx-{index}-")),
            "{}",
            pod.name_any()
        );
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(
            spec.hostname.as_deref(),
            Some(format!("idx-{index}").as_str())
        );
        let env = serde_json::to_value(&spec.containers[0].env).unwrap();
        assert_eq!(env[0]["name"], "JOB_COMPLETION_INDEX", "{env}");
        assert_eq!(
            env[0]["valueFrom"]["fieldRef"]["fieldPath"],
            format!("metadata.annotations['{INDEX}']")
        );
    }
    let by_index = |i: &str| {
        pods.iter()
            .find(|p| p.annotations()[INDEX] == i)
            .unwrap()
            .name_any()
    };
    set_pod_finished(&client, "default", &by_index("1"), true).await;
    eventually(WAIT, "completedIndexes 1", || async {
        let job = get_job(&client, "idx").await;
        (job.status?.completed_indexes.as_deref() == Some("1")).then_some(())
    })
    .await;
    set_pod_finished(&client, "default", &by_index("0"), true).await;
    set_pod_finished(&client, "default", &by_index("2"), true).await;
    let job = wait_condition(&client, "idx", "Complete").await;
    let status = status_of(&job);
    assert_eq!(status["completedIndexes"], "0-2", "{status}");
    assert_eq!(status["succeeded"], 3, "{status}");

    // Created suspended: no pods, Suspended condition.
    create_job(
        &client,
        "later",
        json!({"suspend": true, "parallelism": 2, "completions": 4}),
    )
    .await;
    let job = wait_condition(&client, "later", "Suspended").await;
    assert_eq!(
        condition(&job, "Suspended").unwrap().reason.as_deref(),
        Some("JobSuspended")
    );
    assert!(job_pods(&client, "later").await.is_empty());
    assert!(job.status.as_ref().unwrap().start_time.is_none());

    let jobs: Api<Job> = Api::default_namespaced(client.clone());
    let suspend = |on: bool| json!({"spec": {"suspend": on}});
    jobs.patch(
        "later",
        &PatchParams::default(),
        &Patch::Merge(&suspend(false)),
    )
    .await
    .unwrap();
    wait_running(&client, "later", 2).await;
    let job = eventually(WAIT, "Suspended=False after resume", || async {
        let job = get_job(&client, "later").await;
        let resumed = job.status.as_ref()?.conditions.as_ref()?.iter().any(|c| {
            c.type_ == "Suspended"
                && c.status == "False"
                && c.reason.as_deref() == Some("JobResumed")
        });
        resumed.then_some(job)
    })
    .await;
    assert!(job.status.as_ref().unwrap().start_time.is_some());
    wait_event(&client, "Job", "later", "Resumed").await;

    jobs.patch(
        "later",
        &PatchParams::default(),
        &Patch::Merge(&suspend(true)),
    )
    .await
    .unwrap();
    wait_running(&client, "later", 0).await;
    let job = eventually(WAIT, "suspended again with no active pods", || async {
        let job = get_job(&client, "later").await;
        let status = job.status.as_ref()?;
        (status.active == Some(0) && condition(&job, "Suspended").is_some()).then_some(job)
    })
    .await;
    // Pods removed by a suspension are not failures.
    let status = status_of(&job);
    assert!(status.get("failed").is_none_or(|f| f == 0), "{status}");
    assert!(condition(&job, "Failed").is_none());
}

fn cronjob(name: &str, schedule: &str, extra: Value) -> CronJob {
    let mut spec = json!({
        "schedule": schedule,
        "jobTemplate": {"metadata": {"labels": {"cron": name}}, "spec": {"template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "work", "image": "busybox:1.36", "command": ["date"]}],
        }}}},
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap()
}

/// A Job owned by `owner` as if the CronJob had created it (suspended so that it never
/// runs pods), labelled `owner=<cronjob>`.
async fn owned_job(client: &Client, owner: &CronJob, name: &str) -> Job {
    let mut job = job(name, json!({"suspend": true}));
    job.metadata.labels = Some([("owner".to_string(), owner.name_any())].into());
    job.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "batch/v1".into(),
        kind: "CronJob".into(),
        name: owner.name_any(),
        uid: owner.uid().unwrap(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }]);
    Api::<Job>::default_namespaced(client.clone())
        .create(&PostParams::default(), &job)
        .await
        .unwrap()
}

/// Report a Job finished (`Complete` or `Failed`), started at `started`.
async fn finish_job(client: &Client, name: &str, type_: &str, started: &str) {
    let mut conditions =
        vec![json!({"type": type_, "status": "True", "lastTransitionTime": started})];
    if type_ == "Complete" {
        conditions.insert(
            0,
            json!({"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": started}),
        );
    } else {
        conditions.insert(
            0,
            json!({"type": "FailureTarget", "status": "True", "lastTransitionTime": started}),
        );
    }
    let mut status = json!({"startTime": started, "conditions": conditions});
    if type_ == "Complete" {
        status["completionTime"] = json!(started);
    }
    let jobs: Api<Job> = Api::default_namespaced(client.clone());
    let body = json!({"status": status});
    // The job controller writes the same status; a racing write is refused, so retry.
    eventually(WAIT, &format!("status of {name} written"), || async {
        jobs.patch_status(name, &PatchParams::default(), &Patch::Merge(&body))
            .await
            .ok()
    })
    .await;
}

async fn job_names(client: &Client, label: &str) -> Vec<String> {
    let mut names: Vec<String> = Api::<Job>::default_namespaced(client.clone())
        .list(&ListParams::default().labels(label))
        .await
        .unwrap()
        .items
        .iter()
        .map(|j| j.name_any())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn cronjob_prunes_history_and_instantiates_manually() {
    let k = K3rs::start();
    let client = k.client().await;
    let cronjobs: Api<CronJob> = Api::default_namespaced(client.clone());
    // Yearly: never due during the test.
    let cj = cronjobs
        .create(
            &PostParams::default(),
            &cronjob(
                "nightly",
                "@yearly",
                json!({"successfulJobsHistoryLimit": 2, "failedJobsHistoryLimit": 1, "timeZone": "Etc/UTC"}),
            ),
        )
        .await
        .unwrap();
    for (name, type_, started) in [
        ("nightly-ok-1", "Complete", "2025-01-01T00:00:00Z"),
        ("nightly-ok-2", "Complete", "2025-01-02T00:00:00Z"),
        ("nightly-ok-3", "Complete", "2025-01-03T00:00:00Z"),
        ("nightly-bad-1", "Failed", "2025-01-01T00:00:00Z"),
        ("nightly-bad-2", "Failed", "2025-01-02T00:00:00Z"),
    ] {
        owned_job(&client, &cj, name).await;
        finish_job(&client, name, type_, started).await;
    }
    eventually(WAIT, "old jobs pruned", || async {
        let names = job_names(&client, "owner=nightly").await;
        (names == ["nightly-bad-2", "nightly-ok-2", "nightly-ok-3"]).then_some(())
    })
    .await;
    let deleted = wait_event(&client, "CronJob", "nightly", "SuccessfulDelete").await;
    assert!(deleted.starts_with("Deleted job nightly-"), "{deleted}");
    let cj = cronjobs.get("nightly").await.unwrap();
    let status = cj.status.clone().unwrap_or_default();
    assert_eq!(
        status
            .last_successful_time
            .map(|t| t.0.to_string())
            .as_deref(),
        Some("2025-01-03T00:00:00Z")
    );
    assert!(status.last_schedule_time.is_none());

    // `kubectl create job --from` builds the Job client-side; it must just work.
    ok(k.kubectl(&["create", "job", "manual-run", "--from=cronjob/nightly"]));
    let manual = get_job(&client, "manual-run").await;
    assert_eq!(manual.owner_references()[0].name, "nightly");
    assert_eq!(manual.labels()["cron"], "nightly");
    let pods = wait_running(&client, "manual-run", 1).await;
    set_pod_finished(&client, "default", &pods[0].name_any(), true).await;
    wait_condition(&client, "manual-run", "Complete").await;
}

/// The one test that waits for a real schedule tick (up to a minute).
#[tokio::test]
async fn cronjob_schedule_tick_creates_a_job_and_forbid_skips() {
    let k = K3rs::start();
    let client = k.client().await;
    let cronjobs: Api<CronJob> = Api::default_namespaced(client.clone());
    let tick = cronjobs
        .create(
            &PostParams::default(),
            &cronjob("tick", "*/1 * * * *", json!({})),
        )
        .await
        .unwrap();
    // Created suspended so that no tick can pass before its run is marked active.
    let blocked = cronjobs
        .create(
            &PostParams::default(),
            &cronjob(
                "blocked",
                "* * * * *",
                json!({"concurrencyPolicy": "Forbid", "suspend": true}),
            ),
        )
        .await
        .unwrap();
    // A run of `blocked` that is still going.
    let running = owned_job(&client, &blocked, "blocked-running").await;
    let active = json!({"status": {"active": [{
        "apiVersion": "batch/v1", "kind": "Job", "namespace": "default",
        "name": "blocked-running", "uid": running.uid().unwrap(),
    }]}});
    cronjobs
        .patch_status("blocked", &PatchParams::default(), &Patch::Merge(&active))
        .await
        .unwrap();
    let resume = json!({"spec": {"suspend": false}});
    cronjobs
        .patch("blocked", &PatchParams::default(), &Patch::Merge(&resume))
        .await
        .unwrap();

    let long = Duration::from_secs(90);
    let job = eventually(long, "the scheduled job of tick", || async {
        let jobs: Api<Job> = Api::default_namespaced(client.clone());
        let list = jobs
            .list(&ListParams::default().labels("cron=tick"))
            .await
            .ok()?;
        list.items.into_iter().next()
    })
    .await;
    let scheduled = &job.annotations()["batch.kubernetes.io/cronjob-scheduled-timestamp"];
    let at: Time = serde_json::from_value(json!(scheduled)).unwrap();
    assert_eq!(at.0.as_second() % 60, 0, "{scheduled}");
    assert_eq!(job.name_any(), format!("tick-{}", at.0.as_second() / 60));
    assert_eq!(job.owner_references()[0].uid, tick.uid().unwrap());
    let created = wait_event(&client, "CronJob", "tick", "SuccessfulCreate").await;
    assert_eq!(created, format!("Created job {}", job.name_any()));
    let cj = eventually(WAIT, "tick status", || async {
        let cj = cronjobs.get("tick").await.ok()?;
        let status = cj.status.clone()?;
        (status.active?.len() == 1 && status.last_schedule_time? == at).then_some(cj)
    })
    .await;
    assert_eq!(
        cj.status.unwrap().active.unwrap()[0].name.as_deref(),
        Some(job.name_any().as_str())
    );

    // The same tick found `blocked` busy: no new job, an event saying why.
    let skipped = wait_event(&client, "CronJob", "blocked", "JobAlreadyActive").await;
    assert_eq!(
        skipped,
        "Not starting job because prior execution is running and concurrency policy is Forbid"
    );
    assert_eq!(
        job_names(&client, "cron=blocked").await,
        Vec::<String>::new()
    );

    // Finishing the run clears it from `active` and records the success.
    let pods = wait_running(&client, &job.name_any(), 1).await;
    set_pod_finished(&client, "default", &pods[0].name_any(), true).await;
    eventually(WAIT, "tick's run seen completed", || async {
        let status = cronjobs.get("tick").await.ok()?.status?;
        (status.active.is_none() && status.last_successful_time.is_some()).then_some(())
    })
    .await;
    let saw = wait_event(&client, "CronJob", "tick", "SawCompletedJob").await;
    assert_eq!(
        saw,
        format!("Saw completed job: {}, condition: Complete", job.name_any())
    );
}
