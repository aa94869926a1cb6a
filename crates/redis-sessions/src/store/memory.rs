//! `MemoryStore`: sessions in this process's memory, for single-process servers and tests.
//!
//! It keeps the exact semantics of the Redis store (TTL, no resurrection, tombstones that tell an
//! ended id from an unknown one, per-field saves, lock ownership) so code tested against it
//! behaves the same in production. Expired entries are
//! dropped when touched and swept every so often on writes; memory is not bounded otherwise.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{
    ChangeSet, EndOutcome, EndRequest, Loaded, LockToken, LockedLoad, Meta, Record, SaveOutcome,
    SessionStore, StoreError, StoreFuture,
};
use crate::id::{StorageId, UserIndexId};

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

/// What is left of an ended record: the successor's storage id (empty for a destroy) and, for
/// a rotation, the record as that end found it (`None` when it was not live), so that a retry
/// of the rotation gets the same answer (see [`SessionStore::end`]).
#[derive(Debug)]
struct Tombstone {
    successor: String,
    kept: Option<Record>,
    expires: Instant,
}

#[derive(Debug, Default)]
struct State {
    sessions: HashMap<String, Entry>,
    locks: HashMap<String, Lock>,
    tombstones: HashMap<String, Tombstone>,
    /// Users' indexes: user index name to (storage id to the entry's end).
    users: HashMap<String, HashMap<String, Instant>>,
    writes_since_sweep: usize,
}

impl State {
    fn tombstone(&mut self, id: &str, now: Instant) -> Option<&Tombstone> {
        if self.tombstones.get(id).is_some_and(|t| t.expires <= now) {
            self.tombstones.remove(id);
        }
        self.tombstones.get(id)
    }

    fn loaded(&mut self, id: &str, now: Instant) -> Loaded {
        if let Some(entry) = self.live(id, now) {
            return Loaded::Found(record_of(entry));
        }
        if self.tombstone(id, now).is_some() {
            Loaded::Ended
        } else {
            Loaded::Missing
        }
    }

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
            self.tombstones.retain(|_, t| t.expires > now);
            for entries in self.users.values_mut() {
                entries.retain(|_, until| *until > now);
            }
            self.users.retain(|_, entries| !entries.is_empty());
        }
    }
}

/// An in-process [`SessionStore`].
///
/// ```
/// use redis_sessions::{Config, SessionManager, store::memory::MemoryStore};
///
/// let manager = SessionManager::with_store(Config::default(), MemoryStore::default())?;
/// # let _ = manager;
/// # Ok::<(), redis_sessions::ConfigError>(())
/// ```
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl std::fmt::Debug for MemoryStore {
    /// How many sessions, locks and tombstones it holds; never their contents.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = f.debug_struct("MemoryStore");
        if let Ok(state) = self.state.try_lock() {
            out.field("sessions", &state.sessions.len())
                .field("locks", &state.locks.len())
                .field("tombstones", &state.tombstones.len());
        }
        out.finish_non_exhaustive()
    }
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
    fn load<'a>(&'a self, id: &'a StorageId) -> StoreFuture<'a, Loaded> {
        Box::pin(async move { self.with_state(|s, now| s.loaded(id.as_str(), now)) })
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
                LockedLoad::Acquired(s.loaded(id.as_str(), now))
            })
        })
    }

    fn create<'a>(
        &'a self,
        id: &'a StorageId,
        record: &'a Record,
        ttl: Duration,
    ) -> StoreFuture<'a, SaveOutcome> {
        Box::pin(async move {
            self.with_state(|s, now| {
                s.sweep_now_and_then(now);
                if s.tombstone(id.as_str(), now).is_some() {
                    return SaveOutcome::Gone;
                }
                s.sessions.insert(
                    id.as_str().to_owned(),
                    Entry {
                        meta: record.meta,
                        fields: record.fields.iter().cloned().collect(),
                        expires: now + ttl,
                    },
                );
                SaveOutcome::Saved
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

    fn end<'a>(
        &'a self,
        id: &'a StorageId,
        request: EndRequest<'a>,
    ) -> StoreFuture<'a, EndOutcome> {
        Box::pin(async move {
            self.with_state(|s, now| {
                let id = id.as_str();
                if !request.successor.is_empty()
                    && let Some(ended) = s.tombstone(id, now)
                    && ended.successor == request.successor
                {
                    // A retry of this rotation: the answer the first end gave.
                    return ended
                        .kept
                        .clone()
                        .map_or(EndOutcome::NotLive, EndOutcome::Ended);
                }
                let owned = request
                    .lock
                    .is_some_and(|token| s.lock_holder(id, now) == Some(token.0.as_str()));
                if request.require_lock && !owned {
                    return EndOutcome::LockLost;
                }
                let outcome = match s.live(id, now) {
                    Some(entry) => EndOutcome::Ended(record_of(entry)),
                    None => EndOutcome::NotLive,
                };
                s.sessions.remove(id);
                let kept = match &outcome {
                    EndOutcome::Ended(record) if !request.successor.is_empty() => {
                        Some(record.clone())
                    }
                    _ => None,
                };
                s.tombstones.insert(
                    id.to_owned(),
                    Tombstone {
                        successor: request.successor.to_owned(),
                        kept,
                        expires: now + request.tombstone,
                    },
                );
                if owned {
                    s.locks.remove(id);
                }
                outcome
            })
        })
    }

    fn take_fields<'a>(
        &'a self,
        id: &'a StorageId,
        fields: &'a [String],
    ) -> StoreFuture<'a, Vec<bool>> {
        Box::pin(async move {
            self.with_state(|s, now| match s.live(id.as_str(), now) {
                Some(entry) => fields
                    .iter()
                    .map(|field| entry.fields.remove(field).is_some())
                    .collect(),
                None => vec![false; fields.len()],
            })
        })
    }

    fn index_add<'a>(
        &'a self,
        user: &'a UserIndexId,
        id: &'a StorageId,
        keep: Duration,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.with_state(|s, now| {
                s.sweep_now_and_then(now);
                let until = now + keep;
                let entries = s.users.entry(user.as_str().to_owned()).or_default();
                entries.retain(|_, until| *until > now);
                let entry = entries.entry(id.as_str().to_owned()).or_insert(until);
                *entry = (*entry).max(until);
            })
        })
    }

    fn index_list<'a>(&'a self, user: &'a UserIndexId) -> StoreFuture<'a, Vec<StorageId>> {
        Box::pin(async move {
            self.with_state(|s, now| {
                let Some(entries) = s.users.get_mut(user.as_str()) else {
                    return Vec::new();
                };
                entries.retain(|_, until| *until > now);
                let mut ids: Vec<StorageId> = entries
                    .keys()
                    .filter_map(|id| StorageId::parse(id))
                    .collect();
                ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
                ids
            })
        })
    }

    fn index_remove<'a>(
        &'a self,
        user: &'a UserIndexId,
        ids: &'a [StorageId],
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.with_state(|s, _| {
                if let Some(entries) = s.users.get_mut(user.as_str()) {
                    for id in ids {
                        entries.remove(id.as_str());
                    }
                    if entries.is_empty() {
                        s.users.remove(user.as_str());
                    }
                }
            })
        })
    }
}
