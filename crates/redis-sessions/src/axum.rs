//! axum integration: `Session` and `LockedSession` as extractors, errors as responses.
//!
//! Taking [`Session`] as a handler argument starts the request's session (one store read when the
//! request carries a well-formed cookie, none otherwise); a handler that does not take it never
//! touches the store. [`LockedSession`] also holds the session's exclusive lock until the layer
//! persists, for read-modify-write routes that must not race (a basket "add"). [`LazySession`]
//! starts nothing until the handler asks, so a handler can validate its input first and spend no
//! Redis call (and take no lock) on a bad request. All need
//! [`SessionManager::layer`](crate::SessionManager::layer) on the router.

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;

use crate::cookie::session_ids_from_headers;
use crate::error::SessionError;
use crate::id::SessionId;
use crate::manager::Slot;
use crate::session::Session;

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = SessionError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        start(parts, false).await
    }
}

/// Starts the session of the request whose layer put a slot into `parts`.
async fn start(parts: &mut Parts, locked: bool) -> Result<Session, SessionError> {
    LazySession::from_parts(parts)?.begin(locked).await
}

/// The request's session, not started yet: [`LazySession::start`] or
/// [`LazySession::start_locked`] load it when the handler decides to.
///
/// ```
/// use axum::Json;
/// use redis_sessions::{LazySession, SessionError};
///
/// async fn add(session: LazySession, Json(qty): Json<u32>) -> Result<String, SessionError> {
///     if qty == 0 {
///         return Ok("nothing to add".into()); // no Redis call, no lock
///     }
///     let session = session.start_locked().await?;
///     let total = session.get::<u32>("qty")?.unwrap_or(0) + qty;
///     session.put("qty", &total)?;
///     Ok(total.to_string())
/// }
/// ```
#[derive(Clone)]
pub struct LazySession {
    slot: Slot,
    ids: Vec<SessionId>,
}

impl std::fmt::Debug for LazySession {
    /// Shows how many cookie ids the request carries, never the ids.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazySession")
            .field("cookie_ids", &self.ids.len())
            .finish_non_exhaustive()
    }
}

impl LazySession {
    fn from_parts(parts: &Parts) -> Result<Self, SessionError> {
        let slot = parts
            .extensions
            .get::<Slot>()
            .cloned()
            .ok_or(SessionError::MissingLayer)?;
        let ids = session_ids_from_headers(&parts.headers, &slot.manager().config().cookie_name);
        Ok(Self { slot, ids })
    }

    async fn begin(&self, locked: bool) -> Result<Session, SessionError> {
        self.slot.start(&self.ids, locked).await
    }

    /// Starts the session (see [`Session`] as an extractor).
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] when the store cannot be read.
    pub async fn start(&self) -> Result<Session, SessionError> {
        self.begin(false).await
    }

    /// Starts the session holding its lock (see [`LockedSession`]).
    ///
    /// # Errors
    ///
    /// [`SessionError::LockTimeout`], [`SessionError::Store`], or
    /// [`SessionError::AlreadyStartedUnlocked`].
    pub async fn start_locked(&self) -> Result<LockedSession, SessionError> {
        self.begin(true).await.map(LockedSession)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for LazySession {
    type Rejection = SessionError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Self::from_parts(parts)
    }
}

/// The request's session, holding its exclusive lock until the response is persisted.
///
/// ```
/// use redis_sessions::{LockedSession, SessionError};
///
/// async fn add_one(session: LockedSession) -> Result<String, SessionError> {
///     // No other locked request of this session runs between this read and the write.
///     let n = session.get::<u64>("n")?.unwrap_or(0) + 1;
///     session.put("n", &n)?;
///     Ok(n.to_string())
/// }
/// ```
///
/// Only the extractor and [`LazySession::start_locked`] make one, so holding a `LockedSession`
/// proves the lock is held; [`LockedSession::into_inner`] gives the plain [`Session`] back.
///
/// ```compile_fail
/// # fn f(session: redis_sessions::Session) {
/// let forged = redis_sessions::LockedSession(session); // an unlocked session cannot pose as locked
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct LockedSession(Session);

impl LockedSession {
    /// The session (still locked until the request is persisted).
    #[must_use]
    pub fn into_inner(self) -> Session {
        self.0
    }
}

impl std::ops::Deref for LockedSession {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for LockedSession {
    type Rejection = SessionError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        start(parts, true).await.map(LockedSession)
    }
}

impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        tracing::warn!(error = %self, status = %self.status(), "session error");
        self.to_response::<axum::body::Body>()
    }
}
