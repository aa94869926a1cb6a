//! Configuration: the `[session]` and `[redis]` sections of `config.ini`, or the same built in code.
//!
//! The file keeps the original system's keys (`cookie_name`, `cookie_lifespan`,
//! `redis_connection_pool`, named pools as `NAME[key] = value`) and adds ours. Every value is
//! validated ([`Config::validate`]) when the file is loaded, when a [`ConfigBuilder`] builds and
//! when the session manager starts, and each error names the section, the key and the offending
//! value, so a typo fails the start-up instead of a request at 3 a.m. Sections other than
//! `[session]` and `[redis]` belong to the application and are ignored.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

mod builder;
mod cookie_rules;
mod ini_file;
mod pool_rules;
mod validate;

pub use builder::ConfigBuilder;
pub use cookie_rules::{MAX_ATTRIBUTE_BYTES, MAX_COOKIE_BYTES, MAX_NAME_BYTES};

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

/// How sessions are laid out in Redis and which ids clients get (`format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SessionFormat {
    /// This library's layout (default): 43-character ids, a hash per session under a hashed
    /// storage id, one MessagePack value per key.
    #[default]
    Native,
    /// The PHP framework's layout, to share live sessions with it during a migration: ids of
    /// 256 lowercase hex characters, the key `<prefix>.session<id>` holding the whole session
    /// as one igbinary blob (see the README's "Migrating from the PHP framework").
    Resonance,
}

/// Settings of the `[session]` section.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Name of the session cookie (`cookie_name`, default `dmsession`): an RFC 6265 token,
    /// non-empty, of letters, digits and ``!#$%&'*+-.^_`|~``.
    ///
    /// Browsers drop a cookie whose name starts with `__Secure-` unless it is `Secure`, and one
    /// starting with `__Host-` unless it is `Secure`, has `Path=/` and no `Domain`; such a name is
    /// refused unless `cookie_secure` (and for `__Host-`, `cookie_path = /` and no
    /// `cookie_domain`) agree. The prefixes are matched ignoring letter case, as RFC 6265bis does.
    ///
    /// At most [`MAX_NAME_BYTES`] (4053) bytes: browsers keep a cookie only if its name and value
    /// (the 43-character id) are at most [`MAX_COOKIE_BYTES`] (4096) together.
    pub cookie_name: String,
    /// Cookie `Max-Age` and server-side idle timeout (`cookie_lifespan`, seconds, default 86400):
    /// from 1 second (`Max-Age` counts whole seconds) to 315360000 (10 years).
    pub cookie_lifespan: Duration,
    /// The `[redis]` pool sessions are stored in (`redis_connection_pool`, default `default`).
    pub redis_connection_pool: String,
    /// `SameSite` attribute (`cookie_samesite` = lax | strict | none, default lax).
    pub cookie_samesite: SameSite,
    /// `Secure` attribute (`cookie_secure`, default true; browsers accept it on http://localhost).
    pub cookie_secure: bool,
    /// `Path` attribute (`cookie_path`, default `/`): starts with `/` and holds only visible
    /// ASCII other than `;` and `,` (no spaces or control characters), at most
    /// [`MAX_ATTRIBUTE_BYTES`] (1024) bytes: browsers ignore a longer attribute.
    pub cookie_path: String,
    /// `Domain` attribute (`cookie_domain`, default none: host-only cookie): a host name such as
    /// `example.com` of letters, digits, `-` and dots between non-empty labels, with at most one
    /// leading dot (`.example.com`); no spaces, `;`, `/`, `:` or control characters; at most
    /// [`MAX_ATTRIBUTE_BYTES`] (1024) bytes.
    pub cookie_domain: Option<String>,
    /// Longest a session may live however active it is (`absolute_lifetime`, seconds; 0 = none,
    /// the default): from 0.001 to 315360000 (10 years). In code, `None` means none.
    pub absolute_lifetime: Option<Duration>,
    /// Largest encoded value one key may hold (`max_value_bytes`, default 65536): at least 1 and
    /// at most `max_session_bytes`.
    pub max_value_bytes: usize,
    /// Largest total of keys and encoded values one session may hold (`max_session_bytes`,
    /// default 1048576, at least 1).
    pub max_session_bytes: usize,
    /// How often a session that is only read refreshes its TTL and cookie (`touch_interval`,
    /// seconds, fractions allowed, at least 0.001). Default: a tenth of `cookie_lifespan`, at
    /// most 60 s. Must be shorter than `cookie_lifespan`, or sessions that are only read expire
    /// while in use.
    pub touch_interval: Duration,
    /// When the layer persists (`persist` = before_response | after_response).
    pub persist_mode: PersistMode,
    /// How long a locked request waits for the session lock before failing (`lock_wait`, seconds,
    /// default 5): from 0.001 to 86400 (1 day).
    pub lock_wait: Duration,
    /// How long a lock is held at most if its holder never releases it (`lock_ttl`, seconds,
    /// default 10).
    ///
    /// Rule: at least 1 second, at most 86400 (1 day), and longer than the `timeout` of the
    /// session pool (`redis_connection_pool`): a lock that can expire before one Redis command
    /// answers protects nothing. To be useful it should also outlast the longest locked request
    /// plus its save (the wait for the lock, `lock_wait`, does not count: the lock is taken when
    /// the wait ends); a request that outlives its lock fails to save with
    /// [`LockLost`](crate::SessionError::LockLost).
    pub lock_ttl: Duration,
    /// Key layout and id format (`format` = native | resonance, default native).
    pub format: SessionFormat,
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
            format: SessionFormat::Native,
        }
    }
}

/// A tenth of the lifespan, at most a minute: an active session then survives any pause shorter
/// than 90% of `cookie_lifespan`, for at most one extra round trip per interval.
#[must_use]
pub fn default_touch_interval(lifespan: Duration) -> Duration {
    (lifespan / 10).min(Duration::from_secs(60))
}

/// One named Redis pool of the `[redis]` section (`NAME[key] = value`). Its `Debug` hides the
/// passwords.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisPoolConfig {
    /// `host`, default `127.0.0.1` (not empty).
    pub host: String,
    /// `port`, default 6379 (1 to 65535).
    pub port: u16,
    /// `db_index`, default 0, not negative (ignored in cluster mode).
    pub db_index: i64,
    /// `password`, `null` (the default) for none.
    pub password: Option<String>,
    /// `username`: the Redis 6+ ACL user to log in as (`AUTH username password`), `null` (the
    /// default) for the `default` user. Needs `password`. Used for every node of a Cluster.
    pub username: Option<String>,
    /// `tls`: talk to Redis over TLS (`rediss://`), default false. The server's certificate is
    /// checked against `tls_ca`, or the system's trusted roots without it, and must name `host`
    /// (or each Cluster node's address).
    pub tls: bool,
    /// `tls_ca`: a PEM file of the CA certificate(s) to trust instead of the system roots. Only
    /// with `tls = true`; must be readable at start-up.
    pub tls_ca: Option<PathBuf>,
    /// `tls_cert`: a PEM client certificate (chain) for mutual TLS. Only with `tls = true` and
    /// together with `tls_key`; must be readable at start-up.
    pub tls_cert: Option<PathBuf>,
    /// `tls_key`: the PEM private key of `tls_cert`. Only with `tls = true` and together with
    /// `tls_cert`; must be readable at start-up.
    pub tls_key: Option<PathBuf>,
    /// `prefix` of every key this library writes, default `dm:`. Without `{` or `}` in the
    /// native layout (the session keys' Cluster hash tag is their storage id's), and with
    /// `format = resonance` (its extra keys take the whole session key as their tag).
    pub prefix: String,
    /// `timeout` in seconds (fractions allowed) for connecting and for each command, default 1:
    /// from 0.001 to 86400 (1 day), and shorter than `lock_ttl` for the session pool.
    pub timeout: Duration,
    /// `pool_size`: multiplexed connections, default 4, from 1 to 1024; each session always
    /// uses the same one (chosen from its id), so its commands run in the order they were sent.
    pub pool_size: usize,
    /// `pool_prefill`: connect all at start-up instead of on first use, default false.
    pub pool_prefill: bool,
    /// `min_replicas_ack`: how many replicas must have every write (save, create, destroy,
    /// rotation) before the request is answered, checked with `WAIT`; 0 (the default) answers as
    /// soon as the master has it. A write that fewer replicas acknowledge within half the pool's
    /// `timeout` fails (`503`); it may still be on the master. From 0 to 16; on a Cluster, the
    /// replicas of the master that holds the session. Above 0, writes and their `WAIT` take
    /// `pool_size` connections of their own per server (twice the connections in all), so that
    /// reads never wait behind a `WAIT`.
    pub min_replicas_ack: usize,
    /// `cluster_nodes`: comma-separated `host:port` seeds; when set, the pool talks to a Redis
    /// Cluster and `host`/`port` are not used.
    pub cluster_nodes: Vec<String>,
    /// `sentinel_nodes`: comma-separated `host:port` of Redis Sentinels; when set (always
    /// together with `sentinel_master`), the pool asks them for the current master
    /// (`SENTINEL get-master-addr-by-name`) and follows it after a failover; `host`/`port` are
    /// not used. Not with `cluster_nodes`.
    pub sentinel_nodes: Vec<String>,
    /// `sentinel_master`: the name the sentinels monitor the master under. Only with
    /// `sentinel_nodes`. `username`, `password`, `tls*` and `db_index` apply to the master.
    pub sentinel_master: Option<String>,
    /// `sentinel_password`: the password the sentinels themselves require (`requirepass` in
    /// the sentinels' configuration), `null` (the default) for none. Only with
    /// `sentinel_nodes`.
    pub sentinel_password: Option<String>,
}

impl std::fmt::Debug for RedisPoolConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Taken apart whole, so a new field cannot be left out (or let a secret in) unseen.
        let Self {
            host,
            port,
            db_index,
            password,
            username,
            tls,
            tls_ca,
            tls_cert,
            tls_key,
            prefix,
            timeout,
            pool_size,
            pool_prefill,
            min_replicas_ack,
            cluster_nodes,
            sentinel_nodes,
            sentinel_master,
            sentinel_password,
        } = self;
        let hidden = |secret: &Option<String>| secret.as_ref().map(|_| "<redacted>");
        f.debug_struct("RedisPoolConfig")
            .field("host", host)
            .field("port", port)
            .field("db_index", db_index)
            .field("password", &hidden(password))
            .field("username", username)
            .field("tls", tls)
            .field("tls_ca", tls_ca)
            .field("tls_cert", tls_cert)
            .field("tls_key", tls_key)
            .field("prefix", prefix)
            .field("timeout", timeout)
            .field("pool_size", pool_size)
            .field("pool_prefill", pool_prefill)
            .field("min_replicas_ack", min_replicas_ack)
            .field("cluster_nodes", cluster_nodes)
            .field("sentinel_nodes", sentinel_nodes)
            .field("sentinel_master", sentinel_master)
            .field("sentinel_password", &hidden(sentinel_password))
            .finish()
    }
}

impl Default for RedisPoolConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 6379,
            db_index: 0,
            password: None,
            username: None,
            tls: false,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            prefix: "dm:".to_owned(),
            timeout: Duration::from_secs(1),
            pool_size: 4,
            pool_prefill: false,
            min_replicas_ack: 0,
            cluster_nodes: Vec::new(),
            sentinel_nodes: Vec::new(),
            sentinel_master: None,
            sentinel_password: None,
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
