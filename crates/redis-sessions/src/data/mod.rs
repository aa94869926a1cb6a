//! `SessionData`: the typed key-value map a handler reads and writes, with per-key dirty tracking.
//!
//! Values are kept as encoded bytes (`codec.rs`): igbinary under `format = resonance`, otherwise
//! MessagePack (rmp-serde, struct fields by name so that adding a field
//! with `#[serde(default)]` stays compatible with stored sessions). A value is encoded once, on
//! [`SessionData::put`], so encoding errors and size limits surface at the call site; it is
//! decoded on every [`SessionData::get`], so a corrupt value is an error for that key only (one
//! nested deeper than [`MAX_DEPTH`] levels is refused unread: it could overflow the stack). The
//! map remembers which keys changed, so a save sends only those, and putting a value equal to the
//! stored one changes nothing.

use std::collections::HashSet;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

mod changes;
mod codec;
mod depth;
mod error;
pub(crate) mod redact;
mod values;

pub(crate) use changes::DataChanges;
pub(crate) use codec::Codec;

pub use depth::MAX_DEPTH;
pub use error::DataError;
use values::Values;

/// The first character of the keys the library keeps its own values under.
pub(crate) const RESERVED: char = '\0';

/// The data of one session: string keys to serde values.
///
/// ```
/// use redis_sessions::SessionData;
///
/// let mut data = SessionData::default();
/// data.put("basket", &vec!["apple", "pear"])?;
/// let basket: Option<Vec<String>> = data.get("basket")?;
/// assert_eq!(basket.unwrap(), ["apple", "pear"]);
/// assert!(data.is_modified());
/// # Ok::<(), redis_sessions::DataError>(())
/// ```
///
/// Its `Debug` shows keys and the sizes of their values, never a value.
#[derive(Clone)]
pub struct SessionData {
    /// In the order the keys were stored or first put (a PHP array's order under
    /// `format = resonance`).
    values: Values<Entry>,
    /// How many entries are marked changed.
    changed: usize,
    removed: HashSet<String>,
    size: usize,
    max_value_bytes: usize,
    max_session_bytes: usize,
    codec: Codec,
}

/// One value and whether it changed since the data was loaded or last persisted (kept beside
/// the value rather than in a set of changed keys: no second hash and copy of the key per put,
/// and no lookup per key when the changes are taken).
#[derive(Clone)]
struct Entry {
    bytes: Bytes,
    changed: bool,
}

impl Default for SessionData {
    fn default() -> Self {
        Self::with_limits(64 * 1024, 1024 * 1024)
    }
}

impl SessionData {
    /// Empty data with the given size limits.
    #[must_use]
    pub fn with_limits(max_value_bytes: usize, max_session_bytes: usize) -> Self {
        Self {
            values: Values::default(),
            changed: 0,
            removed: HashSet::new(),
            size: 0,
            max_value_bytes,
            max_session_bytes,
            codec: Codec::MessagePack,
        }
    }

    /// The same data, its values encoded with `codec` (set before any value is put).
    #[must_use]
    pub(crate) fn with_codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// Data as loaded from the store: nothing is marked changed. Limits are not applied to what is
    /// already stored (a lowered limit must not make old sessions unreadable).
    #[must_use]
    pub fn from_stored(
        fields: impl IntoIterator<Item = (String, Bytes)>,
        max_value_bytes: usize,
        max_session_bytes: usize,
    ) -> Self {
        let fields = fields.into_iter();
        let mut data = Self::with_limits(max_value_bytes, max_session_bytes);
        data.values = Values::with_capacity(fields.size_hint().0);
        for (key, value) in fields {
            data.size += key.len() + value.len();
            data.values.insert(
                key,
                Entry {
                    bytes: value,
                    changed: false,
                },
            );
        }
        data
    }

    /// Decodes the value under `key`; `Ok(None)` when there is none.
    ///
    /// # Errors
    ///
    /// [`DataError::Decode`] when the stored bytes are not a `T` (other keys are unaffected);
    /// [`DataError::ReservedKey`] for a key that begins with a NUL character.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, DataError> {
        reject_reserved(key)?;
        self.get_any(key)
    }

    /// [`SessionData::get`] of a reserved key (the library's own values).
    pub(crate) fn get_reserved<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, DataError> {
        debug_assert!(key.starts_with(RESERVED));
        self.get_any(key)
    }

    fn get_any<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, DataError> {
        let Some(Entry { bytes, .. }) = self.values.get(key) else {
            return Ok(None);
        };
        self.codec
            .decode(bytes)
            .map(Some)
            .map_err(|message| DataError::Decode {
                key: key.to_owned(),
                type_name: std::any::type_name::<T>(),
                message,
            })
    }

    /// Decodes `bytes` (a value of this data, e.g. from [`SessionData::reserved_with_prefix`])
    /// with this data's codec and its depth limit.
    pub(crate) fn decode_bytes<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, String> {
        self.codec.decode(bytes)
    }

    /// Encodes `value` and stores it under `key` (in memory: the store sees it on persist).
    ///
    /// # Errors
    ///
    /// [`DataError::Encode`], [`DataError::ValueTooLarge`], [`DataError::SessionTooLarge`],
    /// [`DataError::EmptyKey`] or [`DataError::ReservedKey`]; on error the data is unchanged.
    pub fn put<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), DataError> {
        if key.is_empty() {
            return Err(DataError::EmptyKey);
        }
        reject_reserved(key)?;
        self.put_any(key, value)
    }

    /// [`SessionData::put`] of a reserved key (the library's own values).
    pub(crate) fn put_reserved<T: Serialize + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> Result<(), DataError> {
        debug_assert!(key.starts_with(RESERVED));
        self.put_any(key, value)
    }

    fn put_any<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), DataError> {
        let encoded = self
            .codec
            .encode(value)
            .map_err(|message| DataError::Encode {
                key: key.to_owned(),
                message,
            })?;
        if encoded.len() > self.max_value_bytes {
            return Err(DataError::ValueTooLarge {
                key: key.to_owned(),
                size: encoded.len(),
                limit: self.max_value_bytes,
            });
        }
        // One lookup of the key serves the size check, the no-change check and the update.
        let slot = self.values.index_of(key);
        let old = slot.map(|i| &self.values.at(i).bytes);
        let size = self.size - old.map_or(0, |v| key.len() + v.len()) + key.len() + encoded.len();
        if size > self.max_session_bytes && size > self.size {
            return Err(DataError::SessionTooLarge {
                size,
                limit: self.max_session_bytes,
            });
        }
        if old.is_some_and(|v| v[..] == encoded[..]) {
            return Ok(());
        }
        self.size = size;
        if !self.removed.is_empty() {
            self.removed.remove(key);
        }
        let bytes = Bytes::from(encoded);
        match slot {
            Some(i) => {
                let entry = self.values.at_mut(i);
                entry.bytes = bytes;
                mark_changed(entry, &mut self.changed);
            }
            None => {
                self.changed += 1;
                let entry = Entry {
                    bytes,
                    changed: true,
                };
                self.values.insert(key.to_owned(), entry);
            }
        }
        Ok(())
    }

    /// Removes `key`; returns whether it was there (a reserved key is never removed here).
    pub fn remove(&mut self, key: &str) -> bool {
        if key.starts_with(RESERVED) {
            return false;
        }
        self.remove_any(key)
    }

    /// [`SessionData::remove`] of a reserved key (the library's own values). The removal is
    /// recorded even when this copy does not hold the key, so that persisting also drops a value
    /// another request stored meanwhile (and a rotation does not carry it over to the new id).
    pub(crate) fn remove_reserved(&mut self, key: &str) -> bool {
        debug_assert!(key.starts_with(RESERVED));
        let removed = self.remove_any(key);
        if !removed {
            self.removed.insert(key.to_owned());
        }
        removed
    }

    /// The reserved keys beginning with `prefix`, with their encoded values and whether they
    /// are pending (changed in this request, not persisted yet).
    pub(crate) fn reserved_with_prefix(&self, prefix: &str) -> Vec<(String, Bytes, bool)> {
        debug_assert!(prefix.starts_with(RESERVED));
        self.values
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, e)| (k.to_owned(), e.bytes.clone(), e.changed))
            .collect()
    }

    /// Drops a reserved key from this copy without recording a change (the store has already
    /// removed it, or never had it); returns whether it was there.
    pub(crate) fn forget_reserved(&mut self, key: &str) -> bool {
        debug_assert!(key.starts_with(RESERVED));
        self.removed.remove(key);
        let Some(old) = self.values.shift_remove(key) else {
            return false;
        };
        self.size -= key.len() + old.bytes.len();
        self.changed -= usize::from(old.changed);
        true
    }

    fn remove_any(&mut self, key: &str) -> bool {
        let Some(old) = self.values.shift_remove(key) else {
            return false;
        };
        self.size -= key.len() + old.bytes.len();
        self.changed -= usize::from(old.changed);
        self.removed.insert(key.to_owned());
        true
    }

    /// Whether `key` holds a value (never true for a reserved key).
    #[must_use]
    pub fn contains(&self, key: &str) -> bool {
        !key.starts_with(RESERVED) && self.values.contains_key(key)
    }

    /// The keys, in the order they were stored or first put (the library's reserved keys are
    /// not listed).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values
            .iter()
            .map(|(k, _)| k)
            .filter(|k| !k.starts_with(RESERVED))
    }

    /// Removes every key (the library's reserved keys, e.g. the CSRF token, stay).
    pub fn clear(&mut self) {
        let keys: Vec<String> = self.keys().map(str::to_owned).collect();
        for key in keys {
            self.remove(&key);
        }
    }

    /// Whether the session holds no keys (reserved keys not counted).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys().next().is_none()
    }

    /// Removes every key, the library's own values included (a destroyed session keeps nothing).
    pub(crate) fn clear_all(&mut self) {
        let keys: Vec<String> = self.values.iter().map(|(k, _)| k.to_owned()).collect();
        for key in keys {
            self.remove_any(&key);
        }
    }

    /// Whether nothing at all is held, the library's own values included: a new session with
    /// only a CSRF token is still worth storing.
    pub(crate) fn holds_nothing(&self) -> bool {
        self.values.is_empty()
    }

    /// Number of values, the library's own included.
    pub(crate) fn entry_count(&self) -> usize {
        self.values.len()
    }

    /// Number of keys (reserved keys not counted).
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys().count()
    }

    /// Whether anything changed since load or the last persist.
    #[must_use]
    pub fn is_modified(&self) -> bool {
        self.changed > 0 || !self.removed.is_empty()
    }

    /// Total bytes of keys and encoded values.
    #[must_use]
    pub fn size_bytes(&self) -> usize {
        self.size
    }

    /// Every key with its encoded value (for creating a record or rotating the id).
    pub fn encoded(&self) -> impl Iterator<Item = (&str, &Bytes)> {
        self.values.iter().map(|(k, e)| (k, &e.bytes))
    }
}

/// Marks `entry` changed, counting it in `changed` unless it already was.
fn mark_changed(entry: &mut Entry, changed: &mut usize) {
    *changed += usize::from(!entry.changed);
    entry.changed = true;
}

/// [`DataError::ReservedKey`] for a key the library keeps to itself.
fn reject_reserved(key: &str) -> Result<(), DataError> {
    if key.starts_with(RESERVED) {
        return Err(DataError::ReservedKey {
            key: key.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
