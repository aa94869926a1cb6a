//! A small Redis Cluster made of private servers.

use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::process::{POLL_INTERVAL, WAIT_TIMEOUT, find_binary, log_tail, run_bounded};
use crate::{RedisServer, TestCertificates};

/// Upper bound for `redis-cli --cluster create` (it normally needs 2 to 5 s,
/// mostly its own one-second polls while the nodes meet).
const CREATE_TIMEOUT: Duration = Duration::from_secs(30);

/// Number of hash slots of a Redis Cluster.
const SLOTS: usize = 16384;

/// A Redis Cluster of N ≥ 3 masters and no replicas, all on 127.0.0.1.
///
/// Each node is a [`RedisServer`] started with `--cluster-enabled yes
/// --cluster-config-file nodes.conf --cluster-node-timeout 2000` (and a free
/// `--cluster-port` for the cluster bus); the slots are split evenly by
/// `redis-cli --cluster create ... --cluster-replicas 0 --cluster-yes`.
/// [`RedisCluster::start`] returns only once every node reports
/// `cluster_state:ok`, knows all N nodes and sees all 16384 slots assigned.
/// All nodes are killed on drop.
#[derive(Debug)]
pub struct RedisCluster {
    /// The nodes, in the order given to `redis-cli --cluster create`.
    servers: Vec<RedisServer>,
    /// For a TLS cluster: the directory of the certificates all nodes share, and them.
    tls: Option<(TempDir, TestCertificates)>,
}

impl RedisCluster {
    /// Starts `masters` nodes (at least 3), joins them into a cluster and
    /// waits until it is healthy. Panics with the relevant logs on failure.
    pub fn start(masters: usize) -> RedisCluster {
        RedisCluster::start_with(masters, None)
    }

    /// Like [`RedisCluster::start`], but every node speaks TLS only to clients that use
    /// [`RedisCluster::nodes`] (its TLS port) and on the cluster bus (`--tls-cluster yes`), so
    /// `CLUSTER SLOTS` names the TLS ports. All nodes share one test CA and server
    /// certificate ([`RedisCluster::tls_certificates`]); with `client_auth` they require a
    /// client certificate (mutual TLS). Each node's plain port stays open for the harness
    /// ([`RedisServer::cmd`]).
    pub fn start_tls(masters: usize, client_auth: bool) -> RedisCluster {
        let dir = tempfile::Builder::new()
            .prefix("redis-test-certs-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        let certs = TestCertificates::generate(dir.path());
        RedisCluster::start_with(masters, Some((dir, certs, client_auth)))
    }

    /// The certificates of a [`RedisCluster::start_tls`] cluster. Panics for a plain one.
    pub fn tls_certificates(&self) -> &TestCertificates {
        match &self.tls {
            Some((_, certs)) => certs,
            None => panic!("this Redis Cluster has no TLS"),
        }
    }

    fn start_with(masters: usize, tls: Option<(TempDir, TestCertificates, bool)>) -> RedisCluster {
        assert!(
            masters >= 3,
            "a Redis Cluster needs at least 3 masters, {masters} requested"
        );
        let redis_cli = find_binary("redis-cli");
        let node_args: Vec<String> = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "2000",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let servers: Vec<RedisServer> = (0..masters)
            .map(|_| match &tls {
                None => RedisServer::launch(&node_args, true),
                Some((_, certs, client_auth)) => {
                    let mut args = node_args.clone();
                    args.extend(["--tls-cluster".to_owned(), "yes".to_owned()]);
                    RedisServer::launch_tls(&args, true, Some(certs.clone()), *client_auth)
                }
            })
            .collect();
        let cluster = RedisCluster {
            servers,
            tls: tls.map(|(dir, certs, _)| (dir, certs)),
        };

        let mut args = match &cluster.tls {
            Some((_, certs)) => certs.cli_args(),
            None => Vec::new(),
        };
        args.extend(["--cluster".to_owned(), "create".to_owned()]);
        args.extend(cluster.nodes());
        args.extend(
            ["--cluster-replicas", "0", "--cluster-yes"]
                .iter()
                .map(|s| (*s).to_owned()),
        );
        let first_dir = cluster.servers[0].dir();
        let create_log = first_dir.join("cluster-create.log");
        match run_bounded(&redis_cli, &args, first_dir, &create_log, CREATE_TIMEOUT) {
            Some(status) if status.success() => {}
            Some(status) => panic!(
                "`redis-cli --cluster create` failed ({status})\n{}",
                log_tail(&create_log, 60)
            ),
            None => panic!(
                "`redis-cli --cluster create` did not finish within {CREATE_TIMEOUT:?}\n{}",
                log_tail(&create_log, 60)
            ),
        }

        cluster.wait_healthy(&create_log);
        cluster
    }

    /// `127.0.0.1:PORT` of each node: its TLS port for a [`RedisCluster::start_tls`]
    /// cluster, else its plain port.
    pub fn nodes(&self) -> Vec<String> {
        self.servers
            .iter()
            .map(|s| match s.tls() {
                Some((port, _)) => format!("127.0.0.1:{port}"),
                None => format!("127.0.0.1:{}", s.port()),
            })
            .collect()
    }

    /// `redis://127.0.0.1:PORT/` of each node, e.g. as the initial nodes of a
    /// cluster client.
    pub fn urls(&self) -> Vec<String> {
        self.servers.iter().map(RedisServer::url).collect()
    }

    /// The nodes, e.g. to run [`RedisServer::cmd`] on one of them (the
    /// command then runs on that node only, and keys of other nodes' slots
    /// get a `MOVED` error).
    pub fn servers(&self) -> &[RedisServer] {
        &self.servers
    }

    /// The nodes, mutably, e.g. to [`RedisServer::stop`] one of them.
    pub fn servers_mut(&mut self) -> &mut [RedisServer] {
        &mut self.servers
    }

    /// Waits until every node reports `cluster_state:ok`, knows every node
    /// and sees every slot assigned.
    fn wait_healthy(&self, create_log: &std::path::Path) {
        let expected = [
            "cluster_state:ok".to_owned(),
            format!("cluster_slots_assigned:{SLOTS}"),
            format!("cluster_known_nodes:{}", self.servers.len()),
        ];
        let deadline = Instant::now() + WAIT_TIMEOUT;
        for server in &self.servers {
            loop {
                let info = match server.cmd(&["CLUSTER", "INFO"]) {
                    redis::Value::BulkString(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                    redis::Value::VerbatimString { text, .. } => text,
                    other => format!("{other:?}"),
                };
                let lines: Vec<&str> = info.lines().map(str::trim).collect();
                if expected.iter().all(|e| lines.contains(&e.as_str())) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "cluster node 127.0.0.1:{} not healthy {WAIT_TIMEOUT:?} after `redis-cli \
                     --cluster create`; expected {expected:?}, CLUSTER INFO says:\n{info}\n{}",
                    server.port(),
                    log_tail(create_log, 60)
                );
                thread::sleep(POLL_INTERVAL * 5);
            }
        }
    }
}
