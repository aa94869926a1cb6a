//! CSRF protection by a synchronizer token bound to the session.
//!
//! A session's CSRF token is 256 bits from the operating system's CSPRNG, written as 43
//! characters of unpadded base64url (like a session id, but a separate secret: the page's
//! JavaScript may read it, it must never be able to read the id). It is made on the first
//! [`Session::csrf_token`] call and kept in the session's data under a reserved key, so handlers
//! cannot read, overwrite or list it as data, and `SessionData::clear` keeps it.
//!
//! [`Session::verify_csrf`] compares in constant time (`subtle`), so the time an answer takes
//! says nothing about how much of a guess was right, and never creates a token: a session without
//! one rejects everything. [`Session::rotate`] drops the token (a token learned before a login is
//! useless after it) and so does [`Session::destroy`]; the next `csrf_token` call makes a fresh
//! one. The axum guard that checks the `X-CSRF-Token` header is
//! [`CsrfGuard`](crate::axum::CsrfGuard).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRngCore as _;
use rand::rngs::OsRng;
use subtle::ConstantTimeEq as _;

use crate::data::{DataError, SessionData};
use crate::session::Session;

/// The reserved session key the token is kept under (NUL first: see `SessionData`).
pub(crate) const CSRF_KEY: &str = "\0csrf";

/// Bytes of randomness in a token.
const TOKEN_BYTES: usize = 32;

/// Length of a token: 32 bytes as unpadded base64url.
pub const CSRF_TOKEN_LEN: usize = 43;

/// The request header a client sends the token in (checked by
/// [`CsrfGuard`](crate::axum::CsrfGuard)).
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A fresh token from the operating system's CSPRNG.
fn generate() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    #[allow(clippy::expect_used)]
    OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random number generator failed");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `presented` equals `expected`, in time that depends on neither's contents (only on
/// their lengths, which are public: every token has 43 characters).
fn same(expected: &str, presented: &str) -> bool {
    expected.as_bytes().ct_eq(presented.as_bytes()).into()
}

/// Drops the token, also from the store's copy: the removal is recorded even when this request's
/// copy holds none, so a token another request made meanwhile is neither kept by a save nor
/// carried over to the new id by a rotation.
pub(crate) fn drop_token(data: &mut SessionData) {
    data.remove_reserved(CSRF_KEY);
}

impl Session {
    /// The session's CSRF token, made on the first call (a 256-bit random, url-safe string of
    /// [`CSRF_TOKEN_LEN`] characters) and the same on every later call until the session is
    /// rotated or destroyed. Making one is a change: a new session with only a token is stored
    /// and gets its cookie.
    ///
    /// Call it after [`Session::rotate`] in a login handler that answers with the token: a
    /// rotation drops the token it finds, so one handed out before `rotate()` in the same request
    /// is already void.
    ///
    /// ```
    /// # fn f(session: &redis_sessions::Session) -> Result<(), redis_sessions::DataError> {
    /// let token = session.csrf_token()?;
    /// assert_eq!(session.csrf_token()?, token);
    /// assert!(session.verify_csrf(&token));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`DataError::SessionTooLarge`] when the session has no room for it (`max_session_bytes`),
    /// [`DataError::Decode`] when the stored token is corrupt.
    pub fn csrf_token(&self) -> Result<String, DataError> {
        let mut state = self.state();
        if let Some(token) = state.data.get_reserved::<String>(CSRF_KEY)? {
            return Ok(token);
        }
        let token = generate();
        state.data.put_reserved(CSRF_KEY, &token)?;
        Ok(token)
    }

    /// Whether `presented` is this session's CSRF token, compared in constant time. False when
    /// the session has none (this never makes one) or its stored token cannot be read.
    #[must_use]
    pub fn verify_csrf(&self, presented: &str) -> bool {
        match self.state().data.get_reserved::<String>(CSRF_KEY) {
            Ok(Some(expected)) => same(&expected, presented),
            Ok(None) | Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_url_safe_256_bit_and_differ() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        for token in [&a, &b] {
            assert_eq!(token.len(), CSRF_TOKEN_LEN);
            let bytes = URL_SAFE_NO_PAD.decode(token).unwrap_or_default();
            assert_eq!(bytes.len(), TOKEN_BYTES);
            assert!(
                token
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            );
        }
    }

    #[test]
    fn comparison_needs_every_byte_and_the_length() {
        let token = generate();
        assert!(same(&token, &token.clone()));
        assert!(!same(&token, &token[..42]));
        assert!(!same(&token, &format!("{token}x")));
        assert!(!same(&token, ""));
        let mut last = token.clone().into_bytes();
        last[42] = if last[42] == b'A' { b'B' } else { b'A' };
        assert!(!same(&token, &String::from_utf8(last).unwrap_or_default()));
    }

    #[test]
    fn drop_token_records_the_removal_even_without_a_token() {
        let mut data = SessionData::default();
        drop_token(&mut data);
        assert!(data.is_modified());
        assert!(data.take_changes().removed.contains(&CSRF_KEY.to_owned()));
    }
}
