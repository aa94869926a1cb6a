//! `ConfigBuilder`: the same configuration as `config.ini`, built in code.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{
    Config, ConfigError, PersistMode, RedisPoolConfig, SameSite, SessionFormat,
    default_touch_interval,
};

/// Builds a [`Config`] without a file; [`ConfigBuilder::build`] applies the same checks as
/// loading `config.ini` ([`Config::validate`]), with the ranges documented on
/// [`SessionConfig`](super::SessionConfig) and [`RedisPoolConfig`].
///
/// ```
/// use std::time::Duration;
/// use redis_sessions::{Config, RedisPoolConfig};
///
/// let config = Config::builder()
///     .cookie_name("sid")
///     .cookie_lifespan(Duration::from_secs(3600))
///     .pool("default", RedisPoolConfig { port: 6380, ..RedisPoolConfig::default() })
///     .build()?;
/// assert_eq!(config.session.touch_interval, Duration::from_secs(60));
/// # Ok::<(), redis_sessions::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ConfigBuilder {
    config: Config,
    touch_interval: Option<Duration>,
}

impl Default for ConfigBuilder {
    /// The defaults of [`Config::default()`], with the `default` pool only added by
    /// [`ConfigBuilder::build`] if no pool was given.
    fn default() -> Self {
        Self {
            config: Config {
                pools: BTreeMap::new(),
                ..Config::default()
            },
            touch_interval: None,
        }
    }
}

impl ConfigBuilder {
    /// `cookie_name`: an RFC 6265 token; `__Secure-` and `__Host-` names need the matching
    /// cookie attributes (see [`SessionConfig::cookie_name`](super::SessionConfig::cookie_name)).
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.config.session.cookie_name = name.into();
        self
    }

    /// `cookie_lifespan`: cookie `Max-Age` and server-side idle TTL.
    pub fn cookie_lifespan(mut self, lifespan: Duration) -> Self {
        self.config.session.cookie_lifespan = lifespan;
        self
    }

    /// `redis_connection_pool`: the pool sessions are stored in.
    pub fn redis_connection_pool(mut self, name: impl Into<String>) -> Self {
        self.config.session.redis_connection_pool = name.into();
        self
    }

    /// `cookie_samesite`.
    pub fn cookie_samesite(mut self, same_site: SameSite) -> Self {
        self.config.session.cookie_samesite = same_site;
        self
    }

    /// `cookie_secure`.
    pub fn cookie_secure(mut self, secure: bool) -> Self {
        self.config.session.cookie_secure = secure;
        self
    }

    /// `cookie_path`: starts with `/`, visible ASCII other than `;` and `,`.
    pub fn cookie_path(mut self, path: impl Into<String>) -> Self {
        self.config.session.cookie_path = path.into();
        self
    }

    /// `cookie_domain`: a host name such as `example.com` (by default there is none: the cookie
    /// is host-only).
    pub fn cookie_domain(mut self, domain: impl Into<String>) -> Self {
        self.config.session.cookie_domain = Some(domain.into());
        self
    }

    /// `absolute_lifetime` (zero means none, as in `config.ini`).
    pub fn absolute_lifetime(mut self, lifetime: Duration) -> Self {
        self.config.session.absolute_lifetime = Some(lifetime).filter(|d| !d.is_zero());
        self
    }

    /// `max_value_bytes` and `max_session_bytes`.
    pub fn size_limits(mut self, max_value_bytes: usize, max_session_bytes: usize) -> Self {
        self.config.session.max_value_bytes = max_value_bytes;
        self.config.session.max_session_bytes = max_session_bytes;
        self
    }

    /// `touch_interval` (default: derived from `cookie_lifespan`); must be shorter than
    /// `cookie_lifespan`.
    pub fn touch_interval(mut self, interval: Duration) -> Self {
        self.touch_interval = Some(interval);
        self
    }

    /// `format`: the key layout and id format (see [`SessionFormat`]).
    pub fn format(mut self, format: SessionFormat) -> Self {
        self.config.session.format = format;
        self
    }

    /// `persist`.
    pub fn persist_mode(mut self, mode: PersistMode) -> Self {
        self.config.session.persist_mode = mode;
        self
    }

    /// `lock_wait` and `lock_ttl` (see [`SessionConfig::lock_ttl`](super::SessionConfig::lock_ttl)
    /// for the rule `lock_ttl` follows).
    pub fn lock(mut self, wait: Duration, ttl: Duration) -> Self {
        self.config.session.lock_wait = wait;
        self.config.session.lock_ttl = ttl;
        self
    }

    /// A named Redis pool (`[redis] NAME[...]`).
    pub fn pool(mut self, name: impl Into<String>, pool: RedisPoolConfig) -> Self {
        self.config.pools.insert(name.into(), pool);
        self
    }

    /// The checked configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the setting at fault, as for a file.
    pub fn build(mut self) -> Result<Config, ConfigError> {
        let session = &mut self.config.session;
        session.touch_interval = self
            .touch_interval
            .unwrap_or_else(|| default_touch_interval(session.cookie_lifespan));
        if self.config.pools.is_empty() {
            self.config
                .pools
                .insert("default".to_owned(), RedisPoolConfig::default());
        }
        self.config.validate()?;
        Ok(self.config)
    }
}
