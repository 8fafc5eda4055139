//! The `k3rs server` process from the outside: the state it creates on first start and
//! reuses on restart, the token, flag validation, config file precedence, clean shutdown
//! on SIGTERM, crash safety under kill -9, and startup time.

// Test tasks need no span: spawning them bare is fine.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k3rs_e2e::{binary, free_port, ok, K3rs};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use kube::client::Body;
use serde_json::json;

const TLS_FILES: &[&str] = &[
    "server-ca.crt",
    "client-ca.crt",
    "request-header-ca.crt",
    "serving-kube-apiserver.crt",
    "client-admin.crt",
    "service.key",
];

fn config_map(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": name}})).unwrap()
}

/// `K10` + 64 hex digits + `::server:` + a non-empty password of hex digits.
fn is_generated_token(token: &str) -> bool {
    let Some(rest) = token.strip_prefix("K10") else {
        return false;
    };
    let Some((hash, password)) = rest.split_once("::server:") else {
        return false;
    };
    hash.len() == 64
        && hash
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        && !password.is_empty()
        && password
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

fn read_token(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join("server/token"))
        .unwrap()
        .trim()
        .to_string()
}

fn openssl(args: &[&str]) -> String {
    ok(Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed"))
}

/// The DNS and IP names of a certificate's subjectAltName.
fn subject_alt_names(cert: &Path) -> BTreeSet<String> {
    let text = openssl(&[
        "x509",
        "-noout",
        "-ext",
        "subjectAltName",
        "-in",
        cert.to_str().unwrap(),
    ]);
    text.lines()
        .skip(1)
        .flat_map(|l| l.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// GET `path` with a bearer token and no client certificate; returns the HTTP code.
async fn get_with_bearer(server: &K3rs, path: &str, token: &str) -> u16 {
    let kubeconfig = kube::config::Kubeconfig::read_from(&server.kubeconfig).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    config.auth_info = Default::default();
    let client = kube::Client::try_from(config).unwrap();
    let request = http::Request::get(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    client.send(request).await.unwrap().status().as_u16()
}

#[tokio::test]
async fn first_start_creates_state_and_restart_reuses_it() {
    // Build (or find) the binary first: only the server's own startup is timed.
    binary();
    let started = Instant::now();
    let mut server = K3rs::start();
    let startup = started.elapsed();
    // Reported, not asserted (the harness fails after 30 s): speed is a benchmark figure.
    println!("first start to ready: {startup:?}");

    let server_dir = server.data_dir().join("server");
    let tls = server_dir.join("tls");
    for file in TLS_FILES {
        let path = tls.join(file);
        assert!(
            std::fs::metadata(&path).is_ok_and(|m| m.len() > 0),
            "{} missing or empty",
            path.display()
        );
    }
    let key_mode = std::fs::metadata(tls.join("service.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o077, 0, "service.key mode {key_mode:o}");
    assert!(server_dir.join("db/state.db").is_file());
    let token_meta = std::fs::metadata(server_dir.join("token")).unwrap();
    assert_eq!(token_meta.permissions().mode() & 0o777, 0o600);
    let token = read_token(&server.data_dir());
    assert!(is_generated_token(&token), "token {token:?}");
    let kubeconfig_mode = std::fs::metadata(&server.kubeconfig)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(kubeconfig_mode & 0o777, 0o600);

    // The token's hash is the SHA-256 of the server CA certificate, as k3s.
    let ca_path = tls.join("server-ca.crt");
    let digest = ok(Command::new("sha256sum").arg(&ca_path).output().unwrap());
    let ca_hash = digest.split_whitespace().next().unwrap();
    assert_eq!(
        &token[3..67],
        ca_hash,
        "token hash vs sha256 of server-ca.crt"
    );

    // The admin client certificate: CN system:admin, O system:masters, from the client CA.
    let admin = tls.join("client-admin.crt");
    let subject = openssl(&["x509", "-noout", "-subject", "-in", admin.to_str().unwrap()]);
    assert!(
        subject.contains("CN = system:admin") || subject.contains("CN=system:admin"),
        "{subject}"
    );
    assert!(
        subject.contains("O = system:masters") || subject.contains("O=system:masters"),
        "{subject}"
    );
    ok(Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(tls.join("client-ca.crt"))
        .arg(&admin)
        .output()
        .unwrap());
    ok(Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(&ca_path)
        .arg(tls.join("serving-kube-apiserver.crt"))
        .output()
        .unwrap());
    // The kubeconfig embeds that certificate.
    let kubeconfig = kube::config::Kubeconfig::read_from(&server.kubeconfig).unwrap();
    let embedded = kubeconfig.auth_infos[0]
        .auth_info
        .as_ref()
        .and_then(|a| a.client_certificate_data.clone())
        .expect("client-certificate-data");
    let decoded = decode_base64(&embedded);
    let pem = std::fs::read_to_string(&admin).unwrap();
    assert!(
        pem.contains(decoded.trim()),
        "kubeconfig cert is not client-admin.crt"
    );

    let before: Vec<(String, Vec<u8>)> = TLS_FILES
        .iter()
        .map(|f| (f.to_string(), std::fs::read(tls.join(f)).unwrap()))
        .collect();
    let client = server.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    cms.create(&PostParams::default(), &config_map("survivor"))
        .await
        .unwrap();

    // SIGTERM: a quick, clean exit.
    let stopping = Instant::now();
    let status = server.stop();
    let stop_time = stopping.elapsed();
    println!("SIGTERM to exit: {stop_time:?}");
    assert!(status.success(), "exit {status}; log:\n{}", server.log());
    assert!(
        stop_time < Duration::from_secs(5),
        "stop took {stop_time:?}"
    );

    server.start_again();
    for (file, bytes) in &before {
        assert_eq!(
            &std::fs::read(tls.join(file)).unwrap(),
            bytes,
            "{file} changed on restart"
        );
    }
    assert_eq!(read_token(&server.data_dir()), token);
    let client = server.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    assert_eq!(
        cms.get("survivor").await.unwrap().data.unwrap()["k"],
        "survivor"
    );
    // The old token still authenticates after the restart.
    assert_eq!(
        get_with_bearer(&server, "/api/v1/namespaces", &token).await,
        200
    );
}

fn decode_base64(text: &str) -> String {
    let mut child = Command::new("openssl")
        .args(["base64", "-d", "-A"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.trim().as_bytes())
        .unwrap();
    ok(child.wait_with_output().unwrap())
}

#[tokio::test]
async fn token_flag_sets_the_password_and_authenticates() {
    let server = K3rs::start_with(&["--token", "mysecret"]);
    let token = read_token(&server.data_dir());
    assert!(token.starts_with("K10"), "{token}");
    assert!(token.ends_with("::server:mysecret"), "{token}");
    assert_eq!(
        get_with_bearer(&server, "/api/v1/namespaces", "mysecret").await,
        200
    );
    assert_eq!(
        get_with_bearer(&server, "/api/v1/namespaces", &token).await,
        200
    );
    assert_eq!(
        get_with_bearer(&server, "/api/v1/namespaces", "mysecret2").await,
        401
    );
}

/// Run `k3rs server` with a private data dir and `args`, expecting it to fail at once.
/// Returns stderr.
fn run_failing(dir: &Path, args: &[&str]) -> String {
    let config = dir.join("empty.yaml");
    std::fs::write(&config, "").unwrap();
    let mut cmd = Command::new(binary());
    cmd.arg("server")
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--https-listen-port")
        .arg(free_port().to_string())
        .arg("--bind-address=127.0.0.1")
        .arg("--node-ip=127.0.0.1")
        .arg("--node-name=e2e-node")
        // These tests are about the server's flags; the agent has its own tests.
        .arg("--disable-agent")
        .arg("--write-kubeconfig")
        .arg(dir.join("kubeconfig.yaml"));
    if !args.iter().any(|a| a.starts_with("--config")) {
        cmd.arg("--config").arg(&config);
    }
    let mut child = cmd
        .args(args)
        .env_remove("KUBECONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("k3rs server {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(
        !dir.join("kubeconfig.yaml").exists(),
        "{args:?} got far enough to write a kubeconfig"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn invalid_flags_fail_with_one_line_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let unknown_key = dir.path().join("unknown.yaml");
    std::fs::write(&unknown_key, "no-such-flag: 1\n").unwrap();
    let not_a_file = dir.path().join("a-directory.yaml");
    std::fs::create_dir(&not_a_file).unwrap();
    let bad_yaml = dir.path().join("bad.yaml");
    std::fs::write(&bad_yaml, "tls-san: [unclosed\n").unwrap();
    let bad_value_in_file = dir.path().join("bad-value.yaml");
    std::fs::write(&bad_value_in_file, "cluster-cidr: 10.42.0.0/33\n").unwrap();

    let unknown_arg = format!("--config={}", unknown_key.display());
    let dir_arg = format!("--config={}", not_a_file.display());
    let yaml_arg = format!("--config={}", bad_yaml.display());
    let value_arg = format!("--config={}", bad_value_in_file.display());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--cluster-cidr", "10.42.0.0/33"], "--cluster-cidr"),
        (vec!["--cluster-cidr", "10.42.0.1/16"], "--cluster-cidr"),
        (vec!["--cluster-dns", "10.99.0.10"], "--cluster-dns"),
        (
            vec!["--service-node-port-range", "5-1"],
            "--service-node-port-range",
        ),
        (vec!["--service-cidr", "10.42.0.0/24"], "--service-cidr"),
        (vec!["--token-file", "/nonexistent/token"], "--token-file"),
        (vec!["--https-listen-port", "70000"], "--https-listen-port"),
        (
            vec!["--write-kubeconfig-mode", "999"],
            "--write-kubeconfig-mode",
        ),
        (vec!["--cluster-domain", "bad_domain!"], "--cluster-domain"),
        (vec![&unknown_arg], "no-such-flag"),
        (vec![&dir_arg], "a-directory.yaml"),
        (
            vec!["--config=/nonexistent/k3rs.yaml"],
            "/nonexistent/k3rs.yaml",
        ),
        (vec![&yaml_arg], "bad.yaml"),
        (vec![&value_arg], "--cluster-cidr"),
    ];
    for (args, names) in cases {
        let case = tempfile::tempdir().unwrap();
        let stderr = run_failing(case.path(), &args);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(
            lines.len(),
            1,
            "{args:?}: expected one line, got:\n{stderr}"
        );
        assert!(lines[0].contains(names), "{args:?}: {stderr}");
        assert!(lines[0].starts_with("k3rs: "), "{args:?}: {stderr}");
    }

    // An unknown flag is clap's error: non-zero and naming the flag.
    let case = tempfile::tempdir().unwrap();
    let stderr = run_failing(case.path(), &["--no-such-flag"]);
    assert!(stderr.contains("--no-such-flag"), "{stderr}");
}

/// A server started by hand so that its config files exist before the first start.
struct Launched {
    child: std::process::Child,
    dir: PathBuf,
}

impl Drop for Launched {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Launched {
    /// Start with `--config <dir>/config.yaml` and `extra`, and wait for the kubeconfig.
    fn start(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Launched {
        let log = std::fs::File::create(dir.join("k3rs.log")).unwrap();
        let mut cmd = Command::new(binary());
        cmd.arg("server")
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--https-listen-port")
            .arg(free_port().to_string())
            .arg("--bind-address=127.0.0.1")
            .arg("--node-ip=127.0.0.1")
            .arg("--node-name=e2e-node")
            // These tests are about the server's flags; the agent has its own tests.
            .arg("--disable-agent")
            .arg("--write-kubeconfig")
            .arg(dir.join("kubeconfig.yaml"))
            .arg("--config")
            .arg(dir.join("config.yaml"))
            .args(extra)
            .env_remove("KUBECONFIG")
            .env_remove("K3RS_CLUSTER_DOMAIN")
            .env_remove("K3RS_TLS_SAN");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let mut launched = Launched {
            child,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !dir.join("kubeconfig.yaml").exists() {
            if let Some(status) = launched.child.try_wait().unwrap() {
                panic!(
                    "k3rs exited with {status}:\n{}",
                    std::fs::read_to_string(dir.join("k3rs.log")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "no kubeconfig in 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        launched
    }

    fn sans(&self) -> BTreeSet<String> {
        subject_alt_names(&self.dir.join("data/server/tls/serving-kube-apiserver.crt"))
    }
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn svc_domain(sans: &BTreeSet<String>) -> Vec<String> {
    sans.iter()
        .filter_map(|s| s.strip_prefix("DNS:kubernetes.default.svc."))
        .map(str::to_string)
        .collect()
}

#[test]
fn config_file_dropins_env_and_command_line_precedence() {
    let write_configs = |dir: &Path, main: &str| {
        write(&dir.join("config.yaml"), main);
        write(
            &dir.join("config.yaml.d/10-a.yaml"),
            "tls-san+:\n  - from-dropin-a.example\n  - 192.0.2.55\ncluster-domain: dropin-a.example\n",
        );
        write(
            &dir.join("config.yaml.d/20-b.yaml"),
            "cluster-domain: dropin-b.example\n",
        );
        // Not YAML by name: ignored.
        write(
            &dir.join("config.yaml.d/30-c.txt"),
            "cluster-domain: ignored.example\n",
        );
    };

    // Main file + drop-ins in name order, `key+:` appending.
    let dir = tempfile::tempdir().unwrap();
    write_configs(
        dir.path(),
        "tls-san: [from-main.example]\ncluster-domain: main.example\n",
    );
    let server = Launched::start(dir.path(), &[], &[]);
    let sans = server.sans();
    for san in [
        "DNS:from-main.example",
        "DNS:from-dropin-a.example",
        "IP Address:192.0.2.55",
    ] {
        assert!(sans.contains(san), "{san} not in {sans:?}");
    }
    assert_eq!(svc_domain(&sans), ["dropin-b.example"], "{sans:?}");
    drop(server);

    // The command line beats the config file (and the environment).
    let dir = tempfile::tempdir().unwrap();
    write_configs(dir.path(), "cluster-domain: main.example\n");
    let server = Launched::start(
        dir.path(),
        &["--cluster-domain", "cli.example"],
        &[("K3RS_CLUSTER_DOMAIN", "env.example")],
    );
    assert_eq!(svc_domain(&server.sans()), ["cli.example"]);
    drop(server);

    // The environment is read when neither names the key.
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("config.yaml"), "");
    let server = Launched::start(dir.path(), &[], &[("K3RS_CLUSTER_DOMAIN", "env.example")]);
    assert_eq!(svc_domain(&server.sans()), ["env.example"]);
    drop(server);

    // The config file beats the environment: its keys become flags, as in k3s.
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("config.yaml"),
        "cluster-domain: file.example\n",
    );
    let server = Launched::start(dir.path(), &[], &[("K3RS_CLUSTER_DOMAIN", "env.example")]);
    assert_eq!(svc_domain(&server.sans()), ["file.example"]);
    drop(server);

    // Without any setting: cluster.local.
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("config.yaml"), "");
    let server = Launched::start(dir.path(), &[], &[]);
    assert_eq!(svc_domain(&server.sans()), ["cluster.local"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_a_write_burst_loses_no_acknowledged_write() {
    let mut server = K3rs::start();
    let client = server.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let burst = {
        let acknowledged = acknowledged.clone();
        tokio::spawn(async move {
            futures::stream::iter(0..200)
                .map(|i| {
                    let cms = cms.clone();
                    async move {
                        let name = format!("burst-{i:03}");
                        cms.create(&PostParams::default(), &config_map(&name))
                            .await
                            .map(|_| name)
                    }
                })
                .buffer_unordered(4)
                .for_each(|result| {
                    if let Ok(name) = result {
                        acknowledged.lock().unwrap().push(name);
                    }
                    async {}
                })
                .await;
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while acknowledged.lock().unwrap().len() < 60 {
        assert!(Instant::now() < deadline, "burst too slow");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill9();
    let _ = tokio::time::timeout(Duration::from_secs(30), burst).await;
    let acked: BTreeSet<String> = acknowledged.lock().unwrap().iter().cloned().collect();
    println!("acknowledged before kill -9: {}", acked.len());
    assert!(acked.len() < 200, "the kill came too late to test anything");

    server.start_again();
    let client = server.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let stored: BTreeSet<String> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    let lost: Vec<&String> = acked.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "acknowledged but lost after kill -9: {lost:?}"
    );
    // The store is usable: names never acknowledged can be (re)created or already exist.
    for i in 0..200 {
        let name = format!("burst-{i:03}");
        if !stored.contains(&name) {
            cms.create(&PostParams::default(), &config_map(&name))
                .await
                .unwrap();
        }
    }
    let bursts = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|c| {
            c.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("burst-"))
        })
        .count();
    assert_eq!(bursts, 200);
}
