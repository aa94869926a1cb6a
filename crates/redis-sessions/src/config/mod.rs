//! Configuration: the `[session]` and `[redis]` sections of `config.ini`, or the same built in code.
//!
//! The file keeps the original system's keys (`cookie_name`, `cookie_lifespan`,
//! `redis_connection_pool`, named pools as `NAME[key] = value`) and adds ours. Every value is
//! validated when the configuration is loaded, and each error names the section, the key and the
//! offending value, so a typo fails the start-up instead of a request at 3 a.m. Sections other
//! than `[session]` and `[redis]` belong to the application and are ignored.

use std::collections::BTreeMap;
use std::time::Duration;

mod builder;
mod ini_file;

pub use builder::ConfigBuilder;

/// A configuration that could not be loaded or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file's path.
        path: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file is not valid INI.
    #[error("configuration is not valid INI: {0}")]
    Syntax(String),
    /// A key has a value it cannot take.
    #[error("[{section}] {key} = {value:?} is invalid: {reason}")]
    Invalid {
        /// The section, e.g. `session` or `redis`.
        section: String,
        /// The key, e.g. `cookie_lifespan` or `default[port]`.
        key: String,
        /// The value as written.
        value: String,
        /// What a valid value looks like.
        reason: String,
    },
    /// A key this library does not know (usually a typo).
    #[error("[{section}] {key} is not a known key (known keys: {known})")]
    UnknownKey {
        /// The section.
        section: String,
        /// The key as written.
        key: String,
        /// The keys that are accepted there.
        known: &'static str,
    },
    /// `redis_connection_pool` names a pool that `[redis]` does not define.
    #[error(
        "[session] redis_connection_pool = {pool:?} names no pool in [redis] (configured pools: {configured})"
    )]
    UnknownPool {
        /// The pool asked for.
        pool: String,
        /// The pools that exist, comma-separated.
        configured: String,
    },
}

/// The `SameSite` attribute of the session cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SameSite {
    /// `SameSite=Lax`: sent on top-level navigations from other sites (the default).
    Lax,
    /// `SameSite=Strict`: never sent from other sites.
    Strict,
    /// `SameSite=None`: always sent (browsers require `Secure` with it).
    None,
}

/// When the layer writes a modified session to the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PersistMode {
    /// Before the response leaves (default): the client's next request sees its change, and a
    /// failed write becomes an error response instead of a false success.
    BeforeResponse,
    /// After the response is handed back, as the original system did: lower latency, but a failed
    /// write is only logged and the client's next request may not see its change yet.
    AfterResponse,
}

/// Settings of the `[session]` section.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Name of the session cookie (`cookie_name`, default `dmsession`).
    pub cookie_name: String,
    /// Cookie `Max-Age` and server-side idle timeout (`cookie_lifespan`, seconds, default 86400).
    pub cookie_lifespan: Duration,
    /// The `[redis]` pool sessions are stored in (`redis_connection_pool`, default `default`).
    pub redis_connection_pool: String,
    /// `SameSite` attribute (`cookie_samesite` = lax | strict | none, default lax).
    pub cookie_samesite: SameSite,
    /// `Secure` attribute (`cookie_secure`, default true; browsers accept it on http://localhost).
    pub cookie_secure: bool,
    /// `Path` attribute (`cookie_path`, default `/`).
    pub cookie_path: String,
    /// `Domain` attribute (`cookie_domain`, default none: host-only cookie).
    pub cookie_domain: Option<String>,
    /// Longest a session may live however active it is (`absolute_lifetime`, seconds; 0 = none,
    /// the default).
    pub absolute_lifetime: Option<Duration>,
    /// Largest encoded value one key may hold (`max_value_bytes`, default 65536).
    pub max_value_bytes: usize,
    /// Largest total of keys and encoded values one session may hold (`max_session_bytes`,
    /// default 1048576).
    pub max_session_bytes: usize,
    /// How often a session that is only read refreshes its TTL and cookie (`touch_interval`,
    /// seconds, fractions allowed). Default: a tenth of `cookie_lifespan`, at most 60 s.
    pub touch_interval: Duration,
    /// When the layer persists (`persist` = before_response | after_response).
    pub persist_mode: PersistMode,
    /// How long a locked request waits for the session lock before failing (`lock_wait`, seconds,
    /// default 5).
    pub lock_wait: Duration,
    /// How long a lock is held at most if its holder never releases it (`lock_ttl`, seconds,
    /// default 10).
    pub lock_ttl: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        let lifespan = Duration::from_secs(86_400);
        Self {
            cookie_name: "dmsession".to_owned(),
            cookie_lifespan: lifespan,
            redis_connection_pool: "default".to_owned(),
            cookie_samesite: SameSite::Lax,
            cookie_secure: true,
            cookie_path: "/".to_owned(),
            cookie_domain: None,
            absolute_lifetime: None,
            max_value_bytes: 64 * 1024,
            max_session_bytes: 1024 * 1024,
            touch_interval: default_touch_interval(lifespan),
            persist_mode: PersistMode::BeforeResponse,
            lock_wait: Duration::from_secs(5),
            lock_ttl: Duration::from_secs(10),
        }
    }
}

/// A tenth of the lifespan, at most a minute: an active session then survives any pause shorter
/// than 90% of `cookie_lifespan`, for at most one extra round trip per interval.
#[must_use]
pub fn default_touch_interval(lifespan: Duration) -> Duration {
    (lifespan / 10).min(Duration::from_secs(60))
}

/// One named Redis pool of the `[redis]` section (`NAME[key] = value`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisPoolConfig {
    /// `host`, default `127.0.0.1`.
    pub host: String,
    /// `port`, default 6379.
    pub port: u16,
    /// `db_index`, default 0 (ignored in cluster mode).
    pub db_index: i64,
    /// `password`, `null` (the default) for none.
    pub password: Option<String>,
    /// `prefix` of every key this library writes, default `dm:`.
    pub prefix: String,
    /// `timeout` in seconds (fractions allowed) for connecting and for each command, default 1.
    pub timeout: Duration,
    /// `pool_size`: multiplexed connections used round robin, default 4.
    pub pool_size: usize,
    /// `pool_prefill`: connect all at start-up instead of on first use, default false.
    pub pool_prefill: bool,
    /// `cluster_nodes`: comma-separated `host:port` seeds; when set, the pool talks to a Redis
    /// Cluster and `host`/`port` are not used.
    pub cluster_nodes: Vec<String>,
}

impl Default for RedisPoolConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 6379,
            db_index: 0,
            password: None,
            prefix: "dm:".to_owned(),
            timeout: Duration::from_secs(1),
            pool_size: 4,
            pool_prefill: false,
            cluster_nodes: Vec::new(),
        }
    }
}

/// The whole configuration: the session settings and the named Redis pools.
///
/// [`Config::default()`] is what an empty `config.ini` gives: the default session settings and
/// one pool, `default`, with the default [`RedisPoolConfig`].
///
/// ```
/// use redis_sessions::Config;
///
/// let config = Config::from_ini_str(
///     "[session]\ncookie_name = sid\ncookie_lifespan = 3600\nredis_connection_pool = main\n\
///      [redis]\nmain[host] = 127.0.0.1\nmain[port] = 6380\n",
/// )?;
/// assert_eq!(config.session.cookie_name, "sid");
/// assert_eq!(config.pool()?.port, 6380);
///
/// let err = Config::from_ini_str("[session]\ncookie_lifespan = soon\n").unwrap_err();
/// assert!(err.to_string().contains("cookie_lifespan"));
/// # Ok::<(), redis_sessions::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    /// The `[session]` section.
    pub session: SessionConfig,
    /// The `[redis]` pools by name.
    pub pools: BTreeMap<String, RedisPoolConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            session: SessionConfig::default(),
            pools: BTreeMap::from([("default".to_owned(), RedisPoolConfig::default())]),
        }
    }
}

impl Config {
    /// Starts a configuration in code, without a file (see [`ConfigBuilder`]).
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// Checks the rules that span keys (the named pool exists, the lock can outlive its wait...).
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownPool`] or [`ConfigError::Invalid`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.pool()?;
        let s = &self.session;
        let invalid =
            |section: &str, key: &str, value: String, reason: &str| ConfigError::Invalid {
                section: section.into(),
                key: key.into(),
                value,
                reason: reason.into(),
            };
        for (key, value) in [
            ("cookie_lifespan", s.cookie_lifespan),
            ("touch_interval", s.touch_interval),
            ("lock_wait", s.lock_wait),
            ("lock_ttl", s.lock_ttl),
        ] {
            if value.is_zero() {
                return Err(invalid(
                    "session",
                    key,
                    "0".into(),
                    "must be greater than 0",
                ));
            }
        }
        for (name, pool) in &self.pools {
            if pool.pool_size == 0 {
                return Err(invalid(
                    "redis",
                    &format!("{name}[pool_size]"),
                    "0".into(),
                    "must be at least 1",
                ));
            }
            if pool.timeout.is_zero() {
                return Err(invalid(
                    "redis",
                    &format!("{name}[timeout]"),
                    "0".into(),
                    "must be greater than 0",
                ));
            }
        }
        if s.cookie_samesite == SameSite::None && !s.cookie_secure {
            return Err(ConfigError::Invalid {
                section: "session".into(),
                key: "cookie_samesite".into(),
                value: "none".into(),
                reason: "browsers reject SameSite=None without cookie_secure = true".into(),
            });
        }
        if s.max_value_bytes > s.max_session_bytes {
            return Err(ConfigError::Invalid {
                section: "session".into(),
                key: "max_value_bytes".into(),
                value: s.max_value_bytes.to_string(),
                reason: format!(
                    "must not exceed max_session_bytes ({})",
                    s.max_session_bytes
                ),
            });
        }
        Ok(())
    }

    /// The pool named by `redis_connection_pool`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownPool`] when `[redis]` does not define it.
    pub fn pool(&self) -> Result<&RedisPoolConfig, ConfigError> {
        let name = &self.session.redis_connection_pool;
        self.pools
            .get(name)
            .ok_or_else(|| ConfigError::UnknownPool {
                pool: name.clone(),
                configured: self.pools.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }
}
