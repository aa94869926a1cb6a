//! `ResonanceStore`: sessions in the PHP framework's own layout (`[session] format =
//! resonance`), so a PHP application and this library share live sessions during a migration.
//!
//! Layout, as the framework writes it: the key `<prefix>.session<id>` (the raw 256-hex id) holds
//! the whole session as one igbinary blob, read with `GET` and written with `SET`. What this
//! store adds around it, in keys PHP never reads: the lock `{<prefix>.session<id>}:l` and, after
//! a destroy or rotation, a tombstone `{<prefix>.session<id>}:t` (and, after a rotation, the
//! ended blob `{<prefix>.session<id>}:c` for a retry, see `end.lua`). Their hash tag is the
//! whole session key, so on a Cluster they all live in the session key's slot. The library's
//! metadata (creation and touch times) is an entry of the blob's array under a key that starts
//! with a NUL byte (`"\0meta"`), which PHP code keeps like any other entry.
//!
//! One blob cannot take per-key writes, so a save is a compare-and-set (`save.lua`): read the
//! blob, merge this request's changed keys into it (every other key, including values this
//! library cannot represent, stays as it was), and write it only if it is still the blob that was
//! read; otherwise merge again into what is there now. Concurrent writes to different keys are
//! therefore all kept, as in the native layout. A save first compares with the blob this process
//! last read or wrote for the session (kept in `recent`), so without a concurrent writer it is
//! one script call; otherwise it merges into what the script found and tries again. A key
//! that is gone is never recreated (no resurrection), and a blob that does not decode is never
//! overwritten: the request fails instead.

mod blob;
mod recent;

use std::sync::Arc;
use std::time::Duration;

use redis::Value;

use super::RedisStore;
use super::pool::{Lane, Route, Script, store_error};
use super::reply::ttl_ms;
use crate::config::RedisPoolConfig;
use crate::id::{StorageId, UserIndexId};
use crate::store::{
    ChangeSet, EndOutcome, EndRequest, Loaded, LockToken, LockedLoad, Record, SaveOutcome,
    SessionStore, StoreError, StoreFuture, now_ms,
};
use blob::Blob;
use recent::Recent;
use redis_link::cmd;

/// How often a save merges again after finding the blob changed before giving up.
const MERGE_ATTEMPTS: usize = 32;

/// A [`SessionStore`] in the PHP framework's layout, on one named Redis pool (single server,
/// Sentinel or Cluster, with TLS and ACL users as for [`RedisStore`]). Cheap to clone.
#[derive(Clone, Debug)]
pub struct ResonanceStore {
    redis: RedisStore,
    /// The blob this process last read or wrote per session (`recent.rs`).
    recent: Arc<Recent>,
}

/// What a compare-and-set write should do with the blob it read.
struct Merge<'a> {
    /// Keys to set (igbinary-encoded values) and keys to remove.
    set: &'a [(String, bytes::Bytes)],
    removed: &'a [String],
    /// The metadata to store, if any.
    meta: Option<crate::store::Meta>,
    /// Keys to take out, each answered with whether it was there.
    take: &'a [String],
    /// The TTL to set, or `None` to keep the current one.
    ttl: Option<Duration>,
    /// The lock this write must hold, and releases.
    unlock: Option<&'a LockToken>,
}

impl ResonanceStore {
    /// Builds the pool described by `config`, as [`RedisStore::new`] does.
    ///
    /// # Errors
    ///
    /// As for [`RedisStore::new`].
    pub fn new(config: &RedisPoolConfig) -> Result<Self, StoreError> {
        Ok(Self::over(RedisStore::new(config)?))
    }

    /// The store over `redis`'s pool.
    pub(crate) fn over(redis: RedisStore) -> Self {
        Self {
            redis,
            recent: Arc::default(),
        }
    }

    /// The Redis key of a session: `<prefix>.session<id>`, as the PHP framework names it.
    #[must_use]
    pub fn session_key(&self, id: &StorageId) -> String {
        [self.redis.inner.prefix.as_str(), ".session", id.as_str()].concat()
    }

    /// Opens every connection of the pool now and checks each (see [`RedisStore::prefill`]).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn prefill(&self) -> Result<(), StoreError> {
        self.redis.prefill().await
    }

    fn scripts() -> &'static (Script, Script, Script) {
        static SCRIPTS: std::sync::OnceLock<(Script, Script, Script)> = std::sync::OnceLock::new();
        SCRIPTS.get_or_init(|| {
            (
                Script::new(include_str!("save.lua")),
                Script::new(include_str!("end.lua")),
                Script::new(include_str!("create.lua")),
            )
        })
    }

    async fn get(&self, id: &StorageId, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let get = cmd("GET").arg(key).take();
        let route = Route::Tagged { id, tag: key };
        let pool = &self.redis.inner.pool;
        match pool.exec_ok(route, Lane::Read, &[get]).await?.pop() {
            Some(Value::BulkString(blob)) => Ok(Some(blob)),
            Some(Value::Nil) => Ok(None),
            other => Err(unexpected("GET", other.as_ref())),
        }
    }

    /// What a load found, from the blob `GET` read: a live session, or else (a second round
    /// trip, off the hot path) whether a tombstone says the id was ended recently.
    async fn loaded(
        &self,
        id: &StorageId,
        key: &str,
        blob: Option<Vec<u8>>,
    ) -> Result<Loaded, StoreError> {
        if let Some(blob) = blob {
            let record = Blob::decode(&blob)?.record(now_ms());
            self.recent.remember(id, &blob);
            return Ok(Loaded::Found(record));
        }
        let exists = cmd("EXISTS").arg(tagged(key, "t")).take();
        let route = Route::Tagged { id, tag: key };
        let pool = &self.redis.inner.pool;
        match pool.exec_ok(route, Lane::Read, &[exists]).await?.pop() {
            Some(Value::Int(1)) => Ok(Loaded::Ended),
            Some(Value::Int(0)) => Ok(Loaded::Missing),
            other => Err(unexpected("EXISTS", other.as_ref())),
        }
    }

    /// Reads the blob, merges, and writes it back if nobody changed it meanwhile (see the module
    /// docs). Answers how the write went, and for [`Merge::take`] which keys it took.
    async fn merge(
        &self,
        id: &StorageId,
        merge: &Merge<'_>,
    ) -> Result<(SaveOutcome, Vec<bool>), StoreError> {
        let key = self.session_key(id);
        let lock = tagged(&key, "l");
        let route = Route::Tagged { id, tag: &key };
        let read = match self.recent.recall(id) {
            Some(blob) => Some(blob),
            None => self.get(id, &key).await?,
        };
        let Some(mut read) = read else {
            return Ok((SaveOutcome::Gone, vec![false; merge.take.len()]));
        };
        let save = &Self::scripts().0;
        for _ in 0..MERGE_ATTEMPTS {
            let mut blob = Blob::decode(&read)?;
            blob.apply(merge.set, merge.removed, merge.meta)?;
            let taken = blob.take(merge.take);
            if merge.set.is_empty()
                && merge.removed.is_empty()
                && merge.meta.is_none()
                && !taken.contains(&true)
            {
                return Ok((SaveOutcome::Saved, taken));
            }
            let written = blob.encode();
            let reply = self
                .redis
                .inner
                .pool
                .eval(route, Lane::Write, save, &[&key, &lock], |call| {
                    call.arg(&read[..])
                        .arg(&written[..])
                        .arg(merge.ttl.map_or(String::new(), |t| ttl_ms(t).to_string()))
                        .arg(merge.unlock.map_or("", |t| t.0.as_str()));
                })
                .await?;
            let Value::Array(items) = reply else {
                return Err(unexpected("save", Some(&reply)));
            };
            let mut items = items.into_iter();
            let outcome = match items.next() {
                Some(Value::Int(1)) => SaveOutcome::Saved,
                Some(Value::Int(0)) => SaveOutcome::Gone,
                Some(Value::Int(-1)) => SaveOutcome::LockLost,
                Some(Value::Int(2)) => match items.next() {
                    Some(Value::BulkString(current)) => {
                        read = current;
                        continue;
                    }
                    other => return Err(unexpected("save", other.as_ref())),
                },
                other => return Err(unexpected("save", other.as_ref())),
            };
            if outcome == SaveOutcome::Saved {
                self.recent.remember(id, &written);
                self.redis.replicated_on(route).await?;
                return Ok((outcome, taken));
            }
            self.recent.forget(id);
            return Ok((outcome, vec![false; merge.take.len()]));
        }
        Err(StoreError::Unavailable(format!(
            "the session changed under {MERGE_ATTEMPTS} merges in a row; nothing was written"
        )))
    }
}

/// A key of the session in the same slot as `key`: `{key}:suffix`.
fn tagged(key: &str, suffix: &str) -> String {
    format!("{{{key}}}:{suffix}")
}

fn unexpected(what: &str, reply: Option<&Value>) -> StoreError {
    let shape = reply.map_or_else(|| "none".to_owned(), super::reply::shape);
    StoreError::Backend(format!("unexpected {what} reply: {shape}"))
}

impl SessionStore for ResonanceStore {
    fn load<'a>(&'a self, id: &'a StorageId) -> StoreFuture<'a, Loaded> {
        Box::pin(async move {
            let key = self.session_key(id);
            let blob = self.get(id, &key).await?;
            self.loaded(id, &key, blob).await
        })
    }

    fn load_locked<'a>(
        &'a self,
        id: &'a StorageId,
        token: &'a LockToken,
        lock_ttl: Duration,
    ) -> StoreFuture<'a, LockedLoad> {
        Box::pin(async move {
            let key = self.session_key(id);
            let commands = [
                cmd("SET")
                    .arg(tagged(&key, "l"))
                    .arg(&token.0)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms(lock_ttl))
                    .take(),
                cmd("GET").arg(&key).take(),
            ];
            let route = Route::Tagged { id, tag: &key };
            // The read lane: no `WAIT` follows (see `pool.rs` on the lock and the lanes).
            let mut replies = self
                .redis
                .inner
                .pool
                .exec(route, Lane::Read, &commands)
                .await?
                .into_iter();
            match replies.next() {
                Some(Ok(Value::Nil)) => return Ok(LockedLoad::Busy),
                Some(Err(e)) => return Err(store_error(&e)),
                _ => {}
            }
            let blob = match replies.next() {
                Some(Ok(Value::BulkString(blob))) => Some(blob),
                Some(Ok(Value::Nil)) => None,
                Some(Err(e)) => return Err(store_error(&e)),
                other => return Err(unexpected("GET", other.and_then(Result::ok).as_ref())),
            };
            Ok(LockedLoad::Acquired(self.loaded(id, &key, blob).await?))
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
            let mut blob = Blob::default();
            blob.apply(&record.fields, &[], Some(record.meta))?;
            let encoded = blob.encode();
            let route = Route::Tagged { id, tag: &key };
            // Not a plain `SET`: the tombstone is a key of its own here, and a revoke may have
            // ended the id before its record is written (see the trait); `create.lua` checks it.
            let tombstone = tagged(&key, "t");
            let create = &Self::scripts().2;
            let reply = (self.redis.inner.pool)
                .eval(route, Lane::Write, create, &[&key, &tombstone], |call| {
                    call.arg(&encoded[..]).arg(ttl_ms(ttl));
                })
                .await?;
            match reply {
                Value::Int(1) => {}
                Value::Int(0) => return Ok(SaveOutcome::Gone),
                other => return Err(unexpected("create", Some(&other))),
            }
            self.recent.remember(id, &encoded);
            self.redis.replicated_on(route).await?;
            Ok(SaveOutcome::Saved)
        })
    }

    fn save<'a>(
        &'a self,
        id: &'a StorageId,
        changes: &'a ChangeSet,
    ) -> StoreFuture<'a, SaveOutcome> {
        Box::pin(async move {
            let merge = Merge {
                set: &changes.set,
                removed: &changes.removed,
                meta: Some(changes.meta),
                take: &[],
                ttl: Some(changes.ttl),
                unlock: changes.unlock.as_ref(),
            };
            Ok(self.merge(id, &merge).await?.0)
        })
    }

    fn unlock<'a>(&'a self, id: &'a StorageId, token: &'a LockToken) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let key = self.session_key(id);
            let route = Route::Tagged { id, tag: &key };
            self.redis.release(route, &tagged(&key, "l"), token).await
        })
    }

    fn end<'a>(
        &'a self,
        id: &'a StorageId,
        request: EndRequest<'a>,
    ) -> StoreFuture<'a, EndOutcome> {
        Box::pin(async move {
            let key = self.session_key(id);
            let (lock, tombstone) = (tagged(&key, "l"), tagged(&key, "t"));
            // A rotation's copy of what it ended, for a retry (see `end.lua`).
            let kept = tagged(&key, "c");
            let route = Route::Tagged { id, tag: &key };
            let keys = [
                key.as_str(),
                lock.as_str(),
                tombstone.as_str(),
                kept.as_str(),
            ];
            let end = &Self::scripts().1;
            let reply = self.redis.ending(route, end, &keys, &request).await?;
            let Value::Array(items) = reply else {
                return Err(unexpected("end", Some(&reply)));
            };
            self.recent.forget(id);
            let mut items = items.into_iter();
            let outcome = match (items.next(), items.next()) {
                (Some(Value::Int(1)), Some(Value::BulkString(blob))) => {
                    EndOutcome::Ended(Blob::decode(&blob)?.record(now_ms()))
                }
                (Some(Value::Int(0)), _) => EndOutcome::NotLive,
                (Some(Value::Int(-1)), _) => EndOutcome::LockLost,
                (other, _) => return Err(unexpected("end", other.as_ref())),
            };
            if outcome != EndOutcome::LockLost {
                self.redis.replicated_on(route).await?;
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
            let merge = Merge {
                set: &[],
                removed: &[],
                meta: None,
                take: fields,
                ttl: None,
                unlock: None,
            };
            Ok(self.merge(id, &merge).await?.1)
        })
    }

    fn index_add<'a>(
        &'a self,
        user: &'a UserIndexId,
        id: &'a StorageId,
        keep: Duration,
    ) -> StoreFuture<'a, ()> {
        self.redis.index_add(user, id, keep)
    }

    fn index_list<'a>(&'a self, user: &'a UserIndexId) -> StoreFuture<'a, Vec<StorageId>> {
        self.redis.index_list(user)
    }

    fn index_remove<'a>(
        &'a self,
        user: &'a UserIndexId,
        ids: &'a [StorageId],
    ) -> StoreFuture<'a, ()> {
        self.redis.index_remove(user, ids)
    }
}
