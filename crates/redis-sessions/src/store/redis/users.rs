//! Users' indexes of sessions in Redis: one sorted set per user, `{prefix}u:{<user index id>}`,
//! whose members are the storage ids of the user's sessions, scored with the time (ms since the
//! epoch) until which the entry must be kept.
//!
//! The index lives in its own hash slot (the user index id is the hash tag), so on a Cluster it
//! is usually on another node than the sessions: no command or script here touches a session key,
//! and the manager orders the steps instead (entry first, then the record). Plain commands only:
//!
//! - add: `ZREMRANGEBYSCORE -inf now` (entries whose time passed: their sessions have expired),
//!   `ZADD GT` (an entry only moves later), `PEXPIRE NX` and `PEXPIRE GT` (the index lives as
//!   long as its longest entry), pipelined;
//! - list: `ZREMRANGEBYSCORE -inf now` and `ZRANGE 0 -1`, pipelined;
//! - remove: `ZREM`.
//!
//! It is a sorted set, not a hash, so a scan of the sessions by type (`TYPE hash`) skips it.

use std::time::Duration;

use redis::Value;

use super::RedisStore;
use super::pool::{Lane, Route};
use super::reply::ttl_ms;
use crate::id::{StorageId, UserIndexId};
use crate::store::{StoreError, millis, now_ms};
use redis_link::{Command, cmd};

impl RedisStore {
    /// The Redis key of a user's index.
    #[must_use]
    pub fn user_index_key(&self, user: &UserIndexId) -> String {
        [self.inner.prefix.as_str(), "u:{", user.as_str(), "}"].concat()
    }

    pub(super) async fn add_to_index(
        &self,
        user: &UserIndexId,
        id: &StorageId,
        keep: Duration,
    ) -> Result<(), StoreError> {
        let key = self.user_index_key(user);
        let until = now_ms() + millis(keep);
        let keep_ms = ttl_ms(keep);
        let commands = [
            expired(&key),
            cmd("ZADD")
                .arg(&key)
                .arg("GT")
                .arg(until)
                .arg(id.as_str())
                .take(),
            cmd("PEXPIRE").arg(&key).arg(keep_ms).arg("NX").take(),
            cmd("PEXPIRE").arg(&key).arg(keep_ms).arg("GT").take(),
        ];
        let route = Route::User(user);
        self.inner
            .pool
            .exec_ok(route, Lane::Write, &commands)
            .await?;
        self.replicated_on(route).await
    }

    pub(super) async fn list_index(
        &self,
        user: &UserIndexId,
    ) -> Result<Vec<StorageId>, StoreError> {
        let key = self.user_index_key(user);
        let commands = [expired(&key), cmd("ZRANGE").arg(&key).arg(0).arg(-1).take()];
        let replies = self
            .inner
            .pool
            .exec_ok(Route::User(user), Lane::Read, &commands)
            .await?;
        match replies.into_iter().nth(1) {
            Some(Value::Array(members)) => Ok(members
                .into_iter()
                .filter_map(|member| match member {
                    Value::BulkString(bytes) => std::str::from_utf8(&bytes)
                        .ok()
                        .and_then(StorageId::parse_stored),
                    _ => None,
                })
                .collect()),
            other => Err(StoreError::Backend(format!(
                "unexpected ZRANGE reply: {}",
                other
                    .as_ref()
                    .map_or_else(|| "none".to_owned(), super::reply::shape)
            ))),
        }
    }

    pub(super) async fn remove_from_index(
        &self,
        user: &UserIndexId,
        ids: &[StorageId],
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let key = self.user_index_key(user);
        let zrem = cmd("ZREM")
            .arg(&key)
            .arg(ids.iter().map(StorageId::as_str).collect::<Vec<_>>())
            .take();
        (self.inner.pool)
            .exec_ok(Route::User(user), Lane::Write, &[zrem])
            .await?;
        Ok(())
    }
}

/// Drops the entries of `key` whose time has passed.
fn expired(key: &str) -> Command {
    cmd("ZREMRANGEBYSCORE")
        .arg(key)
        .arg("-inf")
        .arg(now_ms())
        .take()
}
