//! Long-running kubectl commands against a real server: `get -w` (table rows and
//! `--output-watch-events` JSON/table event types for create, label and delete), and
//! `wait --for=delete` / `wait --for=jsonpath=...` returning as soon as the condition holds,
//! or timing out when it never does.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use k3rs_e2e::{ok, K3rs, KUBECTL_DIR, ROOT_CA};
use serde_json::Value;

/// How long a background kubectl may take to see an event on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(20);

/// A kubectl process running in the background whose stdout lines arrive on a channel.
/// It is killed (by its own process id) when dropped.
struct Background {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Background {
    /// Starts `bin` (`kubectl` or a versioned one) with the harness's environment.
    fn spawn(server: &K3rs, bin: &str, args: &[&str]) -> Background {
        let mut child = Command::new(bin)
            .args(args)
            .env("KUBECONFIG", &server.kubeconfig)
            .env("KUBECACHEDIR", server.dir.path().join("kubecache"))
            .env("HOME", server.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("run {bin}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Background {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads lines until `done` says the output so far is complete; panics after `DEADLINE`.
    fn read_until(&mut self, what: &str, done: impl Fn(&[String]) -> bool) -> &[String] {
        let deadline = Instant::now() + DEADLINE;
        while !done(&self.seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!(
                    "timed out waiting for {what}; output so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
        &self.seen
    }

    /// Waits for the process to exit by itself; returns (success, stdout, stderr).
    fn wait(mut self) -> (bool, String, String) {
        use std::io::Read;
        let deadline = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "kubectl did not exit; stdout: {:?}",
                self.seen
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (status.success(), self.seen.join("\n"), stderr)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SENTINEL: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: sentinel}\n";
const WATCHED: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: watched}\ndata: {k: v}\n";

/// Creates, labels and deletes `watched` once the watch has printed its initial list.
fn create_label_delete(server: &K3rs) {
    ok(server.kubectl_stdin(&["create", "-f", "-"], WATCHED));
    ok(server.kubectl(&["label", "cm", "watched", "stage=two"]));
    ok(server.kubectl(&["delete", "cm", "watched"]));
}

/// Parses a stream of (possibly pretty-printed) JSON documents.
fn json_documents(text: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("bad JSON stream ({e}):\n{text}"))
}

#[test]
fn get_watch_json_events_report_added_modified_deleted() {
    let server = K3rs::start();
    ok(server.kubectl_stdin(&["create", "-f", "-"], SENTINEL));
    let mut watch = Background::spawn(
        &server,
        "kubectl",
        &[
            "get",
            "configmaps",
            "-w",
            "--output-watch-events",
            "-o",
            "json",
        ],
    );
    // The initial list arrives as ADDED for the sentinel; later events are relative to it.
    watch.read_until("the sentinel", |seen| {
        seen.join("\n").contains("\"sentinel\"")
    });
    create_label_delete(&server);
    let seen = watch.read_until("the DELETED event", |seen| {
        json_documents(&seen.join("\n"))
            .iter()
            .any(|e| e["type"] == "DELETED")
    });
    let events: Vec<Value> = json_documents(&seen.join("\n"))
        .into_iter()
        .filter(|e| e["object"]["metadata"]["name"] != ROOT_CA)
        .collect();
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["object"]["metadata"]["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("ADDED", "sentinel"),
        ("ADDED", "watched"),
        ("MODIFIED", "watched"),
        ("DELETED", "watched"),
    ]
    .map(|(t, n)| (t.to_owned(), n.to_owned()));
    assert_eq!(summary, expected, "{events:#?}");
    assert_eq!(events[2]["object"]["metadata"]["labels"]["stage"], "two");
    assert_eq!(events[1]["object"]["data"]["k"], "v");
    let versions: Vec<u64> = events[1..]
        .iter()
        .map(|e| {
            e["object"]["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "resourceVersions increase: {versions:?}"
    );
}

#[test]
fn get_watch_table_prints_a_row_per_change_kubectl_132() {
    let server = K3rs::start();
    ok(server.kubectl_stdin(&["create", "-f", "-"], SENTINEL));
    let bin = format!("{KUBECTL_DIR}/kubectl.1.32");
    let mut watch = Background::spawn(&server, &bin, &["get", "cm", "-w", "--output-watch-events"]);
    watch.read_until("the sentinel row", |seen| {
        seen.iter().any(|l| l.contains("sentinel"))
    });
    create_label_delete(&server);
    let seen = watch.read_until("the DELETED row", |seen| {
        seen.iter().any(|l| l.starts_with("DELETED"))
    });
    let rows: Vec<Vec<&str>> = seen
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|cells| cells.get(1) != Some(&ROOT_CA))
        .collect();
    assert_eq!(rows[0], ["EVENT", "NAME", "DATA", "AGE"], "{seen:#?}");
    let events: Vec<(&str, &str, &str)> = rows[1..].iter().map(|r| (r[0], r[1], r[2])).collect();
    assert_eq!(
        events,
        [
            ("ADDED", "sentinel", "0"),
            ("ADDED", "watched", "1"),
            ("MODIFIED", "watched", "1"),
            ("DELETED", "watched", "1")
        ],
        "{seen:#?}"
    );
}

#[test]
fn get_watch_single_object_with_label_selector_sees_only_matches() {
    let server = K3rs::start();
    ok(server.kubectl_stdin(&["create", "-f", "-"], SENTINEL));
    ok(server.kubectl(&["label", "cm", "sentinel", "watch=me"]));
    let mut watch = Background::spawn(
        &server,
        "kubectl",
        &["get", "cm", "-l", "watch=me", "-w", "--no-headers"],
    );
    watch.read_until("the sentinel row", |seen| {
        seen.iter().any(|l| l.starts_with("sentinel "))
    });
    // Not matching the selector: never shown.
    ok(server.kubectl_stdin(&["create", "-f", "-"], WATCHED));
    ok(server.kubectl(&["annotate", "cm", "sentinel", "touched=yes"]));
    let seen = watch.read_until("the modified sentinel", |seen| seen.len() >= 2);
    assert!(seen.iter().all(|l| l.starts_with("sentinel ")), "{seen:#?}");
}

#[test]
fn wait_for_delete_returns_once_the_object_is_gone() {
    let server = K3rs::start();
    ok(server.kubectl_stdin(&["create", "-f", "-"], WATCHED));
    let started = Instant::now();
    let wait = Background::spawn(
        &server,
        "kubectl",
        &["wait", "--for=delete", "cm/watched", "--timeout=30s"],
    );
    // Give kubectl a moment to start its watch; correctness does not depend on it.
    std::thread::sleep(Duration::from_millis(300));
    ok(server.kubectl(&["delete", "cm", "watched"]));
    let (success, stdout, stderr) = wait.wait();
    assert!(success, "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(stdout, "configmap/watched condition met");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );

    // Already deleted: returns at once.
    let out = ok(server.kubectl(&["wait", "--for=delete", "cm/watched", "--timeout=5s"]));
    assert!(out.is_empty() || out.contains("condition met"), "{out}");
}

#[test]
fn wait_for_jsonpath_returns_when_the_value_matches() {
    let server = K3rs::start();
    ok(server.kubectl_stdin(&["create", "-f", "-"], WATCHED));
    let bin = format!("{KUBECTL_DIR}/kubectl.1.32");
    for (bin, value) in [("kubectl", "yes"), (bin.as_str(), "again")] {
        let condition = format!("--for=jsonpath={{.data.ready}}={value}");
        let wait = Background::spawn(
            &server,
            bin,
            &["wait", &condition, "cm/watched", "--timeout=30s"],
        );
        std::thread::sleep(Duration::from_millis(300));
        ok(server.kubectl(&[
            "patch",
            "cm",
            "watched",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"ready":"not-yet"}}"#,
        ]));
        let patch = format!(r#"{{"data":{{"ready":"{value}"}}}}"#);
        ok(server.kubectl(&["patch", "cm", "watched", "--type", "merge", "-p", &patch]));
        let (success, stdout, stderr) = wait.wait();
        assert!(success, "{bin}: stdout: {stdout}\nstderr: {stderr}");
        assert_eq!(stdout, "configmap/watched condition met", "{bin}");
    }
}

#[test]
fn wait_times_out_when_the_condition_never_holds() {
    let server = K3rs::start();
    ok(server.kubectl_stdin(&["create", "-f", "-"], WATCHED));
    let out = server.kubectl(&[
        "wait",
        "--for=jsonpath={.data.k}=other",
        "cm/watched",
        "--timeout=1s",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("timed out waiting for the condition on configmaps/watched"),
        "{stderr}"
    );
    let out = server.kubectl(&["wait", "--for=delete", "cm/watched", "--timeout=1s"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out waiting for the condition"));
}
