//! Every rule a configuration must meet, in one place, so that `config.ini`, [`ConfigBuilder`]
//! and a hand-built [`Config`] given to the session manager are held to exactly the same checks.
//!
//! The single-value checks are also called by the INI reader while it parses, so that its errors
//! quote a value exactly as written; the rules that span keys only run in [`Config::validate`].
//! The cookie's own rules (what browsers accept) are in `cookie_rules.rs`.
//!
//! [`ConfigBuilder`]: super::ConfigBuilder

use std::time::Duration;

use super::cookie_rules::MAX_COOKIE_BYTES;
use super::{Config, ConfigError, RedisPoolConfig, SameSite, SessionConfig, SessionFormat};
use super::{cookie_rules, pool_rules};
use crate::id::RESONANCE_ID_LEN;

/// The range a duration key accepts, and how its error message states it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Seconds {
    min: Duration,
    max: Duration,
    max_text: &'static str,
}

/// `cookie_lifespan`: the cookie's `Max-Age` counts whole seconds.
pub(super) const LIFESPAN: Seconds = Seconds {
    min: Duration::from_secs(1),
    max: Duration::from_secs(315_360_000),
    max_text: "315360000 (10 years)",
};
/// `absolute_lifetime` and `touch_interval`.
pub(super) const LONG: Seconds = Seconds {
    min: Duration::from_millis(1),
    ..LIFESPAN
};
/// `lock_wait` and the pools' `timeout`.
pub(super) const SHORT: Seconds = Seconds {
    min: Duration::from_millis(1),
    max: Duration::from_secs(86_400),
    max_text: "86400 (1 day)",
};
/// `lock_ttl`.
pub(super) const LOCK_TTL: Seconds = Seconds {
    min: Duration::from_secs(1),
    ..SHORT
};

/// Most multiplexed connections one pool may open.
pub(super) const MAX_POOL_SIZE: usize = 1024;
/// Largest `min_replicas_ack`: more replicas than any real set-up has.
pub(super) const MAX_REPLICAS_ACK: usize = 16;

/// How `absolute_lifetime` says there is no limit.
pub(super) const NO_LIMIT: &str = " (or 0 for no limit; None in code)";

/// What a valid `max_value_bytes` or `max_session_bytes` looks like.
pub(super) const BYTES: &str = "must be a whole number of bytes, at least 1";

impl Seconds {
    /// What a valid value looks like.
    pub(super) fn reason(self) -> String {
        format!(
            "must be a number of seconds from {} to {}",
            secs(self.min),
            self.max_text
        )
    }

    /// Whether `secs`, as parsed from a file, is in range (checked before it becomes a
    /// [`Duration`], which would panic on a value too large for it).
    pub(super) fn contains_f64(self, secs: f64) -> bool {
        secs.is_finite() && secs >= self.min.as_secs_f64() && secs <= self.max.as_secs_f64()
    }

    fn contains(self, d: Duration) -> bool {
        (self.min..=self.max).contains(&d)
    }

    fn check(self, section: &str, key: &str, d: Duration) -> Result<(), ConfigError> {
        if self.contains(d) {
            Ok(())
        } else {
            Err(invalid(section, key, secs(d), self.reason()))
        }
    }
}

/// `d` in seconds, exactly, as it would be written in `config.ini` (`86400`, `0.25`).
pub(super) fn secs(d: Duration) -> String {
    let nanos = d.subsec_nanos();
    if nanos == 0 {
        return d.as_secs().to_string();
    }
    let fraction = format!("{nanos:09}");
    format!("{}.{}", d.as_secs(), fraction.trim_end_matches('0'))
}

pub(super) fn invalid(
    section: &str,
    key: &str,
    value: impl Into<String>,
    reason: impl Into<String>,
) -> ConfigError {
    ConfigError::Invalid {
        section: section.to_owned(),
        key: key.to_owned(),
        value: value.into(),
        reason: reason.into(),
    }
}

/// One `cluster_nodes` seed, `host:port`.
pub(super) fn cluster_node(node: &str) -> Result<(), &'static str> {
    match node.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err("must be a comma-separated list of host:port"),
    }
}

impl Config {
    /// Checks every rule of the configuration: each value on its own (the ranges documented on
    /// [`SessionConfig`] and [`RedisPoolConfig`]), then the rules that span keys (the named pool
    /// exists, cookie name prefixes and sizes, `touch_interval` < `cookie_lifespan`, `lock_ttl` outlives a
    /// Redis command, SameSite=None needs Secure, `max_value_bytes` <= `max_session_bytes`, the
    /// session pool's prefix holds no braces).
    ///
    /// Loading `config.ini`, [`ConfigBuilder::build`](super::ConfigBuilder::build) and the session
    /// manager all call it, so a configuration built in code gets the same checks as a file.
    ///
    /// # Errors
    ///
    /// The first rule broken: [`ConfigError::UnknownPool`], or [`ConfigError::Invalid`] naming
    /// the section, key and value at fault and what a valid value looks like.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_session_values(&self.session)?;
        for (name, pool) in &self.pools {
            check_pool(name, pool)?;
        }
        check_session_rules(&self.session, self.pool()?)
    }
}

impl RedisPoolConfig {
    /// Checks what the native session layout asks of this pool, named `name` in `[redis]`, on
    /// top of [`Config::validate`]'s rules for every pool: a prefix without braces (the session
    /// keys' Cluster hash tag is the storage id's). [`Config::validate`] checks the session pool;
    /// a tool that works on another pool in the native layout (`sessionctl --pool`) checks it
    /// with this.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming `[redis] name[prefix]`, its value and why.
    pub fn check_native_layout(&self, name: &str) -> Result<(), ConfigError> {
        pool_rules::native_prefix(self).map_err(|(sub, value, reason)| {
            invalid("redis", &format!("{name}[{sub}]"), value, reason)
        })
    }
}

fn check_session_values(s: &SessionConfig) -> Result<(), ConfigError> {
    let session = |key: &str, value: &str, reason: &str| invalid("session", key, value, reason);
    let name = &s.cookie_name;
    cookie_rules::cookie_name(name).map_err(|r| session("cookie_name", name, r))?;
    let path = &s.cookie_path;
    cookie_rules::cookie_path(path).map_err(|r| session("cookie_path", path, r))?;
    if let Some(domain) = &s.cookie_domain {
        cookie_rules::cookie_domain(domain).map_err(|r| session("cookie_domain", domain, r))?;
    }
    LIFESPAN.check("session", "cookie_lifespan", s.cookie_lifespan)?;
    if let Some(lifetime) = s.absolute_lifetime.filter(|d| !LONG.contains(*d)) {
        let reason = LONG.reason() + NO_LIMIT;
        return Err(session("absolute_lifetime", &secs(lifetime), &reason));
    }
    LONG.check("session", "touch_interval", s.touch_interval)?;
    SHORT.check("session", "lock_wait", s.lock_wait)?;
    LOCK_TTL.check("session", "lock_ttl", s.lock_ttl)?;
    for (key, bytes) in [
        ("max_value_bytes", s.max_value_bytes),
        ("max_session_bytes", s.max_session_bytes),
    ] {
        if bytes == 0 {
            return Err(session(key, "0", BYTES));
        }
    }
    Ok(())
}

fn check_pool(name: &str, p: &RedisPoolConfig) -> Result<(), ConfigError> {
    let key = |sub: &str| format!("{name}[{sub}]");
    let redis = |sub: &str, value: String, reason: &str| invalid("redis", &key(sub), value, reason);
    if p.host.is_empty() {
        return Err(redis("host", String::new(), "must not be empty"));
    }
    if p.port == 0 {
        return Err(redis(
            "port",
            "0".into(),
            "must be a whole number from 1 to 65535",
        ));
    }
    if p.db_index < 0 {
        let reason = format!("must be a whole number from 0 to {}", i64::MAX);
        return Err(redis("db_index", p.db_index.to_string(), &reason));
    }
    SHORT.check("redis", &key("timeout"), p.timeout)?;
    if !(1..=MAX_POOL_SIZE).contains(&p.pool_size) {
        let reason = format!("must be a whole number from 1 to {MAX_POOL_SIZE}");
        return Err(redis("pool_size", p.pool_size.to_string(), &reason));
    }
    for node in &p.cluster_nodes {
        cluster_node(node).map_err(|r| redis("cluster_nodes", p.cluster_nodes.join(","), r))?;
    }
    if p.min_replicas_ack > MAX_REPLICAS_ACK {
        let reason = format!("must be a whole number from 0 to {MAX_REPLICAS_ACK}");
        return Err(redis(
            "min_replicas_ack",
            p.min_replicas_ack.to_string(),
            &reason,
        ));
    }
    let rules = [pool_rules::login, pool_rules::tls, pool_rules::sentinel];
    for rule in rules {
        rule(p).map_err(|(sub, value, reason)| redis(sub, value, &reason))?;
    }
    Ok(())
}

fn check_session_rules(s: &SessionConfig, pool: &RedisPoolConfig) -> Result<(), ConfigError> {
    cookie_rules::prefix_rules(s)?;
    if s.cookie_samesite == SameSite::None && !s.cookie_secure {
        let reason = "browsers reject SameSite=None without cookie_secure = true";
        return Err(invalid("session", "cookie_samesite", "none", reason));
    }
    if s.touch_interval >= s.cookie_lifespan {
        let reason = format!(
            "must be shorter than cookie_lifespan ({} s), or sessions that are only read expire \
             while in use",
            secs(s.cookie_lifespan)
        );
        return Err(invalid(
            "session",
            "touch_interval",
            secs(s.touch_interval),
            reason,
        ));
    }
    if s.lock_ttl <= pool.timeout {
        let reason = format!(
            "must be longer than the timeout of the session pool ({}[timeout] = {} s): a lock \
             that can expire before one Redis command answers protects nothing",
            s.redis_connection_pool,
            secs(pool.timeout)
        );
        return Err(invalid("session", "lock_ttl", secs(s.lock_ttl), reason));
    }
    match s.format {
        SessionFormat::Resonance => resonance_rules(s, pool)?,
        SessionFormat::Native => pool.check_native_layout(&s.redis_connection_pool)?,
    }
    if s.max_value_bytes > s.max_session_bytes {
        let reason = format!(
            "must not exceed max_session_bytes ({})",
            s.max_session_bytes
        );
        let value = s.max_value_bytes.to_string();
        return Err(invalid("session", "max_value_bytes", value, reason));
    }
    Ok(())
}

/// `format = resonance`: the 256-character ids must fit in the cookie beside its name, and the
/// pool's prefix must not hold braces (the lock and tombstone keys use the whole session key as
/// their Cluster hash tag).
fn resonance_rules(s: &SessionConfig, pool: &RedisPoolConfig) -> Result<(), ConfigError> {
    if s.cookie_name.len() + RESONANCE_ID_LEN > MAX_COOKIE_BYTES {
        let reason = format!(
            "must be at most {} bytes with format = resonance: browsers keep a cookie only if its \
             name and value (the 256-character id) are at most {MAX_COOKIE_BYTES} bytes together",
            MAX_COOKIE_BYTES - RESONANCE_ID_LEN
        );
        return Err(invalid(
            "session",
            "cookie_name",
            s.cookie_name.clone(),
            reason,
        ));
    }
    if pool.prefix.contains(['{', '}']) {
        let reason = format!(
            "resonance cannot be used with a pool prefix holding braces ({}[prefix] = {:?}): the \
             session's lock and tombstone keys use the whole session key as their hash tag",
            s.redis_connection_pool, pool.prefix
        );
        return Err(invalid("session", "format", "resonance", reason));
    }
    Ok(())
}
