//! A pool whose master is found through Redis Sentinel and followed after a failover.
//!
//! Why not the `redis` crate's own Sentinel client: it hands out a connection to the master of
//! the moment, and its `ConnectionManager` reconnects to the *same* address forever, so after a
//! failover an app would keep talking to the dead (or demoted) master until restarted. Here each
//! pool slot holds its current master address and a [`Batcher`] (auto-pipelining over one
//! connection of our own, as for a single server) behind a lock. The first call on a slot asks the
//! sentinels (`SENTINEL get-master-addr-by-name`, each in turn until one answers). When a call
//! fails in a way a failover explains (the connection fails, no answer within the timeout, or a
//! `READONLY` error: the server was demoted to a replica), the slot asks the sentinels again and,
//! if they now name another master, replaces its connection; the call itself still fails with
//! [`LinkError::Unavailable`] (a 503), and the next call on the slot goes to the new master.
//! A write is never retried on the new master within the same call: whether the old master ran
//! it is unknown. While the sentinels still name the old master, the connection is kept, so the
//! order of one route's commands on one connection (see `pool.rs`) holds unless the master
//! really changed.
//!
//! A master that stalls longer than the sentinels' `down-after-milliseconds` (a long `DEBUG
//! SLEEP`, a swap storm, a paused VM) is failed over while it sleeps, and when it wakes up it is
//! still a master for several seconds, answering reads with data the new master has moved past:
//! no call fails, so the rule above never fires. Hence [`watch`]: the pool also listens to the
//! sentinels' `+switch-master` announcements and moves every slot to the new master as soon as
//! one is made, before the old one can answer again.

mod watch;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::{AsyncConnectionConfig, RedisResult, Value};

use super::batch::Batcher;
use super::command::Command;
use super::connect::MasterTarget;
use super::pool::lock;
use crate::LinkError;

/// The sentinels, the master's name and one slot per pooled connection, shared with the task
/// that listens to the sentinels' announcements ([`watch`]), which stops when the pool is
/// dropped.
pub(crate) struct SentinelPool {
    shared: Arc<Shared>,
    watcher: watch::Watcher,
}

/// What the pool and its watcher share.
pub(crate) struct Shared {
    sentinels: Vec<redis::Client>,
    master: String,
    target: MasterTarget,
    timeout: Duration,
    slots: Vec<Slot>,
}

/// One pooled connection: the master it talks to, and a lock so that one call at a time asks
/// the sentinels for it.
#[derive(Default)]
struct Slot {
    current: Mutex<Option<Current>>,
    asking: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
struct Current {
    addr: (String, u16),
    batcher: Arc<Batcher>,
}

impl SentinelPool {
    pub(crate) fn new(
        sentinels: Vec<redis::Client>,
        master: String,
        target: MasterTarget,
        size: usize,
        timeout: Duration,
    ) -> Self {
        let shared = Shared {
            sentinels,
            master,
            target,
            timeout,
            slots: (0..size).map(|_| Slot::default()).collect(),
        };
        Self {
            shared: Arc::new(shared),
            watcher: watch::Watcher::default(),
        }
    }

    pub(crate) fn size(&self) -> usize {
        self.shared.slots.len()
    }

    /// Sends `commands` as one pipeline on slot `n`'s master (see [`Shared::exec`]); the first
    /// call starts the watcher of the sentinels' announcements (within the caller's runtime).
    pub(crate) async fn exec(
        &self,
        n: usize,
        commands: &[Command],
    ) -> Result<Vec<RedisResult<Value>>, LinkError> {
        self.watcher.start(&self.shared);
        self.shared.exec(n, commands).await
    }
}

impl Shared {
    /// Sends `commands` as one pipeline on slot `n`'s master, each phase bounded by `timeout`;
    /// on a failure a failover explains, re-asks the sentinels before failing the call.
    async fn exec(
        &self,
        n: usize,
        commands: &[Command],
    ) -> Result<Vec<RedisResult<Value>>, LinkError> {
        let slot = &self.slots[n % self.slots.len()];
        let current = self.current(slot).await?;
        let (host, port) = &current.addr;
        // The batcher bounds the call by the pool's timeout (one watchdog per connection).
        let sent = current.batcher.send(commands).await;
        let failure = match &sent {
            Err(e) if matches!(LinkError::from(e), LinkError::Unavailable(_)) => {
                Some(e.to_string())
            }
            Ok(replies)
                if replies
                    .iter()
                    .any(|r| matches!(r, Err(e) if e.code() == Some("READONLY"))) =>
            {
                Some("it is a replica now (READONLY)".to_owned())
            }
            _ => None,
        };
        if let Some(failure) = failure {
            self.refresh(slot, &current).await;
            return Err(LinkError::Unavailable(format!(
                "master {host}:{port} of {}: {failure}",
                self.master
            )));
        }
        sent.map_err(|e| LinkError::from(&e))
    }

    /// The slot's master connection, asking the sentinels first if it has none yet.
    async fn current(&self, slot: &Slot) -> Result<Current, LinkError> {
        if let Some(current) = lock(&slot.current).clone() {
            return Ok(current);
        }
        let _asking = tokio::time::timeout(self.timeout, slot.asking.lock())
            .await
            .map_err(|_| self.unavailable("another call is still asking the sentinels"))?;
        if let Some(current) = lock(&slot.current).clone() {
            return Ok(current);
        }
        let (host, port) = self.ask().await?;
        let batcher = self.target.batcher(&host, port);
        let current = Current {
            addr: (host, port),
            batcher,
        };
        *lock(&slot.current) = Some(current.clone());
        Ok(current)
    }

    /// After `failed` failed: if the sentinels now name another master, the slot's next call
    /// connects to it. Skipped when another call on the slot is already asking.
    async fn refresh(&self, slot: &Slot, failed: &Current) {
        let Ok(_asking) = slot.asking.try_lock() else {
            return;
        };
        let still_current = lock(&slot.current)
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(&c.batcher, &failed.batcher));
        if !still_current {
            return;
        }
        match self.ask().await {
            Ok(addr) if addr != failed.addr => {
                tracing::warn!(
                    "Redis master {} moved from {}:{} to {}:{}",
                    self.master,
                    failed.addr.0,
                    failed.addr.1,
                    addr.0,
                    addr.1
                );
                let batcher = self.target.batcher(&addr.0, addr.1);
                *lock(&slot.current) = Some(Current { addr, batcher });
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("{e}"),
        }
    }

    /// The master's address according to the first sentinel that knows it.
    async fn ask(&self) -> Result<(String, u16), LinkError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let mut errors = Vec::new();
        for sentinel in &self.sentinels {
            let asked = async {
                let mut conn = sentinel
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                redis::cmd("SENTINEL")
                    .arg("get-master-addr-by-name")
                    .arg(&self.master)
                    .query_async::<Option<(String, u16)>>(&mut conn)
                    .await
            };
            match tokio::time::timeout(self.timeout, asked).await {
                Ok(Ok(Some(addr))) => return Ok(addr),
                Ok(Ok(None)) => errors.push(format!(
                    "{}: does not know this master",
                    sentinel.get_connection_info().addr()
                )),
                Ok(Err(e)) => {
                    errors.push(format!("{}: {e}", sentinel.get_connection_info().addr()))
                }
                Err(_) => errors.push(format!(
                    "{}: no answer within {:?}",
                    sentinel.get_connection_info().addr(),
                    self.timeout
                )),
            }
        }
        Err(self.unavailable(&format!(
            "no sentinel named the master: {}",
            errors.join("; ")
        )))
    }

    fn unavailable(&self, reason: &str) -> LinkError {
        LinkError::Unavailable(format!("Redis Sentinel master {}: {reason}", self.master))
    }
}
