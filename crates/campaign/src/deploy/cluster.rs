//! The Cluster topology: three masters with two replicas each, a fault proxy in front of every
//! node, and every node announcing its proxy's port (`cluster-announce-port`), so that
//! `CLUSTER SLOTS`, `MOVED` and `ASK` send the apps through the proxies.
//!
//! The cluster bus is not proxied: Redis derives the announced bus port from `--cluster-port`
//! (which the harness sets), not from the announced client port, and [`Cluster::announce`]
//! checks that. Replication is proxied, though: a replica connects to its master's announced
//! address, so a proxy fault on a master also hits its replication links, as a network fault
//! would.
//!
//! This file builds the topology and knows when it is whole again ([`Cluster::settled`]); the
//! faults are in `cluster_faults.rs`.

use std::collections::BTreeSet;
use std::time::Duration;

use redis_test_support::{FaultProxy, RedisCluster, RedisServer};

use super::cluster_view::{NodeLine, parse};
use super::{poll, text};

/// Masters and replicas per master.
const MASTERS: usize = 3;
/// Replicas per master.
const REPLICAS: usize = 2;
/// Hash slots of a Redis Cluster.
const SLOTS: usize = 16384;
/// How long the Cluster may take to settle after a fault (a failover is 2-3 s, a restarted
/// node's sync and gossip a few more).
pub(super) const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The Cluster and its proxies.
pub(super) struct Cluster {
    /// One proxy per node, by the node's index into [`RedisCluster::servers`]; dropped before
    /// the nodes.
    pub(super) proxies: Vec<FaultProxy>,
    /// The nodes.
    pub(super) cluster: RedisCluster,
    /// The node IDs, by index (they survive restarts: `nodes.conf` is kept).
    ids: Vec<String>,
    /// The real cluster bus port of each node, by index.
    bus_ports: Vec<u16>,
    /// Whether `cluster-announce-bus-port` had to be set (it should not, see the module doc).
    pub(super) bus_port_set: bool,
    /// Keys of the sessions the browsers hold now (see [`super::Deployment::set_hot_keys`]).
    pub(super) hot_keys: Vec<String>,
}

impl Cluster {
    /// Starts the Cluster, a proxy per node, makes every node announce its proxy and waits
    /// until every node's `CLUSTER SLOTS` names only proxies.
    pub(super) fn start() -> Result<Cluster, String> {
        let cluster = RedisCluster::start_with_replicas(MASTERS, REPLICAS);
        let mut ids = Vec::new();
        let mut bus_ports = Vec::new();
        for server in cluster.servers() {
            let me = myself(server)?;
            ids.push(me.id);
            bus_ports.push(me.bus_port);
        }
        let proxies = cluster
            .servers()
            .iter()
            .map(|s| FaultProxy::start(s.port()))
            .collect();
        let mut this = Cluster {
            proxies,
            cluster,
            ids,
            bus_ports,
            bus_port_set: false,
            hot_keys: Vec::new(),
        };
        for index in 0..this.proxies.len() {
            this.announce(index)?;
        }
        this.settled()?;
        Ok(this)
    }

    /// The pool's keys: every node's proxy as a seed.
    pub(super) fn redis_lines(&self) -> Vec<(&'static str, String)> {
        let seeds: Vec<String> = self
            .proxies
            .iter()
            .map(|p| format!("127.0.0.1:{}", p.port()))
            .collect();
        vec![("cluster_nodes", seeds.join(","))]
    }

    /// Makes node `index` announce its proxy's port, and checks that its announced bus port
    /// is still its real one (else sets `cluster-announce-bus-port` too).
    pub(super) fn announce(&mut self, index: usize) -> Result<(), String> {
        let server = &self.cluster.servers()[index];
        let port = self.proxies[index].port().to_string();
        config_set(server, "cluster-announce-port", &port)?;
        let me = myself(server)?;
        if me.bus_port != self.bus_ports[index] {
            config_set(
                server,
                "cluster-announce-bus-port",
                &self.bus_ports[index].to_string(),
            )?;
            self.bus_port_set = true;
        }
        Ok(())
    }

    /// Restarts node `index` (same port, directory and `nodes.conf`) and makes it announce
    /// its proxy again.
    pub(super) fn restart(&mut self, index: usize) -> Result<(), String> {
        self.cluster.servers_mut()[index].restart();
        self.announce(index)
    }

    /// Every proxy passing, every node running and announcing its proxy, then settled.
    pub(super) fn recover(&mut self) -> Result<(), String> {
        for proxy in &self.proxies {
            proxy.heal();
        }
        for index in 0..self.proxies.len() {
            if !self.cluster.servers()[index].is_running() {
                self.restart(index)?;
            }
        }
        self.settled()
    }

    /// The index of the node with ID `id`.
    pub(super) fn index_of(&self, id: &str) -> Result<usize, String> {
        self.ids
            .iter()
            .position(|known| known == id)
            .ok_or_else(|| format!("no node has the ID {id}"))
    }

    /// The view of the first running node (other than `except`).
    pub(super) fn view(&self, except: Option<usize>) -> Result<Vec<NodeLine>, String> {
        let server = self
            .cluster
            .servers()
            .iter()
            .enumerate()
            .find(|(i, s)| Some(*i) != except && s.is_running())
            .map(|(_, s)| s)
            .ok_or("no node is running")?;
        Ok(parse(&text(&server.cmd(&["CLUSTER", "NODES"]))))
    }

    /// The indexes of the masters that serve slots, sorted.
    pub(super) fn masters(&self) -> Result<Vec<usize>, String> {
        let mut masters = Vec::new();
        for node in self.view(None)? {
            if node.is_healthy_master() && !node.slots.is_empty() {
                masters.push(self.index_of(&node.id)?);
            }
        }
        masters.sort_unstable();
        Ok(masters)
    }

    /// The indexes of the replicas of `master`, sorted.
    pub(super) fn replicas_of(&self, master: usize) -> Result<Vec<usize>, String> {
        let mut replicas = Vec::new();
        for node in self.view(Some(master))? {
            if node.master_id.as_ref() == Some(&self.ids[master]) {
                replicas.push(self.index_of(&node.id)?);
            }
        }
        replicas.sort_unstable();
        Ok(replicas)
    }

    /// Waits (at most [`SETTLE_TIMEOUT`]) until the Cluster is whole: every node runs, says
    /// `cluster_state:ok`, knows all nodes healthy at their proxy ports, sees three masters
    /// and six replicas, no open slot; every replica's link is up; every node's `CLUSTER
    /// SLOTS` covers all slots, names only proxies and agrees with the others.
    pub(super) fn settled(&self) -> Result<(), String> {
        let proxy_ports: BTreeSet<u16> = self.proxies.iter().map(FaultProxy::port).collect();
        poll("the Cluster to settle", SETTLE_TIMEOUT, || {
            let mut first: Option<Vec<(u16, u16, u16)>> = None;
            for (index, server) in self.cluster.servers().iter().enumerate() {
                let port = server.port();
                if !server.is_running() {
                    return Err(format!("node :{port} is not running"));
                }
                let info = text(&server.cmd(&["CLUSTER", "INFO"]));
                if !info.lines().any(|l| l.trim() == "cluster_state:ok") {
                    return Err(format!("node :{port} is not cluster_state:ok"));
                }
                let raw = text(&server.cmd(&["CLUSTER", "NODES"]));
                let nodes = parse(&raw);
                let bad = ["fail", "fail?", "handshake", "noaddr"];
                let whole = nodes.len() == self.ids.len()
                    && nodes.iter().all(|n| !bad.iter().any(|f| n.has(f)))
                    && nodes.iter().filter(|n| n.has("master")).count() == MASTERS
                    && nodes.iter().filter(|n| n.master_id.is_some()).count() == MASTERS * REPLICAS
                    && !raw.contains("->-")
                    && !raw.contains("-<-");
                if !whole {
                    return Err(format!("node :{port} sees:\n{raw}"));
                }
                for node in &nodes {
                    let i = self.index_of(&node.id)?;
                    if node.port != self.proxies[i].port() {
                        return Err(format!("node :{port} sees node {i} at :{}", node.port));
                    }
                }
                if nodes.iter().any(|n| n.has("myself") && n.has("slave")) {
                    let replication = text(&server.cmd(&["INFO", "replication"]));
                    if !replication.contains("master_link_status:up") {
                        return Err(format!("replica {index} (:{port}) has no link up"));
                    }
                }
                let slots = slot_ranges(&server.cmd(&["CLUSTER", "SLOTS"]))?;
                let ranges: BTreeSet<(u16, u16)> = slots.iter().map(|r| (r.0, r.1)).collect();
                let covered: usize = ranges.iter().map(|r| usize::from(r.1 - r.0) + 1).sum();
                if covered != SLOTS {
                    return Err(format!("node :{port} knows {covered} slots"));
                }
                if let Some(stray) = slots.iter().map(|r| r.2).find(|p| !proxy_ports.contains(p)) {
                    return Err(format!("node :{port} names :{stray}, not a proxy"));
                }
                match &first {
                    Some(seen) if *seen != slots => {
                        return Err(format!("node :{port} disagrees: {slots:?} vs {seen:?}"));
                    }
                    Some(_) => {}
                    None => first = Some(slots),
                }
            }
            Ok(())
        })
    }
}

/// `CONFIG SET name value` on `server`.
fn config_set(server: &RedisServer, name: &str, value: &str) -> Result<(), String> {
    match server.cmd(&["CONFIG", "SET", name, value]) {
        redis::Value::Okay => Ok(()),
        other => Err(format!(
            "CONFIG SET {name} {value} on :{} answered {other:?}",
            server.port()
        )),
    }
}

/// The `myself` line of `server`'s `CLUSTER NODES`.
fn myself(server: &RedisServer) -> Result<NodeLine, String> {
    let raw = text(&server.cmd(&["CLUSTER", "NODES"]));
    parse(&raw)
        .into_iter()
        .find(|n| n.has("myself"))
        .ok_or_else(|| format!("no `myself` in CLUSTER NODES of :{}:\n{raw}", server.port()))
}

/// `(first, last, port)` of every range of a `CLUSTER SLOTS` reply and of every node listed
/// in it (the master's range first), sorted; a port of 0 where a reply is malformed.
fn slot_ranges(reply: &redis::Value) -> Result<Vec<(u16, u16, u16)>, String> {
    let int = |v: Option<&redis::Value>| match v {
        Some(redis::Value::Int(i)) => u16::try_from(*i).unwrap_or(0),
        _ => 0,
    };
    let redis::Value::Array(ranges) = reply else {
        return Err(format!("CLUSTER SLOTS answered {reply:?}"));
    };
    let mut out = Vec::new();
    for range in ranges {
        let redis::Value::Array(items) = range else {
            return Err(format!("CLUSTER SLOTS range {range:?}"));
        };
        let (first, last) = (int(items.first()), int(items.get(1)));
        for node in items.iter().skip(2) {
            if let redis::Value::Array(node) = node {
                out.push((first, last, int(node.get(1))));
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}
