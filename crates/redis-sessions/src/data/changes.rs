//! What changed in a session's data since it was loaded or last persisted, and the manager's
//! side of it: taking the changes for a persist, putting them back when the persist did not
//! happen, and marking everything persisted. Apart from `mod.rs`, whose methods are the ones
//! handlers use.

use bytes::Bytes;

use super::{SessionData, mark_changed};

/// What changed since the data was loaded or last persisted, as the store needs it (its
/// `Debug`, in `redact.rs`, shows keys and sizes only).
#[derive(Clone, Default, PartialEq, Eq)]
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
    /// The changes since load or the last call, and forgets them (they are being persisted).
    /// Only the manager may call this (and the two below): handlers that could would make the
    /// session forget writes it never sent.
    pub(crate) fn take_changes(&mut self) -> DataChanges {
        // In the keys' order, so new keys reach a PHP array in the order they were put.
        let mut set = Vec::with_capacity(self.changed);
        if self.changed > 0 {
            for (key, entry) in self.values.iter_mut() {
                if std::mem::take(&mut entry.changed) {
                    set.push((key.to_owned(), entry.bytes.clone()));
                }
            }
            self.changed = 0;
        }
        DataChanges {
            set,
            removed: self.removed.drain().collect(),
        }
    }

    /// Puts changes back after a persist that did not happen, so a retry sends them again.
    pub(crate) fn restore_changes(&mut self, changes: &DataChanges) {
        for (key, _) in &changes.set {
            if let Some(entry) = self.values.get_mut(key) {
                mark_changed(entry, &mut self.changed);
            }
        }
        for key in &changes.removed {
            if !self.values.contains_key(key) {
                self.removed.insert(key.clone());
            }
        }
    }

    /// Marks everything as persisted.
    pub(crate) fn mark_persisted(&mut self) {
        if self.changed > 0 {
            for (_, entry) in self.values.iter_mut() {
                entry.changed = false;
            }
            self.changed = 0;
        }
        self.removed.clear();
    }
}
