//! Configuration: the `[session]` and `[redis]` sections of `config.ini`, or the same built in code.
//!
//! The file keeps the original system's keys (`cookie_name`, `cookie_lifespan`,
//! `redis_connection_pool`, named pools as `NAME[key] = value`) and adds ours. Every value is
//! validated when the configuration is loaded, and each error names the section, the key and the
//! offending value, so a typo fails the start-up instead of a request at 3 a.m. Sections other
//! than `[session]` and `[redis]` belong to the application and are ignored.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use ini::{Ini, ParseOption};

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
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// The `[session]` section.
    pub session: SessionConfig,
    /// The `[redis]` pools by name.
    pub pools: BTreeMap<String, RedisPoolConfig>,
}

const SESSION_KEYS: &str = "cookie_name, cookie_lifespan, redis_connection_pool, cookie_samesite, \
    cookie_secure, cookie_path, cookie_domain, absolute_lifetime, max_value_bytes, \
    max_session_bytes, touch_interval, persist, lock_wait, lock_ttl";
const POOL_KEYS: &str =
    "host, port, db_index, password, prefix, timeout, pool_size, pool_prefill, cluster_nodes";

impl Config {
    /// Reads and validates an INI file.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the file, or the section, key and value that are wrong.
    pub fn from_ini_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_ini_str(&text)
    }

    /// Parses and validates INI text.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the section, key and value that are wrong.
    pub fn from_ini_str(text: &str) -> Result<Self, ConfigError> {
        let options = ParseOption {
            enabled_escape: false,
            ..ParseOption::default()
        };
        let ini = Ini::load_from_str_opt(text, options)
            .map_err(|e| ConfigError::Syntax(e.to_string()))?;
        let mut config = Self::default();
        let mut touch_interval = None;
        if let Some(section) = ini.section(Some("session")) {
            for (key, value) in section.iter() {
                let field = Field::new("session", key, value);
                let s = &mut config.session;
                match key {
                    "cookie_name" => s.cookie_name = field.cookie_name()?,
                    "cookie_lifespan" => s.cookie_lifespan = field.seconds(false)?,
                    "redis_connection_pool" => s.redis_connection_pool = field.non_empty()?,
                    "cookie_samesite" => s.cookie_samesite = field.same_site()?,
                    "cookie_secure" => s.cookie_secure = field.boolean()?,
                    "cookie_path" => s.cookie_path = field.cookie_path()?,
                    "cookie_domain" => s.cookie_domain = field.optional(),
                    "absolute_lifetime" => {
                        s.absolute_lifetime = Some(field.seconds(true)?).filter(|d| !d.is_zero());
                    }
                    "max_value_bytes" => s.max_value_bytes = field.positive()?,
                    "max_session_bytes" => s.max_session_bytes = field.positive()?,
                    "touch_interval" => touch_interval = Some(field.seconds(false)?),
                    "persist" => s.persist_mode = field.persist_mode()?,
                    "lock_wait" => s.lock_wait = field.seconds(false)?,
                    "lock_ttl" => s.lock_ttl = field.seconds(false)?,
                    _ => return Err(field.unknown(SESSION_KEYS)),
                }
            }
        }
        config.session.touch_interval = touch_interval
            .unwrap_or_else(|| default_touch_interval(config.session.cookie_lifespan));
        if let Some(section) = ini.section(Some("redis")) {
            for (key, value) in section.iter() {
                let field = Field::new("redis", key, value);
                let Some((pool, sub)) = key
                    .strip_suffix(']')
                    .and_then(|k| k.split_once('['))
                    .filter(|(pool, sub)| !pool.is_empty() && !sub.is_empty())
                else {
                    return Err(
                        field.invalid("keys in [redis] are written NAME[key], e.g. default[host]")
                    );
                };
                let p = config.pools.entry(pool.to_owned()).or_default();
                match sub {
                    "host" => p.host = field.non_empty()?,
                    "port" => p.port = field.number(1..=65535)?,
                    "db_index" => p.db_index = field.number(0..=i64::MAX)?,
                    "password" => p.password = field.optional(),
                    "prefix" => p.prefix = value.to_owned(),
                    "timeout" => p.timeout = field.seconds(false)?,
                    "pool_size" => p.pool_size = field.number(1..=1024)?,
                    "pool_prefill" => p.pool_prefill = field.boolean()?,
                    "cluster_nodes" => p.cluster_nodes = field.node_list()?,
                    _ => return Err(field.unknown(POOL_KEYS)),
                }
            }
        }
        if config.pools.is_empty() {
            config
                .pools
                .insert("default".to_owned(), RedisPoolConfig::default());
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks the rules that span keys (the named pool exists, the lock can outlive its wait...).
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownPool`] or [`ConfigError::Invalid`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.pool()?;
        let s = &self.session;
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

/// One `key = value` being converted, with what an error message needs.
struct Field<'a> {
    section: &'static str,
    key: &'a str,
    value: &'a str,
}

impl<'a> Field<'a> {
    fn new(section: &'static str, key: &'a str, value: &'a str) -> Self {
        Self {
            section,
            key,
            value: value.trim(),
        }
    }

    fn invalid(&self, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            section: self.section.to_owned(),
            key: self.key.to_owned(),
            value: self.value.to_owned(),
            reason: reason.into(),
        }
    }

    fn unknown(&self, known: &'static str) -> ConfigError {
        ConfigError::UnknownKey {
            section: self.section.to_owned(),
            key: self.key.to_owned(),
            known,
        }
    }

    fn non_empty(&self) -> Result<String, ConfigError> {
        if self.value.is_empty() {
            return Err(self.invalid("must not be empty"));
        }
        Ok(self.value.to_owned())
    }

    fn optional(&self) -> Option<String> {
        Some(self.value.to_owned()).filter(|v| !v.is_empty() && v != "null")
    }

    fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
        &self,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ConfigError> {
        let reason = || {
            format!(
                "must be a whole number from {} to {}",
                range.start(),
                range.end()
            )
        };
        let n: T = self.value.parse().map_err(|_| self.invalid(reason()))?;
        if range.contains(&n) {
            Ok(n)
        } else {
            Err(self.invalid(reason()))
        }
    }

    fn positive(&self) -> Result<usize, ConfigError> {
        self.number(1..=usize::MAX)
    }

    fn seconds(&self, zero_ok: bool) -> Result<Duration, ConfigError> {
        let reason = if zero_ok {
            "must be a number of seconds, 0 or more"
        } else {
            "must be a number of seconds greater than 0"
        };
        let secs: f64 = self.value.parse().map_err(|_| self.invalid(reason))?;
        if !secs.is_finite() || secs < 0.0 || (!zero_ok && secs == 0.0) || secs > 1e9 {
            return Err(self.invalid(reason));
        }
        let d = Duration::from_secs_f64(secs);
        if !zero_ok && d < Duration::from_millis(1) {
            return Err(self.invalid("must be at least 0.001 seconds"));
        }
        Ok(d)
    }

    fn boolean(&self) -> Result<bool, ConfigError> {
        match self.value.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(true),
            "false" | "no" | "off" | "0" => Ok(false),
            _ => Err(self.invalid("must be true or false")),
        }
    }

    fn same_site(&self) -> Result<SameSite, ConfigError> {
        match self.value.to_ascii_lowercase().as_str() {
            "lax" => Ok(SameSite::Lax),
            "strict" => Ok(SameSite::Strict),
            "none" => Ok(SameSite::None),
            _ => Err(self.invalid("must be lax, strict or none")),
        }
    }

    fn persist_mode(&self) -> Result<PersistMode, ConfigError> {
        match self.value {
            "before_response" => Ok(PersistMode::BeforeResponse),
            "after_response" => Ok(PersistMode::AfterResponse),
            _ => Err(self.invalid("must be before_response or after_response")),
        }
    }

    fn cookie_name(&self) -> Result<String, ConfigError> {
        // RFC 6265 token characters.
        let ok = !self.value.is_empty()
            && self
                .value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if ok {
            Ok(self.value.to_owned())
        } else {
            Err(self
                .invalid("must be a non-empty cookie name of letters, digits and !#$%&'*+-.^_`|~"))
        }
    }

    fn cookie_path(&self) -> Result<String, ConfigError> {
        if self.value.starts_with('/') && !self.value.contains([';', ' ', ',']) {
            Ok(self.value.to_owned())
        } else {
            Err(self.invalid("must start with / and contain no ; , or spaces"))
        }
    }

    fn node_list(&self) -> Result<Vec<String>, ConfigError> {
        self.value
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|node| match node.rsplit_once(':') {
                Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                    Ok(node.to_owned())
                }
                _ => Err(self.invalid("must be a comma-separated list of host:port")),
            })
            .collect()
    }
}
