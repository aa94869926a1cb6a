//! `RedisStore`: sessions in Redis (standalone or Cluster), one hash per session.
//!
//! Layout: the key `{prefix}{<storage id>}` holds a hash with one field per data key (MessagePack
//! bytes) and the metadata under the empty field name (data keys are never empty). The braces are
//! a Cluster hash tag, so the lock key `{prefix}{<storage id>}:l` lives in the same slot and a
//! locked load is one pipelined round trip even on a Cluster.
//!
//! Round trips, and why: Redis CPU is what every app server shares, so the read path is one plain
//! `HGETALL` (a Lua script costs Redis 2-3x as much); only the save, whose "exists? then write"
//! must be atomic, is a script (`save.lua`). A new session is a pipelined `HSET` + `PEXPIRE`: ids
//! are 256 random bits, so the key cannot exist already and no existence check is needed.
//!
//! A pool of size N is N multiplexed connections used round robin. Each reconnects by itself after
//! Redis comes back; every command is bounded by the pool's `timeout`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ConnectionAddr, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, Value};
use tokio::sync::OnceCell;

use super::{
    ChangeSet, LockToken, LockedLoad, Meta, Record, SaveOutcome, SessionStore, StoreError,
    StoreFuture,
};
use crate::config::RedisPoolConfig;
use crate::id::StorageId;

/// The field that holds [`Meta`]; data keys are never empty, so it cannot clash.
const META_FIELD: &str = "";

/// A connection of either kind.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

enum Pool {
    /// Lazily connecting managers; creating them does no I/O.
    Single(Vec<ConnectionManager>),
    /// Cluster connections are created on first use (creating one talks to the nodes).
    Cluster {
        client: Box<redis::cluster::ClusterClient>,
        conns: Vec<OnceCell<ClusterConnection>>,
    },
}

struct Inner {
    pool: Pool,
    next: AtomicUsize,
    prefix: String,
    timeout: Duration,
    save: redis::Script,
    unlock: redis::Script,
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
                save: redis::Script::new(include_str!("save.lua")),
                unlock: redis::Script::new(include_str!("unlock.lua")),
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
            self.run(
                |mut conn| async move { redis::cmd("PING").query_async::<()>(&mut conn).await },
            )
            .await?;
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

    async fn conn(&self) -> Result<Conn, RedisError> {
        let n = self.inner.next.fetch_add(1, Ordering::Relaxed);
        match &self.inner.pool {
            Pool::Single(conns) => Ok(Conn::Single(conns[n % conns.len()].clone())),
            Pool::Cluster { client, conns } => {
                let cell = &conns[n % conns.len()];
                let conn = cell
                    .get_or_try_init(|| client.get_async_connection())
                    .await?;
                Ok(Conn::Cluster(conn.clone()))
            }
        }
    }

    /// Runs one operation on a pooled connection, bounded by the pool's timeout.
    async fn run<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let work = async {
            let conn = self.conn().await?;
            op(conn).await
        };
        match tokio::time::timeout(self.inner.timeout, work).await {
            Ok(result) => result.map_err(|e| unavailable(&e)),
            Err(_) => Err(StoreError::Unavailable(format!(
                "Redis did not answer within {:?}",
                self.inner.timeout
            ))),
        }
    }
}

fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
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

impl SessionStore for RedisStore {
    fn load<'a>(&'a self, id: &'a StorageId) -> StoreFuture<'a, Option<Record>> {
        Box::pin(async move {
            let key = self.session_key(id);
            let value = self
                .run(|mut conn| async move {
                    redis::cmd("HGETALL").arg(&key).query_async(&mut conn).await
                })
                .await?;
            parse_record(value)
        })
    }

    fn load_locked<'a>(
        &'a self,
        id: &'a StorageId,
        token: &'a LockToken,
        lock_ttl: Duration,
    ) -> StoreFuture<'a, LockedLoad> {
        Box::pin(async move {
            let (key, lock) = (self.session_key(id), self.lock_key(id));
            let (acquired, record): (Value, Value) = self
                .run(|mut conn| async move {
                    redis::pipe()
                        .cmd("SET")
                        .arg(&lock)
                        .arg(&token.0)
                        .arg("NX")
                        .arg("PX")
                        .arg(ttl_ms(lock_ttl))
                        .cmd("HGETALL")
                        .arg(&key)
                        .query_async(&mut conn)
                        .await
                })
                .await?;
            if acquired == Value::Nil {
                return Ok(LockedLoad::Busy);
            }
            Ok(LockedLoad::Acquired(parse_record(record)?))
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
            self.run(|mut conn| async move {
                let mut pipe = redis::pipe();
                let hset = pipe
                    .cmd("HSET")
                    .arg(&key)
                    .arg(META_FIELD)
                    .arg(&record.meta.encode()[..]);
                for (k, v) in &record.fields {
                    hset.arg(k).arg(&v[..]);
                }
                pipe.ignore()
                    .cmd("PEXPIRE")
                    .arg(&key)
                    .arg(ttl_ms(ttl))
                    .ignore()
                    .query_async::<()>(&mut conn)
                    .await
            })
            .await
        })
    }

    fn save<'a>(
        &'a self,
        id: &'a StorageId,
        changes: &'a ChangeSet,
    ) -> StoreFuture<'a, SaveOutcome> {
        Box::pin(async move {
            let (key, lock) = (self.session_key(id), self.lock_key(id));
            let script = &self.inner.save;
            let reply: i64 = self
                .run(|mut conn| async move {
                    let mut call = script.key(&key);
                    call.key(&lock)
                        .arg(ttl_ms(changes.ttl))
                        .arg(changes.unlock.as_ref().map_or("", |t| t.0.as_str()))
                        .arg(changes.removed.len())
                        .arg(&changes.removed);
                    for (k, v) in &changes.set {
                        call.arg(k).arg(&v[..]);
                    }
                    call.arg(META_FIELD).arg(&changes.meta.encode()[..]);
                    call.invoke_async(&mut conn).await
                })
                .await?;
            Ok(match reply {
                1 => SaveOutcome::Saved,
                0 => SaveOutcome::Gone,
                _ => SaveOutcome::LockLost,
            })
        })
    }

    fn unlock<'a>(&'a self, id: &'a StorageId, token: &'a LockToken) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let lock = self.lock_key(id);
            let script = &self.inner.unlock;
            self.run(|mut conn| async move {
                script
                    .key(&lock)
                    .arg(&token.0)
                    .invoke_async::<i64>(&mut conn)
                    .await
            })
            .await
            .map(drop)
        })
    }

    fn delete<'a>(&'a self, id: &'a StorageId) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let (key, lock) = (self.session_key(id), self.lock_key(id));
            let (deleted, _): (i64, i64) = self
                .run(|mut conn| async move {
                    redis::pipe()
                        .cmd("DEL")
                        .arg(&key)
                        .cmd("DEL")
                        .arg(&lock)
                        .query_async(&mut conn)
                        .await
                })
                .await?;
            Ok(deleted > 0)
        })
    }
}
