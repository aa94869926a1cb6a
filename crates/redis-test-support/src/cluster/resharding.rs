//! Moving hash slots between the masters of a running Cluster, as `redis-cli --cluster
//! reshard` does it, one step at a time so that a test can run traffic between the steps:
//! open the move (`CLUSTER SETSLOT <slot> IMPORTING` on the target, then `MIGRATING` on the
//! source), move the keys (`CLUSTER GETKEYSINSLOT` + `MIGRATE ... KEYS`), close it
//! (`CLUSTER SETSLOT <slot> NODE <target>` on every node), and wait until every node agrees
//! again.
//!
//! Kept apart from the builder and the failover helpers: a resharding is its own event, and the
//! tests of the client's `ASK`/`MOVED`/`TRYAGAIN` handling drive exactly these steps.

use super::RedisCluster;
use super::nodes::{parse_nodes, text};
use crate::process::WAIT_TIMEOUT;

/// What one `MIGRATE` may take before Redis gives up on it, in milliseconds (its own timeout
/// argument: the target is on loopback, a loaded machine is what could delay it).
const MIGRATE_TIMEOUT_MS: &str = "5000";

impl RedisCluster {
    /// The hash slot of `key` (`CLUSTER KEYSLOT` on the first running node).
    pub fn slot_of_key(&self, key: &str) -> u16 {
        match self.running_node(None).cmd(&["CLUSTER", "KEYSLOT", key]) {
            redis::Value::Int(slot) => u16::try_from(slot)
                .unwrap_or_else(|_| panic!("CLUSTER KEYSLOT {key:?} answered slot {slot}")),
            other => panic!("CLUSTER KEYSLOT {key:?} answered {other:?}"),
        }
    }

    /// The index into [`RedisCluster::servers`] of the master that serves `slot`, as node
    /// `asked` sees it (`CLUSTER NODES`; a slot being migrated is still its source's).
    pub fn owner_of_slot(&self, slot: u16, asked: usize) -> usize {
        let view = text(&self.servers[asked].cmd(&["CLUSTER", "NODES"]));
        let owner = parse_nodes(&view)
            .into_iter()
            .find(|n| n.has_flag("master") && n.serves(slot))
            .unwrap_or_else(|| panic!("node {asked} names no master of slot {slot}:\n{view}"));
        self.index_of(&owner.id)
    }

    /// Opens the move of `slot` from master `from` to master `to`, in `redis-cli`'s order:
    /// `IMPORTING` on `to` first, then `MIGRATING` on `from`. From now on `from` answers `ASK`
    /// for the keys of `slot` it does not have, and `to` serves them after `ASKING`.
    pub fn begin_slot_move(&self, slot: u16, from: usize, to: usize) {
        let slot = slot.to_string();
        self.servers[to].cmd(&["CLUSTER", "SETSLOT", &slot, "IMPORTING", &self.ids[from]]);
        self.servers[from].cmd(&["CLUSTER", "SETSLOT", &slot, "MIGRATING", &self.ids[to]]);
    }

    /// Moves the keys of `slot` from `from` to `to` with `MIGRATE ... KEYS`, at most `batch`
    /// keys per `MIGRATE` (after [`RedisCluster::begin_slot_move`]), until `from` has none
    /// left; returns how many keys were moved. Panics if a `MIGRATE` fails.
    pub fn migrate_slot_keys(&self, slot: u16, from: usize, to: usize, batch: usize) -> usize {
        let (source, port) = (&self.servers[from], self.servers[to].port().to_string());
        let (slot, count) = (slot.to_string(), batch.max(1).to_string());
        let mut moved = 0;
        loop {
            let keys = match source.cmd(&["CLUSTER", "GETKEYSINSLOT", &slot, &count]) {
                redis::Value::Array(keys) => keys.iter().map(text).collect::<Vec<_>>(),
                other => panic!("CLUSTER GETKEYSINSLOT {slot} answered {other:?}"),
            };
            if keys.is_empty() {
                return moved;
            }
            let mut migrate = vec!["MIGRATE", "127.0.0.1", &port, "", "0", MIGRATE_TIMEOUT_MS];
            migrate.push("KEYS");
            migrate.extend(keys.iter().map(String::as_str));
            // "NOKEY" when every key expired in between: nothing to move, not a failure.
            match source.cmd(&migrate) {
                redis::Value::Okay => {}
                reply if text(&reply) == "NOKEY" => {}
                reply => panic!("MIGRATE of slot {slot} answered {reply:?}"),
            }
            moved += keys.len();
        }
    }

    /// Closes the move of `slot`: `CLUSTER SETSLOT <slot> NODE <to>` on `to`, then on every
    /// other master, as `redis-cli` does; the others learn it by gossip. Does not wait for
    /// them (see [`RedisCluster::wait_settled`]).
    pub fn end_slot_move(&self, slot: u16, to: usize) {
        let slot = slot.to_string();
        let node = &self.ids[to];
        self.servers[to].cmd(&["CLUSTER", "SETSLOT", &slot, "NODE", node]);
        for (i, server) in self.servers.iter().enumerate() {
            if i != to && server.is_running() && self.is_master(i) {
                server.cmd(&["CLUSTER", "SETSLOT", &slot, "NODE", node]);
            }
        }
    }

    /// The whole move of `slot` from `from` to `to`: open, move every key, close, and wait
    /// until every node agrees.
    pub fn move_slot(&self, slot: u16, from: usize, to: usize) {
        self.begin_slot_move(slot, from, to);
        self.migrate_slot_keys(slot, from, to, 10);
        self.end_slot_move(slot, to);
        self.wait_settled();
    }

    /// Waits until the Cluster is settled: every running node reports `cluster_state:ok`,
    /// answers `CLUSTER SLOTS` exactly as the others do, with all 16384 slots, and has no
    /// slot open for import or migration. Panics with the nodes' views after 10 s.
    pub fn wait_settled(&self) {
        self.poll_until(
            "every node to agree on the slots",
            WAIT_TIMEOUT,
            None,
            || {
                let mut first: Option<(u16, Vec<SlotRange>)> = None;
                for server in self.servers.iter().filter(|s| s.is_running()) {
                    let port = server.port();
                    let info = text(&server.cmd(&["CLUSTER", "INFO"]));
                    if !info.lines().any(|l| l.trim() == "cluster_state:ok") {
                        return Err(format!("node {port} is not `cluster_state:ok`"));
                    }
                    let view = text(&server.cmd(&["CLUSTER", "NODES"]));
                    if view.contains("->-") || view.contains("-<-") {
                        return Err(format!("node {port} has a slot open:\n{view}"));
                    }
                    let slots = slot_ranges(&server.cmd(&["CLUSTER", "SLOTS"]));
                    let covered: usize =
                        slots.iter().map(|&(a, b, _)| usize::from(b - a) + 1).sum();
                    if covered != super::SLOTS {
                        return Err(format!("node {port} knows {covered} slots: {slots:?}"));
                    }
                    match &first {
                        Some((other, seen)) if *seen != slots => {
                            return Err(format!(
                                "nodes {other} and {port} disagree: {seen:?} vs {slots:?}"
                            ));
                        }
                        Some(_) => {}
                        None => first = Some((port, slots)),
                    }
                }
                Ok(())
            },
        );
    }

    /// Whether node `index` is a master, as it says itself (`CLUSTER NODES`).
    fn is_master(&self, index: usize) -> bool {
        let view = text(&self.servers[index].cmd(&["CLUSTER", "NODES"]));
        parse_nodes(&view)
            .iter()
            .any(|n| n.has_flag("myself") && n.has_flag("master"))
    }
}

/// A range of slots and its master: `(first, last, master port)`.
type SlotRange = (u16, u16, u16);

/// The ranges of a `CLUSTER SLOTS` reply, sorted.
fn slot_ranges(reply: &redis::Value) -> Vec<SlotRange> {
    let int = |v: Option<&redis::Value>| match v {
        Some(redis::Value::Int(i)) => u16::try_from(*i).unwrap_or(u16::MAX),
        other => panic!("CLUSTER SLOTS: expected a number, got {other:?}"),
    };
    let redis::Value::Array(ranges) = reply else {
        panic!("CLUSTER SLOTS answered {reply:?}");
    };
    let mut ranges: Vec<_> = ranges
        .iter()
        .map(|range| match range {
            redis::Value::Array(items) => {
                let port = match items.get(2) {
                    Some(redis::Value::Array(master)) => int(master.get(1)),
                    other => panic!("CLUSTER SLOTS: expected a master, got {other:?}"),
                };
                (int(items.first()), int(items.get(1)), port)
            }
            other => panic!("CLUSTER SLOTS: expected a range, got {other:?}"),
        })
        .collect();
    ranges.sort_unstable();
    ranges
}
