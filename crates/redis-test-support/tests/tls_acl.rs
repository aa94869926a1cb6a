//! Tests of the harness's TLS servers, test certificates and ACL users, checked with
//! `redis-cli` (an independent TLS client) against real redis-server processes.

use std::process::{Command, Output};

use redis::Value;
use redis_test_support::{RedisCluster, RedisServer, TestCertificates};

/// `redis-cli --tls` on the server's TLS port, trusting `ca`, with a client certificate if
/// `client` is given; bounded by `timeout 10`.
fn cli_tls(server: &RedisServer, ca: &str, client: Option<(&str, &str)>, args: &[&str]) -> Output {
    let port = server.tls_port().to_string();
    let mut cmd = Command::new("timeout");
    cmd.args(["10", "redis-cli", "-h", "127.0.0.1", "-p", &port, "--tls"]);
    cmd.args(["--cacert", ca]);
    if let Some((cert, key)) = client {
        cmd.args(["--cert", cert, "--key", key]);
    }
    cmd.args(args).output().expect("run redis-cli")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn tls_server_answers_over_tls_with_its_own_ca() {
    let server = RedisServer::start_tls(false);
    let certs = server.tls_certificates();
    assert!(certs.ca.starts_with(server.dir()));
    assert_ne!(server.tls_port(), server.port());
    let out = cli_tls(&server, path(&certs.ca), None, &["PING"]);
    assert_eq!(text(&out).trim(), "PONG", "{}", text(&out));
    // The harness's own plain port still works.
    assert_eq!(server.cmd(&["PING"]), Value::SimpleString("PONG".into()));

    // A CA made by another call is not trusted.
    let other = tempfile::tempdir().expect("tempdir");
    let foreign = TestCertificates::generate(other.path());
    let out = cli_tls(&server, path(&foreign.ca), None, &["PING"]);
    assert!(!text(&out).contains("PONG"), "{}", text(&out));
}

#[test]
fn mutual_tls_server_needs_the_client_certificate() {
    let server = RedisServer::start_tls(true);
    let certs = server.tls_certificates();
    let client = (path(&certs.client_cert), path(&certs.client_key));
    let out = cli_tls(&server, path(&certs.ca), Some(client), &["PING"]);
    assert_eq!(text(&out).trim(), "PONG", "{}", text(&out));
    let out = cli_tls(&server, path(&certs.ca), None, &["PING"]);
    assert!(!text(&out).contains("PONG"), "{}", text(&out));
}

#[test]
fn acl_user_can_run_only_what_its_rules_allow() {
    let server = RedisServer::start();
    server.add_acl_user("app", "pw", &["~dm:*", "resetchannels", "-@all", "+get"]);
    let port = server.port().to_string();
    let cli = |args: &[&str]| {
        let mut cmd = Command::new("timeout");
        cmd.args([
            "10",
            "redis-cli",
            "-p",
            &port,
            "--user",
            "app",
            "--pass",
            "pw",
        ]);
        cmd.arg("--no-auth-warning");
        text(&cmd.args(args).output().expect("run redis-cli"))
    };
    assert_eq!(cli(&["GET", "dm:x"]).trim(), "");
    assert!(cli(&["GET", "other"]).contains("NOPERM"));
    assert!(cli(&["SET", "dm:x", "1"]).contains("NOPERM"));
}

#[test]
fn tls_cluster_serves_keys_over_tls_on_the_ports_it_announces() {
    let cluster = RedisCluster::start_tls(3, true);
    let certs = cluster.tls_certificates();
    for (node, server) in cluster.nodes().iter().zip(cluster.servers()) {
        assert_eq!(node, &format!("127.0.0.1:{}", server.tls_port()));
    }
    // Asked over TLS, CLUSTER SLOTS names the TLS ports (over the harness's plain port, the
    // plain ones), so a cluster client over TLS finds every node.
    let first = &cluster.servers()[0];
    let client = (path(&certs.client_cert), path(&certs.client_key));
    let slots = text(&cli_tls(
        first,
        path(&certs.ca),
        Some(client),
        &["CLUSTER", "SLOTS"],
    ));
    for server in cluster.servers() {
        let port = server.tls_port().to_string();
        assert!(slots.lines().any(|l| l.trim() == port), "{slots}");
    }
    for key in ["a", "b", "c", "d"] {
        let out = cli_tls(
            first,
            path(&certs.ca),
            Some(client),
            &["-c", "SET", key, "1"],
        );
        assert_eq!(text(&out).trim(), "OK", "{}", text(&out));
    }
}
