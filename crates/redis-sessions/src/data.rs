//! `SessionData`: the typed key-value map a handler reads and writes, with per-key dirty tracking.
//!
//! Values are kept as MessagePack bytes (rmp-serde, struct fields by name so that adding a field
//! with `#[serde(default)]` stays compatible with stored sessions). A value is encoded once, on
//! [`SessionData::put`], so encoding errors and size limits surface at the call site; it is
//! decoded on every [`SessionData::get`], so a corrupt value is an error for that key only. The
//! map remembers which keys changed, so a save sends only those, and putting a value equal to the
//! stored one changes nothing.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// An error from reading or writing one value.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The value could not be encoded as MessagePack.
    #[error("cannot encode the value for session key {key:?}: {message}")]
    Encode {
        /// The session key.
        key: String,
        /// What the encoder said.
        message: String,
    },
    /// The stored bytes do not decode as the requested type (corrupt data, or a type change).
    #[error("stored value for session key {key:?} cannot be decoded as {type_name}: {message}")]
    Decode {
        /// The session key.
        key: String,
        /// The type asked for.
        type_name: &'static str,
        /// What the decoder said.
        message: String,
    },
    /// The encoded value is larger than `max_value_bytes`.
    #[error("value for session key {key:?} is {size} bytes, over max_value_bytes = {limit}")]
    ValueTooLarge {
        /// The session key.
        key: String,
        /// Encoded size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The session would exceed `max_session_bytes`.
    #[error("session would hold {size} bytes, over max_session_bytes = {limit}")]
    SessionTooLarge {
        /// Size the session would have.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Session keys must be non-empty (the empty field name is reserved for metadata).
    #[error("session keys must not be empty")]
    EmptyKey,
}

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
#[derive(Debug, Clone)]
pub struct SessionData {
    values: HashMap<String, Bytes>,
    changed: HashSet<String>,
    removed: HashSet<String>,
    size: usize,
    max_value_bytes: usize,
    max_session_bytes: usize,
}

impl Default for SessionData {
    fn default() -> Self {
        Self::with_limits(64 * 1024, 1024 * 1024)
    }
}

/// What changed since the data was loaded or last persisted, as the store needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DataChanges {
    /// Keys with new encoded values.
    pub(crate) set: Vec<(String, Bytes)>,
    /// Keys to delete.
    pub(crate) removed: Vec<String>,
}

impl DataChanges {
    /// True when nothing changed.
    pub(crate) fn is_empty(&self) -> bool {
        self.set.is_empty() && self.removed.is_empty()
    }

    /// Every key that was set or removed.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.set
            .iter()
            .map(|(k, _)| k.as_str())
            .chain(self.removed.iter().map(String::as_str))
    }
}

impl SessionData {
    /// Empty data with the given size limits.
    #[must_use]
    pub fn with_limits(max_value_bytes: usize, max_session_bytes: usize) -> Self {
        Self {
            values: HashMap::new(),
            changed: HashSet::new(),
            removed: HashSet::new(),
            size: 0,
            max_value_bytes,
            max_session_bytes,
        }
    }

    /// Data as loaded from the store: nothing is marked changed. Limits are not applied to what is
    /// already stored (a lowered limit must not make old sessions unreadable).
    #[must_use]
    pub fn from_stored(
        fields: impl IntoIterator<Item = (String, Bytes)>,
        max_value_bytes: usize,
        max_session_bytes: usize,
    ) -> Self {
        let mut data = Self::with_limits(max_value_bytes, max_session_bytes);
        for (key, value) in fields {
            data.size += key.len() + value.len();
            data.values.insert(key, value);
        }
        data
    }

    /// Decodes the value under `key`; `Ok(None)` when there is none.
    ///
    /// # Errors
    ///
    /// [`DataError::Decode`] when the stored bytes are not a `T`; other keys are unaffected.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, DataError> {
        let Some(bytes) = self.values.get(key) else {
            return Ok(None);
        };
        rmp_serde::from_slice(bytes)
            .map(Some)
            .map_err(|e| DataError::Decode {
                key: key.to_owned(),
                type_name: std::any::type_name::<T>(),
                message: e.to_string(),
            })
    }

    /// Encodes `value` and stores it under `key` (in memory: the store sees it on persist).
    ///
    /// # Errors
    ///
    /// [`DataError::Encode`], [`DataError::ValueTooLarge`], [`DataError::SessionTooLarge`] or
    /// [`DataError::EmptyKey`]; on error the data is unchanged.
    pub fn put<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), DataError> {
        if key.is_empty() {
            return Err(DataError::EmptyKey);
        }
        let encoded = rmp_serde::to_vec_named(value).map_err(|e| DataError::Encode {
            key: key.to_owned(),
            message: e.to_string(),
        })?;
        if encoded.len() > self.max_value_bytes {
            return Err(DataError::ValueTooLarge {
                key: key.to_owned(),
                size: encoded.len(),
                limit: self.max_value_bytes,
            });
        }
        let old = self.values.get(key).map_or(0, |v| key.len() + v.len());
        let size = self.size - old + key.len() + encoded.len();
        if size > self.max_session_bytes && size > self.size {
            return Err(DataError::SessionTooLarge {
                size,
                limit: self.max_session_bytes,
            });
        }
        if self.values.get(key).is_some_and(|v| v[..] == encoded[..]) {
            return Ok(());
        }
        self.size = size;
        self.removed.remove(key);
        self.changed.insert(key.to_owned());
        self.values.insert(key.to_owned(), Bytes::from(encoded));
        Ok(())
    }

    /// Removes `key`; returns whether it was there.
    pub fn remove(&mut self, key: &str) -> bool {
        let Some(old) = self.values.remove(key) else {
            return false;
        };
        self.size -= key.len() + old.len();
        self.changed.remove(key);
        self.removed.insert(key.to_owned());
        true
    }

    /// Whether `key` holds a value.
    #[must_use]
    pub fn contains(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// The keys, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        let keys: Vec<String> = self.values.keys().cloned().collect();
        for key in keys {
            self.remove(&key);
        }
    }

    /// Whether the session holds no keys.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether anything changed since load or the last persist.
    #[must_use]
    pub fn is_modified(&self) -> bool {
        !self.changed.is_empty() || !self.removed.is_empty()
    }

    /// Total bytes of keys and encoded values.
    #[must_use]
    pub fn size_bytes(&self) -> usize {
        self.size
    }

    /// The changes since load or the last call, and forgets them (they are being persisted).
    /// Only the manager may call this (and the two below): handlers that could would make the
    /// session forget writes it never sent.
    pub(crate) fn take_changes(&mut self) -> DataChanges {
        let set = self
            .changed
            .drain()
            .filter_map(|k| self.values.get(&k).map(|v| (k, v.clone())))
            .collect();
        DataChanges {
            set,
            removed: self.removed.drain().collect(),
        }
    }

    /// Puts changes back after a persist that did not happen, so a retry sends them again.
    pub(crate) fn restore_changes(&mut self, changes: &DataChanges) {
        for (key, _) in &changes.set {
            if self.values.contains_key(key) {
                self.changed.insert(key.clone());
            }
        }
        for key in &changes.removed {
            if !self.values.contains_key(key) {
                self.removed.insert(key.clone());
            }
        }
    }

    /// Every key with its encoded value (for creating a record or rotating the id).
    pub fn encoded(&self) -> impl Iterator<Item = (&str, &Bytes)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Marks everything as persisted.
    pub(crate) fn mark_persisted(&mut self) {
        self.changed.clear();
        self.removed.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn putting_an_equal_value_changes_nothing() {
        let mut data = SessionData::from_stored(
            [(
                "n".to_owned(),
                Bytes::from(rmp_serde::to_vec_named(&5).unwrap_or_default()),
            )],
            100,
            1000,
        );
        data.put("n", &5).unwrap_or_default();
        assert!(!data.is_modified());
        data.put("n", &6).unwrap_or_default();
        assert!(data.is_modified());
    }

    #[test]
    fn oversized_value_is_rejected_and_nothing_changes() {
        let mut data = SessionData::with_limits(10, 1000);
        let err = data.put("k", &"x".repeat(20));
        assert!(matches!(
            err,
            Err(DataError::ValueTooLarge {
                size: 21,
                limit: 10,
                ..
            })
        ));
        assert!(data.is_empty());
        assert!(!data.is_modified());
    }

    #[test]
    fn session_limit_counts_keys_and_values() {
        let mut data = SessionData::with_limits(100, 30);
        assert!(data.put("a", &"x".repeat(10)).is_ok());
        assert!(data.put("b", &"x".repeat(10)).is_ok());
        assert!(matches!(
            data.put("c", &"x".repeat(10)),
            Err(DataError::SessionTooLarge { .. })
        ));
        assert!(data.put("a", &"y").is_ok(), "shrinking is always allowed");
    }

    #[test]
    fn changes_track_puts_and_removes() {
        let mut data = SessionData::default();
        data.put("a", &1).unwrap_or_default();
        data.put("b", &2).unwrap_or_default();
        data.remove("b");
        let changes = data.take_changes();
        assert_eq!(changes.set.len(), 1);
        assert_eq!(changes.removed, ["b"]);
        assert!(!data.is_modified());
    }

    #[test]
    fn wrong_type_is_a_decode_error_for_that_key() {
        let mut data = SessionData::default();
        data.put("s", "text").unwrap_or_default();
        assert!(matches!(
            data.get::<u32>("s"),
            Err(DataError::Decode { .. })
        ));
        assert_eq!(
            data.get::<String>("s").ok().flatten().as_deref(),
            Some("text")
        );
    }
}
