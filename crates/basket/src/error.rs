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

    /// `404`: the shop does not sell `sku` ("sku \"unicorn\" is not a product of this shop").
    #[must_use]
    pub fn unknown_sku(sku: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("sku {sku:?} is not a product of this shop"),
        )
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

/// One field of a JSON request body, for [`ApiError::bad_body`]: its name and the sentence that
/// says what it must hold (`"qty must be a whole number from 1 to 99"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// The field's name in the JSON body.
    pub name: &'static str,
    /// What the field must hold, as a sentence a person reads.
    pub rule: &'static str,
}

impl ApiError {
    /// A request body that was refused before the handler ran, as a short sentence about the
    /// field at fault, never serde's text (`invalid value: integer -1, expected u32 at line 1
    /// column 31`):
    ///
    /// - not sent as `application/json`: `415`, "send the body as JSON ...";
    /// - not JSON at all: `400`, "the body is not valid JSON; send ...";
    /// - a field of the wrong type or value: `422`, the field's [`Field::rule`];
    /// - a missing field: `422`, "`name` is missing: " and the rule;
    /// - anything else (an array, `null`): `422`, "send a JSON object like ...".
    ///
    /// `example` is a well-formed body, shown in the sentences that need one.
    #[must_use]
    pub fn bad_body(rejection: &JsonRejection, fields: &[Field], example: &str) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => Self::new(
                rejection.status(),
                "send the body as JSON, with the header Content-Type: application/json",
            ),
            JsonRejection::JsonSyntaxError(_) => Self::new(
                rejection.status(),
                format!("the body is not valid JSON; send a JSON object like {example}"),
            ),
            JsonRejection::JsonDataError(_) => {
                let text = rejection.body_text();
                // axum's text: "Failed to deserialize ... target type: PATH: ERROR" (PATH absent
                // for an error of the whole object, such as a missing field).
                let detail = text.split_once("target type: ").map_or(&*text, |(_, d)| d);
                let sentence = fields.iter().find_map(|field| {
                    if detail.starts_with(&format!("{}: ", field.name)) {
                        Some(field.rule.to_owned())
                    } else if detail.starts_with(&format!("missing field `{}`", field.name)) {
                        Some(format!("{} is missing: {}", field.name, field.rule))
                    } else {
                        None
                    }
                });
                Self::unprocessable(
                    sentence.unwrap_or_else(|| format!("send a JSON object like {example}")),
                )
            }
            // The body could not be read (too large, the connection broke).
            _ => Self::new(rejection.status(), "the request body could not be read"),
        }
    }
}

/// A body refused by axum's `Json` extractor, where no field list is at hand: see
/// [`ApiError::bad_body`], which the handlers use.
impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        Self::bad_body(&rejection, &[], "{...}")
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
