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
//! the costliest step of parsing. A storage id's text is shared (`Arc<str>`), so cloning one
//! allocates nothing and reading it needs no check (an inline byte array had to be validated as
//! UTF-8 on every read: 0.4 % more instructions per request).
//!
//! Under `format = resonance` (sessions shared with the PHP framework) an id is instead 128
//! random bytes as 256 lowercase hex characters, the framework's own format, and its storage id
//! is the id itself: the framework's key layout holds the raw id, so a Redis keyspace listing
//! then shows live cookies (see the README's migration section).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRngCore as _;
use rand::rngs::OsRng;
use ring::digest::{Context, SHA256, digest};

use crate::config::SessionFormat;

/// Bytes of entropy in a session id.
const ID_BYTES: usize = 32;
/// Length of a session id as base64url without padding.
pub const ID_LEN: usize = 43;
/// Bytes of SHA-256 kept for the storage id (128 bits: no collisions among live sessions).
const STORAGE_BYTES: usize = 16;
/// Length of a storage id as base64url without padding.
pub const STORAGE_LEN: usize = 22;
/// Bytes of entropy in a `format = resonance` id (the PHP framework's `random_bytes(128)`).
const RESONANCE_BYTES: usize = 128;
/// Length of a `format = resonance` id: 256 lowercase hex characters.
pub const RESONANCE_ID_LEN: usize = 2 * RESONANCE_BYTES;

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
    repr: Repr,
    /// The storage id of `repr` (equality and hashing ignore it: it follows from `repr`).
    storage: StorageId,
}

impl PartialEq for SessionId {
    fn eq(&self, other: &Self) -> bool {
        self.repr == other.repr
    }
}

impl Eq for SessionId {}

impl Hash for SessionId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.repr.hash(state);
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    Native([u8; ID_BYTES]),
    Resonance(Box<[u8; RESONANCE_BYTES]>),
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
        let mut bytes = [0u8; ID_BYTES];
        fill_random(&mut bytes);
        Self::from_repr(Repr::Native(bytes))
    }

    /// The id of `repr`, with its storage id derived now.
    fn from_repr(repr: Repr) -> Self {
        let storage = match &repr {
            Repr::Native(bytes) => {
                let digest = digest(&SHA256, bytes);
                StorageId(with_base64url::<STORAGE_LEN, _>(
                    &digest.as_ref()[..STORAGE_BYTES],
                    |text| Arc::from(text),
                ))
            }
            Repr::Resonance(bytes) => {
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                StorageId(Arc::from(hex))
            }
        };
        Self { repr, storage }
    }

    /// A fresh random token with the same strength and spelling as an id (43 base64url
    /// characters), without deriving a storage id: for lock tokens.
    pub(crate) fn random_token() -> String {
        let mut bytes = [0u8; ID_BYTES];
        fill_random(&mut bytes);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Draws a fresh id of `format`'s kind: [`SessionId::generate`] for native, 128 bytes shown
    /// as 256 lowercase hex characters for `resonance`.
    ///
    /// ```
    /// use redis_sessions::{SessionFormat, SessionId};
    ///
    /// let id = SessionId::generate_for(SessionFormat::Resonance);
    /// assert_eq!(id.expose().len(), 256);
    /// assert_eq!(id.format(), SessionFormat::Resonance);
    /// assert_eq!(SessionId::parse_for(&id.expose(), SessionFormat::Resonance), Some(id));
    /// ```
    #[must_use]
    pub fn generate_for(format: SessionFormat) -> Self {
        match format {
            SessionFormat::Native => Self::generate(),
            SessionFormat::Resonance => {
                let mut bytes = Box::new([0u8; RESONANCE_BYTES]);
                fill_random(&mut bytes[..]);
                Self::from_repr(Repr::Resonance(bytes))
            }
        }
    }

    /// Parses a cookie value as an id of `format`'s kind: [`SessionId::parse`] for native;
    /// exactly 256 lowercase hex characters for `resonance` (the PHP framework's
    /// `bin2hex(random_bytes(128))`). Anything else is `None`.
    #[must_use]
    pub fn parse_for(value: &str, format: SessionFormat) -> Option<Self> {
        Self::parse_bytes_for(value.as_bytes(), format)
    }

    /// [`SessionId::parse_for`] of a cookie value's bytes: both spellings are ASCII, so a value
    /// needs no UTF-8 check first.
    pub(crate) fn parse_bytes_for(value: &[u8], format: SessionFormat) -> Option<Self> {
        match format {
            SessionFormat::Native => Self::parse_bytes(value),
            SessionFormat::Resonance => {
                if value.len() != RESONANCE_ID_LEN {
                    return None;
                }
                let mut bytes = Box::new([0u8; RESONANCE_BYTES]);
                for (byte, pair) in bytes.iter_mut().zip(value.chunks_exact(2)) {
                    *byte = (lower_hex(pair[0])? << 4) | lower_hex(pair[1])?;
                }
                Some(Self::from_repr(Repr::Resonance(bytes)))
            }
        }
    }

    /// The format this id belongs to.
    #[must_use]
    pub fn format(&self) -> SessionFormat {
        match self.repr {
            Repr::Native(_) => SessionFormat::Native,
            Repr::Resonance(_) => SessionFormat::Resonance,
        }
    }

    /// Parses a cookie value strictly: exactly 43 base64url characters that decode to 32 bytes and
    /// re-encode to the same text. Anything else is `None`.
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        Self::parse_bytes(value.as_bytes())
    }

    fn parse_bytes(value: &[u8]) -> Option<Self> {
        if value.len() != ID_LEN {
            return None;
        }
        let mut bytes = [0u8; ID_BYTES];
        // The decoder refuses any byte outside the base64url alphabet (padding included), and
        // non-zero trailing bits: 43 characters carry 258 bits, so each id has exactly one
        // accepted spelling.
        match URL_SAFE_NO_PAD.decode_slice(value, &mut bytes) {
            Ok(ID_BYTES) => Some(Self::from_repr(Repr::Native(bytes))),
            _ => None,
        }
    }

    /// The id as the client sees it (the cookie value). Handle with care: this is a bearer secret.
    #[must_use]
    pub fn expose(&self) -> String {
        let mut text = String::with_capacity(self.exposed_len());
        self.expose_into(&mut text);
        text
    }

    /// Appends [`SessionId::expose`]'s text to `out`, without a `String` of its own.
    pub(crate) fn expose_into(&self, out: &mut String) {
        match &self.repr {
            Repr::Native(bytes) => with_base64url::<ID_LEN, _>(bytes, |text| out.push_str(text)),
            Repr::Resonance(_) => out.push_str(self.storage.as_str()),
        }
    }

    /// The length of [`SessionId::expose`]'s text.
    pub(crate) fn exposed_len(&self) -> usize {
        match &self.repr {
            Repr::Native(_) => ID_LEN,
            Repr::Resonance(_) => self.storage.as_str().len(),
        }
    }

    /// The id under which the store keeps this session (see the module docs): for a
    /// `resonance` id, the id itself.
    #[must_use]
    pub fn storage_id(&self) -> StorageId {
        self.storage.clone()
    }

    /// A redacted fingerprint for logs: for a native id the first 6 characters of its storage
    /// id; for a `resonance` one (whose storage id is the id) 6 characters of base64url of
    /// SHA-256 of it.
    fn fingerprint(&self) -> String {
        match &self.repr {
            Repr::Native(_) => self.storage.as_str()[..6].to_owned(),
            Repr::Resonance(bytes) => {
                let digest = digest(&SHA256, &bytes[..]);
                URL_SAFE_NO_PAD.encode(&digest.as_ref()[..STORAGE_BYTES])[..6].to_owned()
            }
        }
    }
}

/// Hands `f` the base64url text (no padding) of `bytes`, exactly `N` characters, encoded on the
/// stack: base64's `encode` allocates a `String` (which a storage id's `Arc` then copied) and
/// `encode_string` goes through its chunked encoder; each cost about 150-600 instructions more
/// per id (callgrind).
fn with_base64url<const N: usize, R>(bytes: &[u8], f: impl FnOnce(&str) -> R) -> R {
    let mut text = [0u8; N];
    let written = URL_SAFE_NO_PAD.encode_slice(bytes, &mut text).unwrap_or(0);
    debug_assert_eq!(written, N);
    f(std::str::from_utf8(&text[..written]).unwrap_or_default())
}

/// Fills `bytes` from the operating system's CSPRNG.
fn fill_random(bytes: &mut [u8]) {
    #[allow(clippy::expect_used)]
    OsRng
        .try_fill_bytes(bytes)
        .expect("the operating system's random number generator failed");
}

/// The value of a lowercase hex digit.
fn lower_hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

impl fmt::Display for SessionId {
    /// A redacted fingerprint (for a native id, the first 6 characters of its storage id),
    /// enough to correlate log lines, useless as a cookie.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}…", self.fingerprint())
    }
}

/// The store's name for a session: base64url of the first 16 bytes of SHA-256(session id), 22
/// characters. Stores add their own prefix. (Under `format = resonance`, the id itself: its
/// `Debug` and `Display` then show a redacted fingerprint, as [`SessionId`]'s do.)
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StorageId(Arc<str>);

impl fmt::Debug for StorageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StorageId({self})")
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
        well_formed.then(|| Self(Arc::from(value)))
    }

    /// [`StorageId::parse`], or a `format = resonance` storage id (the 256-hex id itself), as
    /// read back from a user's index.
    pub(crate) fn parse_stored(value: &str) -> Option<Self> {
        Self::parse(value).or_else(|| {
            SessionId::parse_for(value, SessionFormat::Resonance).map(|id| id.storage_id())
        })
    }

    /// The text of the storage id (22 characters; 256 for a `format = resonance` id).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
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
        match SessionId::parse_for(self.as_str(), SessionFormat::Resonance) {
            // A live cookie: shown as the id's own fingerprint.
            Some(id) => write!(f, "{id}"),
            None => f.write_str(self.as_str()),
        }
    }
}

#[cfg(test)]
mod tests;
