//! Persisting: the plan (what to write and which cookie to send, decided in memory) and its
//! execution (the store calls), plus the TTL arithmetic both need.
//!
//! A plan takes the session's pending work out of it (changes, destroys, rotation, lock); when
//! executing fails because the store is unreachable, all of it goes back, so a retry does exactly
//! what the first try meant to. When the store answers that the session ended or that the lock
//! was lost, the session is dead for the rest of the request: nothing of it is written again.
//! Rotations are in `rotate.rs`, the TTL arithmetic in `ttl.rs`.

use http::HeaderValue;

use super::SessionManager;
use crate::cookie;
use crate::data::{DataChanges, SessionData};
use crate::error::SessionError;
use crate::id::{SessionId, UserIndexId};
use crate::session::{Ended, Session, SessionState, USER_KEY};
use crate::store::{ChangeSet, HeldLock, Meta, Record, now_ms};

/// What persisting produced for the response.
#[derive(Clone, Default)]
#[must_use]
pub struct Persisted {
    /// The `Set-Cookie` header the response must carry, if any (marked sensitive).
    pub set_cookie: Option<HeaderValue>,
}

impl std::fmt::Debug for Persisted {
    /// Says whether a cookie is set, never its value (the session id).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persisted")
            .field(
                "set_cookie",
                &self.set_cookie.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
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
    /// The error to answer without writing anything (a dead session with changes).
    refused: Option<SessionError>,
    delete: Vec<SessionId>,
    write: Write,
    /// The lock this request holds, and whether the writes release it (folded into the save, or
    /// ended with its record); it is let go only after the writes, so in-process waiters
    /// start after the store has seen the release.
    lock: Option<(SessionId, HeldLock)>,
    lock_goes_with_write: bool,
    cookie: CookieAction,
    /// Data changes taken out of the session, put back if the writes fail.
    taken: DataChanges,
    /// The user's index the write must enter first (a bound session created or rotated) or
    /// refresh (a bound session whose TTL moves on with a touch).
    index: Option<UserIndexId>,
    /// The session's id, rotation request, metadata and touch as they were before the plan.
    before: Before,
}

#[derive(Debug)]
struct Before {
    id: Option<SessionId>,
    rotate: bool,
    meta: Meta,
    touch_due: bool,
}

#[derive(Debug)]
pub(super) enum Write {
    None,
    Create(SessionId, Record),
    Save(SessionId, ChangeSet),
    Rotate(super::rotate::Rotation),
}

impl SessionManager {
    /// Decides what persisting `session` writes, taking its pending work out of it.
    /// Boxed: the plan (656 bytes) waits in the persist future (see [`SessionManager::execute`])
    /// and is built in its box, not moved there.
    pub(crate) fn plan(&self, session: &Session) -> Box<Plan> {
        let mut state = session.state();
        let before = Before {
            id: state.id.clone(),
            rotate: state.rotate,
            meta: state.meta,
            touch_due: state.touch_due,
        };
        let lock = state.lock.take();
        if let Some(ended) = state.ended {
            return self.plan_dead(&mut state, ended, lock, before);
        }
        let now = now_ms();
        let delete = std::mem::take(&mut state.destroyed);
        let locked_id = lock.as_ref().map(|(id, _)| id.clone());
        let token = lock.as_ref().and_then(|(_, held)| held.token().cloned());
        let mut lock_goes_with_write = false;
        let mut taken = state.data.take_changes();
        let mut cookie = if delete.is_empty() {
            CookieAction::Keep
        } else {
            CookieAction::Remove
        };
        let format = self.inner.config.format;
        let write = match state.id.clone() {
            None if state.data.holds_nothing() => Write::None,
            None => {
                let id = SessionId::generate_for(format);
                state.meta = Meta {
                    created_ms: now,
                    touched_ms: now,
                };
                cookie = CookieAction::Set(id.clone());
                state.id = Some(id.clone());
                // Every value of a session not stored yet is normally a change of this request:
                // the record takes the changes instead of copying the data again (a failed
                // create puts them back from the record, see `execute`).
                let record = if taken.set.len() == state.data.entry_count() {
                    Record {
                        meta: state.meta,
                        fields: std::mem::take(&mut taken.set),
                    }
                } else {
                    record_of(&state.data, state.meta)
                };
                Write::Create(id, record)
            }
            Some(old) if state.rotate => {
                let new =
                    (state.successor.take()).unwrap_or_else(|| SessionId::generate_for(format));
                state.meta.touched_ms = now;
                cookie = CookieAction::Set(new.clone());
                state.id = Some(new.clone());
                // The old record and its lock end together.
                let token = token.filter(|_| locked_id.as_ref() == Some(&old));
                lock_goes_with_write = token.is_some();
                Write::Rotate(super::rotate::Rotation {
                    old,
                    new,
                    record: record_of(&state.data, state.meta),
                    ours: taken.keys().map(str::to_owned).collect(),
                    lock: token,
                })
            }
            Some(id) if !taken.is_empty() || state.touch_due => {
                let loaded_meta = state.meta;
                // The TTL moves on with every save; the cookie's Max-Age is renewed with it at
                // least once per touch interval, so the browser's cookie never runs out while the
                // server keeps the session alive (an active writer stays logged in).
                if state.touch_due {
                    cookie = CookieAction::Set(id.clone());
                    state.meta.touched_ms = now;
                }
                let unlock = token.filter(|_| locked_id.as_ref() == Some(&id));
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
                        within_lifetime: self.within_lifetime(&loaded_meta, state.loaded_ms, now),
                    },
                )
            }
            Some(_) => Write::None,
        };
        let touched = state.touch_due;
        let index = match &write {
            Write::Create(..) | Write::Rotate(_) => bound_user(&state.data),
            Write::Save(..) if touched => bound_user(&state.data),
            Write::Save(..) | Write::None => None,
        };
        state.rotate = false;
        state.touch_due = false;
        // A lock on a destroyed id ends with its record.
        lock_goes_with_write |= locked_id.is_some_and(|locked| delete.contains(&locked));
        Box::new(Plan {
            refused: None,
            delete,
            write,
            lock,
            lock_goes_with_write,
            cookie,
            taken,
            index,
            before,
        })
    }

    /// The plan of a dead session: nothing to write, no cookie; changes are refused.
    fn plan_dead(
        &self,
        state: &mut SessionState,
        ended: Ended,
        lock: Option<(SessionId, HeldLock)>,
        before: Before,
    ) -> Box<Plan> {
        let changed = state.data.is_modified() || state.rotate;
        state.data.mark_persisted();
        state.rotate = false;
        state.touch_due = false;
        // Destroying an ended session has nothing left to do.
        state.destroyed.clear();
        Box::new(Plan {
            refused: changed.then(|| ended.error()),
            delete: Vec::new(),
            write: Write::None,
            lock,
            lock_goes_with_write: false,
            cookie: CookieAction::Keep,
            taken: DataChanges::default(),
            index: None,
            before,
        })
    }

    /// The response side of a plan.
    pub(crate) fn persisted(&self, plan: &Plan) -> Persisted {
        Persisted {
            set_cookie: match &plan.cookie {
                CookieAction::Keep => None,
                CookieAction::Set(id) => Some(self.inner.set_cookie.header(id)),
                CookieAction::Remove => Some(cookie::removal_cookie(&self.inner.config)),
            },
        }
    }

    /// Carries out a plan. If the store could not be reached, everything the plan took out of
    /// the session goes back into it; if the session ended or the lock was lost, it is dead.
    ///
    /// The plan (656 bytes) stays in its box, used in place: this future is moved into every
    /// future that awaits it, up to the layer's boxed persist future, which stays within
    /// mimalloc's fast path for blocks up to 1 KiB (see the layer's test).
    pub(crate) async fn execute(
        &self,
        session: &Session,
        mut plan: Box<Plan>,
    ) -> Result<(), SessionError> {
        let token = (plan.lock.as_ref()).and_then(|(_, held)| held.token().cloned());
        let mut result = match plan.refused.take() {
            Some(error) => {
                self.inner.observer.refused(&error);
                Err(error)
            }
            None => {
                self.write(
                    &plan.delete,
                    &plan.write,
                    token.as_ref(),
                    plan.index.as_ref(),
                )
                .await
            }
        };
        // Unless the store was unreachable (then the lock goes back into the session for a
        // retry), the request is done with its lock: release it unless the write did. A write
        // that was to release it but was refused (`Gone`, e.g. a rotation whose new id a revoke
        // ended first, leaving the old session live) did not: release it here (only its owner
        // can, so this is a no-op where the write got that far).
        let write_released = plan.lock_goes_with_write && result.is_ok();
        let lock = match plan.lock.take() {
            Some((id, held)) if !matches!(result, Err(SessionError::Store(_))) => {
                let released = match held.token().filter(|_| !write_released) {
                    Some(token) => Box::pin(self.unlock(&id, token)).await,
                    None => Ok(()),
                };
                match released {
                    Ok(()) => held.disarm(),
                    // Dropping `held` retries the release in the background.
                    Err(error) if result.is_ok() => result = Err(error),
                    Err(_) => {}
                }
                None
            }
            lock => lock,
        };
        let mut state = session.state();
        match &result {
            Ok(()) => {}
            Err(SessionError::Store(_)) => {
                let taken = match plan.write {
                    Write::Save(_, ChangeSet { set, removed, .. }) => DataChanges { set, removed },
                    Write::Rotate(rotation) => {
                        state.successor = Some(rotation.new);
                        plan.taken
                    }
                    // A create writes the whole record: its retry sends all of it again.
                    Write::Create(_, record) => DataChanges {
                        set: record.fields,
                        removed: plan.taken.removed,
                    },
                    Write::None => plan.taken,
                };
                state.data.restore_changes(&taken);
                let mut destroyed = plan.delete;
                destroyed.append(&mut state.destroyed);
                state.destroyed = destroyed;
                state.lock = state.lock.take().or(lock);
                state.id = plan.before.id;
                state.rotate = plan.before.rotate;
                state.meta = plan.before.meta;
                state.touch_due = plan.before.touch_due;
            }
            Err(SessionError::Gone) => {
                state.ended = Some(Ended::Gone);
                state.id = None;
            }
            Err(SessionError::LockLost) => {
                state.ended = Some(Ended::LockLost);
            }
            Err(_) => {}
        }
        result
    }
}

/// The index of the user `data` is bound to, if any.
fn bound_user(data: &SessionData) -> Option<UserIndexId> {
    let user: Option<String> = data.get_reserved(USER_KEY).ok().flatten();
    user.map(|user| UserIndexId::of_user(&user))
}

pub(super) fn record_of(data: &SessionData, meta: Meta) -> Record {
    Record {
        meta,
        fields: data
            .encoded()
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect(),
    }
}

#[cfg(test)]
mod tests;
