//! Users' sessions: the index of the sessions bound to a user ([`Session::bind_user`]), listed
//! for a "where you are signed in" page and revoked one by one, all but the current one, or all
//! (log out other devices, a password change, an account lock).
//!
//! The index is a set of storage ids per user in the store, next to the sessions but in its own
//! slot on a Cluster, so nothing here is atomic across the two. The order of the steps keeps the
//! one property revocation needs: **every live session of a user is in the user's index**.
//!
//! - An entry is written *before* its record: binding (a rotation) and any record created for a
//!   bound session enter the index first. If the record is never written, the entry is stale.
//! - An entry is kept longer than its session can live: each write of it says "until TTL +
//!   touch interval + a clock margin from now", and it is refreshed before every save that moves the
//!   session's TTL on with a touch (at most once per touch interval, one `ZADD` round trip);
//!   saves between touches extend the TTL by less than the touch interval the entry allows for.
//!   Entries whose time has passed are dropped whenever the index is read, so it never grows
//!   beyond the user's recent sessions, and the index itself expires with its last entry.
//! - Revocation ends each listed session with `end` (a tombstone: an in-flight save of it gets
//!   `409`, a late create of it fails), and only then removes the entries.
//!
//! Sessions without a user pay nothing: no index is read or written for them.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::Either;

use super::SessionManager;
use super::persist::Write;
use crate::data::redact::Size;
use crate::data::{Codec, SessionData};
use crate::error::SessionError;
use crate::id::{StorageId, UserIndexId};
use crate::observe::Observed;
use crate::session::{ABOUT_KEY, Session, USER_KEY};
use crate::store::{EndOutcome, EndRequest, Loaded, now_ms};

/// One of a user's sessions, as [`SessionManager::user_sessions`] lists it. Its `Debug` shows
/// the description's length, not its text (a value the application stored).
#[derive(Clone, PartialEq, Eq)]
pub struct UserSession {
    /// Names the session for [`SessionManager::revoke_user_session`]; not its id (it opens
    /// nothing) and stable for the session's life until its next rotation.
    pub handle: String,
    /// Whether it is the session of the request that asked.
    pub current: bool,
    /// When it was created.
    pub created: SystemTime,
    /// When it was last used, to within the touch interval.
    pub last_seen: SystemTime,
    /// What [`Session::describe`] stored, if anything.
    pub description: Option<String>,
}

impl std::fmt::Debug for UserSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let description = self.description.as_ref().map(|d| Size(d.len()));
        f.debug_struct("UserSession")
            .field("handle", &self.handle)
            .field("current", &self.current)
            .field("created", &self.created)
            .field("last_seen", &self.last_seen)
            .field("description", &description)
            .finish()
    }
}

impl SessionManager {
    /// The live sessions bound to `user_id`, oldest first; `current` (the asking request's
    /// session, if any) is marked. Entries of ended sessions are dropped from the index.
    ///
    /// Costs 2 round trips: the index (`ZREMRANGEBYSCORE` + `ZRANGE`), then one `HGETALL` per
    /// listed session, sent together.
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] when the store cannot be reached.
    pub async fn user_sessions(
        &self,
        user_id: &str,
        current: Option<&Session>,
    ) -> Result<Vec<UserSession>, SessionError> {
        let user = UserIndexId::of_user(user_id);
        let store = &self.inner.store;
        let ids = store.index_list(&user).await?;
        let loads = futures_util::future::join_all(ids.iter().map(|id| store.load(id))).await;
        let current = current.and_then(Session::storage_id);
        let mut sessions = Vec::new();
        let mut ended = Vec::new();
        for (id, loaded) in ids.into_iter().zip(loads) {
            match loaded? {
                Loaded::Found(record) => {
                    let data = SessionData::from_stored(record.fields, usize::MAX, usize::MAX)
                        .with_codec(Codec::of(self.inner.config.format));
                    let owner: Option<String> = data.get_reserved(USER_KEY).ok().flatten();
                    if owner.as_deref() != Some(user_id) {
                        continue;
                    }
                    sessions.push(UserSession {
                        current: current.as_ref() == Some(&id),
                        handle: id.as_str().to_owned(),
                        created: time(record.meta.created_ms),
                        last_seen: time(record.meta.touched_ms),
                        description: data.get_reserved(ABOUT_KEY).ok().flatten(),
                    });
                }
                // Ended for good: its entry can go. A missing record may still be on its way
                // (its entry is written first), so its entry stays until its time passes.
                Loaded::Ended => ended.push(id),
                Loaded::Missing => {}
            }
        }
        if !ended.is_empty() {
            // Only tidying: a failure leaves stale entries, which the next listing drops.
            let _ = store.index_remove(&user, &ended).await;
        }
        sessions.sort_by_key(|s| s.created);
        Ok(sessions)
    }

    /// Ends the session of `user_id` named `handle` (from [`SessionManager::user_sessions`]).
    /// Returns whether a live session was ended; `false` when the handle is not one of the
    /// user's (nothing changes then).
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] when the store cannot be reached.
    pub async fn revoke_user_session(
        &self,
        user_id: &str,
        handle: &str,
    ) -> Result<bool, SessionError> {
        let user = UserIndexId::of_user(user_id);
        let ids = self.inner.store.index_list(&user).await?;
        let Some(id) = ids.into_iter().find(|id| id.as_str() == handle) else {
            return Ok(false);
        };
        Ok(self.revoke(&user, vec![id]).await? > 0)
    }

    /// Ends every session of `user_id` except `keep` (the current one, for "log out other
    /// sessions"; `None` ends all, e.g. after a password change). Returns how many live
    /// sessions were ended. A request of a revoked session that is still running cannot bring
    /// it back: its save answers `409`.
    ///
    /// Costs 3 round trips: the index, one `end.lua` per session (sent together), one `ZREM`.
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] when the store cannot be reached; the sessions ended before the
    /// failure stay ended, a retry ends the rest.
    pub async fn revoke_user_sessions(
        &self,
        user_id: &str,
        keep: Option<&Session>,
    ) -> Result<usize, SessionError> {
        let user = UserIndexId::of_user(user_id);
        let keep = keep.and_then(Session::storage_id);
        let mut ids = self.inner.store.index_list(&user).await?;
        ids.retain(|id| Some(id) != keep.as_ref());
        self.revoke(&user, ids).await
    }

    /// Ends `ids` (each with a tombstone, whatever state it is in), then removes the entries of
    /// those that ended. Returns how many were live.
    async fn revoke(&self, user: &UserIndexId, ids: Vec<StorageId>) -> Result<usize, SessionError> {
        let store = &self.inner.store;
        let ends = ids.iter().map(|id| {
            let request = EndRequest {
                tombstone: self.tombstone(),
                lock: None,
                require_lock: false,
                successor: "",
            };
            store.end(id, request)
        });
        let outcomes = futures_util::future::join_all(ends).await;
        let mut done = Vec::new();
        let mut live = 0;
        let mut failure = None;
        for (id, outcome) in ids.into_iter().zip(outcomes) {
            match outcome {
                Ok(outcome) => {
                    live += usize::from(matches!(outcome, EndOutcome::Ended(_)));
                    done.push(id);
                }
                Err(error) => failure = Some(error),
            }
        }
        store.index_remove(user, &done).await?;
        match failure {
            Some(error) => Err(error.into()),
            None => Ok(live),
        }
    }

    /// Runs `writes` (the store calls of a persist), entering or refreshing the user's index
    /// entry first when `index` says the session is bound (see the module docs for why first).
    /// After a rotation, the old id's entry goes (tidying only).
    ///
    /// Not an `async fn`, for the reason given at [`Observed::run`].
    pub(super) fn indexed<'a, F>(
        &'a self,
        index: Option<&'a UserIndexId>,
        write: &'a Write,
        op: &'a Observed<'a>,
        writes: F,
    ) -> Either<F, Pin<Box<impl Future<Output = Result<(), SessionError>> + 'a>>>
    where
        F: Future<Output = Result<(), SessionError>> + 'a,
    {
        let entry = match (index, write) {
            (Some(user), Write::Create(id, record)) => {
                Some((user, id.storage_id(), record.meta.created_ms, None))
            }
            (Some(user), Write::Rotate(rotation)) => Some((
                user,
                rotation.new.storage_id(),
                rotation.record.meta.created_ms,
                Some(rotation.old.storage_id()),
            )),
            (Some(user), Write::Save(id, changes)) => {
                Some((user, id.storage_id(), changes.meta.created_ms, None))
            }
            _ => None,
        };
        let Some((user, id, created_ms, old)) = entry else {
            return Either::Left(writes);
        };
        Either::Right(Box::pin(
            self.indexed_around(user, id, created_ms, old, op, writes),
        ))
    }

    /// [`SessionManager::indexed`] of a bound session: the entry first, the old one last.
    async fn indexed_around(
        &self,
        user: &UserIndexId,
        id: StorageId,
        created_ms: u64,
        old: Option<StorageId>,
        op: &Observed<'_>,
        writes: impl Future<Output = Result<(), SessionError>>,
    ) -> Result<(), SessionError> {
        let store = &self.inner.store;
        // Slack for clock differences between app servers: the entry's time is this server's.
        let keep =
            self.ttl(created_ms, now_ms()) + self.inner.config.touch_interval + self.clock_margin();
        op.call(store.index_add(user, &id, keep)).await?;
        writes.await?;
        if let Some(old) = old {
            let _ = op.call(store.index_remove(user, &[old])).await;
        }
        Ok(())
    }
}

fn time(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}
