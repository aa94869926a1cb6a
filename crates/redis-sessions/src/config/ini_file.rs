//! Reading `config.ini`: the `[session]` keys and the `[redis]` pools written `NAME[key] = value`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use ini::{Ini, ParseOption};

use super::{Config, ConfigError, PersistMode, RedisPoolConfig, SameSite, default_touch_interval};

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
