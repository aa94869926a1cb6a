//! Loading: building a session's state from what the store found, choosing among several
//! cookies, and the locked load with its in-process queue and bounded, jittered wait.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::SessionManager;
use crate::data::{Codec, SessionData};
use crate::error::SessionError;
use crate::id::{SessionId, StorageId};
use crate::observe::{Observed, Op};
use crate::session::{Ended, Session, SessionState};
use crate::store::{HeldLock, Loaded, LockToken, LockedLoad, Meta, millis, now_ms};

type Queue = Arc<tokio::sync::Mutex<()>>;

/// One in-process queue per session with a locked request in flight. An entry counts the
/// requests that hold or wait for it, and the last one to go removes it (also when it is
/// cancelled while waiting), so the map never holds more entries than there are locked requests
/// in flight, and no request ever scans it.
#[derive(Default)]
pub(super) struct LocalLocks {
    queues: std::sync::Mutex<HashMap<StorageId, (Queue, usize)>>,
}

/// This process's turn on one session (or the wait for it); dropping it lets the next local
/// waiter go.
pub(crate) struct LocalTurn {
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    id: StorageId,
    locks: Arc<LocalLocks>,
}

impl Drop for LocalTurn {
    fn drop(&mut self) {
        self.guard = None;
        let mut map = self.locks.map();
        if let Some((_, users)) = map.get_mut(&self.id) {
            *users -= 1;
            if *users == 0 {
                map.remove(&self.id);
            }
        }
    }
}

impl LocalLocks {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<StorageId, (Queue, usize)>> {
        self.queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits for this process's turn on `id`; sets `waited` when another request had it.
    async fn acquire(self: &Arc<Self>, id: &StorageId, waited: &mut bool) -> LocalTurn {
        let queue = {
            let mut map = self.map();
            let (queue, users) = map.entry(id.clone()).or_default();
            *users += 1;
            Arc::clone(queue)
        };
        // Counted before waiting, so a waiter cancelled by its timeout also uncounts itself.
        let mut turn = LocalTurn {
            guard: None,
            id: id.clone(),
            locks: Arc::clone(self),
        };
        turn.guard = Some(match Arc::clone(&queue).try_lock_owned() {
            Ok(guard) => guard,
            Err(_) => {
                *waited = true;
                queue.lock_owned().await
            }
        });
        turn
    }

    /// Sessions with a locked request of this process in flight (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.map().len()
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

    /// Builds the state of a session from what the store found under `id`.
    pub(crate) fn state_from(
        &self,
        id: Option<SessionId>,
        loaded: Loaded,
        lock: Option<(SessionId, HeldLock)>,
    ) -> SessionState {
        let now = now_ms();
        let config = &self.inner.config;
        let (max_value, max_session) = (config.max_value_bytes, config.max_session_bytes);
        // An id that another request just ended (a login or logout in another tab): this
        // request must neither write to it nor get a fresh session in its place.
        let ended = matches!((&id, &loaded), (Some(_), Loaded::Ended)).then_some(Ended::Gone);
        let (id, meta, data) = match (id, loaded) {
            (Some(id), Loaded::Found(record)) if !self.expired(&record.meta, now) => {
                let data = SessionData::from_stored(record.fields, max_value, max_session);
                (Some(id), record.meta, data)
            }
            // Otherwise (that ended id, no cookie, an unknown id or an expired one) a new
            // session. An unknown id is never adopted; a fresh one is drawn when the session is
            // first written.
            _ => {
                let fresh = Meta {
                    created_ms: now,
                    touched_ms: now,
                };
                (
                    None,
                    fresh,
                    SessionData::with_limits(max_value, max_session),
                )
            }
        };
        SessionState {
            touch_due: id.is_some()
                && now.saturating_sub(meta.touched_ms) >= millis(config.touch_interval),
            id,
            ended,
            loaded_ms: now,
            successor: None,
            meta,
            data: data.with_codec(Codec::of(config.format)),
            lock,
            rotate: false,
            destroyed: Vec::new(),
        }
    }

    /// Loads the session of the first candidate id with a live record (see
    /// [`crate::cookie::session_ids_from_headers`]), with the lock when `locked`.
    pub(super) async fn load(
        &self,
        ids: &[SessionId],
        locked: bool,
    ) -> Result<Session, SessionError> {
        if ids.is_empty() {
            return Ok(Session::new(self.state_from(None, Loaded::Missing, None)));
        }
        let op = if locked { Op::Lock } else { Op::Load };
        let op = self
            .inner
            .observer
            .start(op, ids.first().filter(|_| ids.len() == 1));
        let result = op.run(self.load_observed(ids, locked, &op)).await;
        op.finish(result)
    }

    async fn load_observed(
        &self,
        ids: &[SessionId],
        locked: bool,
        op: &Observed<'_>,
    ) -> Result<Session, SessionError> {
        // The rarer paths (several cookies, the lock) run boxed, so that the future of a plain
        // load, which every request that reads its session moves around, stays small.
        let (id, probed) = match ids {
            [id] => (id.clone(), None),
            _ => {
                let (id, loaded) = Box::pin(self.pick(ids, op)).await?;
                op.id(&id);
                (id, Some(loaded))
            }
        };
        if locked {
            return Box::pin(self.load_locked(id, op)).await;
        }
        let loaded = match probed {
            Some(loaded) => loaded,
            None => op.call(self.inner.store.load(&id.storage_id())).await?,
        };
        Ok(Session::new(self.state_from(Some(id), loaded, None)))
    }

    /// Of several cookies, the first with a live record; else the first whose id was ended
    /// (so the request is treated as racing a logout), else the first.
    async fn pick(
        &self,
        ids: &[SessionId],
        op: &Observed<'_>,
    ) -> Result<(SessionId, Loaded), SessionError> {
        let mut fallback: Option<(SessionId, Loaded)> = None;
        for id in ids {
            let loaded = op.call(self.inner.store.load(&id.storage_id())).await?;
            match loaded {
                Loaded::Found(_) => return Ok((id.clone(), loaded)),
                Loaded::Ended if !matches!(fallback, Some((_, Loaded::Ended))) => {
                    fallback = Some((id.clone(), loaded));
                }
                _ if fallback.is_none() => fallback = Some((id.clone(), loaded)),
                _ => {}
            }
        }
        Ok(fallback.unwrap_or((ids[0].clone(), Loaded::Missing)))
    }

    /// Loads `id` holding its lock, waiting for a busy lock with backoff up to `lock_wait`.
    async fn load_locked(&self, id: SessionId, op: &Observed<'_>) -> Result<Session, SessionError> {
        let storage = id.storage_id();
        let token = LockToken(SessionId::random_token());
        let started = Instant::now();
        let wait = self.inner.config.lock_wait;
        // Requests of this process for the same session queue here first, so that only one of
        // them polls Redis and the next one starts as soon as the previous one has persisted.
        let mut waited = false;
        let local =
            tokio::time::timeout(wait, self.inner.local_locks.acquire(&storage, &mut waited))
                .await
                .map_err(|_| SessionError::LockTimeout {
                    waited_ms: started.elapsed().as_millis(),
                });
        if waited {
            self.inner.observer.lock_waited();
        }
        let mut local = Some(local?);
        let mut pause = Duration::from_millis(2);
        loop {
            let attempt = HeldLock::new(
                Arc::clone(&self.inner.store),
                storage.clone(),
                token.clone(),
            );
            let ttl = self.inner.config.lock_ttl;
            match op
                .call(self.inner.store.load_locked(&storage, &token, ttl))
                .await?
            {
                LockedLoad::Acquired(loaded) => {
                    let lock = Some((
                        id.clone(),
                        attempt.with_local(local.take().map(|turn| Box::new(turn) as _)),
                    ));
                    return Ok(Session::new(self.state_from(Some(id), loaded, lock)));
                }
                LockedLoad::Busy => attempt.disarm(),
            }
            if !std::mem::replace(&mut waited, true) {
                self.inner.observer.lock_waited();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_local_queue_map_holds_only_sessions_in_flight() {
        let locks = Arc::new(LocalLocks::default());
        let ids: Vec<StorageId> = (0..3000)
            .map(|_| SessionId::generate().storage_id())
            .collect();
        for id in &ids {
            let turn = locks.acquire(id, &mut false).await;
            assert_eq!(locks.len(), 1);
            drop(turn);
        }
        assert_eq!(locks.len(), 0, "every finished session's entry is gone");
        let first = locks.acquire(&ids[0], &mut false).await;
        let waiter = {
            let locks = Arc::clone(&locks);
            let id = ids[0].clone();
            tokio::spawn(async move { locks.acquire(&id, &mut false).await })
        };
        tokio::task::yield_now().await;
        drop(first);
        let second = waiter.await.ok();
        assert_eq!(
            locks.len(),
            1,
            "the waiter's entry stays while it holds its turn"
        );
        drop(second);
        assert_eq!(locks.len(), 0);
        let held = locks.acquire(&ids[1], &mut false).await;
        let mut waited = false;
        let impatient = tokio::time::timeout(
            Duration::from_millis(10),
            locks.acquire(&ids[1], &mut waited),
        );
        assert!(impatient.await.is_err(), "the waiter gives up");
        assert!(waited, "it waited for its turn");
        drop(held);
        assert_eq!(locks.len(), 0, "a cancelled waiter leaves no entry behind");
    }
}
