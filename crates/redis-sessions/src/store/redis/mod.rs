//! `RedisStore`: sessions in Redis (standalone or Cluster), one hash per session.
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
//! The save must never bring back a destroyed session. `delete` therefore replaces the hash with
//! a string *tombstone* that lives as long as the session could have, so a late `HSET` fails
//! with `WRONGTYPE` (reported as [`SaveOutcome::Gone`]) instead of recreating it. A session that
//! may have *expired* meanwhile leaves no tombstone, so when the manager cannot rule that out
//! ([`ChangeSet::within_lifetime`] false: the save comes near the end of the TTL), and for
//! locked saves, the save runs `save.lua`, which checks the key's type and the lock atomically.
//! What plain commands cannot rule out is a key lost by Redis itself (eviction, `FLUSHDB`, a
//! restart without persistence) between load and save: the save then recreates the changed
//! fields with a fresh TTL. That is data Redis had already lost, not a logout undone.
//!
//! A pool of size N is N multiplexed connections used round robin. Each reconnects by itself after
//! Redis comes back; every command is bounded by the pool's `timeout`. On a standalone server the
//! commands of concurrent requests are batched into one write (`batch.rs`), which is what keeps
//! Redis's CPU per request low.

mod batch;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ConnectionAddr, IntoConnectionInfo, RedisError, RedisResult, Value};
use tokio::sync::OnceCell;

use super::{
    ChangeSet, LockToken, LockedLoad, Meta, Record, SaveOutcome, SessionStore, StoreError,
    StoreFuture, millis,
};
use crate::config::RedisPoolConfig;
use crate::id::StorageId;

/// The field that holds [`Meta`]; data keys are never empty, so it cannot clash.
const META_FIELD: &str = "";

enum Pool {
    /// Lazily connecting managers, each behind a batching queue; creating them does no I/O.
    Single(Vec<Arc<batch::Batcher>>),
    /// Cluster connections are created on first use (creating one talks to the nodes).
    Cluster {
        client: Box<redis::cluster::ClusterClient>,
        conns: Vec<OnceCell<ClusterConnection>>,
    },
}

/// A Lua script: its source (for `EVAL` when Redis does not know it yet) and its SHA1.
struct Script {
    source: &'static str,
    sha: String,
}

impl Script {
    fn new(source: &'static str) -> Self {
        let sha = redis::Script::new(source).get_hash().to_owned();
        Self { source, sha }
    }

    /// `EVALSHA sha numkeys keys...` or, after a `NOSCRIPT`, `EVAL source numkeys keys...`
    /// (which also caches the script in Redis).
    fn call(&self, by_source: bool, keys: &[&str]) -> Cmd {
        let mut cmd = if by_source {
            redis::cmd("EVAL").arg(self.source).to_owned()
        } else {
            redis::cmd("EVALSHA").arg(&self.sha).to_owned()
        };
        cmd.arg(keys.len()).arg(keys);
        cmd
    }
}

struct Inner {
    pool: Pool,
    next: AtomicUsize,
    prefix: String,
    timeout: Duration,
    save: Script,
    unlock: Script,
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
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: &RedisError) -> StoreError {
    if e.is_io_error() || e.is_timeout() || e.is_connection_refusal() || e.is_connection_dropped() {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Backend(e.to_string())
    }
}

impl RedisStore {
    /// Builds the pool described by `config`. No connection is made until first use.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the settings cannot form a Redis connection description.
    pub fn new(config: &RedisPoolConfig) -> Result<Self, StoreError> {
        let pool = if config.cluster_nodes.is_empty() {
            let mut settings = ConnectionAddr::Tcp(config.host.clone(), config.port)
                .into_connection_info()
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            let mut redis_settings = settings.redis_settings().clone().set_db(config.db_index);
            if let Some(password) = &config.password {
                redis_settings = redis_settings.set_password(password);
            }
            settings = settings.set_redis_settings(redis_settings);
            let client =
                redis::Client::open(settings).map_err(|e| StoreError::Backend(e.to_string()))?;
            let manager_config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(config.timeout))
                .set_response_timeout(Some(config.timeout))
                .set_number_of_retries(1)
                .set_min_delay(Duration::from_millis(50))
                .set_max_delay(Duration::from_millis(500));
            let conns = (0..config.pool_size)
                .map(|_| {
                    ConnectionManager::new_lazy_with_config(client.clone(), manager_config.clone())
                        .map(batch::Batcher::new)
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            Pool::Single(conns)
        } else {
            let mut builder = ClusterClientBuilder::new(
                config.cluster_nodes.iter().map(|n| format!("redis://{n}")),
            )
            .connection_timeout(config.timeout)
            .response_timeout(config.timeout)
            .retries(1);
            if let Some(password) = &config.password {
                builder = builder.password(password);
            }
            let client = builder
                .build()
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            Pool::Cluster {
                client: Box::new(client),
                conns: (0..config.pool_size).map(|_| OnceCell::new()).collect(),
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                next: AtomicUsize::new(0),
                prefix: config.prefix.clone(),
                timeout: config.timeout,
                save: Script::new(include_str!("save.lua")),
                unlock: Script::new(include_str!("unlock.lua")),
            }),
        })
    }

    /// Opens every connection of the pool now (`pool_prefill`) and checks each with a `PING`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn prefill(&self) -> Result<(), StoreError> {
        let size = match &self.inner.pool {
            Pool::Single(c) => c.len(),
            Pool::Cluster { conns, .. } => conns.len(),
        };
        for _ in 0..size {
            self.exec(vec![redis::cmd("PING")]).await?;
        }
        Ok(())
    }

    /// The Redis key of a session's hash.
    #[must_use]
    pub fn session_key(&self, id: &StorageId) -> String {
        format!("{}{{{}}}", self.inner.prefix, id.as_str())
    }

    fn lock_key(&self, id: &StorageId) -> String {
        format!("{}{{{}}}:l", self.inner.prefix, id.as_str())
    }

    /// Sends `commands` as one pipeline on the next pooled connection, bounded by the pool's
    /// timeout, and returns one reply per command (a command's server error stays in its slot).
    async fn exec(&self, commands: Vec<Cmd>) -> Result<Vec<RedisResult<Value>>, StoreError> {
        let n = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let work = async {
            match &self.inner.pool {
                Pool::Single(batchers) => batchers[n % batchers.len()].send(commands).await,
                Pool::Cluster { client, conns } => {
                    let cell = &conns[n % conns.len()];
                    let mut conn = cell
                        .get_or_try_init(|| client.get_async_connection())
                        .await?
                        .clone();
                    let mut pipe = redis::pipe();
                    pipe.ignore_errors();
                    for command in commands {
                        pipe.add_command(command);
                    }
                    pipe.query_async(&mut conn).await
                }
            }
        };
        match tokio::time::timeout(self.inner.timeout, work).await {
            Ok(replies) => replies.map_err(|e| unavailable(&e)),
            Err(_) => Err(StoreError::Unavailable(format!(
                "Redis did not answer within {:?}",
                self.inner.timeout
            ))),
        }
    }

    /// [`RedisStore::exec`] for commands whose replies must all be successes.
    async fn exec_ok(&self, commands: Vec<Cmd>) -> Result<Vec<Value>, StoreError> {
        self.exec(commands)
            .await?
            .into_iter()
            .map(|reply| reply.map_err(|e| unavailable(&e)))
            .collect()
    }

    /// Runs a script with `keys` and the arguments `args` adds, loading it on a `NOSCRIPT`.
    async fn eval(
        &self,
        script: &Script,
        keys: &[&str],
        args: impl Fn(&mut Cmd),
    ) -> Result<Value, StoreError> {
        let mut by_source = false;
        loop {
            let mut call = script.call(by_source, keys);
            args(&mut call);
            let reply = self.exec(vec![call]).await?.pop();
            match reply {
                Some(Ok(value)) => return Ok(value),
                Some(Err(e)) if !by_source && e.code() == Some("NOSCRIPT") => by_source = true,
                Some(Err(e)) => return Err(unavailable(&e)),
                None => return Err(StoreError::Backend("no reply to a script call".into())),
            }
        }
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
            commands.push(
                redis::cmd("HDEL")
                    .arg(&key)
                    .arg(&changes.removed)
                    .to_owned(),
            );
        }
        commands.push(pexpire(&key, changes.ttl));
        match self.exec(commands).await?.into_iter().next() {
            Some(Ok(_)) => Ok(SaveOutcome::Saved),
            Some(Err(e)) if e.code() == Some("WRONGTYPE") => Ok(SaveOutcome::Gone),
            Some(Err(e)) => Err(unavailable(&e)),
            None => Err(StoreError::Backend("no reply to HSET".into())),
        }
    }
}

/// `HSET key "" meta field value...`: the metadata and the given fields.
fn hset(key: &str, meta: Meta, fields: &[(String, Bytes)]) -> Cmd {
    let mut hset = redis::cmd("HSET");
    hset.arg(key).arg(META_FIELD).arg(&meta.encode()[..]);
    for (field, value) in fields {
        hset.arg(field).arg(&value[..]);
    }
    hset
}

fn pexpire(key: &str, ttl: Duration) -> Cmd {
    redis::cmd("PEXPIRE").arg(key).arg(ttl_ms(ttl)).to_owned()
}

fn ttl_ms(ttl: Duration) -> u64 {
    millis(ttl).max(1)
}

/// Turns an `HGETALL` reply into a record; `None` for an empty reply (no such key).
fn parse_record(value: Value) -> Result<Option<Record>, StoreError> {
    let pairs: Vec<(Value, Value)> = match value {
        Value::Array(items) => {
            let mut it = items.into_iter();
            let mut pairs = Vec::new();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                pairs.push((k, v));
            }
            pairs
        }
        Value::Map(pairs) => pairs,
        Value::Nil => Vec::new(),
        other => {
            return Err(StoreError::Backend(format!(
                "unexpected HGETALL reply: {other:?}"
            )));
        }
    };
    if pairs.is_empty() {
        return Ok(None);
    }
    let mut meta = None;
    let mut fields = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        let (Value::BulkString(k), Value::BulkString(v)) = (k, v) else {
            return Err(StoreError::Backend(
                "HGETALL reply holds a non-string".into(),
            ));
        };
        if k.is_empty() {
            meta = Meta::decode(&v);
        } else {
            let key = String::from_utf8(k)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            fields.push((key, Bytes::from(v)));
        }
    }
    let meta = meta.unwrap_or_else(|| {
        // Written by something else, or damaged: keep the data, and let the next save or touch
        // write fresh metadata.
        tracing::warn!("session record without valid metadata; treating it as new");
        let now = super::now_ms();
        Meta {
            created_ms: now,
            touched_ms: 0,
        }
    });
    Ok(Some(Record { meta, fields }))
}

/// An `HGETALL` reply; a tombstone (`WRONGTYPE`) reads as no record.
fn record_reply(reply: Option<RedisResult<Value>>) -> Result<Value, StoreError> {
    match reply {
        Some(Ok(value)) => Ok(value),
        Some(Err(e)) if e.code() == Some("WRONGTYPE") => Ok(Value::Nil),
        Some(Err(e)) => Err(unavailable(&e)),
        None => Err(StoreError::Backend("no reply to HGETALL".into())),
    }
}

impl SessionStore for RedisStore {
    fn load<'a>(&'a self, id: &'a StorageId) -> StoreFuture<'a, Option<Record>> {
        Box::pin(async move {
            let hgetall = redis::cmd("HGETALL").arg(self.session_key(id)).to_owned();
            let reply = self.exec(vec![hgetall]).await?.pop();
            parse_record(record_reply(reply)?)
        })
    }

    fn load_locked<'a>(
        &'a self,
        id: &'a StorageId,
        token: &'a LockToken,
        lock_ttl: Duration,
    ) -> StoreFuture<'a, LockedLoad> {
        Box::pin(async move {
            let lock = redis::cmd("SET")
                .arg(self.lock_key(id))
                .arg(&token.0)
                .arg("NX")
                .arg("PX")
                .arg(ttl_ms(lock_ttl))
                .to_owned();
            let hgetall = redis::cmd("HGETALL").arg(self.session_key(id)).to_owned();
            let mut replies = self.exec(vec![lock, hgetall]).await?.into_iter();
            match replies.next() {
                Some(Ok(Value::Nil)) => return Ok(LockedLoad::Busy),
                Some(Err(e)) => return Err(unavailable(&e)),
                _ => {}
            }
            Ok(LockedLoad::Acquired(parse_record(record_reply(
                replies.next(),
            )?)?))
        })
    }

    fn create<'a>(
        &'a self,
        id: &'a StorageId,
        record: &'a Record,
        ttl: Duration,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let key = self.session_key(id);
            let commands = vec![hset(&key, record.meta, &record.fields), pexpire(&key, ttl)];
            self.exec_ok(commands).await.map(drop)
        })
    }

    fn save<'a>(
        &'a self,
        id: &'a StorageId,
        changes: &'a ChangeSet,
    ) -> StoreFuture<'a, SaveOutcome> {
        Box::pin(async move {
            if changes.within_lifetime && changes.unlock.is_none() {
                return self.save_plain(id, changes).await;
            }
            let (key, lock) = (self.session_key(id), self.lock_key(id));
            let reply = self
                .eval(&self.inner.save, &[&key, &lock], |call| {
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
                        "unexpected save reply {other:?}"
                    )));
                }
            })
        })
    }

    fn unlock<'a>(&'a self, id: &'a StorageId, token: &'a LockToken) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let lock = self.lock_key(id);
            self.eval(&self.inner.unlock, &[&lock], |call| {
                call.arg(&token.0);
            })
            .await
            .map(drop)
        })
    }

    fn delete<'a>(&'a self, id: &'a StorageId, tombstone: Duration) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let key = self.session_key(id);
            let replies = self
                .exec_ok(vec![
                    redis::cmd("TYPE").arg(&key).to_owned(),
                    // SET replaces a value of any type in one step: no save can slip between.
                    redis::cmd("SET")
                        .arg(&key)
                        .arg("")
                        .arg("PX")
                        .arg(ttl_ms(tombstone))
                        .to_owned(),
                    redis::cmd("DEL").arg(self.lock_key(id)).to_owned(),
                ])
                .await?;
            Ok(matches!(replies.first(), Some(Value::SimpleString(t)) if t == "hash"))
        })
    }
}
