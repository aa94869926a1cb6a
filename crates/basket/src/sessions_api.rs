//! "Your sessions": the signed-in user's sessions, listed and ended from the page.
//!
//! | route | session |
//! |---|---|
//! | `GET /api/sessions` | read only; `401` when not signed in |
//! | `POST /api/sessions/logout-others` | needs the CSRF token (`X-CSRF-Token`); ends the user's other sessions |
//! | `DELETE /api/sessions/{handle}` | needs the CSRF token; ends one of the user's sessions |
//!
//! A handle names a session without being its id (it opens nothing); only the user's own
//! handles are accepted. The two writing routes answer `403` with a JSON error without a valid
//! token: unlike the basket routes, ending sessions is worth more than `SameSite=Lax`.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use redis_sessions::axum::CsrfGuard;
use redis_sessions::{Session, SessionError, SessionManager};
use serde::Serialize;

use crate::error::ApiError;

/// One entry of `GET /api/sessions`.
#[derive(Serialize, Debug)]
pub struct SessionView {
    /// Names the session for `DELETE /api/sessions/{handle}`.
    pub handle: String,
    /// Whether it is the session asking.
    pub current: bool,
    /// Creation time, milliseconds since the Unix epoch.
    pub created: u64,
    /// Last use (to within the touch interval), milliseconds since the Unix epoch.
    pub last_seen: u64,
    /// The browser it was signed in from, as its `User-Agent` said.
    pub description: Option<String>,
}

/// Body of `GET /api/sessions`.
#[derive(Serialize, Debug)]
pub struct SessionsView {
    /// The user's sessions, oldest first.
    pub sessions: Vec<SessionView>,
}

/// Body of the two ending routes: how many sessions ended.
#[derive(Serialize, Debug)]
pub struct Ended {
    /// Sessions ended by this request.
    pub ended: usize,
}

/// The signed-in user of `session`, or `401`.
fn user(session: &Session) -> Result<String, ApiError> {
    session
        .user_id()
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "sign in to see your sessions"))
}

fn ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub(crate) async fn list(
    State(manager): State<SessionManager>,
    session: Result<Session, SessionError>,
) -> Result<Json<SessionsView>, ApiError> {
    let session = session?;
    let user = user(&session)?;
    let sessions = manager.user_sessions(&user, Some(&session)).await?;
    Ok(Json(SessionsView {
        sessions: sessions
            .into_iter()
            .map(|s| SessionView {
                handle: s.handle,
                current: s.current,
                created: ms(s.created),
                last_seen: ms(s.last_seen),
                description: s.description,
            })
            .collect(),
    }))
}

pub(crate) async fn logout_others(
    State(manager): State<SessionManager>,
    guard: CsrfGuard,
) -> Result<Json<Ended>, ApiError> {
    let session = guard.into_inner();
    let user = user(&session)?;
    let ended = manager.revoke_user_sessions(&user, Some(&session)).await?;
    Ok(Json(Ended { ended }))
}

pub(crate) async fn end_one(
    State(manager): State<SessionManager>,
    guard: CsrfGuard,
    Path(handle): Path<String>,
) -> Result<Json<Ended>, ApiError> {
    let session = guard.into_inner();
    let user = user(&session)?;
    if session.handle().as_deref() == Some(handle.as_str()) {
        return Err(ApiError::unprocessable(
            "this is the session you are using: sign out instead",
        ));
    }
    let ended = manager.revoke_user_session(&user, &handle).await?;
    if !ended {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no such session of yours (it may have ended already)",
        ));
    }
    Ok(Json(Ended { ended: 1 }))
}
