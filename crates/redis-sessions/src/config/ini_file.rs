//! Reading `config.ini`: the `[session]` keys and the `[redis]` pools written `NAME[key] = value`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ini::{Ini, ParseOption};

use super::cookie_rules;
use super::validate::{
    self, LIFESPAN, LOCK_TTL, LONG, MAX_POOL_SIZE, MAX_REPLICAS_ACK, SHORT, Seconds,
};
use super::{
    Config, ConfigError, PersistMode, RedisPoolConfig, SameSite, SessionFormat,
    default_touch_interval,
};

const SESSION_KEYS: &str = "cookie_name, cookie_lifespan, redis_connection_pool, cookie_samesite, \
    cookie_secure, cookie_path, cookie_domain, absolute_lifetime, max_value_bytes, \
    max_session_bytes, touch_interval, persist, lock_wait, lock_ttl, format";
const POOL_KEYS: &str = "host, port, db_index, password, username, prefix, timeout, pool_size, \
    pool_prefill, min_replicas_ack, cluster_nodes, sentinel_nodes, sentinel_master, \
    sentinel_password, tls, tls_ca, tls_cert, tls_key";

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
        let mut config = Self {
            pools: BTreeMap::new(),
            ..Self::default()
        };
        let mut touch_interval = None;
        if let Some(section) = ini.section(Some("session")) {
            for (key, value) in section.iter() {
                let field = Field::new("session", key, value);
                let s = &mut config.session;
                match key {
                    "cookie_name" => s.cookie_name = field.checked(cookie_rules::cookie_name)?,
                    "cookie_lifespan" => s.cookie_lifespan = field.seconds(LIFESPAN)?,
                    "redis_connection_pool" => s.redis_connection_pool = field.non_empty()?,
                    "cookie_samesite" => s.cookie_samesite = field.same_site()?,
                    "cookie_secure" => s.cookie_secure = field.boolean()?,
                    "cookie_path" => s.cookie_path = field.checked(cookie_rules::cookie_path)?,
                    "cookie_domain" => s.cookie_domain = field.cookie_domain()?,
                    "absolute_lifetime" => s.absolute_lifetime = field.seconds_or_none(LONG)?,
                    "max_value_bytes" => s.max_value_bytes = field.bytes()?,
                    "max_session_bytes" => s.max_session_bytes = field.bytes()?,
                    "touch_interval" => touch_interval = Some(field.seconds(LONG)?),
                    "persist" => s.persist_mode = field.persist_mode()?,
                    "lock_wait" => s.lock_wait = field.seconds(SHORT)?,
                    "lock_ttl" => s.lock_ttl = field.seconds(LOCK_TTL)?,
                    "format" => s.format = field.format()?,
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
                    "username" => p.username = field.optional(),
                    "tls" => p.tls = field.boolean()?,
                    "tls_ca" => p.tls_ca = field.optional().map(PathBuf::from),
                    "tls_cert" => p.tls_cert = field.optional().map(PathBuf::from),
                    "tls_key" => p.tls_key = field.optional().map(PathBuf::from),
                    "prefix" => p.prefix = value.to_owned(),
                    "timeout" => p.timeout = field.seconds(SHORT)?,
                    "pool_size" => p.pool_size = field.number(1..=MAX_POOL_SIZE)?,
                    "pool_prefill" => p.pool_prefill = field.boolean()?,
                    "min_replicas_ack" => {
                        p.min_replicas_ack = field.number(0..=MAX_REPLICAS_ACK)?
                    }
                    "cluster_nodes" => p.cluster_nodes = field.node_list()?,
                    "sentinel_nodes" => p.sentinel_nodes = field.node_list()?,
                    "sentinel_master" => p.sentinel_master = Some(field.non_empty()?),
                    "sentinel_password" => p.sentinel_password = field.optional(),
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

    fn bytes(&self) -> Result<usize, ConfigError> {
        match self.value.parse() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(self.invalid(validate::BYTES)),
        }
    }

    /// Seconds, fractions allowed, within `range` (checked before the conversion to a
    /// [`Duration`], which panics on values too large for it).
    fn seconds(&self, range: Seconds) -> Result<Duration, ConfigError> {
        match self.value.parse::<f64>() {
            Ok(secs) if range.contains_f64(secs) => Ok(Duration::from_secs_f64(secs)),
            _ => Err(self.invalid(range.reason())),
        }
    }

    /// Like [`Field::seconds`], where 0 means none.
    fn seconds_or_none(&self, range: Seconds) -> Result<Option<Duration>, ConfigError> {
        match self.value.parse::<f64>() {
            Ok(0.0) => Ok(None),
            Ok(secs) if range.contains_f64(secs) => Ok(Some(Duration::from_secs_f64(secs))),
            _ => Err(self.invalid(range.reason() + validate::NO_LIMIT)),
        }
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

    fn format(&self) -> Result<SessionFormat, ConfigError> {
        match self.value {
            "native" => Ok(SessionFormat::Native),
            "resonance" => Ok(SessionFormat::Resonance),
            _ => Err(self.invalid("must be native or resonance")),
        }
    }

    /// The value, if `check` accepts it.
    fn checked(&self, check: fn(&str) -> Result<(), &'static str>) -> Result<String, ConfigError> {
        check(self.value).map_err(|reason| self.invalid(reason))?;
        Ok(self.value.to_owned())
    }

    fn cookie_domain(&self) -> Result<Option<String>, ConfigError> {
        let domain = self.optional();
        if let Some(domain) = &domain {
            cookie_rules::cookie_domain(domain).map_err(|reason| self.invalid(reason))?;
        }
        Ok(domain)
    }

    fn node_list(&self) -> Result<Vec<String>, ConfigError> {
        self.value
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|node| match validate::cluster_node(node) {
                Ok(()) => Ok(node.to_owned()),
                Err(reason) => Err(self.invalid(reason)),
            })
            .collect()
    }
}
