//! `kubectl get` output against a real server: server-side Tables for namespaces, services,
//! pods, deployments, configmaps and secrets (plain and `-o wide`), `--show-labels`, label and
//! field selectors, `-o yaml|json|jsonpath|name`, and `--chunk-size` paging — with the
//! dispatcher (kubectl 1.33) and, for most scenarios, kubectl 1.32 too.

use k3rs_e2e::{ok, K3rs, ROOT_CA};
use serde_json::Value;

/// The kubectl releases every scenario here runs with: the dispatcher, then 1.32.
const CLIENTS: [Option<&str>; 2] = [None, Some("1.32")];

/// Writes `yaml` into the server's temp dir and runs `kubectl create -f` on it.
fn create_from_file(server: &K3rs, name: &str, yaml: &str) -> String {
    let path = server.dir.path().join(name);
    std::fs::write(&path, yaml).unwrap();
    ok(server.kubectl(&["create", "-f", path.to_str().unwrap()]))
}

/// Whitespace-separated cells of the table line whose first cell is `name`.
fn row<'a>(table: &'a str, name: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&name))
        .unwrap_or_else(|| panic!("no row {name:?} in:\n{table}"))
}

fn header(table: &str) -> Vec<&str> {
    table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect()
}

/// First cells of the table's rows, without the CA bundle the server publishes into every
/// namespace in the background (`kube-root-ca.crt`), which may or may not exist yet.
fn names(table: &str) -> Vec<&str> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != ROOT_CA)
        .collect()
}

const POD: &str = "\
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  containers:
  - name: nginx
    image: nginx:1.25
    ports: [{containerPort: 80}]
";

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  labels: {app: api}
spec:
  replicas: 3
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
      - name: api
        image: nginx:1.25
        ports: [{containerPort: 8080, name: http}]
";

/// Seven labelled configmaps `cm1`..`cm7`: `env=e<i mod 3>`, `idx=<i>`; only odd ones have `odd`.
fn seven_configmaps() -> String {
    (1..=7)
        .map(|i| {
            let odd = if i % 2 == 1 { ", odd: \"yes\"" } else { "" };
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm{i}\n  labels: {{env: e{}, idx: \"{i}\"{odd}}}\ndata: {{a: \"1\", b: \"2\"}}\n---\n",
                i % 3
            )
        })
        .collect()
}

#[test]
fn get_namespaces_shows_the_four_defaults_active() {
    let server = K3rs::start();
    for version in CLIENTS {
        let table = ok(server.kubectl_release(version, &["get", "ns"]));
        assert_eq!(
            header(&table),
            ["NAME", "STATUS", "AGE"],
            "{version:?}:\n{table}"
        );
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            assert_eq!(row(&table, ns)[1], "Active", "{version:?}:\n{table}");
        }
        assert_eq!(names(&table).len(), 4, "{version:?}:\n{table}");
    }
}

#[test]
fn get_services_all_namespaces_wide_shows_the_kubernetes_service() {
    let server = K3rs::start();
    for version in CLIENTS {
        let table = ok(server.kubectl_release(version, &["get", "svc", "-A", "-o", "wide"]));
        assert_eq!(
            header(&table),
            [
                "NAMESPACE",
                "NAME",
                "TYPE",
                "CLUSTER-IP",
                "EXTERNAL-IP",
                "PORT(S)",
                "AGE",
                "SELECTOR"
            ],
            "{version:?}:\n{table}"
        );
        let cells = row(&table, "default");
        assert_eq!(cells[1], "kubernetes", "{table}");
        assert_eq!(cells[2], "ClusterIP", "{table}");
        assert_eq!(cells[3], "10.43.0.1", "{table}");
        assert_eq!(cells[4], "<none>", "{table}");
        assert_eq!(cells[5], "443/TCP", "{table}");
        assert_eq!(cells[7], "<none>", "{table}");
    }
}

#[test]
fn get_pods_shows_a_pending_pod_with_ready_zero_of_one() {
    let server = K3rs::start();
    assert_eq!(
        create_from_file(&server, "pod.yaml", POD).trim(),
        "pod/web created"
    );
    for version in CLIENTS {
        let table = ok(server.kubectl_release(version, &["get", "pods"]));
        assert_eq!(
            header(&table),
            ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
            "{table}"
        );
        assert_eq!(
            &row(&table, "web")[1..4],
            ["0/1", "Pending", "0"],
            "{version:?}:\n{table}"
        );

        let wide = ok(server.kubectl_release(version, &["get", "pods", "-o", "wide"]));
        assert_eq!(
            header(&wide),
            [
                "NAME",
                "READY",
                "STATUS",
                "RESTARTS",
                "AGE",
                "IP",
                "NODE",
                "NOMINATED",
                "NODE",
                "READINESS",
                "GATES"
            ],
            "{version:?}:\n{wide}"
        );
        let cells = row(&wide, "web");
        assert_eq!(
            &cells[5..],
            ["<none>", "<none>", "<none>", "<none>"],
            "{wide}"
        );
    }
}

#[test]
fn get_deployments_shows_replica_columns_and_wide_containers() {
    let server = K3rs::start();
    create_from_file(&server, "deployment.yaml", DEPLOYMENT);
    for version in CLIENTS {
        let table = ok(server.kubectl_release(version, &["get", "deployments"]));
        assert_eq!(
            header(&table),
            ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
            "{table}"
        );
        // No nodes exist, so nothing is ready or available; UP-TO-DATE counts pods of the
        // current template (0 without a deployment controller, at most 3 with one).
        let cells = row(&table, "api");
        assert_eq!([cells[1], cells[3]], ["0/3", "0"], "{version:?}:\n{table}");
        let up_to_date: u32 = cells[2].parse().expect("UP-TO-DATE is a count");
        assert!(up_to_date <= 3, "{table}");

        let wide = ok(server.kubectl_release(version, &["get", "deploy", "api", "-o", "wide"]));
        assert_eq!(
            header(&wide),
            [
                "NAME",
                "READY",
                "UP-TO-DATE",
                "AVAILABLE",
                "AGE",
                "CONTAINERS",
                "IMAGES",
                "SELECTOR"
            ],
            "{version:?}:\n{wide}"
        );
        assert_eq!(
            &row(&wide, "api")[5..],
            ["api", "nginx:1.25", "app=api"],
            "{wide}"
        );
    }
}

#[test]
fn get_configmaps_and_secrets_count_their_data() {
    let server = K3rs::start();
    let yaml = "\
apiVersion: v1
kind: ConfigMap
metadata: {name: three}
data: {a: x, b: x}
binaryData: {c: AAEC}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: empty}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
type: kubernetes.io/basic-auth
data: {username: dXNlcg==, password: cGFzcw==}
---
apiVersion: v1
kind: Secret
metadata: {name: opaque}
data: {token: dA==}
";
    create_from_file(&server, "data.yaml", yaml);
    for version in CLIENTS {
        let cms = ok(server.kubectl_release(version, &["get", "configmaps"]));
        assert_eq!(header(&cms), ["NAME", "DATA", "AGE"], "{cms}");
        assert_eq!(row(&cms, "three")[1], "3", "{version:?}:\n{cms}");
        assert_eq!(row(&cms, "empty")[1], "0", "{version:?}:\n{cms}");

        let secrets = ok(server.kubectl_release(version, &["get", "secrets"]));
        assert_eq!(
            header(&secrets),
            ["NAME", "TYPE", "DATA", "AGE"],
            "{secrets}"
        );
        assert_eq!(
            &row(&secrets, "creds")[1..3],
            ["kubernetes.io/basic-auth", "2"],
            "{secrets}"
        );
        assert_eq!(&row(&secrets, "opaque")[1..3], ["Opaque", "1"], "{secrets}");
    }
}

#[test]
fn get_with_label_and_field_selectors_filters_rows() {
    let server = K3rs::start();
    create_from_file(&server, "cms.yaml", &seven_configmaps());
    for version in CLIENTS {
        let get = |args: &[&str]| {
            let mut full = vec!["get", "configmaps"];
            full.extend_from_slice(args);
            ok(server.kubectl_release(version, &full))
        };

        let shown = get(&["--show-labels"]);
        assert_eq!(header(&shown), ["NAME", "DATA", "AGE", "LABELS"], "{shown}");
        assert_eq!(
            row(&shown, "cm1")[3],
            "env=e1,idx=1,odd=yes",
            "{version:?}:\n{shown}"
        );
        assert_eq!(
            row(&shown, "cm2")[3],
            "env=e2,idx=2",
            "{version:?}:\n{shown}"
        );

        let equal = get(&["-l", "env=e0"]);
        assert_eq!(names(&equal), ["cm3", "cm6"], "{version:?}:\n{equal}");
        let not_equal = get(&["-l", "env!=e0,odd=yes"]);
        assert_eq!(
            names(&not_equal),
            ["cm1", "cm5", "cm7"],
            "{version:?}:\n{not_equal}"
        );
        let set = get(&["-l", "env in (e1,e2)"]);
        assert_eq!(
            names(&set),
            ["cm1", "cm2", "cm4", "cm5", "cm7"],
            "{version:?}:\n{set}"
        );
        let not_in = get(&["-l", "env notin (e1,e2),odd"]);
        assert_eq!(names(&not_in), ["cm3"], "{version:?}:\n{not_in}");
        let absent = get(&["-l", "!odd"]);
        assert_eq!(
            names(&absent),
            ["cm2", "cm4", "cm6"],
            "{version:?}:\n{absent}"
        );

        let field = get(&["--field-selector", "metadata.name=cm4"]);
        assert_eq!(names(&field), ["cm4"], "{version:?}:\n{field}");
        let field_not = get(&["--field-selector", "metadata.name!=cm4", "-l", "env=e1"]);
        assert_eq!(
            names(&field_not),
            ["cm1", "cm7"],
            "{version:?}:\n{field_not}"
        );

        let none = server.kubectl_release(version, &["get", "configmaps", "-l", "env=nope"]);
        assert_eq!(ok(none.clone()), "", "{version:?}");
        let stderr = String::from_utf8_lossy(&none.stderr);
        assert!(
            stderr.contains("No resources found in default namespace."),
            "{stderr}"
        );
    }
}

#[test]
fn get_output_formats_yaml_json_jsonpath_and_name() {
    // No controllers: the Deployment must not change between the outputs compared.
    let server = K3rs::start_with(&["--disable-controller-manager"]);
    create_from_file(&server, "deployment.yaml", DEPLOYMENT);
    for version in CLIENTS {
        let yaml = ok(server.kubectl_release(version, &["get", "deploy", "api", "-o", "yaml"]));
        let from_yaml: Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(from_yaml["kind"], "Deployment", "{yaml}");
        assert_eq!(from_yaml["apiVersion"], "apps/v1", "{yaml}");
        assert_eq!(from_yaml["metadata"]["namespace"], "default", "{yaml}");
        assert_eq!(from_yaml["spec"]["replicas"], 3, "{yaml}");

        let json = ok(server.kubectl_release(version, &["get", "deploy", "api", "-o", "json"]));
        let from_json: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(from_json, from_yaml, "yaml and json disagree");
        let port = &from_json["spec"]["template"]["spec"]["containers"][0]["ports"][0];
        assert_eq!(port["containerPort"], 8080, "{json}");
        assert_eq!(port["protocol"], "TCP", "defaulted: {json}");
        assert!(
            from_json["metadata"]["uid"]
                .as_str()
                .is_some_and(|u| u.len() == 36),
            "{json}"
        );

        let list = ok(server.kubectl_release(version, &["get", "deploy", "-o", "json"]));
        let list: Value = serde_json::from_str(&list).unwrap();
        assert_eq!(list["kind"], "List");
        assert_eq!(list["items"].as_array().unwrap().len(), 1);

        let path = ok(server.kubectl_release(
            version,
            &[
                "get",
                "deploy",
                "api",
                "-o",
                "jsonpath={.spec.template.spec.containers[0].image}",
            ],
        ));
        assert_eq!(path, "nginx:1.25");
        let range = ok(server.kubectl_release(
            version,
            &[
                "get",
                "ns",
                "-o",
                "jsonpath={range .items[*]}{.metadata.name}={.status.phase};{end}",
            ],
        ));
        assert_eq!(
            range,
            "default=Active;kube-node-lease=Active;kube-public=Active;kube-system=Active;"
        );

        let name = ok(server.kubectl_release(version, &["get", "deploy,svc", "-o", "name"]));
        assert_eq!(name, "deployment.apps/api\nservice/kubernetes\n");
    }
}

#[test]
fn get_with_chunk_size_pages_through_every_object_once() {
    let server = K3rs::start();
    create_from_file(&server, "cms.yaml", &seven_configmaps());
    let expected: Vec<String> = (1..=7).map(|i| format!("configmap/cm{i}")).collect();
    for version in CLIENTS {
        // -v=6 logs each request, so the test sees that paging really happened.
        let out = server.kubectl_release(
            version,
            &["get", "cm", "--chunk-size=2", "-o", "name", "-v=6"],
        );
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        let all: Vec<String> = ok(out).lines().map(str::to_owned).collect();
        let mut unique = all.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), all.len(), "an object listed twice: {all:?}");
        let listed: Vec<&String> = all.iter().filter(|n| !n.ends_with(ROOT_CA)).collect();
        assert_eq!(listed, expected.iter().collect::<Vec<_>>(), "{version:?}");
        let requests: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("GET") && l.contains("/configmaps?"))
            .collect();
        assert_eq!(
            requests.len(),
            all.len().div_ceil(2),
            "{} objects in pages of 2:\n{log}",
            all.len()
        );
        assert_eq!(
            requests.iter().filter(|r| r.contains("continue=")).count(),
            requests.len() - 1,
            "{requests:#?}"
        );

        let table = ok(server.kubectl_release(version, &["get", "cm", "--chunk-size=2"]));
        assert_eq!(
            table.lines().filter(|l| l.starts_with("NAME")).count(),
            1,
            "one header across pages:\n{table}"
        );
        assert_eq!(
            names(&table),
            ["cm1", "cm2", "cm3", "cm4", "cm5", "cm6", "cm7"],
            "{table}"
        );

        let selected = ok(server.kubectl_release(
            version,
            &["get", "cm", "--chunk-size=1", "-l", "env=e1", "-o", "name"],
        ));
        assert_eq!(selected, "configmap/cm1\nconfigmap/cm4\nconfigmap/cm7\n");
    }
}
