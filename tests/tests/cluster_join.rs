//! Joins the server must refuse, on a real two-node cluster (see `k3rs_e2e::cluster`):
//! a wrong token password, a token whose CA hash is not the server's, and a second
//! machine claiming an existing node's name with its own node password. Each agent says
//! why in its log, and the cluster is left as it was: no Node object for the refused
//! agent and the existing node's password Secret unchanged. Needs root.

use std::time::Duration;

use k3rs_e2e::cluster::{AgentOptions, Backend, Cluster};
use k3rs_e2e::ok;

/// The refused agents never get further than the join, so a few seconds suffice.
const REFUSAL: Duration = Duration::from_secs(30);

fn secret_name(node: &str) -> String {
    format!("{node}.node-password.k3rs")
}

/// `resourceVersion` and `data.hash` of a node's password Secret, or None if absent.
fn password_secret(cluster: &Cluster, node: &str) -> Option<(String, String)> {
    let out = cluster.kubectl(&[
        "get",
        "secret",
        "-n",
        "kube-system",
        &secret_name(node),
        "-o",
        "jsonpath={.metadata.resourceVersion} {.data.hash}",
    ]);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("NotFound"), "kubectl get secret: {err}");
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (version, hash) = text.split_once(' ').expect("two fields");
    Some((version.to_string(), hash.to_string()))
}

fn assert_no_node(cluster: &Cluster, node: &str) {
    let out = cluster.kubectl(&["get", "node", node]);
    assert!(
        !out.status.success(),
        "a refused agent left Node {node}:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        password_secret(cluster, node),
        None,
        "a refused agent left Secret {}",
        secret_name(node)
    );
}

#[test]
fn refused_joins_say_why_and_leave_nothing_behind() {
    let mut cluster = Cluster::start(2, Backend::Vxlan);
    let token = cluster.server_token();
    let (ca_part, password) = token.split_once("::").expect("a full K10 token");
    let password = password
        .split_once(':')
        .expect("user:password")
        .1
        .to_string();

    // 1. The right CA hash but a wrong password.
    let wrong = format!("{ca_part}::server:not-{password}");
    let agent = cluster.start_agent(AgentOptions {
        index: 3,
        name: "refused-token".into(),
        token: wrong,
        password_file: None,
    });
    let line = agent.wait_log("refused the token", REFUSAL);
    eprintln!("wrong token: {line}");
    drop(agent);
    assert_no_node(&cluster, "refused-token");

    // 2. A CA hash that is not the server's: refused before any credential is sent,
    //    and the agent stops for good.
    let bad_hash = format!("K10{}::server:{password}", "0".repeat(64));
    let mut agent = cluster.start_agent(AgentOptions {
        index: 3,
        name: "refused-ca".into(),
        token: bad_hash,
        password_file: None,
    });
    assert!(
        agent.wait_exit(REFUSAL),
        "an agent whose token's CA hash does not match kept running; log:\n{}",
        agent.log_tail(20)
    );
    let log = agent.log();
    assert!(
        log.contains("CA certificate does not match the token"),
        "the agent's log does not say the CA hash did not match:\n{}",
        agent.log_tail(20)
    );
    eprintln!("wrong CA hash: {}", agent.log_tail(3));
    drop(agent);
    assert_no_node(&cluster, "refused-ca");

    // 3. Another machine (its own password file) claiming node 2's name.
    let existing = cluster.nodes[1].name.clone();
    let before = password_secret(&cluster, &existing).expect("node 2's password Secret");
    let node_before =
        ok(cluster.kubectl(&["get", "node", &existing, "-o", "jsonpath={.metadata.uid}"]));
    let impostor = cluster.start_agent(AgentOptions {
        index: 3,
        name: existing.clone(),
        token: token.clone(),
        password_file: Some(cluster.nodes[0].dir.join("impostor-password")),
    });
    let line = impostor.wait_log("already joined the cluster", REFUSAL);
    eprintln!("duplicate node name: {line}");
    drop(impostor);
    assert_eq!(
        password_secret(&cluster, &existing),
        Some(before),
        "the refused join changed Secret {}",
        secret_name(&existing)
    );
    let node_after =
        ok(cluster.kubectl(&["get", "node", &existing, "-o", "jsonpath={.metadata.uid}"]));
    assert_eq!(node_before, node_after, "node {existing} was replaced");
    cluster.wait_nodes_ready(2, Duration::from_secs(30));
}
