//! Loading: building a session's state from its record, and the locked load with its
//! in-process queue and bounded, jittered wait.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::SessionManager;
use crate::data::SessionData;
use crate::error::SessionError;
use crate::id::{SessionId, StorageId};
use crate::session::{Session, SessionState};
use crate::store::{HeldLock, LockToken, LockedLoad, Meta, Record, millis, now_ms};

/// One in-process queue per session with a locked request in flight.
#[derive(Default)]
pub(super) struct LocalLocks {
    queues: std::sync::Mutex<HashMap<StorageId, Weak<tokio::sync::Mutex<()>>>>,
}

impl LocalLocks {
    /// Waits for this process's turn on `id`.
    async fn acquire(&self, id: &StorageId) -> tokio::sync::OwnedMutexGuard<()> {
        let queue = {
            let mut queues = self
                .queues
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(queue) = queues.get(id).and_then(Weak::upgrade) {
                queue
            } else {
                if queues.len() >= 1024 {
                    queues.retain(|_, queue| queue.strong_count() > 0);
                }
                let queue = Arc::new(tokio::sync::Mutex::new(()));
                queues.insert(id.clone(), Arc::downgrade(&queue));
                queue
            }
        };
        queue.lock_owned().await
    }
}

impl SessionManager {
    /// When a session created at `created_ms` must end however active it is, if ever.
    pub(super) fn lifetime_end(&self, created_ms: u64) -> Option<u64> {
        let max = self.inner.config.absolute_lifetime?;
        Some(created_ms.saturating_add(millis(max)))
    }

    fn expired(&self, meta: &Meta, now: u64) -> bool {
        self.lifetime_end(meta.created_ms)
            .is_some_and(|end| end <= now)
    }

    /// Builds the state of a session from what the store returned.
    pub(crate) fn state_from(
        &self,
        id: Option<SessionId>,
        record: Option<Record>,
        lock: Option<(SessionId, HeldLock)>,
    ) -> SessionState {
        let now = now_ms();
        let fresh_meta = Meta {
            created_ms: now,
            touched_ms: now,
        };
        let (max_value, max_session) = (
            self.inner.config.max_value_bytes,
            self.inner.config.max_session_bytes,
        );
        let record = record.filter(|r| !self.expired(&r.meta, now));
        match (id, record) {
            (Some(id), Some(record)) => {
                let interval = millis(self.inner.config.touch_interval);
                SessionState {
                    id: Some(id),
                    touch_due: now.saturating_sub(record.meta.touched_ms) >= interval,
                    meta: record.meta,
                    data: SessionData::from_stored(record.fields, max_value, max_session),
                    lock,
                    rotate: false,
                    destroyed: Vec::new(),
                }
            }
            // No cookie, an unknown id, or an expired one: a new session. An unknown id is never
            // adopted; a fresh one is drawn when the session is first written.
            _ => SessionState {
                id: None,
                touch_due: false,
                meta: fresh_meta,
                data: SessionData::with_limits(max_value, max_session),
                lock,
                rotate: false,
                destroyed: Vec::new(),
            },
        }
    }

    /// Loads a session, with the lock when `locked`, waiting for a busy lock with backoff.
    pub(super) async fn load(
        &self,
        id: Option<SessionId>,
        locked: bool,
    ) -> Result<Session, SessionError> {
        let Some(id) = id else {
            return Ok(Session::new(self.state_from(None, None, None)));
        };
        let storage = id.storage_id();
        if !locked {
            let record = self.inner.store.load(&storage).await?;
            return Ok(Session::new(self.state_from(Some(id), record, None)));
        }
        let token = LockToken(SessionId::generate().expose());
        let started = Instant::now();
        let wait = self.inner.config.lock_wait;
        // Requests of this process for the same session queue here first, so that only one of
        // them polls Redis and the next one starts as soon as the previous one has persisted.
        let local = tokio::time::timeout(wait, self.inner.local_locks.acquire(&storage))
            .await
            .map_err(|_| SessionError::LockTimeout {
                waited_ms: started.elapsed().as_millis(),
            })?;
        let mut local = Some(local);
        let mut pause = Duration::from_millis(2);
        loop {
            let attempt = HeldLock::new(
                Arc::clone(&self.inner.store),
                storage.clone(),
                token.clone(),
            );
            match self
                .inner
                .store
                .load_locked(&storage, &token, self.inner.config.lock_ttl)
                .await?
            {
                LockedLoad::Acquired(record) => {
                    let lock = Some((id.clone(), attempt.with_local(local.take())));
                    return Ok(Session::new(self.state_from(Some(id), record, lock)));
                }
                LockedLoad::Busy => attempt.disarm(),
            }
            if started.elapsed() + pause > wait {
                return Err(SessionError::LockTimeout {
                    waited_ms: started.elapsed().as_millis(),
                });
            }
            // Jittered exponential backoff, capped, so waiters neither spin nor stampede.
            let jitter = Duration::from_micros(rand::random_range(0..=pause.as_micros() as u64));
            tokio::time::sleep(pause / 2 + jitter / 2).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}
