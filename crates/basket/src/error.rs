//! `ApiError`: every error the JSON API answers with, as `{"error": "..."}` and a stable status.
//!
//! Bad input (a malformed body, an unknown sku, a quantity out of range) and session failures
//! (Redis down, a busy lock) all leave through this type, so a client only ever has to read one
//! shape. Session errors keep the library's status and short public message; their details go
//! to `tracing`. One exception the app cannot reshape: when the *layer* fails to persist after the
//! handler (Redis went away mid-request), the layer answers itself, in plain text (`503`/`409`).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use redis_sessions::{DataError, SessionError};
use serde_json::json;

/// An error response of the JSON API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The text of the `error` field.
    pub message: String,
}

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// `404`: the shop does not sell `sku`.
    #[must_use]
    pub fn unknown_sku(sku: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("unknown sku {sku:?}"))
    }

    /// `422`: a well-formed request whose values are not acceptable.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

/// A body that is not JSON (`400`), not sent as `application/json` (`415`), or not of the
/// expected shape: a missing field, a wrong type such as `"qty": "2"` or `1.5` (`422`).
impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        Self::new(rejection.status(), rejection.body_text())
    }
}

impl From<SessionError> for ApiError {
    fn from(error: SessionError) -> Self {
        tracing::warn!(%error, status = %error.status(), "session error");
        Self::new(error.status(), error.public_message())
    }
}

impl From<DataError> for ApiError {
    fn from(error: DataError) -> Self {
        SessionError::from(error).into()
    }
}
