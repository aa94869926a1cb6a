//! `SessionManager`: starts the session of a request on demand and persists it afterwards.
//!
//! One manager is built at start-up and cloned into every request (it is one `Arc`). `start`
//! finds the request's session slot (put there by the layer, or created on first use), and on
//! the first call only reads the cookie and loads the record: one `HGETALL`, or nothing at all
//! when there is no well-formed cookie (one per candidate when a request carries our cookie
//! several times). Later calls in the same request return the same [`Session`].
//!
//! Persisting is split in two: planning decides, in memory and under the session's lock,
//! what must be written and which cookie the response carries; executing the plan does the I/O.
//! The split lets the layer set the cookie before the response leaves even when it writes after
//! the response (the opt-in `after_response` mode), and keeps every decision testable without a
//! store. Loading lives in `load.rs`, persisting in `persist.rs` (its store calls in `write.rs`).

use std::sync::Arc;

mod load;
mod persist;
mod rotate;
mod ttl;
mod users;
mod write;

use http::{Extensions, Request};
use tokio::sync::OnceCell;

use crate::config::{Config, ConfigError, SessionConfig, SessionFormat};
use crate::cookie;
use crate::error::SessionError;
use crate::id::SessionId;
use crate::observe::Observer;
use crate::session::Session;
use crate::store::SessionStore;
use crate::store::redis::{RedisStore, ResonanceStore};
use load::LocalLocks;
pub use persist::Persisted;
pub use users::UserSession;

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
    local_locks: Arc<LocalLocks>,
    /// Metric keys and span fields of this manager's operations.
    observer: Observer,
    /// `Set-Cookie` for a new or rotated id, its attributes rendered once.
    set_cookie: crate::cookie::SetCookieTemplate,
}

impl std::fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionManager")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl SessionManager {
    /// A manager storing in the Redis pool named by `redis_connection_pool`. Connects lazily:
    /// nothing talks to Redis until a session is started (see [`SessionManager::connect`]).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the configuration is invalid or names an unknown pool.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        Ok(Self::with_redis(config)?.0)
    }

    /// The manager and its Redis store (the same pool).
    fn with_redis(config: Config) -> Result<(Self, RedisStore), ConfigError> {
        config.validate()?;
        let pool = config.pool()?;
        let store = RedisStore::new(pool).map_err(|e| ConfigError::Invalid {
            section: "redis".into(),
            key: config.session.redis_connection_pool.clone(),
            value: format!("{}:{}", pool.host, pool.port),
            reason: e.to_string(),
        })?;
        let manager = match config.session.format {
            SessionFormat::Native => Self::checked(config.session, store.clone()),
            SessionFormat::Resonance => {
                Self::checked(config.session, ResonanceStore::over(store.clone()))
            }
        };
        Ok((manager, store))
    }

    /// Like [`SessionManager::new`], for start-up: opens the pool's own connections now when
    /// `pool_prefill` is set (so a wrong address fails here), and asks Redis once whether it
    /// may evict keys, logging a warning when it may (see
    /// [`RedisStore::eviction_risk`]; an unreachable Redis is only a warning here unless
    /// `pool_prefill` is set).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for an invalid configuration, [`SessionError::Store`] when prefilling fails.
    pub async fn connect(config: Config) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let prefill = config.pool()?.pool_prefill;
        let (manager, store) = Self::with_redis(config)?;
        if prefill {
            store.prefill().await?;
        }
        match store.eviction_risk().await {
            Ok(None) => {}
            Ok(Some(risk)) => tracing::warn!("{risk}"),
            Err(error) => tracing::warn!(%error, "could not check Redis's maxmemory-policy"),
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
    /// The configuration is checked as for [`SessionManager::new`] (its pools are not used).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the configuration is invalid.
    pub fn with_store(config: Config, store: impl SessionStore) -> Result<Self, ConfigError> {
        // The store stands in for the pools; a configuration whose pool is not defined (it is
        // not used here) is checked against a default one.
        let mut config = config;
        let name = config.session.redis_connection_pool.clone();
        config.pools.entry(name).or_default();
        config.validate()?;
        Ok(Self::checked(config.session, store))
    }

    /// A manager over settings that were validated already.
    fn checked(config: SessionConfig, store: impl SessionStore) -> Self {
        Self {
            inner: Arc::new(ManagerInner {
                observer: Observer::new(&config.redis_connection_pool),
                set_cookie: crate::cookie::SetCookieTemplate::new(&config),
                config,
                store: Arc::new(store),
                local_locks: Arc::default(),
            }),
        }
    }

    /// The session settings.
    #[must_use]
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    /// The store sessions live in (for the library's own features, e.g. flash messages).
    pub(crate) fn store(&self) -> &dyn SessionStore {
        self.inner.store.as_ref()
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
        let ids = self.request_ids(request.headers());
        self.slot(request.extensions_mut()).start(&ids, false).await
    }

    /// Like [`SessionManager::start`], holding the session's exclusive lock until persist, so
    /// concurrent requests of the same session that also lock run one after another. Waits up to
    /// `lock_wait`.
    ///
    /// The lock belongs to an id, so a request without a session cookie locks nothing: two first
    /// locked writes sent at once by a browser that has no cookie yet create two sessions, and
    /// the browser keeps whichever cookie arrives last. Start the session (any write) on an
    /// earlier request, e.g. the page load, if that matters.
    ///
    /// # Errors
    ///
    /// [`SessionError::LockTimeout`], [`SessionError::Store`], or
    /// [`SessionError::AlreadyStartedUnlocked`].
    pub async fn start_locked<B>(&self, request: &mut Request<B>) -> Result<Session, SessionError> {
        let ids = self.request_ids(request.headers());
        self.slot(request.extensions_mut()).start(&ids, true).await
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
        let ids = self.request_ids(&parts.headers);
        self.slot(&mut parts.extensions).start(&ids, locked).await
    }

    /// The well-formed session ids of this manager's format in a request's cookies.
    pub(crate) fn request_ids(&self, headers: &http::HeaderMap) -> cookie::Candidates {
        let config = &self.inner.config;
        cookie::candidates(headers, &config.cookie_name, config.format)
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
        if session.is_settled() {
            return Ok(Persisted::default());
        }
        self.persist_pending(session).await
    }

    /// [`SessionManager::persist`] of a session known not to be settled (the layer checked).
    pub(crate) async fn persist_pending(
        &self,
        session: &Session,
    ) -> Result<Persisted, SessionError> {
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
}

impl Slot {
    pub(crate) async fn start(
        &self,
        ids: &[SessionId],
        locked: bool,
    ) -> Result<Session, SessionError> {
        let (session, was_locked) = self
            .0
            .session
            .get_or_try_init(|| async {
                let session = self.0.manager.load(ids, locked).await?;
                Ok::<_, SessionError>((session, locked))
            })
            .await?;
        if locked && !was_locked {
            return Err(SessionError::AlreadyStartedUnlocked);
        }
        Ok(session.clone())
    }
}
