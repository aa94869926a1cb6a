//! The connections of one Redis pool and how commands reach them.
//!
//! A pool of size N is N pipelined connections (`batch/`). Each reconnects by itself on its
//! next call after Redis comes back; every call is bounded by the pool's `timeout`. The commands
//! of one session on one [`Lane`] go over the same connection (chosen from its storage id), so
//! Redis runs them in the order they were sent: a lock release sent after a lock request that
//! timed out on our side can never overtake it, even while Redis is paused, which would leave
//! the session locked for `lock_ttl`. Commands that concern no session (start-up checks) go
//! round robin over all connections.
//!
//! ## Two lanes with `min_replicas_ack`
//!
//! `WAIT` holds its whole connection until the replicas answer or its time is up (half the
//! timeout), and on a pipelined connection every call queued behind it waits too: with no
//! replica connected, reads of other sessions took up to the whole timeout and some failed,
//! although only writes may fail then. So with `min_replicas_ack > 0` the pool has two sets of
//! N connections (per server, per Cluster master, per Sentinel slot), and each call says which
//! it takes:
//!
//! - [`Lane::Write`]: writes of session data or of a user's index, each followed by its `WAIT`
//!   on the same connection (`WAIT` counts the writes of its own connection).
//! - [`Lane::Read`]: everything that is never followed by a `WAIT`: loads, the locked load
//!   (`SET NX` of the lock with the read), a release of the lock alone (`unlock.lua`), listing
//!   an index. No `WAIT` ever runs there, so nothing on it waits for replicas.
//!
//! Why the lock may be taken on one lane and released on the other: the danger is a release
//! that overtakes the acquire it follows (both sent, the acquire's reply not yet read, Redis
//! paused), which leaves the lock held. The only releases that can follow an unanswered acquire
//! are the manager's `unlock` of an attempt that failed, and that is on the read lane too, the
//! acquire's own connection. A release on the write lane (a save or end that releases the lock)
//! is sent only after the acquire was answered, so it runs after it. The reverse overtaking is
//! harmless: an `unlock` on the read lane that runs before a delayed save on the write lane
//! makes that save fail with `LockLost` (`save.lua` checks the token and writes atomically), so
//! a write never lands without its lock. A load on the read lane may run before an earlier
//! write of the same session whose reply timed out; that write was answered `503` (outcome
//! unknown), as before.
//!
//! With `min_replicas_ack = 0` there is one set: both lanes are the same connection, and the
//! pool does what it did before the lanes existed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use redis::{RedisError, RedisResult, Value};

use super::command::{Command, cmd};
use super::{batch, cluster, connect, sentinel};
use crate::config::RedisPoolConfig;
use crate::id::{StorageId, UserIndexId};
use crate::store::StoreError;

pub(super) enum Connections {
    /// Lazily connecting managers, each behind a batching queue; creating them does no I/O.
    Single(Vec<std::sync::Arc<batch::Batcher>>),
    /// Batching queues per Cluster node, routed by a slot map read on first use and followed
    /// after a failover (`cluster.rs`); each call is bounded by the timeout there.
    Cluster(Box<cluster::ClusterPool>),
    /// A master found through Redis Sentinel, per slot, followed after a failover
    /// (`sentinel.rs`); each call is bounded by the timeout there.
    Sentinel(Box<sentinel::SentinelPool>),
}

/// A pool's connections with its timeout.
pub(super) struct Pool {
    conns: Connections,
    next: AtomicUsize,
    pub(super) timeout: Duration,
    /// With `min_replicas_ack`, the connections per server of each lane: the read lane is the
    /// first `lanes`, the write lane the next `lanes`. 0: one set for both (no `WAIT` is sent).
    lanes: usize,
}

/// Which of a session's connections carries a call (see the module docs).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Lane {
    /// Calls never followed by a `WAIT`: loads, taking the lock, releasing it alone, listing.
    Read,
    /// Writes followed by a `WAIT`, and that `WAIT`.
    Write,
}

/// Which connection carries a call.
#[derive(Clone, Copy)]
pub(super) enum Route<'a> {
    /// The connection of this session, always the same one.
    Session(&'a StorageId),
    /// The connection of this user's index of sessions, always the same one.
    User(&'a UserIndexId),
    /// The connection of a session whose keys share the hash tag `tag` rather than its
    /// storage id (`format = resonance`: the PHP framework's key has no braces, so the whole
    /// data key is the tag), always the same one.
    Tagged {
        /// The session (spreads sessions over a single server's connections).
        id: &'a StorageId,
        /// What a Cluster hashes to find the slot.
        tag: &'a str,
    },
    /// The next connection, round robin.
    Any,
}

/// A Lua script: its source (for `EVAL` when Redis does not know it yet) and its SHA1.
pub(super) struct Script {
    source: &'static str,
    sha: String,
    /// Always sent whole (`EVAL`), never by hash first.
    by_source: bool,
}

impl Script {
    /// A script called by hash (`EVALSHA`), sent whole only after a `NOSCRIPT`.
    pub(super) fn new(source: &'static str) -> Self {
        let sha = redis::Script::new(source).get_hash().to_owned();
        Self {
            source,
            sha,
            by_source: false,
        }
    }

    /// A script always sent whole (`EVAL`): for a call that must take effect even if nobody
    /// reads its answer, e.g. a lock release sent while Redis is paused. With `EVALSHA`, a
    /// `NOSCRIPT` answer that arrives after our timeout would leave the call undone, with no
    /// retry.
    pub(super) fn sent_whole(source: &'static str) -> Self {
        Self {
            by_source: true,
            ..Self::new(source)
        }
    }

    /// `EVALSHA sha numkeys keys...` or, after a `NOSCRIPT`, `EVAL source numkeys keys...`
    /// (which also caches the script in Redis).
    fn call(&self, by_source: bool, keys: &[&str]) -> Command {
        let mut cmd = if by_source {
            cmd("EVAL").arg(self.source).take()
        } else {
            cmd("EVALSHA").arg(&self.sha).take()
        };
        cmd.arg(keys.len()).arg(keys);
        cmd
    }
}

/// Locks `mutex`, also after a thread panicked holding it: the pool's shared state (queues,
/// slot maps, current masters) stays consistent at every step, so a poisoned lock means only
/// that some caller panicked, not that the state is broken.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A Redis error as a store error: unreachable or slow is `Unavailable`, the rest `Backend`.
pub(super) fn store_error(e: &RedisError) -> StoreError {
    if e.is_io_error() || e.is_timeout() || e.is_connection_refusal() || e.is_connection_dropped() {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Backend(e.to_string())
    }
}

impl Pool {
    /// The connections `config` describes (see `connect.rs`), twice `pool_size` per server
    /// with `min_replicas_ack`; no I/O.
    pub(super) fn new(config: &RedisPoolConfig) -> Result<Self, StoreError> {
        let lanes = if config.min_replicas_ack > 0 {
            config.pool_size.max(1)
        } else {
            0
        };
        let per_server = if lanes > 0 {
            2 * lanes
        } else {
            config.pool_size
        };
        Ok(Self {
            conns: connect::connections(config, per_server)?,
            next: AtomicUsize::new(0),
            timeout: config.timeout,
            lanes,
        })
    }

    /// The connections, all lanes, opened so far or to be opened.
    pub(super) fn size(&self) -> usize {
        match &self.conns {
            Connections::Single(c) => c.len(),
            Connections::Cluster(c) => c.size(),
            Connections::Sentinel(s) => s.size(),
        }
    }

    /// The connection number of a call within its server (or Sentinel slot): the same for
    /// every call of one session on one lane.
    fn index(&self, route: Route<'_>, lane: Lane) -> usize {
        let n = match route {
            Route::Session(id) | Route::Tagged { id, .. } => Self::spread(id.as_str()),
            Route::User(user) => Self::spread(user.as_str()),
            // Start-up checks, on every connection in turn (so `prefill` opens both lanes).
            Route::Any => return self.next.fetch_add(1, Ordering::Relaxed),
        };
        match (self.lanes, lane) {
            (0, _) => n,
            (lanes, Lane::Read) => n % lanes,
            (lanes, Lane::Write) => lanes + n % lanes,
        }
    }

    /// A connection number from an id: ids are base64 of a hash, their first bytes uniformly
    /// spread.
    fn spread(id: &str) -> usize {
        id.bytes()
            .take(3)
            .fold(0usize, |acc, b| acc * 64 + usize::from(b))
    }

    /// Sends `commands` as one pipeline on the route's connection of `lane`, bounded by the
    /// pool's timeout, and returns one reply per command (a command's server error stays in
    /// its slot).
    pub(super) async fn exec(
        &self,
        route: Route<'_>,
        lane: Lane,
        commands: &[Command],
    ) -> Result<Vec<RedisResult<Value>>, StoreError> {
        let n = self.index(route, lane);
        match &self.conns {
            // The batcher bounds the call by the timeout itself (one timer per connection).
            Connections::Single(batchers) => batchers[n % batchers.len()]
                .send(commands)
                .await
                .map_err(|e| store_error(&e)),
            // Bounds each phase itself, and follows slot moves and failovers. Boxed, as is the
            // Sentinel call: their futures are large (2.6 KiB), and inline they made every
            // caller's future that large, the plain server's too (see the test below).
            Connections::Cluster(c) => {
                let target = match route {
                    Route::Session(id) => cluster::Target::Slot(cluster::slot_of(id.as_str())),
                    Route::User(user) => cluster::Target::Slot(cluster::slot_of(user.as_str())),
                    Route::Tagged { tag, .. } => cluster::Target::Slot(cluster::slot_of(tag)),
                    Route::Any => cluster::Target::Any,
                };
                Box::pin(c.exec(n, target, commands)).await
            }
            // Bounds each phase itself, and follows a failover (boxed: see above).
            Connections::Sentinel(sentinel) => Box::pin(sentinel.exec(n, commands)).await,
        }
    }

    /// [`Pool::exec`] for commands whose replies must all be successes.
    pub(super) async fn exec_ok(
        &self,
        route: Route<'_>,
        lane: Lane,
        commands: &[Command],
    ) -> Result<Vec<Value>, StoreError> {
        self.exec(route, lane, commands)
            .await?
            .into_iter()
            .map(|reply| reply.map_err(|e| store_error(&e)))
            .collect()
    }

    /// Runs a script on `lane` with `keys` and the arguments `args` adds, loading it on a
    /// `NOSCRIPT` (or sending it whole from the start, see [`Script::sent_whole`]).
    pub(super) async fn eval(
        &self,
        route: Route<'_>,
        lane: Lane,
        script: &Script,
        keys: &[&str],
        args: impl Fn(&mut Command),
    ) -> Result<Value, StoreError> {
        let mut by_source = script.by_source;
        loop {
            let mut call = script.call(by_source, keys);
            args(&mut call);
            let reply = self.exec(route, lane, &[call]).await?.pop();
            match reply {
                Some(Ok(value)) => return Ok(value),
                Some(Err(e)) if !by_source && e.code() == Some("NOSCRIPT") => by_source = true,
                Some(Err(e)) => return Err(store_error(&e)),
                None => return Err(StoreError::Backend("no reply to a script call".into())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::RedisStore;
    use super::{Lane, Route};
    use crate::config::RedisPoolConfig;
    use crate::id::SessionId;
    use crate::store::{ChangeSet, Meta, Record, SessionStore};

    /// A session's load (and save, create) future is boxed on every request: mimalloc serves
    /// blocks up to 1 KiB from its fast path, and larger ones cost about 200 instructions more
    /// (callgrind). The Cluster and Sentinel arms of `Pool::exec` once made its future 2.6 KiB;
    /// they are boxed now, so the plain server's path stays small. Nothing here does I/O.
    #[test]
    fn the_store_futures_of_every_request_stay_small() {
        let store = RedisStore::new(&RedisPoolConfig::default()).expect("a store");
        let id = SessionId::generate().storage_id();
        let exec = store.inner.pool.exec(Route::Session(&id), Lane::Write, &[]);
        let size = size_of_val(&exec);
        assert!(size < 512, "exec: {size} bytes");
        let meta = Meta {
            created_ms: 0,
            touched_ms: 0,
        };
        let changes = ChangeSet {
            set: Vec::new(),
            removed: Vec::new(),
            meta,
            ttl: Duration::from_secs(1),
            unlock: None,
            within_lifetime: true,
        };
        let record = Record {
            meta,
            fields: Vec::new(),
        };
        let sizes = [
            ("load", size_of_val(&*store.load(&id))),
            ("save", size_of_val(&*store.save(&id, &changes))),
            (
                "create",
                size_of_val(&*store.create(&id, &record, changes.ttl)),
            ),
        ];
        for (call, size) in sizes {
            assert!(size < 1024, "{call}: {size} bytes");
        }
    }
}
