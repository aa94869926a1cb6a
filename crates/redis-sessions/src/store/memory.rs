//! `MemoryStore`: sessions in this process's memory, for single-process servers and tests.
//!
//! It keeps the exact semantics of the Redis store (TTL, no resurrection, per-field saves, lock
//! ownership) so code tested against it behaves the same in production. Expired entries are
//! dropped when touched and swept every so often on writes; memory is not bounded otherwise.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{
    ChangeSet, LockToken, LockedLoad, Meta, Record, SaveOutcome, SessionStore, StoreError,
    StoreFuture,
};
use crate::id::StorageId;

#[derive(Debug)]
struct Entry {
    meta: Meta,
    fields: HashMap<String, Bytes>,
    expires: Instant,
}

#[derive(Debug)]
struct Lock {
    token: String,
    expires: Instant,
}

#[derive(Debug, Default)]
struct State {
    sessions: HashMap<String, Entry>,
    locks: HashMap<String, Lock>,
    writes_since_sweep: usize,
}

impl State {
    fn live(&mut self, id: &str, now: Instant) -> Option<&mut Entry> {
        if self.sessions.get(id).is_some_and(|e| e.expires <= now) {
            self.sessions.remove(id);
        }
        self.sessions.get_mut(id)
    }

    fn lock_holder(&mut self, id: &str, now: Instant) -> Option<&str> {
        if self.locks.get(id).is_some_and(|l| l.expires <= now) {
            self.locks.remove(id);
        }
        self.locks.get(id).map(|l| l.token.as_str())
    }

    fn sweep_now_and_then(&mut self, now: Instant) {
        self.writes_since_sweep += 1;
        if self.writes_since_sweep >= 1024 {
            self.writes_since_sweep = 0;
            self.sessions.retain(|_, e| e.expires > now);
            self.locks.retain(|_, l| l.expires > now);
        }
    }
}

/// An in-process [`SessionStore`].
///
/// ```
/// use redis_sessions::{Config, SessionManager, store::memory::MemoryStore};
///
/// let manager = SessionManager::with_store(Config::default(), MemoryStore::default());
/// # let _ = manager;
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    fn with_state<T>(&self, f: impl FnOnce(&mut State, Instant) -> T) -> Result<T, StoreError> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| StoreError::Backend("memory store poisoned by a panic".into()))?;
        Ok(f(&mut state, Instant::now()))
    }

    /// Number of live sessions (for tests and metrics).
    #[must_use]
    pub fn len(&self) -> usize {
        self.with_state(|s, now| s.sessions.values().filter(|e| e.expires > now).count())
            .unwrap_or(0)
    }

    /// Whether no live session is stored.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn record_of(entry: &Entry) -> Record {
    Record {
        meta: entry.meta,
        fields: entry
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

impl SessionStore for MemoryStore {
    fn load<'a>(&'a self, id: &'a StorageId) -> StoreFuture<'a, Option<Record>> {
        Box::pin(
            async move { self.with_state(|s, now| s.live(id.as_str(), now).map(|e| record_of(e))) },
        )
    }

    fn load_locked<'a>(
        &'a self,
        id: &'a StorageId,
        token: &'a LockToken,
        lock_ttl: Duration,
    ) -> StoreFuture<'a, LockedLoad> {
        Box::pin(async move {
            self.with_state(|s, now| {
                if s.lock_holder(id.as_str(), now).is_some() {
                    return LockedLoad::Busy;
                }
                s.locks.insert(
                    id.as_str().to_owned(),
                    Lock {
                        token: token.0.clone(),
                        expires: now + lock_ttl,
                    },
                );
                LockedLoad::Acquired(s.live(id.as_str(), now).map(|e| record_of(e)))
            })
        })
    }

    fn create<'a>(
        &'a self,
        id: &'a StorageId,
        record: &'a Record,
        ttl: Duration,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.with_state(|s, now| {
                s.sweep_now_and_then(now);
                s.sessions.insert(
                    id.as_str().to_owned(),
                    Entry {
                        meta: record.meta,
                        fields: record.fields.iter().cloned().collect(),
                        expires: now + ttl,
                    },
                );
            })
        })
    }

    fn save<'a>(
        &'a self,
        id: &'a StorageId,
        changes: &'a ChangeSet,
    ) -> StoreFuture<'a, SaveOutcome> {
        Box::pin(async move {
            self.with_state(|s, now| {
                s.sweep_now_and_then(now);
                if let Some(token) = &changes.unlock {
                    if s.lock_holder(id.as_str(), now) != Some(token.0.as_str()) {
                        return SaveOutcome::LockLost;
                    }
                    s.locks.remove(id.as_str());
                }
                let Some(entry) = s.live(id.as_str(), now) else {
                    return SaveOutcome::Gone;
                };
                entry.expires = now + changes.ttl;
                entry.meta = changes.meta;
                for key in &changes.removed {
                    entry.fields.remove(key);
                }
                for (key, value) in &changes.set {
                    entry.fields.insert(key.clone(), value.clone());
                }
                SaveOutcome::Saved
            })
        })
    }

    fn unlock<'a>(&'a self, id: &'a StorageId, token: &'a LockToken) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.with_state(|s, now| {
                if s.lock_holder(id.as_str(), now) == Some(token.0.as_str()) {
                    s.locks.remove(id.as_str());
                }
            })
        })
    }

    /// The memory store checks existence atomically on every save, so it needs no tombstone.
    fn delete<'a>(&'a self, id: &'a StorageId, _tombstone: Duration) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.with_state(|s, now| {
                s.locks.remove(id.as_str());
                let existed = s.live(id.as_str(), now).is_some();
                s.sessions.remove(id.as_str());
                existed
            })
        })
    }
}
