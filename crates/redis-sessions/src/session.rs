//! `Session`: the handle a handler holds for the current request's session, and its lifecycle.
//!
//! A `Session` is a cheap clone of one shared state, so every extractor and helper in a request
//! sees the same data. Its methods are synchronous and touch memory only: nothing reaches the
//! store until the manager persists (the layer does that after the handler). `rotate` and
//! `destroy` are requests recorded here and carried out by that persist, so they cost no extra
//! round trip and take effect together with the data they concern.

use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::data::{DataError, SessionData};
use crate::error::SessionError;
use crate::id::SessionId;
use crate::store::{HeldLock, Meta};

/// Reserved key of the user a session is bound to.
pub(crate) const USER_KEY: &str = "\0user";
/// Reserved key of the session's description in its user's list.
pub(crate) const ABOUT_KEY: &str = "\0about";
/// Longest description kept, in characters.
const MAX_DESCRIPTION: usize = 200;

/// Why a session can no longer be written in this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Its id was destroyed or rotated away (by another request, or found so on persist).
    Gone,
    /// Its lock expired and was taken by another request before it was saved.
    LockLost,
}

impl Ended {
    pub(crate) fn error(self) -> SessionError {
        match self {
            Self::Gone => SessionError::Gone,
            Self::LockLost => SessionError::LockLost,
        }
    }
}

/// Where a session stands relative to the store.
#[derive(Debug)]
pub(crate) struct SessionState {
    /// The id whose record this data came from; `None` for a session not stored yet.
    pub(crate) id: Option<SessionId>,
    /// Set when the session is dead for this request: the id it came with was ended (a second
    /// tab racing a login or logout), or a persist found it gone or lost its lock. A dead session
    /// reads empty, writes nothing, sets no cookie, and a persist with changes fails.
    pub(crate) ended: Option<Ended>,
    /// When the record was loaded (ms since the epoch): a save long after that cannot rely on a
    /// tombstone still being there, and takes the atomic path.
    pub(crate) loaded_ms: u64,
    /// The new id of a rotation whose persist failed, reused by the retry so that a rotation
    /// that did land on the first try is recognised.
    pub(crate) successor: Option<SessionId>,
    /// The data.
    pub(crate) data: SessionData,
    /// Stored metadata (creation and last touch times).
    pub(crate) meta: Meta,
    /// The lock this request holds, on the storage id of this id.
    pub(crate) lock: Option<(SessionId, HeldLock)>,
    /// `rotate()` was asked for.
    pub(crate) rotate: bool,
    /// Ids destroyed in this request, deleted on persist.
    pub(crate) destroyed: Vec<SessionId>,
    /// The TTL and cookie are due for a refresh.
    pub(crate) touch_due: bool,
}

/// The session of the current request.
///
/// Get one with [`SessionManager::start`](crate::SessionManager::start) or, in axum, by taking
/// `Session` as an extractor. All methods work on memory; the layer (or
/// [`SessionManager::persist_session`](crate::SessionManager::persist_session)) writes the changes.
///
/// ```
/// # use redis_sessions::Session;
/// fn add_to_basket(session: &Session, sku: &str) -> Result<u32, redis_sessions::DataError> {
///     let count = session.get::<u32>(sku)?.unwrap_or(0) + 1;
///     session.put(sku, &count)?;
///     Ok(count)
/// }
/// ```
///
/// Its `Debug` shows the session's state and its keys with the sizes of their values, never a
/// value, a token or the id (`#[tracing::instrument]` logs handler arguments with it).
#[derive(Clone)]
pub struct Session {
    state: Arc<Mutex<SessionState>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `try_lock`: formatting while the caller holds `data()` must not deadlock.
        let state = match self.state.try_lock() {
            Ok(state) => state,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                return f.debug_struct("Session").finish_non_exhaustive();
            }
        };
        f.debug_struct("Session")
            .field("stored", &state.id.is_some())
            .field("ended", &state.ended)
            .field("data", &state.data)
            .field("rotate", &state.rotate)
            .field("destroyed", &state.destroyed.len())
            .field("locked", &state.lock.is_some())
            .finish_non_exhaustive()
    }
}

/// Exclusive access to a session's [`SessionData`], as returned by [`Session::data`].
///
/// Do not hold it across an `.await` (clippy's `await_holding_lock` warns about that). It offers
/// the data's reading and writing methods only; what the manager uses to persist stays private:
///
/// ```compile_fail
/// # fn f(session: &redis_sessions::Session) {
/// let _ = session.data().take_changes(); // would make the session forget unsent writes
/// # }
/// ```
#[derive(Debug)]
pub struct DataGuard<'a>(MutexGuard<'a, SessionState>);

impl std::ops::Deref for DataGuard<'_> {
    type Target = SessionData;
    fn deref(&self) -> &SessionData {
        &self.0.data
    }
}

impl std::ops::DerefMut for DataGuard<'_> {
    fn deref_mut(&mut self) -> &mut SessionData {
        &mut self.0.data
    }
}

impl Session {
    pub(crate) fn new(state: SessionState) -> Self {
        Self {
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// Locks the state. A panic in another holder cannot leave it half-written (every update
    /// happens under one short lock), so a poisoned lock is still usable.
    pub(crate) fn state(&self) -> MutexGuard<'_, SessionState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The session's data, as in the original `$session->data->put(...)`.
    ///
    /// ```
    /// # fn f(session: &redis_sessions::Session) -> Result<(), redis_sessions::DataError> {
    /// session.data().put("my-data-key", "my-value")?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn data(&self) -> DataGuard<'_> {
        DataGuard(self.state())
    }

    /// Decodes the value under `key` (see [`SessionData::get`]).
    ///
    /// # Errors
    ///
    /// [`DataError::Decode`] when the stored value is not a `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, DataError> {
        self.state().data.get(key)
    }

    /// Stores `value` under `key` (see [`SessionData::put`]).
    ///
    /// # Errors
    ///
    /// Encoding errors and size limits, at the call site; the data is then unchanged.
    pub fn put<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), DataError> {
        self.state().data.put(key, value)
    }

    /// Removes `key`; returns whether it was there.
    pub fn remove(&self, key: &str) -> bool {
        self.state().data.remove(key)
    }

    /// Whether persisting would do nothing: the session is live (or new and empty), holds no
    /// lock, and has no changes, rotation, destroy or touch pending. The layer then skips the
    /// persist step altogether (a plain read costs no plan, no future, no allocation).
    pub(crate) fn is_settled(&self) -> bool {
        let state = self.state();
        state.ended.is_none()
            && state.lock.is_none()
            && state.destroyed.is_empty()
            && !state.rotate
            && !state.touch_due
            && !state.data.is_modified()
            && (state.id.is_some() || state.data.holds_nothing())
    }

    /// Whether this request holds the session's lock.
    pub(crate) fn is_locked(&self) -> bool {
        self.state().lock.is_some()
    }

    /// Whether this session is not stored yet (no cookie, an unknown id, or just destroyed).
    #[must_use]
    pub fn is_new(&self) -> bool {
        self.state().id.is_none()
    }

    /// Whether the session ended under this request: the id it came with was destroyed or
    /// rotated away by another request (a second tab during a logout or login), or persisting
    /// found it so. It then reads empty and persisting changes fails with
    /// [`SessionError::Gone`] (`409`), without a cookie.
    #[must_use]
    pub fn is_ended(&self) -> bool {
        self.state().ended.is_some()
    }

    /// Gives the session a new id when persisted, keeping its data; the old id stops working.
    /// Call it when privileges change (login), against session fixation. A session that is not
    /// stored yet gets a fresh id anyway.
    ///
    /// The CSRF token is dropped now (see [`Session::csrf_token`]): one learned before the
    /// login is useless after it, and the next `csrf_token` call makes a fresh one.
    pub fn rotate(&self) {
        let mut state = self.state();
        state.rotate = true;
        crate::csrf::drop_token(&mut state.data);
    }

    /// Binds the session to a user (at login) and gives it a new id, as [`Session::rotate`]
    /// does: on persist, the session enters the user's index first, so
    /// [`SessionManager::user_sessions`](crate::SessionManager::user_sessions) lists it and
    /// [`SessionManager::revoke_user_sessions`](crate::SessionManager::revoke_user_sessions)
    /// ends it. The user id is kept in the session, out of reach of [`Session::get`]; the store
    /// sees only a hash of it in the index's name.
    ///
    /// ```
    /// # fn f(session: &redis_sessions::Session) -> Result<(), redis_sessions::DataError> {
    /// session.bind_user("alice@example.com")?;
    /// session.describe("Firefox on Linux")?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`DataError::SessionTooLarge`] when the user id does not fit in the session.
    pub fn bind_user(&self, user_id: &str) -> Result<(), DataError> {
        let mut state = self.state();
        state.data.put_reserved(USER_KEY, user_id)?;
        state.rotate = true;
        crate::csrf::drop_token(&mut state.data);
        Ok(())
    }

    /// The user this session is bound to ([`Session::bind_user`]), if any.
    #[must_use]
    pub fn user_id(&self) -> Option<String> {
        self.state().data.get_reserved(USER_KEY).ok().flatten()
    }

    /// Stores a short description of this session for the user's list of sessions (e.g. the
    /// browser and system from the `User-Agent`), cut to 200 characters.
    ///
    /// # Errors
    ///
    /// [`DataError::SessionTooLarge`] when it does not fit in the session.
    pub fn describe(&self, description: &str) -> Result<(), DataError> {
        let cut: String = description.chars().take(MAX_DESCRIPTION).collect();
        self.state().data.put_reserved(ABOUT_KEY, &cut)
    }

    /// The storage id of the session's current id (its handle in the user's list), if stored.
    pub(crate) fn storage_id(&self) -> Option<crate::id::StorageId> {
        self.state().id.as_ref().map(SessionId::storage_id)
    }

    /// This session's handle in its user's list of sessions
    /// ([`UserSession::handle`](crate::UserSession::handle)), once it is stored; not its id.
    #[must_use]
    pub fn handle(&self) -> Option<String> {
        self.storage_id().map(|id| id.as_str().to_owned())
    }

    /// Ends the session: its data (with the library's values: CSRF token, user binding) is
    /// cleared now, its record deleted on persist, and the response removes the cookie. Data put
    /// afterwards starts a new session with a new id.
    pub fn destroy(&self) {
        let mut state = self.state();
        if let Some(id) = state.id.take() {
            state.destroyed.push(id);
        }
        // Everything, the library's values included: a token or binding left behind would
        // start a new session.
        state.data.clear_all();
        state.data.mark_persisted();
        state.rotate = false;
        state.touch_due = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored_session() -> Session {
        Session::new(SessionState {
            id: Some(SessionId::generate()),
            ended: None,
            loaded_ms: 0,
            successor: None,
            data: SessionData::default(),
            meta: Meta {
                created_ms: 0,
                touched_ms: 0,
            },
            lock: None,
            rotate: false,
            destroyed: Vec::new(),
            touch_due: false,
        })
    }

    #[test]
    fn clones_share_one_state() {
        let a = stored_session();
        let b = a.clone();
        assert!(a.put("k", &1).is_ok());
        assert_eq!(b.get::<i32>("k").ok().flatten(), Some(1));
    }

    #[test]
    fn destroy_clears_data_and_makes_the_session_new() {
        let s = stored_session();
        assert!(s.put("k", &1).is_ok());
        s.destroy();
        assert!(s.is_new());
        assert!(s.data().is_empty());
        assert_eq!(s.state().destroyed.len(), 1);
    }
}
