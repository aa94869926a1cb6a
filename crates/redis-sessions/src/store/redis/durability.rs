//! What the Redis deployment guarantees about a write: replica acknowledgements
//! (`min_replicas_ack`, with `WAIT`) and whether the server may evict keys (tombstones), which
//! the manager checks at start-up.

use redis::Value;

use super::RedisStore;
use super::pool::{Lane, Route};
use super::reply::ttl_ms;
use crate::id::StorageId;
use crate::store::StoreError;
use redis_link::cmd;

/// What a Redis server's eviction settings mean for sessions (see
/// [`RedisStore::eviction_risk`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvictionRisk {
    /// The server's `maxmemory-policy`.
    pub policy: String,
}

impl std::fmt::Display for EvictionRisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Redis has maxmemory set with maxmemory-policy {}: under memory pressure it may evict \
             session tombstones, and a slow request could then bring back part of a session \
             that was logged out; use maxmemory-policy noeviction for the sessions' Redis",
            self.policy
        )
    }
}

impl RedisStore {
    /// Asks one server (`INFO memory`) whether it may evict keys: with `maxmemory` set and any
    /// `maxmemory-policy` but `noeviction`, Redis may evict a tombstone (they have TTLs, so the
    /// `volatile-*` policies pick them too), after which a slow request's save could bring back
    /// part of a logged-out session. `None` when eviction cannot happen.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when Redis cannot be asked.
    pub async fn eviction_risk(&self) -> Result<Option<EvictionRisk>, StoreError> {
        let reply = self
            .inner
            .pool
            .exec_ok(Route::Any, Lane::Read, &[cmd("INFO").arg("memory").take()])
            .await?;
        let mut text = String::new();
        collect_text(reply.into_iter().next().unwrap_or(Value::Nil), &mut text);
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        let maxmemory = field("maxmemory")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let policy = field("maxmemory_policy").unwrap_or("noeviction");
        Ok(
            (maxmemory > 0 && policy != "noeviction").then(|| EvictionRisk {
                policy: policy.to_owned(),
            }),
        )
    }

    /// With `min_replicas_ack` set, waits (`WAIT`, on the session's write-lane connection, so
    /// it covers the write just made there, and no read waits behind it: see `pool.rs`) until
    /// that many replicas have the write, for at most half the pool's timeout; fewer is an
    /// `Unavailable` error, so the request is not answered as a success.
    pub(super) async fn replicated(&self, id: &StorageId) -> Result<(), StoreError> {
        self.replicated_on(Route::Session(id)).await
    }

    /// [`RedisStore::replicated`] for the write just made on `route`'s write-lane connection.
    pub(super) async fn replicated_on(&self, route: Route<'_>) -> Result<(), StoreError> {
        let wanted = self.inner.replicas;
        if wanted == 0 {
            return Ok(());
        }
        let within = self.inner.pool.timeout / 2;
        let wait = cmd("WAIT").arg(wanted).arg(ttl_ms(within)).take();
        let reply = self.inner.pool.exec_ok(route, Lane::Write, &[wait]).await?;
        match reply.first() {
            Some(Value::Int(acked)) if usize::try_from(*acked).is_ok_and(|n| n >= wanted) => Ok(()),
            other => Err(StoreError::Unavailable(format!(
                "the write reached {} of the {wanted} replicas that min_replicas_ack requires \
                 within {within:?}",
                match other {
                    Some(Value::Int(n)) => n.to_string(),
                    _ => "an unknown number".to_owned(),
                }
            ))),
        }
    }
}

/// Gathers the text of an `INFO` reply (one string, or one per node on a Cluster).
fn collect_text(value: Value, out: &mut String) {
    match value {
        Value::BulkString(bytes) => out.push_str(&String::from_utf8_lossy(&bytes)),
        Value::VerbatimString { text, .. } | Value::SimpleString(text) => out.push_str(&text),
        Value::Array(items) => items.into_iter().for_each(|v| collect_text(v, out)),
        Value::Map(pairs) => pairs.into_iter().for_each(|(_, v)| collect_text(v, out)),
        _ => {}
    }
    out.push('\n');
}
