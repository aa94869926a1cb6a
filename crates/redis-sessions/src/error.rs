//! `SessionError`: what can go wrong when starting or persisting a session, and its HTTP face.
//!
//! Each variant maps to a stable status and a short body ([`SessionError::status`],
//! [`SessionError::public_message`]); the details (which Redis, which key) go to `tracing` and
//! never into the response, and never contain a raw session id.

use http::StatusCode;

use crate::data::DataError;
use crate::store::StoreError;

/// An error from the session manager.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The store failed or could not be reached.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading or writing a value failed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The session was destroyed, rotated away or expired while this request ran; its changes
    /// were not written (and the session was not brought back).
    #[error("the session ended while this request was running; its changes were not saved")]
    Gone,
    /// This request's session lock expired and was taken by another request; nothing was saved.
    #[error("the session lock expired before the changes were saved (raise lock_ttl)")]
    LockLost,
    /// The session lock could not be had within `lock_wait`.
    #[error("the session is locked by another request (waited {waited_ms} ms)")]
    LockTimeout {
        /// How long this request waited.
        waited_ms: u128,
    },
    /// A locked start was asked for after the session was already started without the lock in the
    /// same request.
    #[error("the session was already started without the lock in this request")]
    AlreadyStartedUnlocked,
    /// No session slot in the request: the layer is missing (axum extractors need it).
    #[error("no SessionLayer on this route: add SessionManager::layer() to the router")]
    MissingLayer,
}

impl SessionError {
    /// The HTTP status this error answers with.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Store(_) | Self::LockTimeout { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Data(DataError::ValueTooLarge { .. } | DataError::SessionTooLarge { .. }) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Self::Gone | Self::LockLost => StatusCode::CONFLICT,
            Self::Data(_) | Self::AlreadyStartedUnlocked | Self::MissingLayer => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// A short body for the client, without internal details.
    #[must_use]
    pub fn public_message(&self) -> &'static str {
        match self {
            Self::Store(_) => "session storage is unavailable, please retry shortly",
            Self::LockTimeout { .. } => "session is busy, please retry",
            Self::Data(DataError::ValueTooLarge { .. } | DataError::SessionTooLarge { .. }) => {
                "session data too large"
            }
            Self::Gone => "session has ended; changes were not saved",
            Self::LockLost => "session lock expired; changes were not saved",
            Self::Data(_) | Self::AlreadyStartedUnlocked | Self::MissingLayer => "session error",
        }
    }

    /// The error as a plain-text HTTP response (the layer's answer when persisting fails).
    #[must_use]
    pub fn to_response<B: From<&'static str>>(&self) -> http::Response<B> {
        let mut response = http::Response::new(B::from(self.public_message()));
        *response.status_mut() = self.status();
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if self.status() == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}
