//! How a session's commands reach Redis: the pool's client (the `redis-link` crate: batching,
//! Cluster, Sentinel, TLS), which of its connections carries a session's calls (the thin
//! mapping from storage ids to a [`redis_link::Route`]), and the store's errors from the link's.
//!
//! A pool of size N is N pipelined connections. Each reconnects by itself on its
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

use std::time::Duration;

use redis::{RedisError, RedisResult, Value};
use redis_link::{Client, Command, LinkError};
pub(super) use redis_link::{Lane, Script};

use super::connect;
use crate::config::RedisPoolConfig;
use crate::id::{StorageId, UserIndexId};
use crate::store::StoreError;

/// A pool's connections with its timeout.
pub(super) struct Pool {
    client: Client,
    pub(super) timeout: Duration,
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

impl<'a> Route<'a> {
    /// The link's route: the storage id (or user index id) is the hash tag of the session's
    /// keys and, from its first bytes, picks the connection within a server.
    #[inline]
    fn link(self) -> redis_link::Route<'a> {
        match self {
            Route::Session(id) => redis_link::Route::Keyed {
                tag: id.as_str(),
                spread: spread(id.as_str()),
            },
            Route::User(user) => redis_link::Route::Keyed {
                tag: user.as_str(),
                spread: spread(user.as_str()),
            },
            Route::Tagged { id, tag } => redis_link::Route::Keyed {
                tag,
                spread: spread(id.as_str()),
            },
            Route::Any => redis_link::Route::Any,
        }
    }
}

/// A connection number from an id: ids are base64 of a hash, their first bytes uniformly
/// spread.
#[inline]
fn spread(id: &str) -> usize {
    id.bytes()
        .take(3)
        .fold(0usize, |acc, b| acc * 64 + usize::from(b))
}

/// A Redis error as a store error: unreachable or slow is `Unavailable`, the rest `Backend`,
/// as the link classifies it.
pub(super) fn store_error(e: &RedisError) -> StoreError {
    LinkError::from(e).into()
}

/// The link's error as the store's: the same two kinds (a connection failed or timed out: the
/// session storage is unavailable; Redis answered wrongly: a backend error).
impl From<LinkError> for StoreError {
    #[inline]
    fn from(e: LinkError) -> Self {
        match e {
            LinkError::Unavailable(message) => StoreError::Unavailable(message),
            LinkError::Backend(message) => StoreError::Backend(message),
        }
    }
}

impl Pool {
    /// The connections `config` describes (see `connect.rs`), twice `pool_size` per server
    /// with `min_replicas_ack`; no I/O.
    pub(super) fn new(config: &RedisPoolConfig) -> Result<Self, StoreError> {
        let client = Client::new(connect::client_config(config)?)?;
        Ok(Self {
            client,
            timeout: config.timeout,
        })
    }

    /// The connections, all lanes, opened so far or to be opened.
    pub(super) fn size(&self) -> usize {
        self.client.size()
    }

    /// Sends `commands` as one pipeline on the route's connection of `lane`, bounded by the
    /// pool's timeout, and returns one reply per command (a command's server error stays in
    /// its slot). The link's own future, with no layer of ours around it (a wrapping `async fn`
    /// cost about 70 instructions a call, callgrind): its error becomes a [`StoreError`] at the
    /// caller's `?`.
    #[inline]
    pub(super) fn exec<'a>(
        &'a self,
        route: Route<'a>,
        lane: Lane,
        commands: &'a [Command],
    ) -> impl Future<Output = Result<Vec<RedisResult<Value>>, LinkError>> + 'a {
        self.client.exec(route.link(), lane, commands)
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
        self.client
            .eval(route.link(), lane, script, keys, args)
            .await
            .map_err(StoreError::from)
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
