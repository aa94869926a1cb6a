//! axum integration: `Session` and `LockedSession` as extractors, errors as responses.
//!
//! Taking [`Session`] as a handler argument starts the request's session (one store read when the
//! request carries a well-formed cookie, none otherwise); a handler that does not take it never
//! touches the store. [`LockedSession`] also holds the session's exclusive lock until the layer
//! persists, for read-modify-write routes that must not race (a basket "add"). Both need
//! [`SessionManager::layer`](crate::SessionManager::layer) on the router.

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;

use crate::error::SessionError;
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
    let slot = parts
        .extensions
        .get::<Slot>()
        .cloned()
        .ok_or(SessionError::MissingLayer)?;
    slot.manager().start_parts(parts, locked).await
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
#[derive(Clone, Debug)]
pub struct LockedSession(pub Session);

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
