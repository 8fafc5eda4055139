//! Service admission against a real `k3rs server`: ClusterIP and NodePort allocation
//! (unique under concurrency, requested values honoured or rejected, released on delete),
//! validation with upstream's field paths, and immutable cluster IPs.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use k3rs_e2e::{fails, ok, K3rs};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

fn service(name: &str, spec: Value) -> Service {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap()
}

fn web_spec() -> Value {
    json!({"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]})
}

fn status_of(err: kube::Error) -> Box<kube::core::Status> {
    match err {
        kube::Error::Api(status) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn cluster_ip(svc: &Service) -> String {
    svc.spec
        .as_ref()
        .unwrap()
        .cluster_ip
        .clone()
        .unwrap_or_default()
}

fn in_service_cidr(ip: &str) -> bool {
    let ip: Ipv4Addr = ip.parse().unwrap();
    let [a, b, c, d] = ip.octets();
    a == 10 && b == 43 && !(c == 0 && d == 0) && !(c == 255 && d == 255)
}

#[tokio::test]
async fn cluster_ips_are_unique_under_concurrent_creates() {
    let server = K3rs::start();
    let client = server.client().await;
    let api: Api<Service> = Api::namespaced(client, "default");
    let creates = (0..50).map(|i| {
        let api = api.clone();
        async move {
            api.create(
                &PostParams::default(),
                &service(&format!("svc-{i}"), web_spec()),
            )
            .await
            .unwrap()
        }
    });
    let created = futures::future::join_all(creates).await;
    let mut seen = HashSet::new();
    for svc in &created {
        let ip = cluster_ip(svc);
        assert!(in_service_cidr(&ip), "{ip}");
        assert_ne!(ip, "10.43.0.1", "the kubernetes Service's IP");
        assert!(seen.insert(ip.clone()), "{ip} handed out twice");
        let spec = svc.spec.as_ref().unwrap();
        assert_eq!(spec.cluster_ips.as_deref(), Some(&[ip][..]));
    }
    assert_eq!(seen.len(), 50);
    let kubernetes = api.get("kubernetes").await.unwrap();
    assert_eq!(cluster_ip(&kubernetes), "10.43.0.1");

    // kubectl shows the allocated address.
    let table = ok(server.kubectl(&["get", "svc", "svc-7"]));
    let ip = cluster_ip(&created[7]);
    assert!(table.contains(&ip), "{table}");
    assert!(table.contains("ClusterIP"), "{table}");
}

#[tokio::test]
async fn requested_cluster_ips_are_honoured_or_rejected() {
    let server = K3rs::start();
    let client = server.client().await;
    let api: Api<Service> = Api::namespaced(client, "default");
    let pp = PostParams::default();

    let mut spec = web_spec();
    spec["clusterIP"] = json!("10.43.0.20");
    let first = api
        .create(&pp, &service("first", spec.clone()))
        .await
        .unwrap();
    assert_eq!(cluster_ip(&first), "10.43.0.20");

    let taken = status_of(
        api.create(&pp, &service("second", spec.clone()))
            .await
            .unwrap_err(),
    );
    assert_eq!(taken.code, 422);
    assert_eq!(
        taken.message,
        r#"Service "second" is invalid: spec.clusterIPs: Invalid value: ["10.43.0.20"]: failed to allocate IP 10.43.0.20: provided IP is already allocated"#
    );

    let mut outside = web_spec();
    outside["clusterIP"] = json!("10.99.0.5");
    let err = status_of(
        api.create(&pp, &service("outside", outside))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert_eq!(
        err.message,
        r#"Service "outside" is invalid: spec.clusterIPs: Invalid value: ["10.99.0.5"]: failed to allocate IP 10.99.0.5: the provided IP (10.99.0.5) is not in the valid range. The range of valid IPs is 10.43.0.0/16"#
    );

    // The cluster IP may not change once set.
    let change =
        Patch::Merge(json!({"spec": {"clusterIP": "10.43.0.21", "clusterIPs": ["10.43.0.21"]}}));
    let err = status_of(
        api.patch("first", &PatchParams::default(), &change)
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert!(
        err.message.contains(
            r#"spec.clusterIPs[0]: Invalid value: ["10.43.0.21"]: may not change once set"#
        ),
        "{}",
        err.message
    );
    // A PUT without the IP keeps it.
    let mut current = api.get("first").await.unwrap();
    let spec = current.spec.as_mut().unwrap();
    spec.cluster_ip = None;
    spec.cluster_ips = None;
    let replaced = api.replace("first", &pp, &current).await.unwrap();
    assert_eq!(cluster_ip(&replaced), "10.43.0.20");

    // Deleting releases the address.
    api.delete("first", &DeleteParams::default()).await.unwrap();
    let again = api
        .create(&pp, &service("second", spec_with_ip("10.43.0.20")))
        .await
        .unwrap();
    assert_eq!(cluster_ip(&again), "10.43.0.20");

    // A dry run checks but records nothing.
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let err = status_of(
        api.create(&dry, &service("dry", spec_with_ip("10.43.0.20")))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    let planned = api
        .create(&dry, &service("dry", spec_with_ip("10.43.0.30")))
        .await
        .unwrap();
    assert_eq!(cluster_ip(&planned), "10.43.0.30");
    let real = api
        .create(&pp, &service("real", spec_with_ip("10.43.0.30")))
        .await
        .unwrap();
    assert_eq!(cluster_ip(&real), "10.43.0.30");
    // A create that fails after allocating (name taken) gives the address back.
    let err = status_of(
        api.create(&pp, &service("real", spec_with_ip("10.43.0.31")))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 409);
    api.create(&pp, &service("after-conflict", spec_with_ip("10.43.0.31")))
        .await
        .unwrap();

    // Headless and ExternalName Services get no address.
    let mut headless = web_spec();
    headless["clusterIP"] = json!("None");
    let headless = api
        .create(&pp, &service("headless", headless))
        .await
        .unwrap();
    let spec = headless.spec.unwrap();
    assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
    assert_eq!(spec.cluster_ips, Some(vec!["None".to_string()]));
    let external = api
        .create(
            &pp,
            &service(
                "external",
                json!({"type": "ExternalName", "externalName": "example.com"}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(external.spec.unwrap().cluster_ip, None);
    let table = ok(server.kubectl(&["get", "svc", "headless", "external"]));
    assert!(table.contains("None"), "{table}");
    assert!(table.contains("example.com"), "{table}");

    // Allocations survive a restart (and the startup repair keeps them).
    let mut server = server;
    server.restart();
    let client = server.client().await;
    let api: Api<Service> = Api::namespaced(client, "default");
    let err = status_of(
        api.create(&pp, &service("third", spec_with_ip("10.43.0.30")))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 422, "{}", err.message);
    assert_eq!(
        cluster_ip(&api.get("kubernetes").await.unwrap()),
        "10.43.0.1"
    );
}

fn spec_with_ip(ip: &str) -> Value {
    let mut spec = web_spec();
    spec["clusterIP"] = json!(ip);
    spec
}

fn node_port(svc: &Service, i: usize) -> i32 {
    svc.spec.as_ref().unwrap().ports.as_ref().unwrap()[i]
        .node_port
        .unwrap_or_default()
}

#[tokio::test]
async fn node_ports_are_allocated_checked_and_released() {
    let server = K3rs::start();
    let client = server.client().await;
    let api: Api<Service> = Api::namespaced(client, "default");
    let pp = PostParams::default();

    let auto = api
        .create(
            &pp,
            &service(
                "auto",
                json!({"type": "NodePort", "selector": {"app": "a"}, "ports": [
                    {"name": "http", "port": 80},
                    {"name": "dns", "port": 53, "protocol": "UDP"},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                ]}),
            ),
        )
        .await
        .unwrap();
    let (http, dns, dns_tcp) = (
        node_port(&auto, 0),
        node_port(&auto, 1),
        node_port(&auto, 2),
    );
    for p in [http, dns] {
        assert!((30000..=32767).contains(&p), "{p}");
    }
    assert_ne!(http, dns);
    assert_eq!(dns, dns_tcp, "TCP and UDP of one port share a node port");
    assert!(in_service_cidr(&cluster_ip(&auto)));

    let requested = json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]});
    let fixed = api
        .create(&pp, &service("fixed", requested.clone()))
        .await
        .unwrap();
    assert_eq!(node_port(&fixed, 0), 30080);
    let err = status_of(
        api.create(&pp, &service("clash", requested))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert_eq!(
        err.message,
        r#"Service "clash" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"#
    );
    let outside = json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 40000}]});
    let err = status_of(
        api.create(&pp, &service("outside", outside))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        err.message,
        r#"Service "outside" is invalid: spec.ports[0].nodePort: Invalid value: 40000: provided port is not in the valid range. The range of valid ports is 30000-32767"#
    );

    // A PUT that leaves node ports out keeps them.
    let mut current = api.get("auto").await.unwrap();
    for port in current.spec.as_mut().unwrap().ports.as_mut().unwrap() {
        port.node_port = None;
    }
    let replaced = api.replace("auto", &pp, &current).await.unwrap();
    assert_eq!(node_port(&replaced, 0), http);

    // Back to ClusterIP: the node port is released.
    let to_cluster_ip = Patch::Merge(json!({"spec": {"type": "ClusterIP"}}));
    let changed = api
        .patch("fixed", &PatchParams::default(), &to_cluster_ip)
        .await
        .unwrap();
    assert_eq!(node_port(&changed, 0), 0);
    let reuse = json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]});
    api.create(&pp, &service("reuse", reuse)).await.unwrap();

    // Deleting releases every node port.
    api.delete("auto", &DeleteParams::default()).await.unwrap();
    let again = json!({"type": "LoadBalancer", "ports": [{"name": "a", "port": 80, "nodePort": http}, {"name": "b", "port": 53, "nodePort": dns}]});
    let lb = api.create(&pp, &service("again", again)).await.unwrap();
    assert_eq!(node_port(&lb, 0), http);
    let table = ok(server.kubectl(&["get", "svc", "again"]));
    assert!(table.contains(&format!("80:{http}/TCP")), "{table}");
}

const INVALID_SERVICE: &str = "\
apiVersion: v1
kind: Service
metadata: {name: bad}
spec:
  type: ClusterIP
  ports:
  - {name: web, port: 0, protocol: TCP}
  - {name: web, port: 80, targetPort: Bad_Port}
  - {port: 81, protocol: ICMP}
";

#[test]
fn invalid_services_name_each_field() {
    let server = K3rs::start();
    let err = fails(server.kubectl_stdin(&["create", "-f", "-"], INVALID_SERVICE));
    for expected in [
        r#"The Service "bad" is invalid"#,
        "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
        r#"spec.ports[1].name: Duplicate value: "web""#,
        r#"spec.ports[1].targetPort: Invalid value: "Bad_Port": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"#,
        "spec.ports[2].name: Required value",
        r#"spec.ports[2].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP""#,
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    let err = fails(server.kubectl(&["create", "service", "clusterip", "noports", "--tcp=0:80"]));
    assert!(err.contains("spec.ports[0].port"), "{err}");
    let no_ports =
        "apiVersion: v1\nkind: Service\nmetadata: {name: empty}\nspec: {selector: {app: x}}\n";
    let err = fails(server.kubectl_stdin(&["create", "-f", "-"], no_ports));
    assert!(err.contains("spec.ports: Required value"), "{err}");
    let err = fails(server.kubectl(&["get", "svc", "bad"]));
    assert!(err.contains("not found"), "{err}");
}
