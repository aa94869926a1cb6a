//! The Sentinel topology: a master, two replicas and three sentinels (quorum 2,
//! `down-after-milliseconds 1000`), the apps finding the master through the sentinels.
//!
//! Kept apart because its faults end in a failover: after each one this module waits until
//! the sentinels agree on a master and both other servers replicate from it again, so that the
//! next fault starts from a whole set (and `min_replicas_ack = 1` can be met).
//!
//! There is no proxy here: the sentinels hand out the servers' real ports.

use std::thread;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use redis_test_support::RedisSentinelSet;

use super::{FaultKind, draw_ms, poll, secs, single::draw_pause, text};

/// How long the sentinels may take to elect a new master.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the set may take to be whole again after a fault (a restarted old master is
/// reconfigured as a replica after a few seconds, then syncs).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(40);

/// The set.
pub(super) struct Sentinel {
    /// The servers and sentinels.
    set: RedisSentinelSet,
}

impl Sentinel {
    /// Starts the set (master, two replicas synced, three sentinels that know each other).
    pub(super) fn start() -> Sentinel {
        Sentinel {
            set: RedisSentinelSet::start_with_replicas(2),
        }
    }

    /// The pool's keys: the sentinels and the master's name.
    pub(super) fn redis_lines(&self) -> Vec<(&'static str, String)> {
        vec![
            ("sentinel_nodes", self.set.sentinel_nodes().join(",")),
            ("sentinel_master", self.set.master_name().to_owned()),
        ]
    }

    /// One fault of `kind`, held and healed; its description goes to `detail`.
    pub(super) fn inject(
        &mut self,
        kind: FaultKind,
        rng: &mut StdRng,
        detail: &mut Vec<String>,
    ) -> Result<(), String> {
        let before = self.set.master_port();
        match kind {
            FaultKind::Kill => {
                let started = Instant::now();
                let old = self.set.kill_master();
                let new = self.set.wait_for_new_master(old, FAILOVER_TIMEOUT);
                detail.push(format!(
                    "kill -9 master :{old}, failover to :{new} in {}",
                    secs(started.elapsed())
                ));
                let server = self
                    .set
                    .servers_mut()
                    .iter_mut()
                    .find(|s| s.port() == old)
                    .ok_or_else(|| format!("no server on port {old}"))?;
                server.restart();
            }
            FaultKind::Pause => {
                let (hold, mode, name) = draw_pause(rng);
                self.set.master().pause(hold, mode);
                detail.push(format!(
                    "CLIENT PAUSE {name} master :{before} {}",
                    secs(hold)
                ));
                thread::sleep(hold);
            }
            FaultKind::Sleep => {
                let hold = draw_ms(rng, 300, 2000);
                let sleeping = self.set.master().sleep_in_background(hold);
                detail.push(format!("DEBUG SLEEP master :{before} {}", secs(hold)));
                sleeping.join();
            }
            FaultKind::Failover => {
                let started = Instant::now();
                let new = self.set.failover(FAILOVER_TIMEOUT);
                detail.push(format!(
                    "SENTINEL FAILOVER :{before} -> :{new} in {}",
                    secs(started.elapsed())
                ));
            }
            FaultKind::Proxy | FaultKind::Reshard => {
                return Err(format!("{kind} is not a fault of the Sentinel topology"));
            }
        }
        let settling = Instant::now();
        let after = self.settled()?;
        let mut note = format!("set whole again in {}", secs(settling.elapsed()));
        if after != before && !matches!(kind, FaultKind::Kill | FaultKind::Failover) {
            note += &format!(" (the sentinels failed over to :{after})");
        }
        detail.push(note);
        Ok(())
    }

    /// Every server running, the sentinels agreed on a master, the others its replicas.
    pub(super) fn recover(&mut self) -> Result<(), String> {
        for server in self.set.servers_mut() {
            if !server.is_running() {
                server.restart();
            }
        }
        self.settled().map(drop)
    }

    /// Waits until every sentinel names the same master, it says it is one, and every other
    /// server is running and says it is its connected replica. Returns the master's port.
    fn settled(&self) -> Result<u16, String> {
        let set = &self.set;
        poll("the Sentinel set to be whole", SETTLE_TIMEOUT, || {
            let mut named = Vec::new();
            for i in 0..3 {
                let reply = set.sentinel_cmd(
                    i,
                    &["SENTINEL", "get-master-addr-by-name", set.master_name()],
                );
                let port = match &reply {
                    redis::Value::Array(items) => items.get(1).map(text),
                    _ => None,
                };
                named.push(port.and_then(|p| p.parse::<u16>().ok()));
            }
            let master = match named.first() {
                Some(Some(port)) if named.iter().all(|p| *p == Some(*port)) => *port,
                _ => return Err(format!("the sentinels name {named:?}")),
            };
            for server in set.servers() {
                if !server.is_running() {
                    return Err(format!(":{} is not running", server.port()));
                }
                let role = match server.cmd(&["ROLE"]) {
                    redis::Value::Array(items) => items.iter().map(text).collect::<Vec<_>>(),
                    other => return Err(format!("ROLE answered {other:?}")),
                };
                let ok = match server.port() == master {
                    true => role.first().is_some_and(|r| r == "master"),
                    false => {
                        role.first().is_some_and(|r| r == "slave")
                            && role.get(2) == Some(&master.to_string())
                            && role.get(3).is_some_and(|s| s == "connected")
                    }
                };
                if !ok {
                    return Err(format!(
                        ":{} answers ROLE {role:?} (master :{master})",
                        server.port()
                    ));
                }
            }
            Ok(master)
        })
    }
}
