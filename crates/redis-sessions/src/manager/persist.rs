//! Persisting: the plan (what to write and which cookie to send, decided in memory) and its
//! execution (the store calls), plus the TTL arithmetic both need.

use std::time::Duration;

use http::HeaderValue;

use super::SessionManager;
use crate::cookie;
use crate::data::{DataChanges, SessionData};
use crate::error::SessionError;
use crate::id::SessionId;
use crate::session::Session;
use crate::store::{ChangeSet, HeldLock, Meta, Record, SaveOutcome, millis, now_ms};

/// What persisting produced for the response.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Persisted {
    /// The `Set-Cookie` header the response must carry, if any.
    pub set_cookie: Option<HeaderValue>,
}

impl Persisted {
    /// Adds the `Set-Cookie` header (if any) to `response`.
    pub fn apply_to<B>(&self, response: &mut http::Response<B>) {
        if let Some(value) = &self.set_cookie {
            response
                .headers_mut()
                .append(http::header::SET_COOKIE, value.clone());
        }
    }
}

/// The cookie a response must carry.
#[derive(Debug, Clone)]
enum CookieAction {
    Keep,
    Set(SessionId),
    Remove,
}

/// The writes that persisting a session takes, decided in memory.
#[derive(Debug)]
pub(crate) struct Plan {
    delete: Vec<SessionId>,
    write: Write,
    /// The lock this request holds, and whether the writes release it (folded into the save, or
    /// deleted with its record); it is let go only after the writes, so in-process waiters
    /// start after the store has seen the release.
    lock: Option<(SessionId, HeldLock)>,
    lock_goes_with_write: bool,
    cookie: CookieAction,
    /// Data changes taken out of the session, put back if the writes fail.
    taken: DataChanges,
}

#[derive(Debug)]
enum Write {
    None,
    Create(SessionId, Record),
    Save(SessionId, ChangeSet),
    Rotate {
        old: SessionId,
        new: SessionId,
        record: Record,
    },
}

impl SessionManager {
    /// The TTL a record gets now: the idle lifespan, cut short by the absolute lifetime.
    fn ttl(&self, created_ms: u64, now: u64) -> Duration {
        let idle = self.inner.config.cookie_lifespan;
        match self.lifetime_end(created_ms) {
            Some(end) => idle.min(Duration::from_millis(end.saturating_sub(now).max(1))),
            None => idle,
        }
    }

    /// Slack for clock differences between app servers and for time spent between deciding and
    /// writing: half the lifespan, at most 5 s.
    fn clock_margin(&self) -> Duration {
        (self.inner.config.cookie_lifespan / 2).min(Duration::from_secs(5))
    }

    /// Whether a record last touched as `meta` says is certainly still within its TTL, so that only
    /// a destroy (which leaves a tombstone) can have removed it.
    fn within_lifetime(&self, meta: &Meta, now: u64) -> bool {
        let expires = meta
            .touched_ms
            .saturating_add(millis(self.ttl(meta.created_ms, meta.touched_ms)));
        now.saturating_add(millis(self.clock_margin())) < expires
    }

    /// How long a destroyed record must stay recognisably dead: longer than any load of it can
    /// still believe it within its lifetime.
    fn tombstone(&self) -> Duration {
        self.inner.config.cookie_lifespan + self.clock_margin()
    }

    /// Decides what persisting `session` writes, taking its pending changes out of it.
    pub(crate) fn plan(&self, session: &Session) -> Plan {
        let mut state = session.state();
        let now = now_ms();
        let delete = std::mem::take(&mut state.destroyed);
        let lock = state.lock.take();
        let locked_id = lock.as_ref().map(|(id, _)| id.clone());
        let mut lock_goes_with_write = false;
        let mut taken = state.data.take_changes();
        let mut cookie = if delete.is_empty() {
            CookieAction::Keep
        } else {
            CookieAction::Remove
        };
        let write = match state.id.clone() {
            None if state.data.is_empty() => Write::None,
            None => {
                let id = SessionId::generate();
                state.meta = Meta {
                    created_ms: now,
                    touched_ms: now,
                };
                cookie = CookieAction::Set(id.clone());
                state.id = Some(id.clone());
                Write::Create(id, record_of(&state.data, state.meta))
            }
            Some(old) if state.rotate => {
                let new = SessionId::generate();
                state.meta.touched_ms = now;
                cookie = CookieAction::Set(new.clone());
                state.id = Some(new.clone());
                // The old record and its lock go together.
                lock_goes_with_write = locked_id.as_ref() == Some(&old);
                Write::Rotate {
                    old,
                    new,
                    record: record_of(&state.data, state.meta),
                }
            }
            Some(id) if !taken.is_empty() || state.touch_due => {
                let loaded_meta = state.meta;
                if state.touch_due {
                    cookie = CookieAction::Set(id.clone());
                }
                state.meta.touched_ms = now;
                let unlock = lock
                    .as_ref()
                    .filter(|(locked, _)| *locked == id)
                    .and_then(|(_, held)| held.token().cloned());
                lock_goes_with_write = unlock.is_some();
                // The changes move into the save; `execute` takes them back if it fails.
                let DataChanges { set, removed } = std::mem::take(&mut taken);
                Write::Save(
                    id,
                    ChangeSet {
                        set,
                        removed,
                        meta: state.meta,
                        ttl: self.ttl(state.meta.created_ms, now),
                        unlock,
                        within_lifetime: self.within_lifetime(&loaded_meta, now),
                    },
                )
            }
            Some(_) => Write::None,
        };
        state.rotate = false;
        state.touch_due = false;
        // A lock on a destroyed id goes with its record.
        lock_goes_with_write |= locked_id.is_some_and(|locked| delete.contains(&locked));
        Plan {
            delete,
            write,
            lock,
            lock_goes_with_write,
            cookie,
            taken,
        }
    }

    /// The response side of a plan.
    pub(crate) fn persisted(&self, plan: &Plan) -> Persisted {
        Persisted {
            set_cookie: match &plan.cookie {
                CookieAction::Keep => None,
                CookieAction::Set(id) => Some(cookie::set_cookie(&self.inner.config, id)),
                CookieAction::Remove => Some(cookie::removal_cookie(&self.inner.config)),
            },
        }
    }

    /// Carries out a plan; on a store failure, puts the data changes back into the session.
    pub(crate) async fn execute(&self, session: &Session, plan: Plan) -> Result<(), SessionError> {
        let Plan {
            delete,
            write,
            lock,
            lock_goes_with_write,
            taken,
            ..
        } = plan;
        // What the session looked like before the plan moved it on, should the write fail.
        let rollback = match &write {
            Write::Create(..) => Some((None, false)),
            Write::Rotate { old, .. } => Some((Some(old.clone()), true)),
            Write::None | Write::Save(..) => None,
        };
        let mut result = self.write(delete, &write).await;
        if let (Ok(()), Some((id, held))) = (&result, lock) {
            if let Some(token) = held.token().filter(|_| !lock_goes_with_write) {
                result = self
                    .inner
                    .store
                    .unlock(&id.storage_id(), token)
                    .await
                    .map_err(SessionError::from);
            }
            if result.is_ok() {
                held.disarm();
            }
            // Otherwise dropping `held` retries the release in the background.
        }
        if matches!(result, Err(SessionError::Store(_))) {
            let taken = match write {
                Write::Save(_, ChangeSet { set, removed, .. }) => DataChanges { set, removed },
                _ => taken,
            };
            let mut state = session.state();
            state.data.restore_changes(&taken);
            if let Some((id, rotate)) = rollback {
                state.id = id;
                state.rotate = rotate;
            }
        }
        if matches!(result, Err(SessionError::Gone)) {
            let mut state = session.state();
            state.id = None;
        }
        result
    }

    async fn write(&self, delete: Vec<SessionId>, write: &Write) -> Result<(), SessionError> {
        for id in &delete {
            self.inner
                .store
                .delete(&id.storage_id(), self.tombstone())
                .await?;
        }
        match write {
            Write::None => {}
            Write::Create(id, record) => {
                let ttl = self.ttl(record.meta.created_ms, now_ms());
                self.inner
                    .store
                    .create(&id.storage_id(), record, ttl)
                    .await?;
            }
            Write::Save(id, changes) => {
                match self.inner.store.save(&id.storage_id(), changes).await? {
                    SaveOutcome::Saved => {}
                    SaveOutcome::Gone => return Err(SessionError::Gone),
                    SaveOutcome::LockLost => return Err(SessionError::LockLost),
                }
            }
            Write::Rotate { old, new, record } => {
                let ttl = self.ttl(record.meta.created_ms, now_ms());
                let new_storage = new.storage_id();
                self.inner.store.create(&new_storage, record, ttl).await?;
                // Delete the old record only after the new one exists, so a failure loses
                // nothing; if the old one was already gone, the session ended meanwhile and the
                // copy must not outlive it.
                if !self
                    .inner
                    .store
                    .delete(&old.storage_id(), self.tombstone())
                    .await?
                {
                    self.inner
                        .store
                        .delete(&new_storage, self.tombstone())
                        .await?;
                    return Err(SessionError::Gone);
                }
            }
        }
        Ok(())
    }
}

fn record_of(data: &SessionData, meta: Meta) -> Record {
    Record {
        meta,
        fields: data
            .encoded()
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect(),
    }
}
