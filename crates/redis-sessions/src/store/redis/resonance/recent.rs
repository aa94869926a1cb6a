//! The blob this process last read or wrote per session, so a save can try its compare-and-set
//! against it without reading the blob again first. The save script checks the blob anyway: a
//! stale entry costs one more attempt, never a lost write. Bounded: it starts afresh when full.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::id::StorageId;

/// Sessions remembered at most.
const CAPACITY: usize = 4096;

/// See the module docs.
#[derive(Debug, Default)]
pub(super) struct Recent(Mutex<HashMap<StorageId, Vec<u8>>>);

impl Recent {
    /// Remembers `blob` as the latest of `id`.
    pub(super) fn remember(&self, id: &StorageId, blob: &[u8]) {
        let Ok(mut recent) = self.0.lock() else {
            return;
        };
        if recent.len() >= CAPACITY && !recent.contains_key(id) {
            recent.clear();
        }
        recent.insert(id.clone(), blob.to_vec());
    }

    /// Forgets `id` (ended, or found gone).
    pub(super) fn forget(&self, id: &StorageId) {
        if let Ok(mut recent) = self.0.lock() {
            recent.remove(id);
        }
    }

    /// The latest blob of `id`, if remembered.
    pub(super) fn recall(&self, id: &StorageId) -> Option<Vec<u8>> {
        self.0.lock().ok()?.get(id).cloned()
    }
}
