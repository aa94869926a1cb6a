//! The faults of the Cluster topology: a node crashed and restarted (with the failover that a
//! master's crash causes), a paused or sleeping master, a proxy fault, a manual failover and a
//! slot moved under traffic.
//!
//! Kept apart from the builder (`cluster.rs`) so that each file stays short. Every fault draws
//! all its parameters from the rng first (a fixed number of draws), then picks nodes by index
//! among the current masters and replicas (sorted), so a seed gives the same schedule as long
//! as the Cluster is in the same state. Every fault ends with [`Cluster::settled`].

use std::thread;
use std::time::Instant;

use rand::Rng;
use rand::rngs::StdRng;
use redis_test_support::FaultProxy;

use super::cluster::{Cluster, SETTLE_TIMEOUT};
use super::{FaultKind, draw_ms, poll, proxy, secs, single::draw_pause, text};

/// What `MIGRATE` may take, in milliseconds.
const MIGRATE_TIMEOUT_MS: &str = "5000";

impl Cluster {
    /// One fault of `kind`, held and healed; its description goes to `detail`.
    pub(super) fn inject(
        &mut self,
        kind: FaultKind,
        rng: &mut StdRng,
        detail: &mut Vec<String>,
    ) -> Result<(), String> {
        let (pick, second) = (rng.random_range(0..3_usize), rng.random_range(0..2_usize));
        let masters = self.masters()?;
        let master = *masters
            .get(pick % masters.len().max(1))
            .ok_or("the Cluster has no master")?;
        let port = self.proxies[master].port();
        match kind {
            FaultKind::Kill => self.kill(master, second, rng, detail)?,
            FaultKind::Pause => {
                let (hold, mode, name) = draw_pause(rng);
                self.cluster.servers()[master].pause(hold, mode);
                detail.push(format!("CLIENT PAUSE {name} master :{port} {}", secs(hold)));
                thread::sleep(hold);
            }
            FaultKind::Sleep => {
                let hold = draw_ms(rng, 300, 2000);
                let sleeping = self.cluster.servers()[master].sleep_in_background(hold);
                detail.push(format!("DEBUG SLEEP master :{port} {}", secs(hold)));
                sleeping.join();
            }
            FaultKind::Proxy => detail.push(proxy::inject(&self.proxies[master], rng)),
            FaultKind::Failover => self.failover(master, second, detail)?,
            FaultKind::Reshard => self.reshard(&masters, pick, rng, detail)?,
        }
        let settling = Instant::now();
        self.settled()?;
        let mut note = format!("settled in {}", secs(settling.elapsed()));
        let now = self.masters()?;
        if now != masters && !matches!(kind, FaultKind::Kill | FaultKind::Failover) {
            let ports = |m: &[usize]| {
                m.iter()
                    .map(|&i| self.proxies[i].port())
                    .collect::<Vec<_>>()
            };
            note += &format!(
                " (masters changed: {:?} -> {:?})",
                ports(&masters),
                ports(&now)
            );
        }
        detail.push(note);
        Ok(())
    }

    /// `kill -9` of `master` (three times in four) or of one of its replicas, then its restart.
    fn kill(
        &mut self,
        master: usize,
        second: usize,
        rng: &mut StdRng,
        detail: &mut Vec<String>,
    ) -> Result<(), String> {
        let (replica, down) = (rng.random_bool(0.25), draw_ms(rng, 300, 2000));
        let replicas = self.replicas_of(master)?;
        let ports: Vec<u16> = self.proxies.iter().map(FaultProxy::port).collect();
        let port = |i: usize| ports[i];
        if replica && !replicas.is_empty() {
            let victim = replicas[second % replicas.len()];
            self.cluster.kill_node(victim);
            detail.push(format!(
                "kill -9 replica :{} of :{}, down {}",
                port(victim),
                port(master),
                secs(down)
            ));
            thread::sleep(down);
            self.restart(victim)?;
            detail.push("restarted".to_owned());
            return Ok(());
        }
        let started = Instant::now();
        self.cluster.kill_node(master);
        let new = self.cluster.wait_for_failover(master);
        detail.push(format!(
            "kill -9 master :{}, failover to :{} in {}",
            port(master),
            port(new),
            secs(started.elapsed())
        ));
        self.restart(master)?;
        self.settled()?;
        let view = self.view(None)?;
        let role = match view
            .iter()
            .find(|n| self.index_of(&n.id).ok() == Some(master))
        {
            Some(n) if n.has("slave") => {
                let of = n.master_id.as_deref().and_then(|id| self.index_of(id).ok());
                format!("restarted as replica of :{}", of.map_or(0, port))
            }
            _ => "restarted, not a replica".to_owned(),
        };
        detail.push(role);
        Ok(())
    }

    /// `CLUSTER FAILOVER` on a replica of `master`, waited for until it is the master.
    fn failover(
        &mut self,
        master: usize,
        second: usize,
        detail: &mut Vec<String>,
    ) -> Result<(), String> {
        let replicas = self.replicas_of(master)?;
        let replica = *replicas
            .get(second % replicas.len().max(1))
            .ok_or_else(|| format!("master {master} has no replica"))?;
        let started = Instant::now();
        let reply = self.cluster.servers()[replica].cmd(&["CLUSTER", "FAILOVER"]);
        if reply != redis::Value::Okay {
            return Err(format!("CLUSTER FAILOVER answered {reply:?}"));
        }
        let (old, new) = (self.proxies[master].port(), self.proxies[replica].port());
        let result = self.wait_promoted(replica);
        detail.push(format!(
            "CLUSTER FAILOVER :{old} -> :{new} in {}",
            secs(started.elapsed())
        ));
        result
    }

    /// Waits until every running node names `replica` a healthy master with slots.
    fn wait_promoted(&self, replica: usize) -> Result<(), String> {
        poll("the manual failover", SETTLE_TIMEOUT, || {
            for server in self.cluster.servers().iter().filter(|s| s.is_running()) {
                let nodes = super::cluster_view::parse(&text(&server.cmd(&["CLUSTER", "NODES"])));
                let promoted = nodes.iter().any(|n| {
                    self.index_of(&n.id).ok() == Some(replica)
                        && n.is_healthy_master()
                        && !n.slots.is_empty()
                });
                if !promoted {
                    return Err(format!("node :{} does not see it yet", server.port()));
                }
            }
            Ok(())
        })
    }

    /// Moves the slot of a session a browser uses (or of a random live session, or a random
    /// slot) from its master to another, in small
    /// `MIGRATE` batches with pauses between them, so that traffic meets `ASK` and `MOVED`.
    fn reshard(
        &mut self,
        masters: &[usize],
        pick: usize,
        rng: &mut StdRng,
        detail: &mut Vec<String>,
    ) -> Result<(), String> {
        let (offset, batch) = (rng.random_range(1..3_usize), rng.random_range(1..=5_usize));
        let (pause, nth) = (draw_ms(rng, 20, 100), rng.random_range(0..SLOTS_PER_MASTER));
        let (open, hot) = (draw_ms(rng, 100, 800), rng.random_range(0..1024_usize));
        let (slot, from) = match self.hot_keys.get(hot % self.hot_keys.len().max(1)) {
            Some(key) => {
                let slot = self.cluster.slot_of_key(key);
                (slot, self.cluster.owner_of_slot(slot, masters[0]))
            }
            None => {
                let from = masters[pick % masters.len()];
                match live_session_key(&self.cluster.servers()[from]) {
                    None => (self.nth_slot_of(from, nth)?, from),
                    Some(key) => (self.cluster.slot_of_key(&key), from),
                }
            }
        };
        let others: Vec<usize> = masters.iter().copied().filter(|&m| m != from).collect();
        let to = *others
            .get(offset % others.len().max(1))
            .ok_or("no other master to move the slot to")?;
        let source = &self.cluster.servers()[from];
        let started = Instant::now();
        self.cluster.begin_slot_move(slot, from, to);
        // Open before any key moves: new keys of the slot go to `to` (`ASK`), old ones are
        // still served by `from`.
        thread::sleep(open);
        let target = self.cluster.servers()[to].port().to_string();
        let (slot_text, count) = (slot.to_string(), batch.to_string());
        let mut moved = 0;
        loop {
            let keys = match source.cmd(&["CLUSTER", "GETKEYSINSLOT", &slot_text, &count]) {
                redis::Value::Array(keys) => keys.iter().map(text).collect::<Vec<_>>(),
                other => return Err(format!("CLUSTER GETKEYSINSLOT answered {other:?}")),
            };
            if keys.is_empty() {
                break;
            }
            let mut migrate = vec!["MIGRATE", "127.0.0.1", &target, "", "0", MIGRATE_TIMEOUT_MS];
            migrate.push("KEYS");
            migrate.extend(keys.iter().map(String::as_str));
            match source.cmd(&migrate) {
                redis::Value::Okay => {}
                reply if text(&reply) == "NOKEY" => {}
                reply => return Err(format!("MIGRATE of slot {slot} answered {reply:?}")),
            }
            moved += keys.len();
            thread::sleep(pause);
        }
        self.cluster.end_slot_move(slot, to);
        detail.push(format!(
            "slot {slot} :{} -> :{}, open {} ms, {moved} keys in batches of {batch}, {} ms apart, \
             in {}",
            self.proxies[from].port(),
            self.proxies[to].port(),
            open.as_millis(),
            pause.as_millis(),
            secs(started.elapsed())
        ));
        Ok(())
    }

    /// The `nth` slot (modulo their number) that master `index` serves.
    fn nth_slot_of(&self, index: usize, nth: u16) -> Result<u16, String> {
        let view = self.view(None)?;
        let me = view
            .iter()
            .find(|n| self.index_of(&n.id).ok() == Some(index))
            .ok_or("the master is not in the view")?;
        let slots: Vec<u16> = me.slots.iter().flat_map(|&(a, b)| a..=b).collect();
        match slots.len() {
            0 => Err(format!("master {index} serves no slot")),
            n => Ok(slots[usize::from(nth) % n]),
        }
    }
}

/// About how many slots a master serves (16384 / 3), the range of the slot draw.
const SLOTS_PER_MASTER: u16 = 5461;

/// A random key of `source` that holds a live session (a hash), so that the slot moved is one a
/// browser is using, not a tombstone's or an index's; any key after 20 tries, `None` when the
/// node holds none.
fn live_session_key(source: &redis_test_support::RedisServer) -> Option<String> {
    let mut any = None;
    for _ in 0..20 {
        let key = match source.cmd(&["RANDOMKEY"]) {
            redis::Value::Nil => return any,
            key => text(&key),
        };
        if text(&source.cmd(&["TYPE", &key])) == "hash" {
            return Some(key);
        }
        any = Some(key);
    }
    any
}
