//! `SessionManager`: starts the session of a request on demand and persists it afterwards.
//!
//! One manager is built at start-up and cloned into every request (it is two `Arc`s). `start`
//! finds the request's session slot (put there by the layer, or created on first use), and on
//! the first call only reads the cookie and loads the record: one `HGETALL`, or nothing at all
//! when there is no well-formed cookie. Later calls in the same request return the same
//! [`Session`].
//!
//! Persisting is split in two: planning decides, in memory and under the session's lock,
//! what must be written and which cookie the response carries; executing the plan does the I/O.
//! The split lets the layer set the cookie before the response leaves even when it writes after
//! the response (the opt-in `after_response` mode), and keeps every decision testable without a
//! store.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use http::{Extensions, HeaderValue, Request};
use tokio::sync::OnceCell;

use crate::config::{Config, ConfigError, SessionConfig};
use crate::cookie;
use crate::data::{DataChanges, SessionData};
use crate::error::SessionError;
use crate::id::{SessionId, StorageId};
use crate::session::{Session, SessionState};
use crate::store::redis::RedisStore;
use crate::store::{
    ChangeSet, HeldLock, LockToken, LockedLoad, Meta, Record, SaveOutcome, SessionStore, now_ms,
};

/// The session of one request, shared by the layer and every extractor of that request.
#[derive(Clone)]
pub(crate) struct Slot(Arc<SlotInner>);

struct SlotInner {
    manager: SessionManager,
    /// The session once started, and whether it holds the lock.
    session: OnceCell<(Session, bool)>,
}

impl Slot {
    pub(crate) fn new(manager: SessionManager) -> Self {
        Self(Arc::new(SlotInner {
            manager,
            session: OnceCell::new(),
        }))
    }

    /// The manager that made this slot.
    pub(crate) fn manager(&self) -> &SessionManager {
        &self.0.manager
    }

    /// The session, if a handler started it.
    pub(crate) fn started(&self) -> Option<&Session> {
        self.0.session.get().map(|(s, _)| s)
    }
}

/// Shared, cheaply cloned handle to the session system. Build it once at start-up.
///
/// ```no_run
/// # async fn handler(manager: redis_sessions::SessionManager, mut request: http::Request<()>)
/// # -> Result<(), redis_sessions::SessionError> {
/// let session = manager.start(&mut request).await?;     // loads lazily, once per request
/// session.data().put("my-data-key", "my-value")?;       // memory only
/// let persisted = manager.persist_session(&request).await?; // only now does Redis see it
/// let mut response = http::Response::new(());
/// persisted.apply_to(&mut response);                    // Set-Cookie when needed
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SessionManager {
    inner: Arc<ManagerInner>,
}

/// Behind one `Arc`, so handing the manager to a request is a single reference-count increment.
struct ManagerInner {
    config: SessionConfig,
    store: Arc<dyn SessionStore>,
    local_locks: LocalLocks,
}

/// One in-process queue per session with a locked request in flight.
#[derive(Default)]
struct LocalLocks {
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

impl std::fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionManager")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// What persisting produced for the response.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Persisted {
    /// The `Set-Cookie` header the response must carry, if any.
    pub set_cookie: Option<HeaderValue>,
}

impl Persisted {
    /// Adds the `Set-Cookie` header (if any) to `response`.
    pub fn apply_to<B>(&self, response: &mut http::Response<B>) {
        if let Some(value) = &self.set_cookie {
            response
                .headers_mut()
                .append(http::header::SET_COOKIE, value.clone());
        }
    }
}

/// The cookie a response must carry.
#[derive(Debug, Clone)]
enum CookieAction {
    Keep,
    Set(SessionId),
    Remove,
}

/// The writes that persisting a session takes, decided in memory.
#[derive(Debug)]
pub(crate) struct Plan {
    delete: Vec<SessionId>,
    write: Write,
    /// The lock this request holds, and whether the writes release it (folded into the save, or
    /// deleted with its record); it is let go only after the writes, so in-process waiters
    /// start after the store has seen the release.
    lock: Option<(SessionId, HeldLock)>,
    lock_goes_with_write: bool,
    cookie: CookieAction,
    /// Data changes taken out of the session, put back if the writes fail.
    taken: DataChanges,
}

#[derive(Debug)]
enum Write {
    None,
    Create(SessionId, Record),
    Save(SessionId, ChangeSet),
    Rotate {
        old: SessionId,
        new: SessionId,
        record: Record,
    },
}

impl SessionManager {
    /// A manager storing in the Redis pool named by `redis_connection_pool`. Connects lazily:
    /// nothing talks to Redis until a session is started (see [`SessionManager::connect`]).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the configuration is invalid or names an unknown pool.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        let pool = config.pool()?;
        let store = RedisStore::new(pool).map_err(|e| ConfigError::Invalid {
            section: "redis".into(),
            key: config.session.redis_connection_pool.clone(),
            value: format!("{}:{}", pool.host, pool.port),
            reason: e.to_string(),
        })?;
        Ok(Self::with_store(config, store))
    }

    /// Like [`SessionManager::new`], and opens the pool's connections now when `pool_prefill` is
    /// set, so a wrong address fails at start-up.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for an invalid configuration, [`SessionError::Store`] when prefilling fails.
    pub async fn connect(config: Config) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let prefill = config.pool()?.pool_prefill;
        let pool = config.pool()?.clone();
        let manager = Self::new(config)?;
        if prefill {
            RedisStore::new(&pool)?.prefill().await?;
        }
        Ok(manager)
    }

    /// Reads `config.ini`-style settings from `path` and builds a lazily connecting manager.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the file, section, key or value at fault.
    pub fn from_ini_file(path: impl AsRef<std::path::Path>) -> Result<Self, ConfigError> {
        Self::new(Config::from_ini_file(path)?)
    }

    /// A manager over any [`SessionStore`] (e.g. [`MemoryStore`](crate::store::memory::MemoryStore)).
    pub fn with_store(config: Config, store: impl SessionStore) -> Self {
        Self {
            inner: Arc::new(ManagerInner {
                config: config.session,
                store: Arc::new(store),
                local_locks: LocalLocks::default(),
            }),
        }
    }

    /// The session settings.
    #[must_use]
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    /// The tower layer that gives each request a session slot and persists after the handler.
    #[must_use]
    pub fn layer(&self) -> crate::layer::SessionLayer {
        crate::layer::SessionLayer::new(self.clone())
    }

    /// Starts the request's session: loads it on the first call, returns the same session on
    /// later calls within the request. Without a well-formed cookie this does no I/O at all.
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] when the store cannot be read.
    pub async fn start<B>(&self, request: &mut Request<B>) -> Result<Session, SessionError> {
        let id = cookie::session_id_from_headers(request.headers(), &self.inner.config.cookie_name);
        self.slot(request.extensions_mut()).start(id, false).await
    }

    /// Like [`SessionManager::start`], holding the session's exclusive lock until persist, so
    /// concurrent requests of the same session that also lock run one after another. Waits up to
    /// `lock_wait`.
    ///
    /// # Errors
    ///
    /// [`SessionError::LockTimeout`], [`SessionError::Store`], or
    /// [`SessionError::AlreadyStartedUnlocked`].
    pub async fn start_locked<B>(&self, request: &mut Request<B>) -> Result<Session, SessionError> {
        let id = cookie::session_id_from_headers(request.headers(), &self.inner.config.cookie_name);
        self.slot(request.extensions_mut()).start(id, true).await
    }

    /// [`SessionManager::start`] or [`SessionManager::start_locked`] for request parts (axum
    /// extractors use this).
    ///
    /// # Errors
    ///
    /// As for [`SessionManager::start`] and [`SessionManager::start_locked`].
    pub async fn start_parts(
        &self,
        parts: &mut http::request::Parts,
        locked: bool,
    ) -> Result<Session, SessionError> {
        let id = cookie::session_id_from_headers(&parts.headers, &self.inner.config.cookie_name);
        self.slot(&mut parts.extensions).start(id, locked).await
    }

    fn slot(&self, extensions: &mut Extensions) -> Slot {
        extensions
            .get_or_insert_with(|| Slot::new(self.clone()))
            .clone()
    }

    /// Writes what changed in the request's session, in one round trip in the common cases, and
    /// says which cookie the response needs. A request that never started a session, or did not
    /// change it, writes nothing.
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] when the write failed (the changes stay pending, so a retry sends
    /// them), [`SessionError::Gone`] when the session ended meanwhile (nothing written, nothing
    /// resurrected), [`SessionError::LockLost`].
    pub async fn persist_session<B>(
        &self,
        request: &Request<B>,
    ) -> Result<Persisted, SessionError> {
        match request.extensions().get::<Slot>().and_then(Slot::started) {
            Some(session) => self.persist(session).await,
            None => Ok(Persisted::default()),
        }
    }

    /// Persists `session` (see [`SessionManager::persist_session`]).
    ///
    /// # Errors
    ///
    /// As for [`SessionManager::persist_session`].
    pub async fn persist(&self, session: &Session) -> Result<Persisted, SessionError> {
        let plan = self.plan(session);
        let persisted = self.persisted(&plan);
        self.execute(session, plan).await?;
        Ok(persisted)
    }

    /// Asks for a new id for the request's session on persist (see [`Session::rotate`]).
    pub fn rotate<B>(&self, request: &Request<B>) {
        if let Some(session) = request.extensions().get::<Slot>().and_then(Slot::started) {
            session.rotate();
        }
    }

    /// Ends the request's session on persist (see [`Session::destroy`]).
    pub fn destroy<B>(&self, request: &Request<B>) {
        if let Some(session) = request.extensions().get::<Slot>().and_then(Slot::started) {
            session.destroy();
        }
    }

    /// The TTL a record gets now: the idle lifespan, cut short by the absolute lifetime.
    fn ttl(&self, created_ms: u64, now: u64) -> Duration {
        let idle = self.inner.config.cookie_lifespan;
        match self.inner.config.absolute_lifetime {
            Some(max) => {
                let end =
                    created_ms.saturating_add(u64::try_from(max.as_millis()).unwrap_or(u64::MAX));
                idle.min(Duration::from_millis(end.saturating_sub(now).max(1)))
            }
            None => idle,
        }
    }

    /// Slack for clock differences between app servers and for time spent between deciding and
    /// writing: half the lifespan, at most 5 s.
    fn clock_margin(&self) -> Duration {
        (self.inner.config.cookie_lifespan / 2).min(Duration::from_secs(5))
    }

    /// Whether a record last touched as `meta` says is certainly still within its TTL, so that only
    /// a destroy (which leaves a tombstone) can have removed it.
    fn within_lifetime(&self, meta: &Meta, now: u64) -> bool {
        let expires = meta
            .touched_ms
            .saturating_add(millis(self.ttl(meta.created_ms, meta.touched_ms)));
        now.saturating_add(millis(self.clock_margin())) < expires
    }

    /// How long a destroyed record must stay recognisably dead: longer than any load of it can
    /// still believe it within its lifetime.
    fn tombstone(&self) -> Duration {
        self.inner.config.cookie_lifespan + self.clock_margin()
    }

    fn expired(&self, meta: &Meta, now: u64) -> bool {
        self.inner.config.absolute_lifetime.is_some_and(|max| {
            meta.created_ms
                .saturating_add(u64::try_from(max.as_millis()).unwrap_or(u64::MAX))
                <= now
        })
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
                let interval =
                    u64::try_from(self.inner.config.touch_interval.as_millis()).unwrap_or(u64::MAX);
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

    /// Decides what persisting `session` writes, taking its pending changes out of it.
    pub(crate) fn plan(&self, session: &Session) -> Plan {
        let mut state = session.state();
        let now = now_ms();
        let delete = std::mem::take(&mut state.destroyed);
        let lock = state.lock.take();
        let locked_id = lock.as_ref().map(|(id, _)| id.clone());
        let mut lock_goes_with_write = false;
        let taken = state.data.take_changes();
        let mut cookie = if delete.is_empty() {
            CookieAction::Keep
        } else {
            CookieAction::Remove
        };
        let write = match state.id.clone() {
            None if state.data.is_empty() => Write::None,
            None => {
                let id = SessionId::generate();
                state.meta = Meta {
                    created_ms: now,
                    touched_ms: now,
                };
                cookie = CookieAction::Set(id.clone());
                state.id = Some(id.clone());
                Write::Create(id, record_of(&state.data, state.meta))
            }
            Some(old) if state.rotate => {
                let new = SessionId::generate();
                state.meta.touched_ms = now;
                cookie = CookieAction::Set(new.clone());
                state.id = Some(new.clone());
                // The old record and its lock go together.
                lock_goes_with_write = locked_id.as_ref() == Some(&old);
                Write::Rotate {
                    old,
                    new,
                    record: record_of(&state.data, state.meta),
                }
            }
            Some(id) if !taken.is_empty() || state.touch_due => {
                let loaded_meta = state.meta;
                if state.touch_due {
                    cookie = CookieAction::Set(id.clone());
                }
                state.meta.touched_ms = now;
                let unlock = lock
                    .as_ref()
                    .filter(|(locked, _)| *locked == id)
                    .and_then(|(_, held)| held.token().cloned());
                lock_goes_with_write = unlock.is_some();
                Write::Save(
                    id,
                    ChangeSet {
                        set: taken.set.clone(),
                        removed: taken.removed.clone(),
                        meta: state.meta,
                        ttl: self.ttl(state.meta.created_ms, now),
                        unlock,
                        within_lifetime: self.within_lifetime(&loaded_meta, now),
                    },
                )
            }
            Some(_) => Write::None,
        };
        state.rotate = false;
        state.touch_due = false;
        // A lock on a destroyed id goes with its record.
        lock_goes_with_write |= locked_id.is_some_and(|locked| delete.contains(&locked));
        Plan {
            delete,
            write,
            lock,
            lock_goes_with_write,
            cookie,
            taken,
        }
    }

    /// The response side of a plan.
    pub(crate) fn persisted(&self, plan: &Plan) -> Persisted {
        Persisted {
            set_cookie: match &plan.cookie {
                CookieAction::Keep => None,
                CookieAction::Set(id) => Some(cookie::set_cookie(&self.inner.config, id)),
                CookieAction::Remove => Some(cookie::removal_cookie(&self.inner.config)),
            },
        }
    }

    /// Carries out a plan; on a store failure, puts the data changes back into the session.
    pub(crate) async fn execute(&self, session: &Session, plan: Plan) -> Result<(), SessionError> {
        let Plan {
            delete,
            write,
            lock,
            lock_goes_with_write,
            taken,
            ..
        } = plan;
        // What the session looked like before the plan moved it on, should the write fail.
        let rollback = match &write {
            Write::Create(..) => Some((None, false)),
            Write::Rotate { old, .. } => Some((Some(old.clone()), true)),
            Write::None | Write::Save(..) => None,
        };
        let mut result = self.write(delete, write).await;
        if let (Ok(()), Some((id, held))) = (&result, lock) {
            if let Some(token) = held.token().filter(|_| !lock_goes_with_write) {
                result = self
                    .inner
                    .store
                    .unlock(&id.storage_id(), token)
                    .await
                    .map_err(SessionError::from);
            }
            if result.is_ok() {
                held.disarm();
            }
            // Otherwise dropping `held` retries the release in the background.
        }
        if matches!(result, Err(SessionError::Store(_))) {
            let mut state = session.state();
            state.data.restore_changes(&taken);
            if let Some((id, rotate)) = rollback {
                state.id = id;
                state.rotate = rotate;
            }
        }
        if matches!(result, Err(SessionError::Gone)) {
            let mut state = session.state();
            state.id = None;
        }
        result
    }

    async fn write(&self, delete: Vec<SessionId>, write: Write) -> Result<(), SessionError> {
        for id in &delete {
            self.inner
                .store
                .delete(&id.storage_id(), self.tombstone())
                .await?;
        }
        match write {
            Write::None => {}
            Write::Create(id, record) => {
                let ttl = self.ttl(record.meta.created_ms, now_ms());
                self.inner
                    .store
                    .create(&id.storage_id(), &record, ttl)
                    .await?;
            }
            Write::Save(id, changes) => {
                match self.inner.store.save(&id.storage_id(), &changes).await? {
                    SaveOutcome::Saved => {}
                    SaveOutcome::Gone => return Err(SessionError::Gone),
                    SaveOutcome::LockLost => return Err(SessionError::LockLost),
                }
            }
            Write::Rotate { old, new, record } => {
                let ttl = self.ttl(record.meta.created_ms, now_ms());
                let new_storage = new.storage_id();
                self.inner.store.create(&new_storage, &record, ttl).await?;
                // Delete the old record only after the new one exists, so a failure loses
                // nothing; if the old one was already gone, the session ended meanwhile and the
                // copy must not outlive it.
                if !self
                    .inner
                    .store
                    .delete(&old.storage_id(), self.tombstone())
                    .await?
                {
                    self.inner
                        .store
                        .delete(&new_storage, self.tombstone())
                        .await?;
                    return Err(SessionError::Gone);
                }
            }
        }
        Ok(())
    }

    /// Loads a session, with the lock when `locked`, waiting for a busy lock with backoff.
    async fn load(&self, id: Option<SessionId>, locked: bool) -> Result<Session, SessionError> {
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

fn record_of(data: &SessionData, meta: Meta) -> Record {
    Record {
        meta,
        fields: data
            .encoded()
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect(),
    }
}

impl Slot {
    pub(crate) async fn start(
        &self,
        id: Option<SessionId>,
        locked: bool,
    ) -> Result<Session, SessionError> {
        let (session, was_locked) = self
            .0
            .session
            .get_or_try_init(|| async {
                let session = self.0.manager.load(id, locked).await?;
                Ok::<_, SessionError>((session, locked))
            })
            .await?;
        if locked && !was_locked {
            return Err(SessionError::AlreadyStartedUnlocked);
        }
        Ok(session.clone())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
