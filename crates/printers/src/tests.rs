//! Cell-by-cell checks against what upstream kube-apiserver prints for
//! realistic objects, plus the Table document shape.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::{cells, columns, table};

fn now() -> DateTime<Utc> {
    "2024-05-01T12:00:00Z".parse().unwrap()
}

fn names(group: &str, plural: &str) -> Vec<(&'static str, i32)> {
    columns(group, plural)
        .iter()
        .map(|c| (c.name, c.priority))
        .collect()
}

fn running_pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-5d8f7c9b4-x2x7k",
            "namespace": "default",
            "creationTimestamp": "2024-05-01T09:00:00Z"
        },
        "spec": {
            "nodeName": "server-1",
            "containers": [
                {"name": "nginx", "image": "nginx:1.25"},
                {"name": "sidecar", "image": "busybox"}
            ]
        },
        "status": {
            "phase": "Running",
            "podIP": "10.42.0.12",
            "podIPs": [{"ip": "10.42.0.12"}],
            "conditions": [
                {"type": "Initialized", "status": "True"},
                {"type": "Ready", "status": "True"},
                {"type": "ContainersReady", "status": "True"},
                {"type": "PodScheduled", "status": "True"}
            ],
            "containerStatuses": [
                {
                    "name": "nginx", "ready": true, "restartCount": 0,
                    "state": {"running": {"startedAt": "2024-05-01T09:00:05Z"}}
                },
                {
                    "name": "sidecar", "ready": true, "restartCount": 1,
                    "state": {"running": {"startedAt": "2024-05-01T11:55:00Z"}},
                    "lastState": {"terminated": {
                        "exitCode": 137, "reason": "Error",
                        "startedAt": "2024-05-01T09:00:05Z",
                        "finishedAt": "2024-05-01T11:54:48Z"
                    }}
                }
            ]
        }
    })
}

#[test]
fn pod_columns_match_upstream() {
    assert_eq!(
        names("", "pods"),
        vec![
            ("Name", 0),
            ("Ready", 0),
            ("Status", 0),
            ("Restarts", 0),
            ("Age", 0),
            ("IP", 1),
            ("Node", 1),
            ("Nominated Node", 1),
            ("Readiness Gates", 1),
        ]
    );
    assert_eq!(columns("", "pods")[0].format, "name");
    assert_eq!(columns("", "pods")[1].format, "");
}

#[test]
fn running_pod_with_a_restart() {
    assert_eq!(
        cells("", "pods", &running_pod(), now()),
        vec![
            json!("web-5d8f7c9b4-x2x7k"),
            json!("2/2"),
            json!("Running"),
            json!("1 (5m12s ago)"),
            json!("3h"),
            json!("10.42.0.12"),
            json!("server-1"),
            json!("<none>"),
            json!("<none>"),
        ]
    );
}

#[test]
fn pending_pod_waiting_for_containers() {
    let pod = json!({
        "metadata": {"name": "db-0", "creationTimestamp": "2024-05-01T11:59:15Z"},
        "spec": {"nodeName": "agent-1", "containers": [{"name": "postgres", "image": "postgres:16"}]},
        "status": {
            "phase": "Pending",
            "containerStatuses": [{
                "name": "postgres", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ContainerCreating"}}
            }]
        }
    });
    assert_eq!(
        cells("", "pods", &pod, now()),
        vec![
            json!("db-0"),
            json!("0/1"),
            json!("ContainerCreating"),
            json!("0"),
            json!("45s"),
            json!("<none>"),
            json!("agent-1"),
            json!("<none>"),
            json!("<none>"),
        ]
    );
}

#[test]
fn unscheduled_pod_is_pending() {
    let pod = json!({
        "metadata": {"name": "big", "creationTimestamp": "2024-05-01T11:00:00Z"},
        "spec": {"containers": [{"name": "c", "image": "i"}]},
        "status": {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}
        ]}
    });
    let row = cells("", "pods", &pod, now());
    assert_eq!(
        row[1..5],
        [json!("0/1"), json!("Pending"), json!("0"), json!("60m")]
    );
    assert_eq!(row[6], json!("<none>"));
}

#[test]
fn terminating_pod() {
    let mut pod = running_pod();
    pod["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:59:30Z");
    assert_eq!(cells("", "pods", &pod, now())[2], json!("Terminating"));

    // Lost nodes make deleted pods Unknown instead.
    pod["status"]["reason"] = json!("NodeLost");
    assert_eq!(cells("", "pods", &pod, now())[2], json!("Unknown"));
}

#[test]
fn crash_looping_pod() {
    let pod = json!({
        "metadata": {"name": "crash", "creationTimestamp": "2024-04-29T10:00:00Z"},
        "spec": {"containers": [{"name": "app", "image": "app"}]},
        "status": {
            "phase": "Running",
            "containerStatuses": [{
                "name": "app", "ready": false, "restartCount": 17,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2024-05-01T11:58:00Z"}}
            }]
        }
    });
    let row = cells("", "pods", &pod, now());
    assert_eq!(
        row[1..5],
        [
            json!("0/1"),
            json!("CrashLoopBackOff"),
            json!("17 (2m ago)"),
            json!("2d2h")
        ]
    );
}

#[test]
fn initializing_pod() {
    let pod = json!({
        "metadata": {"name": "init", "creationTimestamp": "2024-05-01T11:59:50Z"},
        "spec": {
            "initContainers": [{"name": "migrate", "image": "m"}],
            "containers": [{"name": "app", "image": "app"}]
        },
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "Initialized", "status": "False"}],
            "initContainerStatuses": [{
                "name": "migrate", "ready": false, "restartCount": 0,
                "state": {"running": {"startedAt": "2024-05-01T11:59:55Z"}}
            }],
            "containerStatuses": [{
                "name": "app", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "PodInitializing"}}
            }]
        }
    });
    assert_eq!(
        cells("", "pods", &pod, now())[1..5],
        [json!("0/1"), json!("Init:0/1"), json!("0"), json!("10s")]
    );

    let mut failed = pod.clone();
    failed["status"]["initContainerStatuses"][0]["state"] = json!({"terminated": {"exitCode": 2}});
    assert_eq!(
        cells("", "pods", &failed, now())[2],
        json!("Init:ExitCode:2")
    );

    let mut backoff = pod;
    backoff["status"]["initContainerStatuses"][0]["state"] =
        json!({"waiting": {"reason": "CrashLoopBackOff"}});
    assert_eq!(
        cells("", "pods", &backoff, now())[2],
        json!("Init:CrashLoopBackOff")
    );
}

#[test]
fn sidecar_init_container_counts_towards_ready() {
    let pod = json!({
        "metadata": {"name": "mesh", "creationTimestamp": "2024-05-01T11:00:00Z"},
        "spec": {
            "initContainers": [{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}],
            "containers": [{"name": "app", "image": "app"}]
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
            "initContainerStatuses": [{
                "name": "proxy", "ready": true, "started": true, "restartCount": 2,
                "state": {"running": {}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:30:00Z"}}
            }],
            "containerStatuses": [{
                "name": "app", "ready": true, "restartCount": 0, "state": {"running": {}}
            }]
        }
    });
    assert_eq!(
        cells("", "pods", &pod, now())[1..4],
        [json!("2/2"), json!("Running"), json!("2 (30m ago)")]
    );
}

#[test]
fn completed_pod_has_row_condition() {
    let pod = json!({
        "metadata": {"name": "job-abc", "creationTimestamp": "2024-05-01T11:00:00Z"},
        "spec": {"containers": [{"name": "work", "image": "w"}]},
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [{
                "name": "work", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}
            }]
        }
    });
    assert_eq!(
        cells("", "pods", &pod, now())[1..4],
        [json!("0/1"), json!("Completed"), json!("0")]
    );
    let t = table("", "pods", &[pod], "5", None, "None", now());
    assert_eq!(t["rows"][0]["conditions"][0]["type"], "Completed");
    assert_eq!(t["rows"][0]["conditions"][0]["reason"], "Succeeded");
}

#[test]
fn readiness_gates() {
    let mut pod = running_pod();
    pod["spec"]["readinessGates"] = json!([
        {"conditionType": "example.com/lb-ready"},
        {"conditionType": "example.com/other"}
    ]);
    pod["status"]["conditions"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "example.com/lb-ready", "status": "True"}));
    assert_eq!(cells("", "pods", &pod, now())[8], json!("1/2"));
}

#[test]
fn service_columns_match_upstream() {
    assert_eq!(
        names("", "services"),
        vec![
            ("Name", 0),
            ("Type", 0),
            ("Cluster-IP", 0),
            ("External-IP", 0),
            ("Port(s)", 0),
            ("Age", 0),
            ("Selector", 1),
        ]
    );
}

#[test]
fn node_port_service() {
    let svc = json!({
        "metadata": {"name": "web", "creationTimestamp": "2024-04-30T12:00:00Z"},
        "spec": {
            "type": "NodePort",
            "clusterIP": "10.43.12.7",
            "clusterIPs": ["10.43.12.7"],
            "selector": {"app": "web", "tier": "frontend"},
            "ports": [
                {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080, "nodePort": 30080},
                {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443, "nodePort": 30443}
            ]
        }
    });
    assert_eq!(
        cells("", "services", &svc, now()),
        vec![
            json!("web"),
            json!("NodePort"),
            json!("10.43.12.7"),
            json!("<none>"),
            json!("80:30080/TCP,443:30443/TCP"),
            json!("24h"),
            json!("app=web,tier=frontend"),
        ]
    );
}

#[test]
fn load_balancer_services() {
    let pending = json!({
        "metadata": {"name": "traefik", "creationTimestamp": "2024-05-01T11:58:00Z"},
        "spec": {
            "type": "LoadBalancer",
            "clusterIP": "10.43.100.1",
            "ports": [{"port": 80, "protocol": "TCP", "nodePort": 31080}, {"port": 53, "protocol": "UDP", "nodePort": 31053}],
            "selector": {"app": "traefik"}
        },
        "status": {"loadBalancer": {}}
    });
    assert_eq!(
        cells("", "services", &pending, now()),
        vec![
            json!("traefik"),
            json!("LoadBalancer"),
            json!("10.43.100.1"),
            json!("<pending>"),
            json!("80:31080/TCP,53:31053/UDP"),
            json!("2m"),
            json!("app=traefik"),
        ]
    );

    let mut assigned = pending.clone();
    assigned["status"]["loadBalancer"]["ingress"] =
        json!([{"ip": "192.168.1.11"}, {"ip": "192.168.1.10"}, {"hostname": "lb.example.com"}]);
    assert_eq!(
        cells("", "services", &assigned, now())[3],
        json!("192.168.1.10,192.168.1.11,lb.example.com")
    );

    assigned["spec"]["externalIPs"] = json!(["1.2.3.4"]);
    assert_eq!(
        cells("", "services", &assigned, now())[3],
        json!("192.168.1.10,192.168.1.11,lb.example.com,1.2.3.4")
    );
}

#[test]
fn cluster_ip_and_external_name_services() {
    let kubernetes = json!({
        "metadata": {"name": "kubernetes", "creationTimestamp": "2024-05-01T10:00:00Z"},
        "spec": {"type": "ClusterIP", "clusterIPs": ["10.43.0.1"], "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}
    });
    assert_eq!(
        cells("", "services", &kubernetes, now()),
        vec![
            json!("kubernetes"),
            json!("ClusterIP"),
            json!("10.43.0.1"),
            json!("<none>"),
            json!("443/TCP"),
            json!("120m"),
            json!("<none>"),
        ]
    );

    let headless = json!({
        "metadata": {"name": "db"},
        "spec": {"clusterIP": "None", "selector": {"app": "db"}}
    });
    assert_eq!(
        cells("", "services", &headless, now())[1..6],
        [
            json!("ClusterIP"),
            json!("None"),
            json!("<none>"),
            json!("<none>"),
            json!("<unknown>")
        ]
    );

    let external = json!({
        "metadata": {"name": "ext", "creationTimestamp": "2024-05-01T11:00:00Z"},
        "spec": {"type": "ExternalName", "externalName": "example.com"}
    });
    assert_eq!(
        cells("", "services", &external, now())[1..5],
        [
            json!("ExternalName"),
            json!("<none>"),
            json!("example.com"),
            json!("<none>")
        ]
    );
}

#[test]
fn ready_control_plane_node() {
    let node = json!({
        "metadata": {
            "name": "server-1",
            "creationTimestamp": "2024-04-01T12:00:00Z",
            "labels": {
                "kubernetes.io/hostname": "server-1",
                "node-role.kubernetes.io/control-plane": "true",
                "node-role.kubernetes.io/master": "true"
            }
        },
        "spec": {"podCIDR": "10.42.0.0/24"},
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True", "reason": "KubeletReady"}
            ],
            "addresses": [
                {"type": "InternalIP", "address": "192.168.1.5"},
                {"type": "Hostname", "address": "server-1"}
            ],
            "nodeInfo": {
                "kubeletVersion": "v1.32.3+k3rs1",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "kernelVersion": "6.1.0-18-amd64",
                "containerRuntimeVersion": "containerd://1.7.23"
            }
        }
    });
    assert_eq!(
        names("", "nodes"),
        vec![
            ("Name", 0),
            ("Status", 0),
            ("Roles", 0),
            ("Age", 0),
            ("Version", 0),
            ("Internal-IP", 1),
            ("External-IP", 1),
            ("OS-Image", 1),
            ("Kernel-Version", 1),
            ("Container-Runtime", 1),
        ]
    );
    assert_eq!(
        cells("", "nodes", &node, now()),
        vec![
            json!("server-1"),
            json!("Ready"),
            json!("control-plane,master"),
            json!("30d"),
            json!("v1.32.3+k3rs1"),
            json!("192.168.1.5"),
            json!("<none>"),
            json!("Debian GNU/Linux 12 (bookworm)"),
            json!("6.1.0-18-amd64"),
            json!("containerd://1.7.23"),
        ]
    );

    let mut cordoned = node.clone();
    cordoned["spec"]["unschedulable"] = json!(true);
    assert_eq!(
        cells("", "nodes", &cordoned, now())[1],
        json!("Ready,SchedulingDisabled")
    );

    let mut not_ready = node.clone();
    not_ready["status"]["conditions"][1]["status"] = json!("Unknown");
    assert_eq!(cells("", "nodes", &not_ready, now())[1], json!("NotReady"));

    let bare = json!({"metadata": {"name": "new"}});
    assert_eq!(
        cells("", "nodes", &bare, now())[1..5],
        [
            json!("Unknown"),
            json!("<none>"),
            json!("<unknown>"),
            json!("")
        ]
    );
}

#[test]
fn deployment() {
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "coredns", "namespace": "kube-system", "creationTimestamp": "2024-05-01T11:52:30Z"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
            "template": {
                "metadata": {"labels": {"k8s-app": "kube-dns"}},
                "spec": {"containers": [
                    {"name": "coredns", "image": "rancher/mirrored-coredns-coredns:1.12.0"},
                    {"name": "metrics", "image": "busybox"}
                ]}
            }
        },
        "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
    });
    assert_eq!(
        names("apps", "deployments"),
        vec![
            ("Name", 0),
            ("Ready", 0),
            ("Up-to-date", 0),
            ("Available", 0),
            ("Age", 0),
            ("Containers", 1),
            ("Images", 1),
            ("Selector", 1),
        ]
    );
    assert_eq!(
        cells("apps", "deployments", &deployment, now()),
        vec![
            json!("coredns"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("7m30s"),
            json!("coredns,metrics"),
            json!("rancher/mirrored-coredns-coredns:1.12.0,busybox"),
            json!("k8s-app=kube-dns"),
        ]
    );
}

#[test]
fn replica_set_daemon_set_stateful_set() {
    let rs = json!({
        "metadata": {"name": "web-5d8f7c9b4", "creationTimestamp": "2024-05-01T11:00:00Z"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d8f7c9b4"}},
                 "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}},
        "status": {"replicas": 2, "readyReplicas": 1}
    });
    assert_eq!(
        cells("apps", "replicasets", &rs, now()),
        vec![
            json!("web-5d8f7c9b4"),
            json!(2),
            json!(2),
            json!(1),
            json!("60m"),
            json!("nginx"),
            json!("nginx"),
            json!("app=web,pod-template-hash=5d8f7c9b4"),
        ]
    );

    let ds = json!({
        "metadata": {"name": "svclb-traefik", "creationTimestamp": "2024-05-01T11:00:00Z"},
        "spec": {"selector": {"matchLabels": {"app": "svclb"}},
                 "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                                       "containers": [{"name": "lb-80", "image": "klipper-lb"}]}}},
        "status": {"desiredNumberScheduled": 1, "currentNumberScheduled": 1, "numberReady": 1,
                   "updatedNumberScheduled": 1, "numberAvailable": 1}
    });
    assert_eq!(
        names("apps", "daemonsets")
            .iter()
            .map(|c| c.0)
            .collect::<Vec<_>>(),
        vec![
            "Name",
            "Desired",
            "Current",
            "Ready",
            "Up-to-date",
            "Available",
            "Node Selector",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
    assert_eq!(
        cells("apps", "daemonsets", &ds, now()),
        vec![
            json!("svclb-traefik"),
            json!(1),
            json!(1),
            json!(1),
            json!(1),
            json!(1),
            json!("kubernetes.io/os=linux"),
            json!("60m"),
            json!("lb-80"),
            json!("klipper-lb"),
            json!("app=svclb"),
        ]
    );

    let sts = json!({
        "metadata": {"name": "db", "creationTimestamp": "2024-05-01T11:00:00Z"},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "pg", "image": "postgres"}]}}},
        "status": {"readyReplicas": 3}
    });
    assert_eq!(
        cells("apps", "statefulsets", &sts, now()),
        vec![
            json!("db"),
            json!("3/3"),
            json!("60m"),
            json!("pg"),
            json!("postgres")
        ]
    );
}

#[test]
fn jobs_and_cron_jobs() {
    let job = json!({
        "metadata": {"name": "helm-install-traefik", "creationTimestamp": "2024-05-01T11:00:00Z"},
        "spec": {"completions": 1, "parallelism": 1, "backoffLimit": 1000,
                 "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}},
                 "template": {"spec": {"containers": [{"name": "helm", "image": "klipper-helm"}]}}},
        "status": {"succeeded": 1, "startTime": "2024-05-01T11:00:02Z", "completionTime": "2024-05-01T11:00:40Z",
                   "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}
    });
    assert_eq!(
        names("batch", "jobs")
            .iter()
            .map(|c| c.0)
            .collect::<Vec<_>>(),
        vec![
            "Name",
            "Status",
            "Completions",
            "Duration",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
    assert_eq!(
        cells("batch", "jobs", &job, now()),
        vec![
            json!("helm-install-traefik"),
            json!("Complete"),
            json!("1/1"),
            json!("38s"),
            json!("60m"),
            json!("helm"),
            json!("klipper-helm"),
            json!("batch.kubernetes.io/controller-uid=abc"),
        ]
    );

    let running = json!({
        "metadata": {"name": "work", "creationTimestamp": "2024-05-01T11:50:00Z"},
        "spec": {"parallelism": 3, "template": {"spec": {"containers": []}}},
        "status": {"succeeded": 1, "startTime": "2024-05-01T11:50:00Z"}
    });
    assert_eq!(
        cells("batch", "jobs", &running, now())[1..4],
        [json!("Running"), json!("1/1 of 3"), json!("10m")]
    );

    let cron = json!({
        "metadata": {"name": "backup", "creationTimestamp": "2024-04-30T12:00:00Z"},
        "spec": {"schedule": "*/5 * * * *", "suspend": false,
                 "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "backup"}]}}}}},
        "status": {"active": [{"name": "backup-1"}], "lastScheduleTime": "2024-05-01T11:55:00Z"}
    });
    assert_eq!(
        cells("batch", "cronjobs", &cron, now()),
        vec![
            json!("backup"),
            json!("*/5 * * * *"),
            json!("<none>"),
            json!("False"),
            json!(1),
            json!("5m"),
            json!("24h"),
            json!("b"),
            json!("backup"),
            json!("<none>"),
        ]
    );
}

#[test]
fn core_event() {
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "web-5d8f7c9b4-x2x7k.17c8a2b3c4d5e6f7", "namespace": "default",
                     "creationTimestamp": "2024-05-01T11:50:00Z"},
        "involvedObject": {"kind": "Pod", "name": "web-5d8f7c9b4-x2x7k", "namespace": "default",
                           "fieldPath": "spec.containers{nginx}"},
        "reason": "Pulled",
        "message": "Successfully pulled image \"nginx:1.25\" in 1.2s\n",
        "source": {"component": "kubelet", "host": "server-1"},
        "firstTimestamp": "2024-05-01T11:50:00Z",
        "lastTimestamp": "2024-05-01T11:58:00Z",
        "count": 3,
        "type": "Normal"
    });
    assert_eq!(
        names("", "events"),
        vec![
            ("Last Seen", 0),
            ("Type", 0),
            ("Reason", 0),
            ("Object", 0),
            ("Subobject", 1),
            ("Source", 1),
            ("Message", 0),
            ("First Seen", 1),
            ("Count", 1),
            ("Name", 1),
        ]
    );
    assert_eq!(
        cells("", "events", &event, now()),
        vec![
            json!("2m"),
            json!("Normal"),
            json!("Pulled"),
            json!("pod/web-5d8f7c9b4-x2x7k"),
            json!("spec.containers{nginx}"),
            json!("kubelet, server-1"),
            json!("Successfully pulled image \"nginx:1.25\" in 1.2s"),
            json!("10m"),
            json!(3),
            json!("web-5d8f7c9b4-x2x7k.17c8a2b3c4d5e6f7"),
        ]
    );

    // New-style event: eventTime only, series, reporting controller.
    let series = json!({
        "metadata": {"name": "n.1"},
        "involvedObject": {"kind": "Node", "name": "server-1"},
        "reason": "Starting", "type": "Normal", "message": "Starting kubelet.",
        "eventTime": "2024-05-01T11:00:00.123456Z",
        "series": {"count": 4, "lastObservedTime": "2024-05-01T11:59:00.000000Z"},
        "reportingController": "kubelet", "reportingInstance": "server-1"
    });
    let row = cells("", "events", &series, now());
    assert_eq!(row[0], json!("60s"));
    assert_eq!(row[3], json!("node/server-1"));
    assert_eq!(row[5], json!("kubelet, server-1"));
    // 59m59.876s: durations truncate.
    assert_eq!(row[7], json!("59m"));
    assert_eq!(row[8], json!(4));
}

#[test]
fn events_api_event() {
    let event = json!({
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "x.1"},
        "regarding": {"kind": "Deployment", "name": "web"},
        "reason": "ScalingReplicaSet", "type": "Normal",
        "note": "Scaled up replica set web-1 to 2",
        "deprecatedSource": {"component": "deployment-controller"},
        "deprecatedFirstTimestamp": "2024-05-01T11:00:00Z",
        "deprecatedLastTimestamp": "2024-05-01T11:00:00Z",
        "deprecatedCount": 1
    });
    assert_eq!(
        cells("events.k8s.io", "events", &event, now()),
        vec![
            json!("60m"),
            json!("Normal"),
            json!("ScalingReplicaSet"),
            json!("deployment/web"),
            json!(""),
            json!("deployment-controller"),
            json!("Scaled up replica set web-1 to 2"),
            json!("60m"),
            json!(1),
            json!("x.1"),
        ]
    );
}

#[test]
fn endpoints_and_slices() {
    let endpoints = json!({
        "metadata": {"name": "web", "creationTimestamp": "2024-05-01T11:00:00Z"},
        "subsets": [{
            "addresses": [{"ip": "10.42.0.1"}, {"ip": "10.42.0.2"}, {"ip": "10.42.0.3"}, {"ip": "10.42.1.4"}, {"ip": "10.42.1.5"}],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]
        }]
    });
    assert_eq!(
        cells("", "endpoints", &endpoints, now()),
        vec![
            json!("web"),
            json!("10.42.0.1:80,10.42.0.2:80,10.42.0.3:80 + 2 more..."),
            json!("60m"),
        ]
    );
    let empty = json!({"metadata": {"name": "none"}});
    assert_eq!(cells("", "endpoints", &empty, now())[1], json!("<none>"));

    let slice = json!({
        "metadata": {"name": "web-abcde", "creationTimestamp": "2024-05-01T11:00:00Z"},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
        "endpoints": [{"addresses": ["10.42.0.1"]}, {"addresses": ["10.42.0.2"]}]
    });
    assert_eq!(
        cells("discovery.k8s.io", "endpointslices", &slice, now()),
        vec![
            json!("web-abcde"),
            json!("IPv4"),
            json!("80"),
            json!("10.42.0.1,10.42.0.2"),
            json!("60m"),
        ]
    );
    let bare_slice = json!({"metadata": {"name": "s"}, "addressType": "IPv4"});
    assert_eq!(
        cells("discovery.k8s.io", "endpointslices", &bare_slice, now())[2..4],
        [json!("<unset>"), json!("<unset>")]
    );
}

#[test]
fn config_objects() {
    let cm = json!({"metadata": {"name": "kube-root-ca.crt", "creationTimestamp": "2024-05-01T11:00:00Z"},
                    "data": {"ca.crt": "..."}, "binaryData": {"x": "AA=="}});
    assert_eq!(
        cells("", "configmaps", &cm, now()),
        vec![json!("kube-root-ca.crt"), json!(2), json!("60m")]
    );
    let secret = json!({"metadata": {"name": "tls", "creationTimestamp": "2024-05-01T11:00:00Z"},
                        "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}});
    assert_eq!(
        cells("", "secrets", &secret, now()),
        vec![
            json!("tls"),
            json!("kubernetes.io/tls"),
            json!(2),
            json!("60m")
        ]
    );
    let sa = json!({"metadata": {"name": "default", "creationTimestamp": "2024-05-01T11:00:00Z"}});
    assert_eq!(
        cells("", "serviceaccounts", &sa, now()),
        vec![json!("default"), json!(0), json!("60m")]
    );
    let ns = json!({"metadata": {"name": "kube-system", "creationTimestamp": "2024-05-01T11:00:00Z"},
                    "status": {"phase": "Active"}});
    assert_eq!(
        cells("", "namespaces", &ns, now()),
        vec![json!("kube-system"), json!("Active"), json!("60m")]
    );
    let lease = json!({"metadata": {"name": "server-1", "creationTimestamp": "2024-05-01T11:00:00Z"},
                       "spec": {"holderIdentity": "server-1", "leaseDurationSeconds": 40}});
    assert_eq!(
        cells("coordination.k8s.io", "leases", &lease, now()),
        vec![json!("server-1"), json!("server-1"), json!("60m")]
    );
}

#[test]
fn ingress() {
    let ingress = json!({
        "metadata": {"name": "web", "creationTimestamp": "2024-05-01T11:00:00Z"},
        "spec": {
            "ingressClassName": "traefik",
            "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}, {}, {"host": "c.example.com"}, {"host": "d.example.com"}],
            "tls": [{"hosts": ["a.example.com"]}]
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.10"}]}}
    });
    assert_eq!(
        cells("networking.k8s.io", "ingresses", &ingress, now()),
        vec![
            json!("web"),
            json!("traefik"),
            json!("a.example.com,b.example.com,c.example.com + 2 more..."),
            json!("192.168.1.10"),
            json!("80, 443"),
            json!("60m"),
        ]
    );
    let bare = json!({"metadata": {"name": "x"}, "spec": {"defaultBackend": {}}});
    assert_eq!(
        cells("networking.k8s.io", "ingresses", &bare, now())[1..5],
        [json!("<none>"), json!("*"), json!(""), json!("80")]
    );
}

#[test]
fn storage_and_rbac() {
    let sc = json!({
        "metadata": {"name": "local-path", "creationTimestamp": "2024-05-01T11:00:00Z",
                     "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer"
    });
    assert_eq!(
        cells("storage.k8s.io", "storageclasses", &sc, now()),
        vec![
            json!("local-path (default)"),
            json!("rancher.io/local-path"),
            json!("Delete"),
            json!("WaitForFirstConsumer"),
            json!(false),
            json!("60m"),
        ]
    );
    let pvc = json!({
        "metadata": {"name": "data", "creationTimestamp": "2024-05-01T11:00:00Z"},
        "spec": {"storageClassName": "local-path", "volumeName": "pvc-123", "accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Gi"}}, "volumeMode": "Filesystem"},
        "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}}
    });
    assert_eq!(
        cells("", "persistentvolumeclaims", &pvc, now()),
        vec![
            json!("data"),
            json!("Bound"),
            json!("pvc-123"),
            json!("1Gi"),
            json!("RWO"),
            json!("local-path"),
            json!("<unset>"),
            json!("60m"),
            json!("Filesystem"),
        ]
    );
    let binding = json!({
        "metadata": {"name": "admin", "creationTimestamp": "2024-05-01T11:00:00Z"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [
            {"kind": "User", "name": "alice"},
            {"kind": "Group", "name": "system:masters"},
            {"kind": "ServiceAccount", "name": "deployer", "namespace": "ci"}
        ]
    });
    assert_eq!(
        cells(
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            &binding,
            now()
        ),
        vec![
            json!("admin"),
            json!("ClusterRole/cluster-admin"),
            json!("60m"),
            json!("alice"),
            json!("system:masters"),
            json!("ci/deployer"),
        ]
    );
}

#[test]
fn default_printer_for_unknown_resources() {
    let cols = columns("apiextensions.k8s.io", "customresourcedefinitions");
    assert_eq!(cols.len(), 2);
    assert_eq!((cols[0].name, cols[0].format), ("Name", "name"));
    assert_eq!((cols[1].name, cols[1].type_), ("Created At", "date"));
    let crd = json!({"metadata": {"name": "helmcharts.helm.cattle.io",
                                  "creationTimestamp": "2024-05-01T11:00:00Z"}});
    assert_eq!(
        cells(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            &crd,
            now()
        ),
        vec![
            json!("helmcharts.helm.cattle.io"),
            json!("2024-05-01T11:00:00Z")
        ]
    );
    assert_eq!(
        cells(
            "example.com",
            "widgets",
            &json!({"metadata": {"name": "w"}}),
            now()
        ),
        vec![json!("w"), json!("0001-01-01T00:00:00Z")]
    );
}

/// Every printer yields exactly one cell per column, even for an empty object.
#[test]
fn cells_align_with_columns() {
    let resources = [
        ("", "pods"),
        ("", "services"),
        ("", "endpoints"),
        ("", "nodes"),
        ("", "namespaces"),
        ("", "events"),
        ("", "configmaps"),
        ("", "secrets"),
        ("", "serviceaccounts"),
        ("", "resourcequotas"),
        ("", "persistentvolumes"),
        ("", "persistentvolumeclaims"),
        ("", "replicationcontrollers"),
        ("", "limitranges"),
        ("events.k8s.io", "events"),
        ("discovery.k8s.io", "endpointslices"),
        ("apps", "deployments"),
        ("apps", "replicasets"),
        ("apps", "daemonsets"),
        ("apps", "statefulsets"),
        ("apps", "controllerrevisions"),
        ("batch", "jobs"),
        ("batch", "cronjobs"),
        ("autoscaling", "horizontalpodautoscalers"),
        ("policy", "poddisruptionbudgets"),
        ("networking.k8s.io", "ingresses"),
        ("networking.k8s.io", "ingressclasses"),
        ("networking.k8s.io", "networkpolicies"),
        ("coordination.k8s.io", "leases"),
        ("scheduling.k8s.io", "priorityclasses"),
        ("node.k8s.io", "runtimeclasses"),
        ("storage.k8s.io", "storageclasses"),
        ("storage.k8s.io", "volumeattachments"),
        ("storage.k8s.io", "csidrivers"),
        ("storage.k8s.io", "csinodes"),
        ("rbac.authorization.k8s.io", "roles"),
        ("rbac.authorization.k8s.io", "rolebindings"),
        ("rbac.authorization.k8s.io", "clusterrolebindings"),
        (
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
        ),
        ("certificates.k8s.io", "certificatesigningrequests"),
        ("apiextensions.k8s.io", "customresourcedefinitions"),
    ];
    for (group, plural) in resources {
        let cols = columns(group, plural);
        assert!(
            cols.iter().any(|c| c.name == "Name" && c.format == "name"),
            "{group}/{plural}"
        );
        for obj in [
            json!({}),
            json!({"metadata": {"name": "x"}, "spec": null, "status": 5}),
        ] {
            let row = cells(group, plural, &obj, now());
            assert_eq!(row.len(), cols.len(), "{group}/{plural}");
        }
    }
}

#[test]
fn table_shape() {
    let pod = running_pod();
    let t = table(
        "",
        "pods",
        std::slice::from_ref(&pod),
        "1234",
        Some("tok"),
        "Metadata",
        now(),
    );
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(
        t["metadata"],
        json!({"resourceVersion": "1234", "continue": "tok"})
    );
    assert_eq!(
        t["columnDefinitions"][0],
        json!({
            "name": "Name",
            "type": "string",
            "format": "name",
            "description": crate::columns::NAME_DESCRIPTION,
            "priority": 0
        })
    );
    assert_eq!(t["columnDefinitions"][5]["name"], "IP");
    assert_eq!(t["columnDefinitions"][5]["priority"], 1);
    let row = &t["rows"][0];
    assert_eq!(row["cells"][0], "web-5d8f7c9b4-x2x7k");
    assert!(row.get("conditions").is_none());
    assert_eq!(
        row["object"],
        json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": pod["metadata"].clone()
        })
    );

    let full = table(
        "",
        "pods",
        std::slice::from_ref(&pod),
        "",
        None,
        "Object",
        now(),
    );
    assert_eq!(full["metadata"], json!({}));
    assert_eq!(full["rows"][0]["object"], pod);

    let none = table(
        "",
        "pods",
        std::slice::from_ref(&pod),
        "1",
        Some(""),
        "None",
        now(),
    );
    assert_eq!(none["metadata"], json!({"resourceVersion": "1"}));
    assert!(none["rows"][0]["object"].is_null());

    let empty = table("apps", "deployments", &[], "7", None, "Metadata", now());
    assert_eq!(empty["rows"], json!([]));
    assert_eq!(empty["columnDefinitions"].as_array().unwrap().len(), 8);
}

#[test]
fn pod_status_edge_cases() {
    // One container completed while another still runs: Running (or NotReady).
    let mut pod = running_pod();
    pod["status"]["containerStatuses"][0]["state"] =
        json!({"terminated": {"exitCode": 0, "reason": "Completed"}});
    pod["status"]["containerStatuses"][0]["ready"] = json!(false);
    assert_eq!(
        cells("", "pods", &pod, now())[1..3],
        [json!("1/2"), json!("Running")]
    );
    pod["status"]["conditions"][1]["status"] = json!("False");
    assert_eq!(cells("", "pods", &pod, now())[2], json!("NotReady"));

    // Terminated without a reason shows the signal or exit code.
    let mut killed = running_pod();
    killed["status"]["containerStatuses"][1]["state"] = json!({"terminated": {"exitCode": 137}});
    assert_eq!(cells("", "pods", &killed, now())[2], json!("ExitCode:137"));
    killed["status"]["containerStatuses"][1]["state"] =
        json!({"terminated": {"exitCode": 0, "signal": 9}});
    assert_eq!(cells("", "pods", &killed, now())[2], json!("Signal:9"));

    // Scheduling gates and evictions.
    let gated = json!({
        "metadata": {"name": "g"},
        "spec": {"schedulingGates": [{"name": "example.com/wait"}], "containers": [{"name": "c"}]},
        "status": {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}
        ]}
    });
    assert_eq!(
        cells("", "pods", &gated, now())[2],
        json!("SchedulingGated")
    );
    let evicted = json!({
        "metadata": {"name": "e"},
        "spec": {"containers": [{"name": "c"}]},
        "status": {"phase": "Failed", "reason": "Evicted", "podIP": "10.42.0.9"}
    });
    let row = cells("", "pods", &evicted, now());
    assert_eq!(row[2], json!("Evicted"));
    assert_eq!(row[5], json!("10.42.0.9"));

    // A finished pod being deleted keeps its terminal status.
    let mut done = evicted.clone();
    done["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:59:00Z");
    assert_eq!(cells("", "pods", &done, now())[2], json!("Evicted"));
}

#[test]
fn job_statuses() {
    let job = |conditions: Value| {
        json!({
            "metadata": {"name": "j"},
            "spec": {"completions": 3, "template": {"spec": {"containers": []}}},
            "status": {"succeeded": 1, "conditions": conditions}
        })
    };
    let status = |j: &Value| cells("batch", "jobs", j, now())[1].clone();
    assert_eq!(
        status(&job(json!([{"type": "Failed", "status": "True"}]))),
        json!("Failed")
    );
    assert_eq!(
        status(&job(json!([{"type": "Suspended", "status": "True"}]))),
        json!("Suspended")
    );
    assert_eq!(
        status(&job(json!([{"type": "FailureTarget", "status": "True"}]))),
        json!("FailureTarget")
    );
    let mut deleting = job(json!([]));
    deleting["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:59:00Z");
    assert_eq!(status(&deleting), json!("Terminating"));
    let row = cells("batch", "jobs", &job(json!([])), now());
    assert_eq!(row[1..4], [json!("Running"), json!("1/3"), json!("")]);
}

#[test]
fn persistent_volume_with_defaults() {
    let pv = json!({
        "metadata": {"name": "pvc-123", "creationTimestamp": "2024-05-01T11:00:00Z",
                     "annotations": {"volume.beta.kubernetes.io/storage-class": "old"}},
        "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                 "storageClassName": "local-path",
                 "claimRef": {"namespace": "default", "name": "data"}},
        "status": {"phase": "Bound"}
    });
    assert_eq!(
        cells("", "persistentvolumes", &pv, now()),
        vec![
            json!("pvc-123"),
            json!("5Gi"),
            json!("RWO,RWX"),
            json!("Retain"),
            json!("Bound"),
            json!("default/data"),
            json!("old"),
            json!("<unset>"),
            json!(""),
            json!("60m"),
            json!("Filesystem"),
        ]
    );
}
