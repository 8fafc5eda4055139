//! What the identities a joined agent receives may do, on a real two-node cluster (see
//! `k3rs_e2e::cluster`): kube-proxy's and the k3rs controller's certificates can do their
//! jobs (RBAC's `system:node-proxier` and `system:k3rs-controller`) and cannot read
//! Secrets; the kubelet's certificate meets the Node authorizer — it reads the Secret its
//! pod mounts but not another node's, and writes its own Node but not the server's.
//! Each identity is used from inside the agent's network namespace, through its load
//! balancer, exactly as the agent uses it. Needs root.

use k3rs_e2e::cluster::{node_netns, Backend, Cluster};
use k3rs_e2e::ok;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joined_identities_get_what_they_need_and_no_more() {
    let cluster = Cluster::start(2, Backend::Vxlan);
    let agent = node_netns(2);
    let agent_dir = cluster.node(&agent).data_dir().join("agent");

    // The component identities the join issued can do their jobs, and no more: kube-proxy
    // reads EndpointSlices (system:node-proxier), the k3rs controller reads nodes
    // (system:k3rs-controller); neither reads Secrets.
    let as_component = |kubeconfig: &str, args: &[&str]| {
        let path = agent_dir.join(kubeconfig).display().to_string();
        let mut full = vec!["kubectl", "--kubeconfig", path.as_str()];
        full.extend_from_slice(args);
        cluster.node_exec(&agent, &full)
    };
    for (kubeconfig, allowed) in [
        ("kubeproxy.kubeconfig", &["get", "endpointslices", "-A"][..]),
        (
            "k3rscontroller.kubeconfig",
            &["get", "nodes", "-o", "name"][..],
        ),
    ] {
        let out = as_component(kubeconfig, allowed);
        assert!(
            out.status.success(),
            "{kubeconfig}: kubectl {allowed:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = as_component(kubeconfig, &["get", "secrets", "-n", "kube-system"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("Forbidden"),
            "{kubeconfig} may read Secrets: {err}"
        );
    }

    // The kubelet's own identity meets the Node authorizer: it reads the Secrets its pods
    // use and no others, and writes its own Node only.
    ok(cluster.kubectl(&[
        "create",
        "secret",
        "generic",
        "agent-only",
        "--from-literal=k=v",
    ]));
    cluster.apply(&format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: secret-user
spec:
  nodeSelector:
    kubernetes.io/hostname: {agent}
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {image}
    imagePullPolicy: Never
    command: [sh, -c, "cat /secret/k; echo; exec sleep 3600"]
    volumeMounts:
    - {{name: s, mountPath: /secret}}
  volumes:
  - {{name: s, secret: {{secretName: agent-only}}}}
"#,
        image = k3rs_e2e::agent::BUSYBOX
    ));
    cluster.wait_pod_ready("secret-user").await;
    assert_eq!(ok(cluster.kubectl(&["logs", "secret-user"])).trim(), "v");
    let kubelet = |args: &[&str]| as_component("kubelet.kubeconfig", args);
    let out = kubelet(&["get", "secret", "agent-only", "-o", "name"]);
    assert!(
        out.status.success(),
        "the kubelet cannot read its pod's Secret: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server_node = node_netns(1);
    let others = format!("{server_node}.node-password.k3rs");
    for (what, args) in [
        (
            "another node's password Secret",
            vec!["get", "secret", "-n", "kube-system", others.as_str()],
        ),
        ("every Secret", vec!["get", "secrets", "-A"]),
        (
            "another Node",
            vec!["label", "node", server_node.as_str(), "e2e.k3rs.io/x=y"],
        ),
    ] {
        let out = kubelet(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("Forbidden"),
            "the kubelet may touch {what}: {err}"
        );
    }
    // Nor may it register a Node under another name.
    let impostor = agent_dir.join("impostor-node.yaml");
    std::fs::write(
        &impostor,
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: impostor\n",
    )
    .unwrap();
    let out = kubelet(&["create", "-f", &impostor.display().to_string()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("not allowed to modify node \"impostor\""),
        "the kubelet registered another Node: {err}"
    );
    let out = kubelet(&["label", "node", agent.as_str(), "e2e.k3rs.io/own=yes"]);
    assert!(
        out.status.success(),
        "the kubelet cannot label its own Node: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
