//! A Redis Cluster pool: the commands of concurrent requests batched per node, following slot
//! moves and failovers.
//!
//! Why not the `redis` crate's Cluster client: it sends each call as its own pipeline, so a
//! Cluster's nodes paid 2-4x the CPU per request of a single batched server (see `batch/`).
//! Here each node has `per_server` [`Batcher`]s, the same batching queues as a single server, and
//! a call goes to the node that owns its route's hash slot, found in a slot map read with
//! `CLUSTER SLOTS`. The map is read on first use and again when Redis says it is out of date:
//!
//! - `MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN` (and the like) on some commands of a call: those
//!   commands, and only they, did not run; each goes where Redis says, within the timeout, and
//!   the replies of the others stay (`follow.rs`). A map with no master for the call's slot (a
//!   node asked before it knew every slot) is read again, within the timeout.
//! - The node fails (connection refused or lost, no answer within the timeout): the call fails
//!   with [`LinkError::Unavailable`] (a 503) and the map is read again, so that once a replica
//!   has taken over, the next call goes to it. A write whose node failed is never re-sent:
//!   whether it ran is unknown.
//!
//! All commands of one route share a slot (its hash tag), hence a node and, within it, one
//! connection, so they reach Redis in the order they were sent (see `pool.rs`). (The session
//! library's routes: a session's storage id is its hash tag.)

mod follow;
mod map;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::{RedisResult, Value};

use super::batch::Batcher;
use super::command::{Command, cmd};
use super::connect::MasterTarget;
use super::pool::lock;
use crate::LinkError;
pub(crate) use map::Target;
pub use map::slot_of;
use map::{Range, SlotMap, covered, parse_slots, unavailable};

/// At most one map read per this interval when calls fail (a `MOVED` always reads it).
const REFRESH_INTERVAL: Duration = Duration::from_millis(100);

/// The seed nodes, how to log in to a node, and the current slot map.
pub(crate) struct ClusterPool {
    seeds: Vec<(String, u16)>,
    target: MasterTarget,
    timeout: Duration,
    per_node: usize,
    map: Mutex<Option<Arc<SlotMap>>>,
    /// Held while the map is read, so that one call at a time reads it.
    reading: tokio::sync::Mutex<Option<Instant>>,
}

impl ClusterPool {
    pub(crate) fn new(
        seeds: Vec<(String, u16)>,
        target: MasterTarget,
        per_node: usize,
        timeout: Duration,
    ) -> Self {
        Self {
            seeds,
            target,
            timeout,
            per_node: per_node.max(1),
            map: Mutex::new(None),
            reading: tokio::sync::Mutex::new(None),
        }
    }

    /// Connections per node times the nodes known so far (the seeds before the first call).
    pub(crate) fn size(&self) -> usize {
        let nodes = lock(&self.map)
            .as_ref()
            .map_or(self.seeds.len(), |m| m.nodes.len());
        self.per_node * nodes.max(1)
    }

    /// Sends `commands` as one pipeline (batched with other calls to the same connection) to
    /// the node that serves `target`; `n` picks the connection within the node. Commands that
    /// did not run there (redirected, or to be tried again) are followed up one by one
    /// (`follow.rs`).
    pub(crate) async fn exec(
        &self,
        n: usize,
        target: Target,
        commands: &[Command],
    ) -> Result<Vec<RedisResult<Value>>, LinkError> {
        let mut map = self.current().await?;
        let (conn, addr) = match map.conn(n, target, self.per_node) {
            Ok(found) => found,
            Err(_) => {
                // Boxed: a rare path, kept out of every call's future.
                let (filled, conn, addr) = Box::pin(self.fill_hole(map, n, target)).await?;
                map = filled;
                (conn, addr)
            }
        };
        let replies = self.send(&conn, &addr, commands).await?;
        if !follow::unsettled(&replies) {
            return Ok(replies);
        }
        Box::pin(self.follow(map, n, target, commands, replies)).await
    }

    /// One pipeline on one connection, bounded by the timeout; a connection failure (which a
    /// failover or a Cluster outage explains) reads the map again before failing the call.
    /// Server errors, redirections included, are the commands' replies.
    async fn send(
        &self,
        conn: &Arc<Batcher>,
        addr: &(String, u16),
        commands: &[Command],
    ) -> Result<Vec<RedisResult<Value>>, LinkError> {
        // The batcher bounds the call by the pool's timeout (one watchdog per connection).
        let failure = match conn.send(commands).await {
            Ok(replies) => return Ok(replies),
            Err(e) => match LinkError::from(&e) {
                LinkError::Unavailable(message) => message,
                other => return Err(other),
            },
        };
        let map = lock(&self.map).clone();
        if let Some(map) = map {
            self.refresh(&map).await;
        }
        Err(LinkError::Unavailable(format!(
            "Redis Cluster node {}:{}: {failure}",
            addr.0, addr.1
        )))
    }

    /// The current map, read first if there is none yet.
    async fn current(&self) -> Result<Arc<SlotMap>, LinkError> {
        if let Some(map) = lock(&self.map).clone() {
            return Ok(map);
        }
        self.replace(None, None).await
    }

    /// After a `MOVED` from a call that used `seen`: a newer map, read now (asking the node
    /// that answered `MOVED` first) unless another call already replaced `seen`.
    async fn reread(
        &self,
        seen: &Arc<SlotMap>,
        moved_to: (String, u16),
    ) -> Result<Arc<SlotMap>, LinkError> {
        self.replace(Some(seen), Some(moved_to)).await
    }

    /// Reads a new map (asking `first` first) in place of `seen` (`None`: no map yet), one call
    /// at a time; a map another call put there meanwhile is taken instead.
    async fn replace(
        &self,
        seen: Option<&Arc<SlotMap>>,
        first: Option<(String, u16)>,
    ) -> Result<Arc<SlotMap>, LinkError> {
        let mut last = tokio::time::timeout(self.timeout, self.reading.lock())
            .await
            .map_err(|_| unavailable("another call is still reading the slot map"))?;
        if let Some(map) = lock(&self.map).clone()
            && seen.is_none_or(|seen| !Arc::ptr_eq(&map, seen))
        {
            return Ok(map);
        }
        let map = Arc::new(self.read(seen.map(|m| &**m), first).await?);
        *last = Some(Instant::now());
        *lock(&self.map) = Some(Arc::clone(&map));
        Ok(map)
    }

    /// After a failed call that used `seen`: reads the map again, unless another call is
    /// reading it, already replaced `seen`, or read it less than [`REFRESH_INTERVAL`] ago.
    async fn refresh(&self, seen: &Arc<SlotMap>) {
        let Ok(mut last) = self.reading.try_lock() else {
            return;
        };
        let replaced = lock(&self.map)
            .as_ref()
            .is_some_and(|m| !Arc::ptr_eq(m, seen));
        if replaced || last.is_some_and(|t| t.elapsed() < REFRESH_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
        match self.read(Some(seen), None).await {
            Ok(map) => {
                let moved: Vec<String> = seen
                    .nodes
                    .iter()
                    .filter(|old| !map.nodes.iter().any(|new| new.addr == old.addr))
                    .map(|old| format!("{}:{}", old.addr.0, old.addr.1))
                    .collect();
                if !moved.is_empty() {
                    tracing::warn!("Redis Cluster: {} no longer serve slots", moved.join(", "));
                }
                *lock(&self.map) = Some(Arc::new(map));
            }
            Err(e) => tracing::warn!("{e}"),
        }
    }

    /// A slot map from the first node whose `CLUSTER SLOTS` names a master for every slot:
    /// `first`, then the nodes of `old`, then the seeds (failing that, the most complete view
    /// any gave). Connections to nodes already in `old` are kept.
    async fn read(
        &self,
        old: Option<&SlotMap>,
        first: Option<(String, u16)>,
    ) -> Result<SlotMap, LinkError> {
        let mut candidates: Vec<(String, u16)> = first.into_iter().collect();
        if let Some(old) = old {
            candidates.extend(old.nodes.iter().map(|node| node.addr.clone()));
        }
        candidates.extend(self.seeds.iter().cloned());
        let mut asked = Vec::new();
        let mut errors = Vec::new();
        let mut partial: Option<Vec<Range>> = None;
        for addr in candidates {
            if asked.contains(&addr) {
                continue;
            }
            asked.push(addr.clone());
            let conn = match old.and_then(|m| m.nodes.iter().find(|node| node.addr == addr)) {
                Some(node) => Arc::clone(&node.conns[0]),
                None => self.target.batcher(&addr.0, addr.1),
            };
            let slots = cmd("CLUSTER").arg("SLOTS").take();
            let reply = tokio::time::timeout(self.timeout, conn.send(&[slots])).await;
            let reply = match reply {
                Ok(Ok(mut replies)) => replies.pop().unwrap_or(Ok(Value::Nil)),
                Ok(Err(e)) => Err(e),
                Err(_) => {
                    errors.push(format!(
                        "{}:{}: no answer within {:?}",
                        addr.0, addr.1, self.timeout
                    ));
                    continue;
                }
            };
            match reply
                .map_err(|e| e.to_string())
                .and_then(|v| parse_slots(v, &addr))
            {
                Ok(ranges) if covered(&ranges) == map::SLOTS => {
                    return Ok(SlotMap::build(old, ranges, &self.target, self.per_node));
                }
                // A node that does not know every slot yet (a Cluster still forming, or a
                // node just restarted): another node may know more.
                Ok(ranges) => {
                    if partial
                        .as_ref()
                        .is_none_or(|p: &Vec<Range>| covered(p) < covered(&ranges))
                    {
                        partial = Some(ranges);
                    }
                }
                Err(e) => errors.push(format!("{}:{}: {e}", addr.0, addr.1)),
            }
        }
        match partial {
            // The best view there is: the slots it names are served now, the others are read
            // again when a call needs them (`fill_hole`).
            Some(ranges) => Ok(SlotMap::build(old, ranges, &self.target, self.per_node)),
            None => Err(unavailable(&format!(
                "no node gave the slot map (CLUSTER SLOTS): {}",
                errors.join("; ")
            ))),
        }
    }
}
