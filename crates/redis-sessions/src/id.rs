//! Session ids: what the client holds, and the storage id the server derives from it.
//!
//! A [`SessionId`] is 256 bits from the operating system's CSPRNG, written as 43 characters of
//! unpadded base64url. It is the only thing the browser ever sees. Cookie values are parsed
//! strictly (exact length, base64url alphabet, canonical encoding) before anything touches the
//! store, so garbage never costs a Redis round trip.
//!
//! The store never sees the raw id: it gets a [`StorageId`], the base64url of the first 16 bytes
//! of SHA-256(id). A keyspace listing, a `MONITOR` trace or a dump of Redis therefore hands out no
//! live cookies, and neither do logs: `Debug` and `Display` of a `SessionId` print a redacted
//! fingerprint, never the id. A `SessionId` derives its storage id once, when it is parsed or
//! drawn, and keeps it: a request needs it for every store call (and a log line), and SHA-256 is
//! the costliest step of parsing. A storage id is kept inline (22 bytes), so copying one
//! allocates nothing.

use std::fmt;
use std::hash::{Hash, Hasher};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRngCore as _;
use rand::rngs::OsRng;
use ring::digest::{Context, SHA256, digest};

/// Bytes of entropy in a session id.
const ID_BYTES: usize = 32;
/// Length of a session id as base64url without padding.
pub const ID_LEN: usize = 43;
/// Bytes of SHA-256 kept for the storage id (128 bits: no collisions among live sessions).
const STORAGE_BYTES: usize = 16;
/// Length of a storage id as base64url without padding.
pub const STORAGE_LEN: usize = 22;

/// A session id: 256 random bits, shown to the client as 43 base64url characters.
///
/// ```
/// use redis_sessions::SessionId;
///
/// let id = SessionId::generate();
/// let cookie_value = id.expose();
/// assert_eq!(cookie_value.len(), 43);
/// assert_eq!(SessionId::parse(&cookie_value), Some(id.clone()));
/// // Logs never show the id itself.
/// assert!(!format!("{id:?}").contains(&cookie_value));
/// // Anything that is not exactly a well-formed id is rejected.
/// assert_eq!(SessionId::parse("not-an-id"), None);
/// ```
#[derive(Clone)]
pub struct SessionId {
    bytes: [u8; ID_BYTES],
    /// The storage id of `bytes` (equality and hashing ignore it: it follows from them).
    storage: StorageId,
}

impl PartialEq for SessionId {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for SessionId {}

impl Hash for SessionId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

impl SessionId {
    /// Draws a fresh id from the operating system's CSPRNG.
    ///
    /// # Panics
    ///
    /// Panics only if the operating system cannot provide randomness at all, in which case no
    /// secure id can exist and continuing would be worse.
    #[must_use]
    pub fn generate() -> Self {
        Self::from_bytes(random_bytes())
    }

    fn from_bytes(bytes: [u8; ID_BYTES]) -> Self {
        let digest = digest(&SHA256, &bytes);
        let digest = digest.as_ref();
        let mut storage = [0u8; STORAGE_LEN];
        // 16 bytes always encode to exactly 22 characters, so this cannot fail.
        let _ = URL_SAFE_NO_PAD.encode_slice(&digest[..STORAGE_BYTES], &mut storage);
        Self {
            bytes,
            storage: StorageId(storage),
        }
    }

    /// A fresh random token with the same strength and spelling as an id (43 base64url
    /// characters), without deriving a storage id: for lock tokens.
    pub(crate) fn random_token() -> String {
        URL_SAFE_NO_PAD.encode(random_bytes())
    }

    /// Parses a cookie value strictly: exactly 43 base64url characters that decode to 32 bytes and
    /// re-encode to the same text. Anything else is `None`.
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        if value.len() != ID_LEN
            || !value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return None;
        }
        let mut bytes = [0u8; ID_BYTES];
        // 43 characters carry 258 bits; the decoder rejects non-zero trailing bits, so each id has
        // exactly one accepted spelling.
        match URL_SAFE_NO_PAD.decode_slice(value, &mut bytes) {
            Ok(ID_BYTES) => Some(Self::from_bytes(bytes)),
            _ => None,
        }
    }

    /// The id as the client sees it (the cookie value). Handle with care: this is a bearer secret.
    #[must_use]
    pub fn expose(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.bytes)
    }

    /// The id under which the store keeps this session (see the module docs).
    #[must_use]
    pub fn storage_id(&self) -> StorageId {
        self.storage
    }
}

/// 256 bits from the operating system's CSPRNG (see [`SessionId::generate`] for the panic).
fn random_bytes() -> [u8; ID_BYTES] {
    let mut bytes = [0u8; ID_BYTES];
    #[allow(clippy::expect_used)]
    OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random number generator failed");
    bytes
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

impl fmt::Display for SessionId {
    /// A redacted fingerprint (the first 6 characters of the storage id), enough to correlate log
    /// lines, useless as a cookie.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}…", &self.storage.as_str()[..6])
    }
}

/// The store's name for a session: base64url of the first 16 bytes of SHA-256(session id), 22
/// characters. Stores add their own prefix.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StorageId([u8; STORAGE_LEN]);

impl fmt::Debug for StorageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StorageId").field(&self.as_str()).finish()
    }
}

impl StorageId {
    /// Parses a storage id given as text (e.g. to an admin tool, from a Redis key or a log line):
    /// exactly 22 base64url characters that decode to 16 bytes and re-encode to the same text.
    /// Anything else is `None`.
    ///
    /// ```
    /// use redis_sessions::SessionId;
    /// use redis_sessions::id::StorageId;
    ///
    /// let storage = SessionId::generate().storage_id();
    /// assert_eq!(StorageId::parse(storage.as_str()), Some(storage));
    /// assert_eq!(StorageId::parse("not-a-storage-id"), None);
    /// ```
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        let mut bytes = [0u8; STORAGE_BYTES];
        let well_formed = value.len() == STORAGE_LEN
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && matches!(
                URL_SAFE_NO_PAD.decode_slice(value, &mut bytes),
                Ok(STORAGE_BYTES)
            );
        let mut text = [0u8; STORAGE_LEN];
        if well_formed {
            text.copy_from_slice(value.as_bytes());
        }
        well_formed.then_some(Self(text))
    }

    /// The 22-character text of the storage id.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Always base64url (ASCII): built by the encoder or checked by `parse`.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The store's name for the index of one user's sessions: base64url of the first 16 bytes of
/// SHA-256 of the user id (with a domain prefix, so it never equals a storage id). Any user id
/// (an e-mail address, a number, any bytes) becomes a short key-safe name, and the store's
/// keyspace does not list user ids.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct UserIndexId(String);

impl UserIndexId {
    /// The index name of `user_id`.
    #[must_use]
    pub fn of_user(user_id: &str) -> Self {
        let mut hasher = Context::new(&SHA256);
        hasher.update(b"redis-sessions user index\0");
        hasher.update(user_id.as_bytes());
        Self(URL_SAFE_NO_PAD.encode(&hasher.finish().as_ref()[..STORAGE_BYTES]))
    }

    /// The 22-character text of the index name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StorageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_round_trip_and_differ() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert_ne!(a, b);
        assert_eq!(SessionId::parse(&a.expose()), Some(a));
    }

    #[test]
    fn malformed_values_are_rejected() {
        let good = SessionId::generate().expose();
        assert!(SessionId::parse(&good[..42]).is_none());
        assert!(SessionId::parse(&format!("{good}A")).is_none());
        assert!(SessionId::parse(&format!("{}=", &good[..42])).is_none());
        assert!(SessionId::parse(&format!("{}+", &good[..42])).is_none());
        assert!(SessionId::parse("").is_none());
        assert!(SessionId::parse(&"é".repeat(21)).is_none());
    }

    #[test]
    fn non_canonical_spelling_is_rejected() {
        // The last character carries 2 unused bits; only the spelling with them zero is accepted.
        let good = SessionId::generate().expose();
        let last = good.as_bytes()[42];
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let pos = alphabet.iter().position(|&c| c == last).unwrap_or(0);
        let other = alphabet[(pos & !3) | ((pos + 1) & 3)] as char;
        let bad = format!("{}{other}", &good[..42]);
        assert!(SessionId::parse(&bad).is_none());
    }

    #[test]
    fn storage_ids_parse_back_and_user_index_names_differ_per_user() {
        let s = SessionId::generate().storage_id();
        assert_eq!(StorageId::parse(s.as_str()), Some(s));
        assert_eq!(StorageId::parse(&s.as_str()[1..]), None);
        assert_eq!(StorageId::parse(&format!("{}{{", &s.as_str()[1..])), None);
        let alice = UserIndexId::of_user("alice@example.com");
        assert_eq!(alice, UserIndexId::of_user("alice@example.com"));
        assert_ne!(alice, UserIndexId::of_user("bob@example.com"));
        assert_eq!(alice.as_str().len(), STORAGE_LEN);
        assert!(!alice.as_str().contains("alice"));
    }

    #[test]
    fn storage_id_is_stable_and_hides_the_id() {
        let id = SessionId::generate();
        let s = id.storage_id();
        assert_eq!(s, id.storage_id());
        assert_eq!(s.as_str().len(), STORAGE_LEN);
        assert_eq!(StorageId::parse(s.as_str()), Some(s));
        assert!(StorageId::parse(&s.as_str()[..21]).is_none());
        assert!(StorageId::parse(&id.expose()).is_none());
        assert!(!id.expose().contains(s.as_str()));
        assert!(!format!("{id} {id:?}").contains(&id.expose()));
    }
}
