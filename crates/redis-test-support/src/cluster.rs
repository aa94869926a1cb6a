//! A small Redis Cluster made of private servers.
//!
//! This module builds the cluster (nodes, `redis-cli --cluster create`, the wait until it is
//! healthy); `CLUSTER NODES` is parsed in [`nodes`] and the replica and failover methods live
//! in [`replicas`], so that no file grows past a few hundred lines.

mod nodes;
mod replicas;
mod resharding;

use std::collections::HashMap;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::process::{POLL_INTERVAL, WAIT_TIMEOUT, find_binary, log_tail, run_bounded};
use crate::{RedisServer, TestCertificates};

use nodes::{parse_nodes, text};
use replicas::KilledNode;

/// Upper bound for `redis-cli --cluster create` (it normally needs 2 to 5 s,
/// mostly its own one-second polls while the nodes meet).
const CREATE_TIMEOUT: Duration = Duration::from_secs(30);

/// Number of hash slots of a Redis Cluster.
const SLOTS: usize = 16384;

/// `--cluster-node-timeout` of a cluster without replicas, in milliseconds: short, but long
/// enough that a node stalled by a loaded machine is not declared failed (which, with no
/// replica to take over, would take the cluster down).
const NODE_TIMEOUT_MS: &str = "2000";

/// Lines of each node's log quoted when a cluster wait times out.
const NODE_LOG_LINES: usize = 12;

/// A Redis Cluster of N ≥ 3 masters, without replicas ([`RedisCluster::start`]) or with R
/// replicas per master ([`RedisCluster::start_with_replicas`]), all on 127.0.0.1.
///
/// Each node is a [`RedisServer`] started with `--cluster-enabled yes
/// --cluster-config-file nodes.conf --cluster-node-timeout 2000` (1000 with replicas,
/// for faster failovers; and a free `--cluster-port` for the cluster bus); the slots are
/// split evenly by
/// `redis-cli --cluster create ... --cluster-replicas R --cluster-yes`.
/// The constructors return only once every node reports `cluster_state:ok`,
/// knows all nodes, sees all 16384 slots assigned and sees every node as
/// healthy with the expected number of masters and replicas (and, with
/// replicas, every replica's link to its master is up).
/// All nodes are killed on drop, also when the test panics.
#[derive(Debug)]
pub struct RedisCluster {
    /// The nodes, in the order given to `redis-cli --cluster create`.
    servers: Vec<RedisServer>,
    /// The node ID (`CLUSTER MYID`) of each server, in the order of `servers`.
    ids: Vec<String>,
    /// What [`RedisCluster::kill_node`] saw of each node it killed, by index.
    killed: HashMap<usize, KilledNode>,
    /// For a TLS cluster: the directory of the certificates all nodes share, and them.
    tls: Option<(TempDir, TestCertificates)>,
}

impl RedisCluster {
    /// Starts `masters` nodes (at least 3), joins them into a cluster and
    /// waits until it is healthy. Panics with the relevant logs on failure.
    pub fn start(masters: usize) -> RedisCluster {
        RedisCluster::start_with(masters, 0, None)
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
        RedisCluster::start_with(masters, 0, Some((dir, certs, client_auth)))
    }

    /// The certificates of a [`RedisCluster::start_tls`] cluster. Panics for a plain one.
    pub fn tls_certificates(&self) -> &TestCertificates {
        match &self.tls {
            Some((_, certs)) => certs,
            None => panic!("this Redis Cluster has no TLS"),
        }
    }

    /// Starts `masters * (1 + replicas)` nodes, creates the cluster with `replicas` replicas
    /// per master and waits until it is healthy.
    fn start_with(
        masters: usize,
        replicas: usize,
        tls: Option<(TempDir, TestCertificates, bool)>,
    ) -> RedisCluster {
        assert!(
            masters >= 3,
            "a Redis Cluster needs at least 3 masters, {masters} requested"
        );
        assert!(
            replicas == 0 || tls.is_none(),
            "a TLS Redis Cluster with replicas is not supported by the harness"
        );
        let redis_cli = find_binary("redis-cli");
        let node_timeout = match replicas {
            0 => NODE_TIMEOUT_MS,
            _ => replicas::NODE_TIMEOUT_MS,
        };
        let mut node_args: Vec<String> = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            node_timeout,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        if replicas > 0 {
            node_args.extend(replicas::REPLICA_NODE_ARGS.iter().map(|s| (*s).to_owned()));
        }
        let servers: Vec<RedisServer> = (0..masters * (1 + replicas))
            .map(|_| match &tls {
                None => RedisServer::launch(&node_args, true),
                Some((_, certs, client_auth)) => {
                    let mut args = node_args.clone();
                    args.extend(["--tls-cluster".to_owned(), "yes".to_owned()]);
                    RedisServer::launch_tls(&args, true, Some(certs.clone()), *client_auth)
                }
            })
            .collect();
        let mut cluster = RedisCluster {
            servers,
            ids: Vec::new(),
            killed: HashMap::new(),
            tls: tls.map(|(dir, certs, _)| (dir, certs)),
        };

        let mut args = match &cluster.tls {
            Some((_, certs)) => certs.cli_args(),
            None => Vec::new(),
        };
        args.extend(["--cluster".to_owned(), "create".to_owned()]);
        args.extend(cluster.nodes());
        args.extend([
            "--cluster-replicas".to_owned(),
            replicas.to_string(),
            "--cluster-yes".to_owned(),
        ]);
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

        cluster.wait_healthy(masters, replicas, &create_log);
        // Each node's own view is complete; also wait until they name the same master for
        // every slot, so that a client's first slot map, from whichever node, is the one every
        // node will answer by.
        cluster.wait_settled();
        cluster.ids = cluster
            .servers
            .iter()
            .map(|server| text(&server.cmd(&["CLUSTER", "MYID"])))
            .collect();
        cluster
    }

    /// A cluster-enabled server that has joined no Cluster: it knows no slot, and answers
    /// `CLUSTER SLOTS` with an empty list (as a node being added, or one asked before the
    /// Cluster has formed, does). Killed on drop.
    pub fn unjoined_node() -> RedisServer {
        let args: Vec<String> = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        RedisServer::launch(&args, true)
    }

    /// Makes `newcomer` (an [`RedisCluster::unjoined_node`]) meet this Cluster's first node
    /// (`CLUSTER MEET` with its bus port) and waits until the newcomer knows every slot: it is
    /// a master without slots then, and answers `CLUSTER SLOTS` as the others do.
    pub fn join(&self, newcomer: &RedisServer) {
        let view = text(&self.servers[0].cmd(&["CLUSTER", "NODES"]));
        let me = view
            .lines()
            .find(|line| line.contains("myself"))
            .unwrap_or_else(|| panic!("no `myself` in CLUSTER NODES:\n{view}"));
        // `<id> <ip:port@cport[,hostname]> ...`
        let bus = me
            .split_whitespace()
            .nth(1)
            .and_then(|addr| addr.split_once('@'))
            .map(|(_, rest)| rest.split(',').next().unwrap_or(rest).to_owned())
            .unwrap_or_else(|| panic!("no bus port in {me:?}"));
        let port = self.servers[0].port().to_string();
        newcomer.cmd(&["CLUSTER", "MEET", "127.0.0.1", &port, &bus]);
        self.poll_until(
            "the newcomer to know every slot",
            WAIT_TIMEOUT,
            None,
            || {
                let info = text(&newcomer.cmd(&["CLUSTER", "INFO"]));
                match info
                    .lines()
                    .any(|l| l.trim() == format!("cluster_slots_ok:{SLOTS}"))
                {
                    true => Ok(()),
                    false => Err(format!("the newcomer's CLUSTER INFO:\n{info}")),
                }
            },
        );
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

    /// Waits until every node reports `cluster_state:ok`, knows every node, sees every slot
    /// assigned, sees `masters` masters and `masters * replicas` replicas none of which is
    /// failing or still in the handshake, and, on a replica, reports `master_link_status:up`.
    fn wait_healthy(&self, masters: usize, replicas: usize, create_log: &Path) {
        let expected = [
            "cluster_state:ok".to_owned(),
            format!("cluster_slots_assigned:{SLOTS}"),
            format!("cluster_slots_ok:{SLOTS}"),
            format!("cluster_known_nodes:{}", self.servers.len()),
        ];
        self.poll_until(
            "the cluster to be healthy after `redis-cli --cluster create`",
            WAIT_TIMEOUT,
            Some(create_log),
            || {
                for server in &self.servers {
                    let port = server.port();
                    let info = text(&server.cmd(&["CLUSTER", "INFO"]));
                    let lines: Vec<&str> = info.lines().map(str::trim).collect();
                    if let Some(missing) = expected.iter().find(|e| !lines.contains(&e.as_str())) {
                        return Err(format!(
                            "node {port}: no `{missing}` in CLUSTER INFO:\n{info}"
                        ));
                    }
                    let view = text(&server.cmd(&["CLUSTER", "NODES"]));
                    let nodes = parse_nodes(&view);
                    let bad = nodes.iter().any(|n| {
                        ["fail", "fail?", "handshake", "noaddr"]
                            .iter()
                            .any(|f| n.has_flag(f))
                    });
                    let seen_masters = nodes.iter().filter(|n| n.has_flag("master")).count();
                    let seen_replicas = nodes
                        .iter()
                        .filter(|n| n.has_flag("slave") && n.master_id.is_some())
                        .count();
                    if bad || seen_masters != masters || seen_replicas != masters * replicas {
                        return Err(format!(
                            "node {port} expects {masters} masters and {} replicas, all \
                             healthy; CLUSTER NODES says:\n{view}",
                            masters * replicas
                        ));
                    }
                    let me = nodes.iter().find(|n| n.has_flag("myself"));
                    if me.is_some_and(|n| n.has_flag("slave")) {
                        let replication = text(&server.cmd(&["INFO", "replication"]));
                        if !replication.contains("master_link_status:up") {
                            return Err(format!(
                                "replica {port} has not synced with its master:\n{replication}"
                            ));
                        }
                    }
                }
                Ok(())
            },
        );
    }

    /// Polls `check` every 50 ms until it returns `Ok`, and returns its value. After
    /// `timeout`, panics with `what`, the last reason `check` gave, the tail of `extra_log`
    /// and the tail of every node's log.
    fn poll_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        extra_log: Option<&Path>,
        mut check: impl FnMut() -> Result<T, String>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let reason = match check() {
                Ok(value) => return value,
                Err(reason) => reason,
            };
            if Instant::now() >= deadline {
                let mut logs: Vec<String> =
                    extra_log.map(|l| log_tail(l, 60)).into_iter().collect();
                logs.extend(
                    self.servers
                        .iter()
                        .map(|s| log_tail(&s.log, NODE_LOG_LINES)),
                );
                panic!(
                    "timed out after {timeout:?} waiting for {what}: {reason}\n{}",
                    logs.join("\n")
                );
            }
            thread::sleep(POLL_INTERVAL * 5);
        }
    }
}
