//! A Redis Cluster with replicas, and the crash-and-failover helpers its tests need.
//!
//! Kept apart from the cluster builder because failover is a different concern: it asks the
//! surviving nodes who serves which slot (`CLUSTER KEYSLOT`, `CLUSTER NODES`), remembers what
//! a killed master served, and polls until the cluster has promoted one of its replicas.

use std::time::Duration;

use super::RedisCluster;
use super::nodes::{NodeEntry, parse_nodes, text};
use crate::RedisServer;
use crate::process::WAIT_TIMEOUT;

/// `--cluster-node-timeout` of a cluster with replicas, in milliseconds. Half the plain
/// cluster's, so that a failover takes about 2 to 3 s instead of 4 to 5 s; measured
/// reliable on a 2-core machine also when both cores were kept busy.
pub(super) const NODE_TIMEOUT_MS: &str = "1000";

/// Extra `redis-server` arguments of the nodes of a cluster with replicas.
///
/// - `--cluster-replica-validity-factor 0`: a replica may always fail over, however long
///   ago it last heard from its master (the default refuses after `10 × node timeout`);
/// - `--cluster-replica-no-failover no` (the default, spelled out): replicas fail over on
///   their own when their master fails;
/// - `--repl-diskless-sync-delay 0`: a master sends the first full sync at once instead of
///   waiting 5 s for more replicas to connect, so start-up is not 5 s longer.
pub(super) const REPLICA_NODE_ARGS: [&str; 6] = [
    "--cluster-replica-validity-factor",
    "0",
    "--cluster-replica-no-failover",
    "no",
    "--repl-diskless-sync-delay",
    "0",
];

/// Upper bound for [`RedisCluster::wait_for_failover`]: detecting the failure takes the node
/// timeout (1 s) plus gossip, the replica then waits 0.5 to 1 s (more for a lower-ranked
/// replica) before asking the masters for their votes; the rest is a margin for a loaded
/// machine.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(WAIT_TIMEOUT.as_secs() * 3);

/// What [`RedisCluster::kill_node`] knew about a node just before killing it, as a surviving
/// node saw it.
#[derive(Debug)]
pub(super) struct KilledNode {
    /// The slot ranges it served as a master (empty for a replica).
    slots: Vec<(u16, u16)>,
    /// The node IDs of its replicas.
    replicas: Vec<String>,
}

impl RedisCluster {
    /// Starts a Redis Cluster of `masters` masters (at least 3) with `replicas_per_master`
    /// replicas each (`redis-cli --cluster create ... --cluster-replicas N`), so
    /// `masters * (1 + replicas_per_master)` nodes, and waits until it is healthy, including
    /// every replica reporting `master_link_status:up`, so that a failover can promote it at
    /// once. The nodes run with `--cluster-node-timeout 1000` and
    /// `--cluster-replica-validity-factor 0` (a replica may always fail over).
    ///
    /// Which node becomes a master is up to `redis-cli`; ask [`RedisCluster::master_for_key`]
    /// and [`RedisCluster::replicas_of`]. Panics with the relevant logs on failure.
    pub fn start_with_replicas(masters: usize, replicas_per_master: usize) -> RedisCluster {
        RedisCluster::start_with(masters, replicas_per_master, None)
    }

    /// The index into [`RedisCluster::servers`] of the master that serves `key`'s slot, as
    /// the first running node sees it (`CLUSTER KEYSLOT`, then `CLUSTER NODES`).
    ///
    /// While a failover is under way, that may still be the killed master; after
    /// [`RedisCluster::wait_for_failover`] all running nodes agree on the new one.
    pub fn master_for_key(&self, key: &str) -> usize {
        let node = self.running_node(None);
        let slot = match node.cmd(&["CLUSTER", "KEYSLOT", key]) {
            redis::Value::Int(slot) => u16::try_from(slot)
                .unwrap_or_else(|_| panic!("CLUSTER KEYSLOT {key:?} answered slot {slot}")),
            other => panic!("CLUSTER KEYSLOT {key:?} answered {other:?}"),
        };
        let view = text(&node.cmd(&["CLUSTER", "NODES"]));
        let owner = parse_nodes(&view)
            .into_iter()
            .find(|n| n.has_flag("master") && n.serves(slot))
            .unwrap_or_else(|| panic!("no master serves slot {slot} of {key:?}:\n{view}"));
        self.index_of(&owner.id)
    }

    /// The indexes into [`RedisCluster::servers`] of the replicas of node `master`, as the
    /// first running node other than `master` lists them in `CLUSTER NODES` (failed ones
    /// included: check [`RedisServer::is_running`]). Empty
    /// for a replica, or a master without replicas.
    pub fn replicas_of(&self, master: usize) -> Vec<usize> {
        let view = text(&self.running_node(Some(master)).cmd(&["CLUSTER", "NODES"]));
        let id = &self.ids[master];
        let mut replicas: Vec<usize> = parse_nodes(&view)
            .iter()
            .filter(|n| n.master_id.as_ref() == Some(id))
            .map(|n| self.index_of(&n.id))
            .collect();
        replicas.sort_unstable();
        replicas
    }

    /// Kills node `index` with SIGKILL, as a crash would ([`RedisServer::kill`]), and waits
    /// until its port is closed. First notes, from a surviving node, which slots it served
    /// and which replicas it had, for [`RedisCluster::wait_for_failover`]. Does nothing if it
    /// is not running.
    pub fn kill_node(&mut self, index: usize) {
        if !self.servers[index].is_running() {
            return;
        }
        let view = text(&self.running_node(Some(index)).cmd(&["CLUSTER", "NODES"]));
        let nodes = parse_nodes(&view);
        let id = &self.ids[index];
        let slots = nodes
            .iter()
            .find(|n| &n.id == id)
            .filter(|n| n.has_flag("master"))
            .map(|n| n.slots.clone())
            .unwrap_or_default();
        let replicas = nodes
            .iter()
            .filter(|n| n.master_id.as_ref() == Some(id))
            .map(|n| n.id.clone())
            .collect();
        self.killed.insert(index, KilledNode { slots, replicas });
        self.servers[index].kill();
    }

    /// After [`RedisCluster::kill_node`] crashed the master `killed`, polls the running nodes
    /// until one of its replicas has been promoted: every running node reports
    /// `cluster_state:ok` and names, in `CLUSTER NODES`, the same former replica as the
    /// healthy master of all the slots the killed master served, and that node answers
    /// `role:master` to `INFO replication`. Returns the new master's index into
    /// [`RedisCluster::servers`].
    ///
    /// Panics if `killed` was not a master killed with [`RedisCluster::kill_node`], or, with
    /// the last thing awaited and the nodes' log tails, if no failover completes within 30 s.
    pub fn wait_for_failover(&self, killed: usize) -> usize {
        let record = self
            .killed
            .get(&killed)
            .unwrap_or_else(|| panic!("node {killed} was not killed with RedisCluster::kill_node"));
        assert!(
            !record.slots.is_empty(),
            "node {killed} served no slots when it was killed (a replica?), no failover follows"
        );
        self.poll_until(
            &format!("a replica of the killed master {killed} to take over its slots"),
            FAILOVER_TIMEOUT,
            None,
            || {
                let mut agreed: Option<String> = None;
                for server in self.servers.iter().filter(|s| s.is_running()) {
                    let port = server.port();
                    let info = text(&server.cmd(&["CLUSTER", "INFO"]));
                    if !info.lines().any(|l| l.trim() == "cluster_state:ok") {
                        return Err(format!("node {port} is not `cluster_state:ok`"));
                    }
                    let view = text(&server.cmd(&["CLUSTER", "NODES"]));
                    let nodes = parse_nodes(&view);
                    let owner = owner_of(&nodes, &record.slots)
                        .filter(|o| record.replicas.contains(&o.id))
                        .filter(|o| o.has_flag("master") && !o.has_flag("fail?"))
                        .filter(|o| !o.has_flag("fail"))
                        .ok_or_else(|| {
                            format!(
                                "node {port} does not yet name a healthy former replica as the \
                                 master of {:?}:\n{view}",
                                record.slots
                            )
                        })?;
                    match &agreed {
                        Some(id) if *id != owner.id => {
                            return Err(format!(
                                "the nodes disagree on the new master ({id} vs {})",
                                owner.id
                            ));
                        }
                        _ => agreed = Some(owner.id.clone()),
                    }
                }
                let id = agreed.ok_or("no node is running")?;
                let index = self.index_of(&id);
                let replication = text(&self.servers[index].cmd(&["INFO", "replication"]));
                if !replication.lines().any(|l| l.trim() == "role:master") {
                    return Err(format!("node {index} does not say `role:master` yet"));
                }
                Ok(index)
            },
        )
    }

    /// The first running node, other than `except`. Panics if there is none.
    pub(super) fn running_node(&self, except: Option<usize>) -> &RedisServer {
        self.servers
            .iter()
            .enumerate()
            .find(|(i, s)| Some(*i) != except && s.is_running())
            .map(|(_, s)| s)
            .unwrap_or_else(|| panic!("no node of the Redis Cluster is running"))
    }

    /// The index into `servers` of the node with ID `id`.
    pub(super) fn index_of(&self, id: &str) -> usize {
        self.ids
            .iter()
            .position(|known| known == id)
            .unwrap_or_else(|| panic!("no node of this Redis Cluster has the ID {id}"))
    }
}

/// The one node that serves all of `ranges` in `nodes`, if any.
fn owner_of<'a>(nodes: &'a [NodeEntry], ranges: &[(u16, u16)]) -> Option<&'a NodeEntry> {
    let (first, _) = *ranges.first()?;
    let owner = nodes.iter().find(|n| n.serves(first))?;
    let covers = |&(a, b): &(u16, u16)| owner.slots.iter().any(|&(x, y)| x <= a && b <= y);
    ranges.iter().all(covers).then_some(owner)
}
