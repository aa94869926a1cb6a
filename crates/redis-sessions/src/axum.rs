//! axum integration: `Session` and `LockedSession` as extractors, errors as responses.
//!
//! Taking [`Session`] as a handler argument starts the request's session (one store read when the
//! request carries a well-formed cookie, none otherwise); a handler that does not take it never
//! touches the store. [`LockedSession`] also holds the session's exclusive lock until the layer
//! persists, for read-modify-write routes that must not race (a basket "add"). [`LazySession`]
//! starts nothing until the handler asks, so a handler can validate its input first and spend no
//! Redis call (and take no lock) on a bad request. [`CsrfGuard`] starts the session only for a
//! request that carries an `X-CSRF-Token` header, and lets the handler run only when the header
//! holds the session's CSRF token (`403` with a JSON body otherwise). All need
//! [`SessionManager::layer`](crate::SessionManager::layer) on the router.

use axum::Json;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::csrf::CSRF_HEADER;
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
    ids: crate::cookie::Candidates,
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
        let ids = slot.manager().request_ids(&parts.headers);
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

/// Proof that the request's `X-CSRF-Token` header holds its session's CSRF token (see
/// [`Session::csrf_token`]), with the session: `CsrfGuard<Session>` (the default) or
/// `CsrfGuard<LockedSession>`, which holds the lock as [`LockedSession`] does.
///
/// A request without the header is rejected before the session is started (no Redis call); a
/// wrong token, or a session that has none, after. Either is `403` with the JSON body
/// `{"error": "..."}` (see [`CsrfRejection`]). The comparison is constant-time.
///
/// ```
/// use axum::{Json, Router, routing::{get, post}};
/// use redis_sessions::{CsrfGuard, Session, SessionError};
///
/// // The page fetches its token once and sends it back in `X-CSRF-Token`.
/// async fn token(session: Session) -> Result<Json<serde_json::Value>, SessionError> {
///     Ok(Json(serde_json::json!({ "token": session.csrf_token()? })))
/// }
///
/// async fn change_something(guard: CsrfGuard) -> Result<&'static str, SessionError> {
///     guard.put("changed", &true)?; // only reached with the right token
///     Ok("done")
/// }
///
/// let routes: Router<()> = Router::new()
///     .route("/api/csrf", get(token))
///     .route("/api/change", post(change_something));
/// ```
#[derive(Clone, Debug)]
pub struct CsrfGuard<S = Session>(S);

impl<S> CsrfGuard<S> {
    /// The session ([`Session`] or [`LockedSession`]).
    #[must_use]
    pub fn into_inner(self) -> S {
        self.0
    }
}

impl<S> std::ops::Deref for CsrfGuard<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.0
    }
}

/// Why a [`CsrfGuard`] refused a request.
#[derive(Debug, thiserror::Error)]
pub enum CsrfRejection {
    /// The request has no `X-CSRF-Token` header (or one that is not visible ASCII).
    #[error("missing CSRF token: send it in the X-CSRF-Token header")]
    Missing,
    /// The header does not hold the session's token, or the session has none.
    #[error("invalid CSRF token")]
    Mismatch,
    /// The session could not be started.
    #[error(transparent)]
    Session(#[from] SessionError),
}

impl CsrfRejection {
    /// `403` for a missing or wrong token; the session error's own status otherwise.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Missing | Self::Mismatch => StatusCode::FORBIDDEN,
            Self::Session(error) => error.status(),
        }
    }
}

/// The JSON body of a rejection.
#[derive(serde::Serialize)]
struct ErrorBody {
    error: String,
}

impl IntoResponse for CsrfRejection {
    fn into_response(self) -> Response {
        let error = match &self {
            Self::Session(error) => {
                tracing::warn!(%error, status = %error.status(), "session error");
                error.public_message().to_owned()
            }
            Self::Missing | Self::Mismatch => self.to_string(),
        };
        (self.status(), Json(ErrorBody { error })).into_response()
    }
}

/// Checks the request's CSRF header against the session `start` gives, starting it only when
/// there is a header to check.
async fn guarded<T>(
    parts: &mut Parts,
    start: impl AsyncFnOnce(&mut Parts) -> Result<T, SessionError>,
    session: impl FnOnce(&T) -> &Session,
) -> Result<CsrfGuard<T>, CsrfRejection> {
    let presented = parts
        .headers
        .get(CSRF_HEADER)
        .and_then(|value| value.to_str().ok())
        .ok_or(CsrfRejection::Missing)?
        .to_owned();
    let started = start(parts).await?;
    if session(&started).verify_csrf(&presented) {
        Ok(CsrfGuard(started))
    } else {
        Err(CsrfRejection::Mismatch)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CsrfGuard<Session> {
    type Rejection = CsrfRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        guarded(parts, async |parts| start(parts, false).await, |s| s).await
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CsrfGuard<LockedSession> {
    type Rejection = CsrfRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let locked = async |parts: &mut Parts| start(parts, true).await.map(LockedSession);
        guarded(parts, locked, |s| &s.0).await
    }
}
