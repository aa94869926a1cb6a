//! The connections of one Redis deployment (a server, a Cluster, a Sentinel master) and how
//! commands reach them.
//!
//! A client of size N is N pipelined connections per server (`batch/`). Each reconnects by
//! itself on its next call after Redis comes back; every call is bounded by the `timeout`. The
//! calls of one [`Route`] on one [`Lane`] go over the same connection (chosen from its spread
//! key), so Redis runs them in the order they were sent: a lock release sent after a lock
//! request that timed out on our side can never overtake it, even while Redis is paused.
//! [`Route::Any`] goes round robin over all connections.
//!
//! ## Two lanes
//!
//! `WAIT` holds its whole connection until the replicas answer or its time is up, and on a
//! pipelined connection every call queued behind it waits too. So a client built with
//! `lanes > 0` has two sets of `lanes` connections (per server, per Cluster master, per
//! Sentinel slot), and each call says which it takes: [`Lane::Write`] for writes each followed
//! by its `WAIT` on the same connection (`WAIT` counts the writes of its own connection),
//! [`Lane::Read`] for everything never followed by a `WAIT`, so nothing there waits for
//! replicas. With `lanes = 0` both lanes are the same connection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use redis::{RedisResult, Value};

use crate::command::{Command, cmd};
use crate::connect::ClientConfig;
use crate::{LinkError, batch, cluster, connect, sentinel};

pub(crate) enum Connections {
    /// Lazily connecting managers, each behind a batching queue; creating them does no I/O.
    Single(Vec<std::sync::Arc<batch::Batcher>>),
    /// Batching queues per Cluster node, routed by a slot map read on first use and followed
    /// after a failover (`cluster/`); each call is bounded by the timeout there.
    Cluster(Box<cluster::ClusterPool>),
    /// A master found through Redis Sentinel, per slot, followed after a failover
    /// (`sentinel.rs`); each call is bounded by the timeout there.
    Sentinel(Box<sentinel::SentinelPool>),
}

/// The connections to one Redis deployment (a server, a Cluster or a Sentinel master), with
/// its timeout. Creating one does no I/O: each connection opens on its first call.
pub struct Client {
    conns: Connections,
    next: AtomicUsize,
    timeout: Duration,
    /// The connections per server of each lane: the read lane is the first `lanes`, the write
    /// lane the next `lanes`. 0: one set for both.
    lanes: usize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("connections", &self.size())
            .field("timeout", &self.timeout)
            .field("lanes", &self.lanes)
            .finish_non_exhaustive()
    }
}

/// Which of a route's connections carries a call (see the module docs of [`Client`]'s
/// lanes: a `WAIT` only ever runs on [`Lane::Write`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Lane {
    /// Calls never followed by a `WAIT`.
    Read,
    /// Writes followed by a `WAIT`, and that `WAIT`.
    Write,
}

/// Which connection carries a call.
#[derive(Clone, Copy, Debug)]
pub enum Route<'a> {
    /// The connection of keys whose hash tag is `tag`, always the same one for the same
    /// `spread` (calls of one route reach Redis in the order they were sent).
    Keyed {
        /// What a Cluster hashes to find the slot ([`slot_of`](crate::slot_of)).
        tag: &'a str,
        /// Picks the connection within the server: equal numbers, same connection.
        spread: usize,
    },
    /// The next connection, round robin (start-up checks: every connection in turn).
    Any,
}

/// A Lua script: its source (for `EVAL` when Redis does not know it yet) and its SHA1.
#[derive(Debug)]
pub struct Script {
    source: &'static str,
    sha: String,
    /// Always sent whole (`EVAL`), never by hash first.
    by_source: bool,
}

impl Script {
    /// A script called by hash (`EVALSHA`), sent whole only after a `NOSCRIPT`.
    #[must_use]
    pub fn new(source: &'static str) -> Self {
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
    #[must_use]
    pub fn sent_whole(source: &'static str) -> Self {
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

/// Locks `mutex`, also after a thread panicked holding it: the client's shared state (queues,
/// slot maps, current masters) stays consistent at every step, so a poisoned lock means only
/// that some caller panicked, not that the state is broken.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Client {
    /// The connections `config` describes; no I/O.
    ///
    /// # Errors
    ///
    /// [`LinkError::Backend`] when a sentinel's address cannot form a client.
    pub fn new(config: ClientConfig) -> Result<Self, LinkError> {
        let lanes = config.lanes;
        let per_server = if lanes > 0 {
            2 * lanes
        } else {
            config.per_server
        };
        let timeout = config.timeout;
        Ok(Self {
            conns: connect::connections(config, per_server)?,
            next: AtomicUsize::new(0),
            timeout,
            lanes,
        })
    }

    /// Every call's bound (each phase of a redirected or failed-over call is bounded by it).
    #[must_use]
    #[inline]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The connections, all lanes, opened so far or to be opened.
    #[must_use]
    pub fn size(&self) -> usize {
        match &self.conns {
            Connections::Single(c) => c.len(),
            Connections::Cluster(c) => c.size(),
            Connections::Sentinel(s) => s.size(),
        }
    }

    /// The connection number of a call within its server (or Sentinel slot): the same for
    /// every call of one route on one lane.
    #[inline]
    fn index(&self, route: Route<'_>, lane: Lane) -> usize {
        let n = match route {
            Route::Keyed { spread, .. } => spread,
            // Start-up checks, on every connection in turn (so a prefill opens both lanes).
            Route::Any => return self.next.fetch_add(1, Ordering::Relaxed),
        };
        match (self.lanes, lane) {
            (0, _) => n,
            (lanes, Lane::Read) => n % lanes,
            (lanes, Lane::Write) => lanes + n % lanes,
        }
    }

    /// Sends `commands` as one pipeline on the route's connection of `lane`, bounded by the
    /// timeout, and returns one reply per command (a command's server error stays in its
    /// slot; on a Cluster, only the commands Redis redirected follow the redirect).
    ///
    /// # Errors
    ///
    /// [`LinkError::Unavailable`] when the server is unreachable or does not answer within
    /// the timeout (whether a write ran is then unknown), [`LinkError::Backend`] for a reply
    /// that breaks the protocol.
    #[inline]
    pub async fn exec(
        &self,
        route: Route<'_>,
        lane: Lane,
        commands: &[Command],
    ) -> Result<Vec<RedisResult<Value>>, LinkError> {
        let n = self.index(route, lane);
        match &self.conns {
            // The batcher bounds the call by the timeout itself (one timer per connection).
            Connections::Single(batchers) => batchers[n % batchers.len()]
                .send(commands)
                .await
                .map_err(|e| LinkError::from(&e)),
            // Bounds each phase itself, and follows slot moves and failovers. Boxed, as is the
            // Sentinel call: their futures are large (2.6 KiB), and inline they made every
            // caller's future that large, the plain server's too.
            Connections::Cluster(c) => {
                let target = match route {
                    Route::Keyed { tag, .. } => cluster::Target::Slot(cluster::slot_of(tag)),
                    Route::Any => cluster::Target::Any,
                };
                Box::pin(c.exec(n, target, commands)).await
            }
            // Bounds each phase itself, and follows a failover (boxed: see above).
            Connections::Sentinel(sentinel) => Box::pin(sentinel.exec(n, commands)).await,
        }
    }

    /// Runs a script on `lane` with `keys` and the arguments `args` adds, loading it on a
    /// `NOSCRIPT` (or sending it whole from the start, see [`Script::sent_whole`]).
    ///
    /// # Errors
    ///
    /// As [`Client::exec`], and [`LinkError::Backend`] for the script's own error reply.
    pub async fn eval(
        &self,
        route: Route<'_>,
        lane: Lane,
        script: &Script,
        keys: &[&str],
        args: impl Fn(&mut Command),
    ) -> Result<Value, LinkError> {
        let mut by_source = script.by_source;
        loop {
            let mut call = script.call(by_source, keys);
            args(&mut call);
            let reply = self.exec(route, lane, &[call]).await?.pop();
            match reply {
                Some(Ok(value)) => return Ok(value),
                Some(Err(e)) if !by_source && e.code() == Some("NOSCRIPT") => by_source = true,
                Some(Err(e)) => return Err(LinkError::from(&e)),
                None => return Err(LinkError::Backend("no reply to a script call".into())),
            }
        }
    }
}
