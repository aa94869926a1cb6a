//! Building a pool's connections from its settings: address, login (password, ACL user) and TLS.
//!
//! Kept apart from the commands (`mod.rs`) because it is the one place that knows how a
//! [`RedisPoolConfig`] becomes connections, for a single server, a Cluster and a master found
//! through Sentinel alike: the settings of the `redis-link` client (with a rustls configuration
//! built here once per pool) and `redis` clients for the sentinels (plain, with
//! `sentinel_password`) and for tools such as `sessionctl` (TLS through the `redis` crate's
//! rustls, `tokio-rustls-comp`). Both check the server's certificate against `tls_ca` or the
//! system roots and send a client certificate for mutual TLS. No connection is made here.

use std::path::Path;
use std::sync::Arc;

use redis::{
    ClientTlsConfig, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, RedisResult,
    TlsCertificates,
};
use redis_link::{ClientConfig, Login, Topology};

use crate::config::RedisPoolConfig;
use crate::store::StoreError;

/// The link's settings for `config`'s pool: `pool_size` connections per server, or with
/// `min_replicas_ack` that many per lane (see `pool.rs`); the Cluster seeds or the sentinels
/// when there are any, else the one server. Reads the TLS files now.
pub(super) fn client_config(config: &RedisPoolConfig) -> Result<ClientConfig, StoreError> {
    let clients = NodeClients::new(config)?;
    let tls = match &clients.certificates {
        Some(certificates) => Some(Arc::new(Login::tls_config(certificates).map_err(backend)?)),
        None => None,
    };
    let settings = &clients.settings;
    let login = Login {
        tls,
        username: settings.username().map(str::to_owned),
        password: settings.password().map(str::to_owned),
        db: settings.db(),
    };
    let topology = if !config.cluster_nodes.is_empty() {
        Topology::Cluster {
            seeds: addresses(&config.cluster_nodes, "6379")?,
        }
    } else if !config.sentinel_nodes.is_empty() {
        Topology::Sentinel {
            nodes: addresses(&config.sentinel_nodes, "26379")?,
            master: config.sentinel_master.clone().unwrap_or_default(),
            password: config.sentinel_password.clone(),
        }
    } else {
        Topology::Single {
            host: config.host.clone(),
            port: config.port,
        }
    };
    let lanes = if config.min_replicas_ack > 0 {
        config.pool_size.max(1)
    } else {
        0
    };
    Ok(ClientConfig {
        topology,
        login,
        timeout: config.timeout,
        per_server: config.pool_size,
        lanes,
    })
}

/// `host:port` entries (the port `default_port` when missing) as host and port.
fn addresses(nodes: &[String], default_port: &str) -> Result<Vec<(String, u16)>, StoreError> {
    nodes
        .iter()
        .map(|node| {
            let (host, port) = node.rsplit_once(':').unwrap_or((node, default_port));
            Ok((host.to_owned(), port.parse::<u16>().map_err(backend)?))
        })
        .collect()
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// How to open a client for a data server of one pool at a given address: the pool's login
/// (password, ACL user), database and TLS, with the certificate files read once, here. The
/// library's own connections are built from it, and so can a tool's that needs connections of
/// its own (e.g. `sessionctl`, which visits every Cluster master in turn).
#[derive(Clone)]
pub struct NodeClients {
    settings: RedisConnectionInfo,
    certificates: Option<TlsCertificates>,
}

impl std::fmt::Debug for NodeClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeClients")
            .field("db", &self.settings.db())
            .field("tls", &self.certificates.is_some())
            .finish_non_exhaustive()
    }
}

impl NodeClients {
    /// The login, database and TLS of `config`'s pool (database 0 on a Cluster, which has no
    /// other); reads the TLS files now.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] naming the key and the path of a TLS file that cannot be read.
    pub fn new(config: &RedisPoolConfig) -> Result<Self, StoreError> {
        let db = if config.cluster_nodes.is_empty() {
            config.db_index
        } else {
            0
        };
        let mut settings = RedisConnectionInfo::default().set_db(db);
        if let Some(password) = &config.password {
            settings = settings.set_password(password);
        }
        if let Some(username) = &config.username {
            settings = settings.set_username(username);
        }
        Ok(Self {
            settings,
            certificates: tls_certificates(config)?,
        })
    }

    /// The sentinels of `config`'s pool: plain connections (no TLS), logged in with
    /// `sentinel_password` when there is one.
    #[must_use]
    pub fn sentinels(config: &RedisPoolConfig) -> Self {
        let mut settings = RedisConnectionInfo::default();
        if let Some(password) = &config.sentinel_password {
            settings = settings.set_password(password);
        }
        Self {
            settings,
            certificates: None,
        }
    }

    /// A client for the server at `host:port` (`rediss://` when the pool uses TLS); does
    /// no I/O.
    ///
    /// # Errors
    ///
    /// The `redis` crate's, when it cannot form a client from these settings.
    pub fn client(&self, host: &str, port: u16) -> RedisResult<redis::Client> {
        let addr = if self.certificates.is_some() {
            ConnectionAddr::TcpTls {
                host: host.to_owned(),
                port,
                insecure: false,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(host.to_owned(), port)
        };
        let info = addr
            .into_connection_info()?
            .set_redis_settings(self.settings.clone());
        match &self.certificates {
            Some(certificates) => redis::Client::build_with_tls(info, certificates.clone()),
            None => redis::Client::open(info),
        }
    }
}

/// The CA and client certificate files of a TLS pool, read now; `None` without `tls`.
fn tls_certificates(config: &RedisPoolConfig) -> Result<Option<TlsCertificates>, StoreError> {
    if !config.tls {
        return Ok(None);
    }
    // rustls needs one crypto provider for the process; redis's rustls has none enabled, this
    // crate enables ring. Installing fails harmlessly when the application installed one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client_tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(ClientTlsConfig {
            client_cert: read_pem("tls_cert", cert)?,
            client_key: read_pem("tls_key", key)?,
        }),
        _ => None,
    };
    let root_cert = match &config.tls_ca {
        Some(ca) => Some(read_pem("tls_ca", ca)?),
        None => None,
    };
    Ok(Some(TlsCertificates {
        client_tls,
        root_cert,
    }))
}

fn read_pem(key: &str, path: &Path) -> Result<Vec<u8>, StoreError> {
    std::fs::read(path)
        .map_err(|e| StoreError::Backend(format!("cannot read {key} {}: {e}", path.display())))
}
