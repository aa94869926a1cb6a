//! Flash messages: values shown once, by the next request that reads them ("Added Earl Grey",
//! "Signed in").
//!
//! [`Session::flash`] stores each message under its own reserved key (NUL first, out of reach of
//! handlers' `get`/`keys`), `"\0flash:<time><sequence><random>:<key>"`. Two concurrent requests
//! that add messages therefore write different hash fields, and both survive the per-key save.
//!
//! [`SessionManager::take_flashes`] (or the axum extractor [`Flashes`]) reads them, oldest
//! first, and removes exactly the fields it returns, each with its own `HDEL`, whose answer says
//! whether this request removed it ([`SessionStore::take_fields`]). Hence the guarantees, with
//! the default `persist = before_response`:
//!
//! - **once**: a message is returned by one read only, even when two requests of the session
//!   read at the same moment: of their two `HDEL`s of a field, one removes it and the other
//!   drops it from its answer. A rotation (login) that races a read carries the removal over.
//! - **not consumed by side requests**: only a read takes messages; requests that never call it
//!   (an image, an XHR that does not ask, a save of other keys) leave them in place.
//! - **not lost by races**: a message added while a read runs is either in what that read loaded
//!   (then it is taken and shown) or not (then it is not removed, and the next read shows it).
//!   A message is lost only when the read that took it does not reach the user: the request
//!   fails after taking it (e.g. the store fails on its persist and the answer is `503`), or the
//!   client drops the response. Take messages in the request that renders them.
//!
//! Cost: adding a message is part of the request's save (no extra round trip); reading costs
//! nothing when the loaded session holds no message, and one pipelined round trip (an `HDEL` per
//! message) when it does. Messages count towards `max_value_bytes` and `max_session_bytes`,
//! live as long as the session, are kept by `SessionData::clear`, carried over by a rotation
//! and dropped by [`Session::destroy`].
//!
//! [`SessionStore::take_fields`]: crate::store::SessionStore::take_fields

use std::sync::atomic::{AtomicU32, Ordering};

use rand::TryRngCore as _;
use rand::rngs::OsRng;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::data::DataError;
use crate::error::SessionError;
use crate::manager::SessionManager;
use crate::session::Session;
use crate::store::now_ms;

/// The start of every flash message's reserved key.
pub(crate) const FLASH_PREFIX: &str = "\0flash:";

/// Hex digits between the prefix and the `:` before the key: 12 of the time in ms, 8 of this
/// process's sequence, 8 random (so that processes never pick the same field).
const STAMP_LEN: usize = 28;

/// A per-process sequence, so that messages added within one millisecond keep their order.
static SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// A new, unique reserved key for a message under `key`; keys sort in the order they were made
/// (within a process; across processes, by their clocks).
fn field_for(key: &str) -> String {
    let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let random = OsRng.try_next_u32().unwrap_or(sequence.rotate_left(16));
    let time = now_ms() & 0xffff_ffff_ffff;
    format!("{FLASH_PREFIX}{time:012x}{sequence:08x}{random:08x}:{key}")
}

/// The message key inside a flash field name.
fn key_of(field: &str) -> &str {
    let stamped = field.strip_prefix(FLASH_PREFIX).unwrap_or(field);
    stamped.get(STAMP_LEN + 1..).unwrap_or_default()
}

impl Session {
    /// Adds a flash message under `key` (e.g. `"info"`): stored with the session on persist and
    /// returned once by the next [`SessionManager::take_flashes`] (or [`Flashes`]) of this
    /// session. Several messages, under one key or several, are all kept, in order.
    ///
    /// ```
    /// # fn f(session: &redis_sessions::Session) -> Result<(), redis_sessions::DataError> {
    /// session.flash("info", "Added Earl Grey")?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// Encoding errors and size limits ([`DataError::ValueTooLarge`],
    /// [`DataError::SessionTooLarge`]), at the call site; the session is then unchanged.
    pub fn flash<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), DataError> {
        self.state().data.put_reserved(&field_for(key), value)
    }

    /// How many flash messages the session holds now (this request's copy), without taking any.
    #[must_use]
    pub fn flash_count(&self) -> usize {
        self.state().data.reserved_with_prefix(FLASH_PREFIX).len()
    }
}

impl SessionManager {
    /// Takes the session's flash messages whose value decodes as `T`, oldest first, as
    /// `(key, value)` pairs: they are removed, so no other read returns them (see the module
    /// docs for the guarantees). Messages that do not decode as `T` stay for a reader of their
    /// type. No I/O when the session holds no message, or only messages added in this request;
    /// one round trip otherwise.
    ///
    /// ```no_run
    /// # async fn f(manager: redis_sessions::SessionManager, mut request: http::Request<()>)
    /// # -> Result<(), redis_sessions::SessionError> {
    /// let session = manager.start(&mut request).await?;
    /// for (key, message) in manager.take_flashes::<String>(&session).await? {
    ///     println!("{key}: {message}");
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] when the store cannot be reached; nothing is taken then.
    pub async fn take_flashes<T: DeserializeOwned>(
        &self,
        session: &Session,
    ) -> Result<Vec<(String, T)>, SessionError> {
        let (candidates, stored_in) = {
            let state = session.state();
            if state.ended.is_some() {
                return Ok(Vec::new());
            }
            let mut candidates: Vec<(String, T, bool)> = state
                .data
                .reserved_with_prefix(FLASH_PREFIX)
                .into_iter()
                .filter_map(|(field, bytes, pending)| {
                    let value = state.data.decode_bytes(&bytes).ok()?;
                    // A message not stored yet (added in this request, or the session is new)
                    // is only in this copy: taking it needs no store call.
                    Some((field, value, pending || state.id.is_none()))
                })
                .collect();
            candidates.sort_by(|a, b| a.0.cmp(&b.0));
            (
                candidates,
                state.id.as_ref().map(crate::id::SessionId::storage_id),
            )
        };
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let stored: Vec<String> = candidates
            .iter()
            .filter(|(_, _, local)| !*local)
            .map(|(field, _, _)| field.clone())
            .collect();
        let mut taken = match (&stored_in, stored.is_empty()) {
            (Some(id), false) => self.store().take_fields(id, &stored).await?.into_iter(),
            _ => Vec::new().into_iter(),
        };
        let mut state = session.state();
        let mut messages = Vec::with_capacity(candidates.len());
        for (field, value, local) in candidates {
            // A stored message is ours if our `HDEL` removed it; either way it is gone from the
            // store, so this copy forgets it too (a local one only if no other call took it).
            let ours = if local {
                state.data.forget_reserved(&field)
            } else {
                state.data.forget_reserved(&field);
                taken.next().unwrap_or(false)
            };
            if ours {
                messages.push((key_of(&field).to_owned(), value));
            }
        }
        Ok(messages)
    }
}

/// axum extractor: the request's flash messages of type `T` (default `String`), taken as by
/// [`SessionManager::take_flashes`], as `(key, value)` pairs, oldest first. Starts the session
/// (unlocked) if no extractor did; in a handler that also takes
/// [`LockedSession`](crate::LockedSession), put `Flashes` after it.
///
/// ```
/// use axum::Json;
/// use redis_sessions::Flashes;
///
/// async fn flashes(Flashes(flashes): Flashes) -> Json<Vec<String>> {
///     Json(flashes.into_iter().map(|(_key, message)| message).collect())
/// }
/// ```
///
/// Its `Debug` shows the messages' keys, never the messages.
#[cfg(feature = "axum")]
#[derive(Clone)]
pub struct Flashes<T = String>(pub Vec<(String, T)>);

#[cfg(feature = "axum")]
impl<T> std::fmt::Debug for Flashes<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = self.0.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_tuple("Flashes")
            .field(&crate::data::redact::Keys(keys))
            .finish()
    }
}

#[cfg(feature = "axum")]
impl<S: Send + Sync, T: DeserializeOwned + Send> axum::extract::FromRequestParts<S> for Flashes<T> {
    type Rejection = SessionError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let slot = parts
            .extensions
            .get::<crate::manager::Slot>()
            .cloned()
            .ok_or(SessionError::MissingLayer)?;
        let ids = slot.manager().request_ids(&parts.headers);
        let session = slot.start(&ids, false).await?;
        slot.manager().take_flashes(&session).await.map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_unique_ordered_and_keep_their_key() {
        let a = field_for("info");
        let b = field_for("info:with:colons");
        assert_ne!(a, b);
        assert!(a < b, "{a:?} < {b:?}");
        assert!(a.starts_with(FLASH_PREFIX));
        assert_eq!(key_of(&a), "info");
        assert_eq!(key_of(&b), "info:with:colons");
        assert_eq!(key_of(&field_for("")), "");
    }
}
