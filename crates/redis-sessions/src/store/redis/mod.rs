//! `RedisStore`: sessions in Redis (standalone, Sentinel or Cluster), one hash per session.
//!
//! Layout: the key `{prefix}{<storage id>}` holds a hash with one field per data key (MessagePack
//! bytes) and the metadata under the empty field name (data keys are never empty). The braces are
//! a Cluster hash tag, so the lock key `{prefix}{<storage id>}:l` lives in the same slot and a
//! locked load is one pipelined round trip even on a Cluster.
//!
//! Round trips, and why: Redis CPU is what every app server shares, and a Lua script costs Redis
//! 10-20x a plain command (`EVALSHA` of `save.lua` 1.7-1.9 µs against 0.1-0.2 µs for `HSET`, by
//! `INFO commandstats` under redis-benchmark), so the hot paths use plain commands only:
//!
//! - read: one `HGETALL`;
//! - new session: pipelined `HSET` + `PEXPIRE` (ids are 256 random bits: the key cannot exist);
//! - save (and touch): pipelined `HSET` (changed fields and metadata) [+ `HDEL`] + `PEXPIRE`.
//!
//! The save must never bring back a destroyed session. `end` therefore replaces the hash with
//! a string *tombstone*, so a late `HSET` fails with `WRONGTYPE` (reported as
//! [`SaveOutcome::Gone`]) instead of recreating it, and a late `HGETALL` reads "ended"
//! ([`Loaded::Ended`]) rather than "never existed". A session that
//! may have *expired* meanwhile leaves no tombstone, so when the manager cannot rule that out
//! ([`ChangeSet::within_lifetime`] false: the save comes near the end of the TTL), and for
//! locked saves, the save runs `save.lua`, which checks the key's type and the lock atomically.
//! What plain commands cannot rule out is a key lost by Redis itself (eviction, `FLUSHDB`, a
//! restart without persistence) between load and save: the save then recreates the changed
//! fields with a fresh TTL. That is data Redis had already lost, not a logout undone.
//!
//! Flash messages are taken with one pipelined `HDEL` per field (`take_fields`): each reply says
//! whether that call removed the field, and on a tombstone they fail with `WRONGTYPE` (nothing
//! taken, nothing created).
//!
//! `destroy` and the old id of a rotation go through `end.lua`, which reads the record and writes
//! the tombstone in one atomic step (so a rotation carries over every write that landed before
//! it) and releases only a lock this request owns. A rotation keeps a copy of what it read,
//! `{prefix}{<storage id>}:c`, as long as the tombstone, so that a retry gets the same answer. Tombstones live for the manager's tombstone
//! time (about a minute), not a session lifetime: saves of sessions loaded longer ago than that
//! take `save.lua`.
//!
//! Connections are described in `connect.rs` (address, ACL login, TLS), opened in `link.rs` and
//! used in `pool.rs` (one connection per session, for ordering; with `min_replicas_ack` a second
//! set for the writes and their `WAIT`, so that no read waits behind one); the commands of
//! concurrent requests are batched into one write (`batch/`), which is what keeps Redis's CPU per
//! request low, and replies are read by our own RESP reader (`resp.rs`). Under Sentinel
//! (`sentinel.rs`) each connection finds the master through the sentinels and follows it after a
//! failover. Commands and replies are in `reply.rs`; replica acknowledgements
//! (`min_replicas_ack`) and the eviction check in `durability.rs`.

mod connect;
mod durability;
mod pool;
mod reply;
mod resonance;
mod users;

use std::sync::Arc;
use std::time::Duration;

use redis::Value;

use super::{
    ChangeSet, EndOutcome, EndRequest, Loaded, LockToken, LockedLoad, Record, SaveOutcome,
    SessionStore, StoreError, StoreFuture,
};
use crate::config::RedisPoolConfig;
use crate::id::{StorageId, UserIndexId};
pub use connect::NodeClients;
pub use durability::EvictionRisk;
use pool::{Lane, Pool, Route, Script, store_error};
use redis_link::cmd;
use reply::{META_FIELD, hset, pexpire, ttl_ms};
pub use resonance::ResonanceStore;

/// The Redis Cluster hash slot of a key whose hash tag is `tag` (for a session, its storage
/// id): CRC16/XMODEM modulo 16384, as Redis computes it.
#[must_use]
pub fn hash_slot(tag: &str) -> u16 {
    redis_link::slot_of(tag)
}

struct Inner {
    pool: Pool,
    prefix: String,
    /// `min_replicas_ack`: replicas that must acknowledge every write (0: none).
    replicas: usize,
    save: Script,
    unlock: Script,
    end: Script,
}

/// A [`SessionStore`] backed by one named Redis pool. Cheap to clone.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.prefix)
            .field("timeout", &self.inner.pool.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Builds the pool described by `config`, over TLS and as an ACL user if it says so. No
    /// connection is made until first use; the TLS files are read now.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the settings cannot form a Redis connection description,
    /// e.g. a TLS file cannot be read or holds no valid PEM certificate or key.
    pub fn new(config: &RedisPoolConfig) -> Result<Self, StoreError> {
        Ok(Self {
            inner: Arc::new(Inner {
                pool: Pool::new(config)?,
                prefix: config.prefix.clone(),
                replicas: config.min_replicas_ack,
                save: Script::new(include_str!("save.lua")),
                unlock: Script::sent_whole(include_str!("unlock.lua")),
                end: Script::new(include_str!("end.lua")),
            }),
        })
    }

    /// Opens every connection of the pool now (`pool_prefill`) and checks each with a `PING`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn prefill(&self) -> Result<(), StoreError> {
        for _ in 0..self.inner.pool.size() {
            (self.inner.pool)
                .exec_ok(Route::Any, Lane::Read, &[cmd("PING")])
                .await?;
        }
        Ok(())
    }

    /// The Redis key of a session's hash.
    #[must_use]
    pub fn session_key(&self, id: &StorageId) -> String {
        self.key(id, "")
    }

    fn lock_key(&self, id: &StorageId) -> String {
        self.key(id, ":l")
    }

    /// `{prefix}{<id>}{suffix}`, built by hand: `format!` cost about 1,000 instructions a key,
    /// on every request (callgrind), this a tenth of that (and 140 fewer than `concat`).
    fn key(&self, id: &StorageId, suffix: &str) -> String {
        let (prefix, id) = (&self.inner.prefix, id.as_str());
        let mut key = String::with_capacity(prefix.len() + id.len() + 2 + suffix.len());
        key.push_str(prefix);
        key.push('{');
        key.push_str(id);
        key.push('}');
        key.push_str(suffix);
        key
    }

    /// The save with plain commands (see the module docs for when it is used and why it is safe).
    async fn save_plain(
        &self,
        id: &StorageId,
        changes: &ChangeSet,
    ) -> Result<SaveOutcome, StoreError> {
        let key = self.session_key(id);
        let mut commands = vec![hset(&key, changes.meta, &changes.set)];
        if !changes.removed.is_empty() {
            commands.push(cmd("HDEL").arg(&key).arg(&changes.removed).take());
        }
        commands.push(pexpire(&key, changes.ttl));
        let replies = (self.inner.pool)
            .exec(Route::Session(id), Lane::Write, &commands)
            .await?;
        match replies.into_iter().next() {
            Some(Ok(_)) => Ok(SaveOutcome::Saved),
            Some(Err(e)) if e.code() == Some("WRONGTYPE") => Ok(SaveOutcome::Gone),
            Some(Err(e)) => Err(store_error(&e)),
            None => Err(StoreError::Backend("no reply to HSET".into())),
        }
    }
}

impl SessionStore for RedisStore {
    fn load<'a>(&'a self, id: &'a StorageId) -> StoreFuture<'a, Loaded> {
        Box::pin(async move {
            let hgetall = cmd("HGETALL").arg(self.session_key(id)).take();
            let route = Route::Session(id);
            let replies = self.inner.pool.exec(route, Lane::Read, &[hgetall]).await?;
            reply::loaded(replies.into_iter().next())
        })
    }

    fn load_locked<'a>(
        &'a self,
        id: &'a StorageId,
        token: &'a LockToken,
        lock_ttl: Duration,
    ) -> StoreFuture<'a, LockedLoad> {
        Box::pin(async move {
            let lock = cmd("SET")
                .arg(self.lock_key(id))
                .arg(&token.0)
                .arg("NX")
                .arg("PX")
                .arg(ttl_ms(lock_ttl))
                .take();
            let hgetall = cmd("HGETALL").arg(self.session_key(id)).take();
            let commands = [lock, hgetall];
            // The read lane: no `WAIT` follows (see `pool.rs` on the lock and the lanes).
            let replies = (self.inner.pool).exec(Route::Session(id), Lane::Read, &commands);
            let mut replies = replies.await?.into_iter();
            match replies.next() {
                Some(Ok(Value::Nil)) => return Ok(LockedLoad::Busy),
                Some(Err(e)) => return Err(store_error(&e)),
                _ => {}
            }
            Ok(LockedLoad::Acquired(reply::loaded(replies.next())?))
        })
    }

    fn create<'a>(
        &'a self,
        id: &'a StorageId,
        record: &'a Record,
        ttl: Duration,
    ) -> StoreFuture<'a, SaveOutcome> {
        Box::pin(async move {
            let key = self.session_key(id);
            let commands = [hset(&key, record.meta, &record.fields), pexpire(&key, ttl)];
            let replies = (self.inner.pool)
                .exec(Route::Session(id), Lane::Write, &commands)
                .await?;
            match replies.into_iter().next() {
                Some(Ok(_)) => {}
                // A tombstone: a revoke ended the id before its record was written (see the
                // trait). The pipelined `PEXPIRE` gave the tombstone the session's TTL: a few
                // bytes kept longer, only in this race.
                Some(Err(e)) if e.code() == Some("WRONGTYPE") => return Ok(SaveOutcome::Gone),
                Some(Err(e)) => return Err(store_error(&e)),
                None => return Err(StoreError::Backend("no reply to HSET".into())),
            }
            self.replicated(id).await?;
            Ok(SaveOutcome::Saved)
        })
    }

    fn save<'a>(
        &'a self,
        id: &'a StorageId,
        changes: &'a ChangeSet,
    ) -> StoreFuture<'a, SaveOutcome> {
        Box::pin(async move {
            let outcome = self.save_unreplicated(id, changes).await?;
            if outcome == SaveOutcome::Saved {
                self.replicated(id).await?;
            }
            Ok(outcome)
        })
    }

    fn unlock<'a>(&'a self, id: &'a StorageId, token: &'a LockToken) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.release(Route::Session(id), &self.lock_key(id), token)
                .await
        })
    }

    fn end<'a>(
        &'a self,
        id: &'a StorageId,
        request: EndRequest<'a>,
    ) -> StoreFuture<'a, EndOutcome> {
        Box::pin(async move {
            let (key, lock) = (self.session_key(id), self.lock_key(id));
            // A rotation's copy of what it ended, for a retry (see `end.lua`).
            let kept = self.key(id, ":c");
            let route = Route::Session(id);
            let keys = [key.as_str(), lock.as_str(), kept.as_str()];
            let reply = (self.ending(route, &self.inner.end, &keys, &request)).await?;
            let outcome = reply::ended(reply)?;
            if outcome != EndOutcome::LockLost {
                self.replicated(id).await?;
            }
            Ok(outcome)
        })
    }

    fn take_fields<'a>(
        &'a self,
        id: &'a StorageId,
        fields: &'a [String],
    ) -> StoreFuture<'a, Vec<bool>> {
        Box::pin(async move {
            if fields.is_empty() {
                return Ok(Vec::new());
            }
            // One `HDEL` per field, pipelined: each says whether it removed its field.
            let key = self.session_key(id);
            let commands: Vec<_> = fields
                .iter()
                .map(|field| cmd("HDEL").arg(&key).arg(field).take())
                .collect();
            let replies = (self.inner.pool)
                .exec(Route::Session(id), Lane::Write, &commands)
                .await?;
            let taken = reply::taken(replies, fields.len())?;
            if taken.contains(&true) {
                self.replicated(id).await?;
            }
            Ok(taken)
        })
    }

    fn index_add<'a>(
        &'a self,
        user: &'a UserIndexId,
        id: &'a StorageId,
        keep: Duration,
    ) -> StoreFuture<'a, ()> {
        Box::pin(self.add_to_index(user, id, keep))
    }

    fn index_list<'a>(&'a self, user: &'a UserIndexId) -> StoreFuture<'a, Vec<StorageId>> {
        Box::pin(self.list_index(user))
    }

    fn index_remove<'a>(
        &'a self,
        user: &'a UserIndexId,
        ids: &'a [StorageId],
    ) -> StoreFuture<'a, ()> {
        Box::pin(self.remove_from_index(user, ids))
    }
}

impl RedisStore {
    /// Releases `lock` on `route`'s connection if `token` still holds it: on the read lane,
    /// the lane that took it, as no `WAIT` follows (see `pool.rs`).
    async fn release(
        &self,
        route: Route<'_>,
        lock: &str,
        token: &LockToken,
    ) -> Result<(), StoreError> {
        let unlock = &self.inner.unlock;
        (self.inner.pool)
            .eval(route, Lane::Read, unlock, &[lock], |call| {
                call.arg(&token.0);
            })
            .await
            .map(drop)
    }

    /// Runs an end script (this layout's or the PHP framework's) on `keys` with `request`'s
    /// arguments: tombstone TTL, lock token, whether the lock is required, successor; on the
    /// write lane, as a `WAIT` follows.
    async fn ending(
        &self,
        route: Route<'_>,
        script: &Script,
        keys: &[&str],
        request: &EndRequest<'_>,
    ) -> Result<Value, StoreError> {
        (self.inner.pool)
            .eval(route, Lane::Write, script, keys, |call| {
                call.arg(ttl_ms(request.tombstone))
                    .arg(request.lock.map_or("", |t| t.0.as_str()))
                    .arg(if request.require_lock { "1" } else { "0" })
                    .arg(request.successor);
            })
            .await
    }

    /// A save as the primary sees it (see the module docs for the two paths).
    async fn save_unreplicated(
        &self,
        id: &StorageId,
        changes: &ChangeSet,
    ) -> Result<SaveOutcome, StoreError> {
        if changes.within_lifetime && changes.unlock.is_none() {
            return self.save_plain(id, changes).await;
        }
        let (key, lock) = (self.session_key(id), self.lock_key(id));
        let route = Route::Session(id);
        let save = &self.inner.save;
        let reply = (self.inner.pool)
            .eval(route, Lane::Write, save, &[&key, &lock], |call| {
                call.arg(ttl_ms(changes.ttl))
                    .arg(changes.unlock.as_ref().map_or("", |t| t.0.as_str()))
                    .arg(changes.removed.len())
                    .arg(&changes.removed);
                for (k, v) in &changes.set {
                    call.arg(k).arg(&v[..]);
                }
                call.arg(META_FIELD).arg(&changes.meta.encode()[..]);
            })
            .await?;
        Ok(match reply {
            Value::Int(1) => SaveOutcome::Saved,
            Value::Int(0) => SaveOutcome::Gone,
            Value::Int(-1) => SaveOutcome::LockLost,
            other => {
                return Err(StoreError::Backend(format!(
                    "unexpected save reply: {}",
                    reply::shape(&other)
                )));
            }
        })
    }
}
