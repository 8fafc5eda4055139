//! Volumes, environment and DNS config of pods on the agent's node (needs root,
//! containerd, runc and the CNI plugins; see `k3rs_e2e::agent`): ConfigMap and Secret
//! volumes (with `items` and modes), the projected service-account token, downwardAPI,
//! emptyDir on disk shared between containers and in memory as tmpfs, hostPath, env from
//! ConfigMaps, Secrets, fields and resources, `/etc/hosts` and `/etc/resolv.conf`, and a
//! hostNetwork pod.

use std::time::Duration;

use k3rs_e2e::agent::{jwt_payload, pod_ip, AgentServer, BUSYBOX};
use k3rs_e2e::{ok, KUBECTL_DIR};
use serde_json::Value;

fn objects(host_dir: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
data:
  greeting: "hello world\n"
  settings.json: '{{"a":1}}'
  multi: "line1\nline2\n"
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: env-config
data:
  FROM_ENV_FROM: yes-indeed
  OTHER: other-value
---
apiVersion: v1
kind: Secret
metadata:
  name: app-secret
stringData:
  password: s3cr3t
  token: abc
---
apiVersion: v1
kind: Pod
metadata:
  name: vols
  labels: {{app: vols, tier: test}}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - name: config
    configMap: {{name: app-config}}
  - name: config-items
    configMap:
      name: app-config
      items:
      - {{key: settings.json, path: nested/dir/app.json}}
  - name: secret
    secret: {{secretName: app-secret, defaultMode: 0400}}
  - name: shared
    emptyDir: {{}}
  - name: mem
    emptyDir: {{medium: Memory}}
  - name: podinfo
    downwardAPI:
      items:
      - path: labels
        fieldRef: {{fieldPath: metadata.labels}}
      - path: name
        fieldRef: {{fieldPath: metadata.name}}
  containers:
  - name: main
    image: {BUSYBOX}
    command: ["sh", "-c", "echo from-main > /shared/note; exec sleep 3600"]
    resources:
      limits: {{memory: 64Mi}}
    volumeMounts:
    - {{name: config, mountPath: /etc/config}}
    - {{name: config-items, mountPath: /etc/config-items}}
    - {{name: secret, mountPath: /etc/secret}}
    - {{name: shared, mountPath: /shared}}
    - {{name: mem, mountPath: /mem}}
    - {{name: podinfo, mountPath: /etc/podinfo}}
    env:
    - name: GREETING
      valueFrom:
        configMapKeyRef: {{name: app-config, key: greeting}}
    - name: PASSWORD
      valueFrom:
        secretKeyRef: {{name: app-secret, key: password}}
    - name: POD_NAME
      valueFrom:
        fieldRef: {{fieldPath: metadata.name}}
    - name: POD_NAMESPACE
      valueFrom:
        fieldRef: {{fieldPath: metadata.namespace}}
    - name: POD_IP
      valueFrom:
        fieldRef: {{fieldPath: status.podIP}}
    - name: NODE_NAME
      valueFrom:
        fieldRef: {{fieldPath: spec.nodeName}}
    - name: MEMORY_LIMIT
      valueFrom:
        resourceFieldRef: {{resource: limits.memory}}
    - name: COMPOSED
      value: "pod $(POD_NAME) says $(GREETING_SHORT)"
    - name: GREETING_SHORT
      value: hi
    envFrom:
    - configMapRef: {{name: env-config}}
  - name: side
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    volumeMounts:
    - {{name: shared, mountPath: /shared}}
---
apiVersion: v1
kind: Pod
metadata:
  name: hostnet
spec:
  terminationGracePeriodSeconds: 1
  hostNetwork: true
  volumes:
  - name: host
    hostPath: {{path: "{host_dir}", type: DirectoryOrCreate}}
  containers:
  - name: main
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    volumeMounts:
    - {{name: host, mountPath: /host}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_env_dns_and_host_network() {
    let k = AgentServer::start();
    k.wait_node_ready(Duration::from_secs(30)).await;
    let host_dir = k.dir.path().join("hostpath");
    k.apply(&objects(host_dir.to_str().unwrap()));
    let pod = k.wait_pod_ready("vols").await;
    let ip = pod_ip(&pod);
    let cat = |path: &str| k.exec_in("vols", "main", &["cat", path]);

    // ---- ConfigMap volume: every key, exact bytes; items with a nested path.
    assert_eq!(cat("/etc/config/greeting"), "hello world\n");
    assert_eq!(cat("/etc/config/settings.json"), r#"{"a":1}"#);
    assert_eq!(cat("/etc/config/multi"), "line1\nline2\n");
    assert_eq!(cat("/etc/config-items/nested/dir/app.json"), r#"{"a":1}"#);
    assert_eq!(
        k.exec_in("vols", "main", &["ls", "/etc/config-items"])
            .trim(),
        "nested",
        "only the listed item is projected"
    );

    // ---- Secret volume: decoded values, defaultMode.
    assert_eq!(cat("/etc/secret/password"), "s3cr3t");
    assert_eq!(cat("/etc/secret/token"), "abc");
    assert_eq!(
        k.exec_in(
            "vols",
            "main",
            &["stat", "-L", "-c", "%a", "/etc/secret/password"]
        )
        .trim(),
        "400"
    );

    // ---- downwardAPI volume.
    assert_eq!(cat("/etc/podinfo/name"), "vols");
    let labels = cat("/etc/podinfo/labels");
    assert!(
        labels.contains("app=\"vols\"") && labels.contains("tier=\"test\""),
        "{labels}"
    );

    // ---- Projected service-account token, CA and namespace.
    let sa = "/var/run/secrets/kubernetes.io/serviceaccount";
    let token = cat(&format!("{sa}/token"));
    let claims = jwt_payload(&token);
    assert_eq!(claims["kubernetes.io"]["namespace"], "default", "{claims}");
    assert_eq!(claims["kubernetes.io"]["pod"]["name"], "vols", "{claims}");
    assert_eq!(
        claims["kubernetes.io"]["pod"]["uid"],
        Value::from(pod.metadata.uid.clone().unwrap()),
        "{claims}"
    );
    assert_eq!(claims["kubernetes.io"]["serviceaccount"]["name"], "default");
    assert_eq!(claims["sub"], "system:serviceaccount:default:default");
    let exp = claims["exp"].as_i64().expect("exp");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        exp > now + 600,
        "the token is valid for a while: exp {exp}, now {now}"
    );
    assert_eq!(cat(&format!("{sa}/namespace")), "default");
    let root_ca = k.stored("configmap", k3rs_e2e::ROOT_CA);
    assert_eq!(
        cat(&format!("{sa}/ca.crt")),
        root_ca["data"]["ca.crt"].as_str().unwrap()
    );
    // The API server accepts the token as the pod's service account.
    let ca_file = k.write_file("sa-ca.crt", root_ca["data"]["ca.crt"].as_str().unwrap());
    let whoami = ok(
        std::process::Command::new(format!("{KUBECTL_DIR}/kubectl.1.32"))
            .args([
                "--kubeconfig=/dev/null",
                &format!("--server=https://127.0.0.1:{}", k.port),
                &format!("--certificate-authority={ca_file}"),
                &format!("--token={}", token.trim()),
                "auth",
                "whoami",
                "-o",
                "jsonpath={.status.userInfo.username}",
            ])
            .env("HOME", k.dir.path())
            .output()
            .unwrap(),
    );
    assert_eq!(whoami, "system:serviceaccount:default:default");

    // ---- emptyDir shared between the containers; medium Memory is a tmpfs.
    assert_eq!(
        k.exec_in("vols", "side", &["cat", "/shared/note"]),
        "from-main\n"
    );
    k.exec_in(
        "vols",
        "side",
        &["sh", "-c", "echo from-side > /shared/reply"],
    );
    assert_eq!(cat("/shared/reply"), "from-side\n");
    let mounts = cat("/proc/mounts");
    let mount_type = |point: &str| {
        mounts
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(point))
            .and_then(|l| l.split_whitespace().nth(2))
            .map(str::to_string)
    };
    assert_eq!(mount_type("/mem").as_deref(), Some("tmpfs"), "{mounts}");
    assert_ne!(
        mount_type("/shared").as_deref(),
        Some("tmpfs"),
        "a disk emptyDir: {mounts}"
    );
    k.exec_in("vols", "main", &["sh", "-c", "echo in-memory > /mem/file"]);
    assert_eq!(cat("/mem/file"), "in-memory\n");

    // ---- Environment.
    let env = k.exec_in("vols", "main", &["env"]);
    let var = |name: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .map(str::to_string)
    };
    // GREETING ends with a newline, so `env` prints it on two lines.
    assert_eq!(
        k.exec_in("vols", "main", &["sh", "-c", "printf %s \"$GREETING\""]),
        "hello world\n"
    );
    assert_eq!(var("PASSWORD").as_deref(), Some("s3cr3t"));
    assert_eq!(var("POD_NAME").as_deref(), Some("vols"));
    assert_eq!(var("POD_NAMESPACE").as_deref(), Some("default"));
    assert_eq!(var("POD_IP").as_deref(), Some(ip.as_str()));
    assert_eq!(var("NODE_NAME").as_deref(), Some(k.node.as_str()));
    assert_eq!(var("MEMORY_LIMIT").as_deref(), Some("67108864"));
    // $(VAR) expands variables defined before it; later ones stay as written.
    assert_eq!(
        var("COMPOSED").as_deref(),
        Some("pod vols says $(GREETING_SHORT)")
    );
    assert_eq!(var("FROM_ENV_FROM").as_deref(), Some("yes-indeed"));
    assert_eq!(var("OTHER").as_deref(), Some("other-value"));
    // Service links, as upstream's enableServiceLinks default: the kubernetes Service.
    assert_eq!(
        var("KUBERNETES_SERVICE_HOST").as_deref(),
        Some("10.43.0.1"),
        "{env}"
    );
    assert_eq!(
        var("KUBERNETES_SERVICE_PORT").as_deref(),
        Some("443"),
        "{env}"
    );

    // ---- /etc/hosts and /etc/resolv.conf.
    assert_eq!(k.exec_in("vols", "main", &["hostname"]).trim(), "vols");
    let hosts = cat("/etc/hosts");
    assert!(
        hosts.lines().any(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            fields.first() == Some(&ip.as_str()) && fields.contains(&"vols")
        }),
        "/etc/hosts maps the pod IP to its hostname:\n{hosts}"
    );
    assert!(
        hosts
            .lines()
            .any(|l| l.starts_with("127.0.0.1") && l.contains("localhost")),
        "{hosts}"
    );
    let resolv = cat("/etc/resolv.conf");
    let lines: Vec<&str> = resolv.lines().map(str::trim).collect();
    assert!(lines.contains(&"nameserver 10.43.0.10"), "{resolv}");
    assert!(
        lines
            .iter()
            .any(|l| l
                .starts_with("search default.svc.cluster.local svc.cluster.local cluster.local")),
        "{resolv}"
    );
    assert!(lines.contains(&"options ndots:5"), "{resolv}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("nameserver")).count(),
        1,
        "only the cluster DNS: {resolv}"
    );

    // ---- hostNetwork pod: the host's interfaces and hostname; hostPath writes land on the host.
    let hostnet = k.wait_pod_ready("hostnet").await;
    assert_eq!(
        pod_ip(&hostnet),
        "127.0.0.1",
        "a hostNetwork pod has the node's IP"
    );
    let links = k.exec("hostnet", &["ip", "link"]);
    assert!(
        links.contains(": cni0:"),
        "the host's bridge is visible:\n{links}"
    );
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(k.exec("hostnet", &["hostname"]).trim(), host_name.trim());
    k.exec(
        "hostnet",
        &["sh", "-c", "echo written-in-pod > /host/from-pod"],
    );
    assert_eq!(
        std::fs::read_to_string(host_dir.join("from-pod")).unwrap(),
        "written-in-pod\n"
    );
}
