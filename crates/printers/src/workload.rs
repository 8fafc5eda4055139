//! Workload controllers: Deployments, ReplicaSets, ReplicationControllers,
//! DaemonSets, StatefulSets, Jobs, CronJobs, ControllerRevisions,
//! PodDisruptionBudgets and HorizontalPodAutoscalers.
//!
//! Fields the API defaults (replicas, suspend, minReplicas) fall back to those
//! defaults when the stored object was never defaulted, as upstream prints
//! objects only after defaulting.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::columns::{Column, AGE, CONTAINERS, IMAGES, NAME, SELECTOR};
use crate::duration::{human_duration, since};
use crate::fields::{
    array_at, at, creation_timestamp, int_at, int_or_string, is_deleting, len_at, name,
    opt_bool_at, opt_int_at, opt_str_at, str_at, time_at,
};
use crate::selector::{format_label_selector, format_labels, selector_string};

/// Comma-joined container names and images of a pod spec.
fn containers_and_images(pod_spec: Option<&Value>) -> (String, String) {
    let containers = pod_spec
        .map(|s| array_at(s, &["containers"]))
        .unwrap_or(&[]);
    let names = containers.iter().map(|c| str_at(c, &["name"]));
    let images = containers.iter().map(|c| str_at(c, &["image"]));
    (
        names.collect::<Vec<_>>().join(","),
        images.collect::<Vec<_>>().join(","),
    )
}

fn template_spec(obj: &Value) -> Option<&Value> {
    at(obj, &["spec", "template", "spec"])
}

/// `spec.replicas`, defaulting to 1 as the API does.
fn desired_replicas(obj: &Value) -> i64 {
    opt_int_at(obj, &["spec", "replicas"]).unwrap_or(1)
}

pub(crate) fn deployment_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::string("Ready", "Number of the pod with ready state"),
        Column::string("Up-to-date", "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
        Column::string("Available", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
        AGE,
        CONTAINERS,
        IMAGES,
        Column { description: "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.", ..SELECTOR },
    ]
}

pub(crate) fn deployment_cells(deployment: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (containers, images) = containers_and_images(template_spec(deployment));
    vec![
        json!(name(deployment)),
        json!(format!(
            "{}/{}",
            int_at(deployment, &["status", "readyReplicas"]),
            desired_replicas(deployment)
        )),
        json!(int_at(deployment, &["status", "updatedReplicas"])),
        json!(int_at(deployment, &["status", "availableReplicas"])),
        json!(since(creation_timestamp(deployment), now)),
        json!(containers),
        json!(images),
        json!(selector_string(at(deployment, &["spec", "selector"]))),
    ]
}

pub(crate) fn replica_set_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::integer("Desired", "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller"),
        Column::integer("Current", "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller"),
        Column::integer("Ready", "The number of ready replicas for this replica set."),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ]
}

/// ReplicaSets and ReplicationControllers share columns; only the selector
/// shape differs (label selector vs. plain label map).
pub(crate) fn replica_set_cells(
    set: &Value,
    now: DateTime<Utc>,
    plain_selector: bool,
) -> Vec<Value> {
    let (containers, images) = containers_and_images(template_spec(set));
    let selector = at(set, &["spec", "selector"]);
    let selector = if plain_selector {
        format_labels(selector)
    } else {
        format_label_selector(selector)
    };
    vec![
        json!(name(set)),
        json!(desired_replicas(set)),
        json!(int_at(set, &["status", "replicas"])),
        json!(int_at(set, &["status", "readyReplicas"])),
        json!(since(creation_timestamp(set), now)),
        json!(containers),
        json!(images),
        json!(selector),
    ]
}

pub(crate) fn daemon_set_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::integer("Desired", "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"),
        Column::integer("Current", "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"),
        Column::integer("Ready", "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition."),
        Column::integer("Up-to-date", "The total number of nodes that are running updated daemon pod"),
        Column::integer("Available", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)"),
        Column::string("Node Selector", "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/"),
        AGE,
        CONTAINERS,
        IMAGES,
        Column { description: "A label query over pods that are managed by the daemon set. Must match in order to be controlled. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors", ..SELECTOR },
    ]
}

pub(crate) fn daemon_set_cells(set: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (containers, images) = containers_and_images(template_spec(set));
    vec![
        json!(name(set)),
        json!(int_at(set, &["status", "desiredNumberScheduled"])),
        json!(int_at(set, &["status", "currentNumberScheduled"])),
        json!(int_at(set, &["status", "numberReady"])),
        json!(int_at(set, &["status", "updatedNumberScheduled"])),
        json!(int_at(set, &["status", "numberAvailable"])),
        json!(format_labels(at(
            set,
            &["spec", "template", "spec", "nodeSelector"]
        ))),
        json!(since(creation_timestamp(set), now)),
        json!(containers),
        json!(images),
        json!(format_label_selector(at(set, &["spec", "selector"]))),
    ]
}

pub(crate) fn stateful_set_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::string("Ready", "Number of the pod with ready state"),
        AGE,
        CONTAINERS,
        IMAGES,
    ]
}

pub(crate) fn stateful_set_cells(set: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (containers, images) = containers_and_images(template_spec(set));
    vec![
        json!(name(set)),
        json!(format!(
            "{}/{}",
            int_at(set, &["status", "readyReplicas"]),
            desired_replicas(set)
        )),
        json!(since(creation_timestamp(set), now)),
        json!(containers),
        json!(images),
    ]
}

pub(crate) fn job_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::string("Status", "Status of the job."),
        Column::string("Completions", "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs."),
        Column::string("Duration", "Time required to complete the job."),
        AGE,
        CONTAINERS,
        IMAGES,
        Column { description: "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors", ..SELECTOR },
    ]
}

/// Status of the first job condition of `type_` is "True".
fn job_condition(job: &Value, type_: &str) -> bool {
    array_at(job, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == type_)
        .is_some_and(|c| str_at(c, &["status"]) == "True")
}

pub(crate) fn job_cells(job: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let succeeded = int_at(job, &["status", "succeeded"]);
    let completions = opt_int_at(job, &["spec", "completions"]);
    let parallelism = opt_int_at(job, &["spec", "parallelism"]);
    let completions = match (completions, parallelism) {
        (Some(total), _) => format!("{succeeded}/{total}"),
        // API defaulting sets completions=1 when neither is given.
        (None, None) => format!("{succeeded}/1"),
        (None, Some(p)) if p > 1 => format!("{succeeded}/1 of {p}"),
        (None, Some(_)) => format!("{succeeded}/1"),
    };
    let started = time_at(job, &["status", "startTime"]);
    let duration = match (started, time_at(job, &["status", "completionTime"])) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(now - start),
        (Some(start), Some(end)) => human_duration(end - start),
    };
    let status = if job_condition(job, "Complete") {
        "Complete"
    } else if job_condition(job, "Failed") {
        "Failed"
    } else if is_deleting(job) {
        "Terminating"
    } else if job_condition(job, "Suspended") {
        "Suspended"
    } else if job_condition(job, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (containers, images) = containers_and_images(template_spec(job));
    vec![
        json!(name(job)),
        json!(status),
        json!(completions),
        json!(duration),
        json!(since(creation_timestamp(job), now)),
        json!(containers),
        json!(images),
        json!(format_label_selector(at(job, &["spec", "selector"]))),
    ]
}

pub(crate) fn cron_job_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::string("Schedule", "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
        Column::string("Timezone", "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to the time zone of the kube-controller-manager process."),
        Column::boolean("Suspend", "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions. Defaults to false."),
        Column::integer("Active", "A list of pointers to currently running jobs."),
        Column::string("Last Schedule", "Information when was the last time the job was successfully scheduled."),
        AGE,
        CONTAINERS,
        IMAGES,
        Column { description: "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors", ..SELECTOR },
    ]
}

/// "True"/"False", or "<unset>" when the field is absent.
pub(crate) fn bool_text(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    }
}

pub(crate) fn cron_job_cells(cron_job: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let last_schedule = match at(cron_job, &["status", "lastScheduleTime"]) {
        Some(v) if !v.is_null() => since(time_at(cron_job, &["status", "lastScheduleTime"]), now),
        _ => "<none>".to_string(),
    };
    let job_spec = at(cron_job, &["spec", "jobTemplate", "spec"]);
    let (containers, images) =
        containers_and_images(job_spec.and_then(|s| at(s, &["template", "spec"])));
    vec![
        json!(name(cron_job)),
        json!(str_at(cron_job, &["spec", "schedule"])),
        json!(opt_str_at(cron_job, &["spec", "timeZone"]).unwrap_or("<none>")),
        // The API defaults suspend to false.
        json!(bool_text(Some(
            opt_bool_at(cron_job, &["spec", "suspend"]).unwrap_or(false)
        ))),
        json!(len_at(cron_job, &["status", "active"])),
        json!(last_schedule),
        json!(since(creation_timestamp(cron_job), now)),
        json!(containers),
        json!(images),
        json!(format_label_selector(
            job_spec.and_then(|s| s.get("selector"))
        )),
    ]
}

pub(crate) fn controller_revision_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::string("Controller", "Controller of the object"),
        Column::string(
            "Revision",
            "Revision indicates the revision of the state represented by Data.",
        ),
        AGE,
    ]
}

pub(crate) fn controller_revision_cells(revision: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let controller = array_at(revision, &["metadata", "ownerReferences"])
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .map(|owner| {
            let api_version = str_at(owner, &["apiVersion"]);
            let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
            let kind = str_at(owner, &["kind"]);
            let owner_name = str_at(owner, &["name"]);
            match (kind, group) {
                ("", "") => owner_name.to_string(),
                (kind, "") => format!("{}/{owner_name}", kind.to_lowercase()),
                (kind, group) => {
                    format!("{}/{owner_name}", format!("{kind}.{group}").to_lowercase())
                }
            }
        })
        .unwrap_or_else(|| "<none>".to_string());
    vec![
        json!(name(revision)),
        json!(controller),
        json!(int_at(revision, &["revision"])),
        json!(since(creation_timestamp(revision), now)),
    ]
}

pub(crate) fn pod_disruption_budget_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::string(
            "Min Available",
            "The minimum number of pods that must be available.",
        ),
        Column::string(
            "Max Unavailable",
            "The maximum number of pods that may be unavailable.",
        ),
        Column::integer(
            "Allowed Disruptions",
            "Calculated number of pods that may be disrupted at this time.",
        ),
        AGE,
    ]
}

pub(crate) fn pod_disruption_budget_cells(pdb: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let bound = |field: &str| match at(pdb, &["spec", field]) {
        Some(v) if !v.is_null() => int_or_string(v),
        _ => "N/A".to_string(),
    };
    vec![
        json!(name(pdb)),
        json!(bound("minAvailable")),
        json!(bound("maxUnavailable")),
        json!(int_at(pdb, &["status", "disruptionsAllowed"])),
        json!(since(creation_timestamp(pdb), now)),
    ]
}

pub(crate) fn horizontal_pod_autoscaler_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::string("Reference", "reference to scaled resource; horizontal pod autoscaler will learn the current resource consumption and will set the desired number of pods by using its Scale subresource."),
        Column::string("Targets", "metrics contains the specifications for which to use to calculate the desired replica count (the maximum replica count across all metrics will be used)."),
        Column::string("MinPods", "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down. It defaults to 1 pod."),
        Column::string("MaxPods", "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up. It cannot be less that minReplicas."),
        Column::string("Replicas", "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler."),
        AGE,
    ]
}

/// Resource-metric targets of an autoscaling/v2 HPA ("cpu: 40%/80%"); other
/// metric types print their target value. At most two, then "+ N more...".
fn hpa_targets(hpa: &Value) -> String {
    let specs = array_at(hpa, &["spec", "metrics"]);
    // autoscaling/v1 objects carry a single CPU utilisation target.
    if specs.is_empty() {
        if let Some(target) = opt_int_at(hpa, &["spec", "targetCPUUtilizationPercentage"]) {
            let current = opt_int_at(hpa, &["status", "currentCPUUtilizationPercentage"])
                .map(|c| format!("{c}%"))
                .unwrap_or_else(|| "<unknown>".to_string());
            return format!("cpu: {current}/{target}%");
        }
        return "<none>".to_string();
    }
    let statuses = array_at(hpa, &["status", "currentMetrics"]);
    let quantity = |v: Option<&Value>| v.map(int_or_string).unwrap_or_default();
    let mut list: Vec<String> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let status = statuses.get(i);
        let type_ = str_at(spec, &["type"]);
        let text = match type_ {
            "Resource" | "ContainerResource" => {
                let key = if type_ == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let source = &spec[key];
                let metric = str_at(source, &["name"]);
                let current_source = status.and_then(|s| s.get(key));
                if let Some(average) = at(source, &["target", "averageValue"]) {
                    let current = current_source
                        .and_then(|c| at(c, &["current", "averageValue"]))
                        .map(int_or_string)
                        .unwrap_or_else(|| "<unknown>".to_string());
                    format!("{metric}: {current}/{}", int_or_string(average))
                } else {
                    let current = current_source
                        .and_then(|c| opt_int_at(c, &["current", "averageUtilization"]))
                        .map(|c| format!("{c}%"))
                        .unwrap_or_else(|| "<unknown>".to_string());
                    let target = opt_int_at(source, &["target", "averageUtilization"])
                        .map(|t| format!("{t}%"))
                        .unwrap_or_else(|| "<auto>".to_string());
                    format!("{metric}: {current}/{target}")
                }
            }
            "Pods" => {
                let current = status
                    .and_then(|s| at(s, &["pods", "current", "averageValue"]))
                    .map(int_or_string)
                    .unwrap_or_else(|| "<unknown>".to_string());
                format!(
                    "{current}/{}",
                    quantity(at(spec, &["pods", "target", "averageValue"]))
                )
            }
            "Object" | "External" => {
                let key = if type_ == "Object" {
                    "object"
                } else {
                    "external"
                };
                let current_source = status.and_then(|s| s.get(key));
                if let Some(average) = at(spec, &[key, "target", "averageValue"]) {
                    let current = current_source
                        .and_then(|c| at(c, &["current", "averageValue"]))
                        .map(int_or_string)
                        .unwrap_or_else(|| "<unknown>".to_string());
                    format!("{current}/{} (avg)", int_or_string(average))
                } else {
                    let current = current_source
                        .map(|c| quantity(at(c, &["current", "value"])))
                        .unwrap_or_else(|| "<unknown>".to_string());
                    format!(
                        "{current}/{}",
                        quantity(at(spec, &[key, "target", "value"]))
                    )
                }
            }
            _ => "<unknown type>".to_string(),
        };
        list.push(text);
    }
    const MAX: usize = 2;
    let count = list.len();
    if count > MAX {
        list.truncate(MAX);
        format!("{} + {} more...", list.join(", "), count - MAX)
    } else {
        list.join(", ")
    }
}

pub(crate) fn horizontal_pod_autoscaler_cells(hpa: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        str_at(hpa, &["spec", "scaleTargetRef", "kind"]),
        str_at(hpa, &["spec", "scaleTargetRef", "name"])
    );
    // The API defaults minReplicas to 1.
    let min_pods = opt_int_at(hpa, &["spec", "minReplicas"]).unwrap_or(1);
    vec![
        json!(name(hpa)),
        json!(reference),
        json!(hpa_targets(hpa)),
        json!(min_pods.to_string()),
        json!(int_at(hpa, &["spec", "maxReplicas"])),
        json!(int_at(hpa, &["status", "currentReplicas"])),
        json!(since(creation_timestamp(hpa), now)),
    ]
}
