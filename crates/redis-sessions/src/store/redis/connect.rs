//! Building a pool's connections from its settings: address, login (password, ACL user) and TLS.
//!
//! Kept apart from the commands (`mod.rs`) because it is the one place that knows how a
//! [`RedisPoolConfig`] becomes `redis` clients, for a single server and for a Cluster alike.
//! TLS is the `redis` crate's own (rustls, `tokio-rustls-comp`): `rediss://` with the server's
//! certificate checked against `tls_ca` or the system roots, and a client certificate for mutual
//! TLS. No connection is made here.

use std::path::Path;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::{ClientTlsConfig, ConnectionAddr, IntoConnectionInfo, TlsCertificates, TlsMode};
use tokio::sync::OnceCell;

use super::batch;
use super::pool::Connections;
use crate::config::RedisPoolConfig;
use crate::store::StoreError;

/// The connections `config` describes: lazily connecting managers for one server, or cells
/// for Cluster connections made on first use.
pub(super) fn connections(config: &RedisPoolConfig) -> Result<Connections, StoreError> {
    let certificates = tls_certificates(config)?;
    if config.cluster_nodes.is_empty() {
        single(config, certificates)
    } else {
        cluster(config, certificates)
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn single(
    config: &RedisPoolConfig,
    certificates: Option<TlsCertificates>,
) -> Result<Connections, StoreError> {
    let addr = if certificates.is_some() {
        ConnectionAddr::TcpTls {
            host: config.host.clone(),
            port: config.port,
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(config.host.clone(), config.port)
    };
    let info = addr.into_connection_info().map_err(backend)?;
    let mut settings = info.redis_settings().clone().set_db(config.db_index);
    if let Some(password) = &config.password {
        settings = settings.set_password(password);
    }
    if let Some(username) = &config.username {
        settings = settings.set_username(username);
    }
    let info = info.set_redis_settings(settings);
    let client = match certificates {
        Some(certificates) => redis::Client::build_with_tls(info, certificates),
        None => redis::Client::open(info),
    }
    .map_err(backend)?;
    let manager_config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.timeout))
        .set_response_timeout(Some(config.timeout))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500));
    let conns = (0..config.pool_size)
        .map(|_| {
            ConnectionManager::new_lazy_with_config(client.clone(), manager_config.clone())
                .map(batch::Batcher::new)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)?;
    Ok(Connections::Single(conns))
}

fn cluster(
    config: &RedisPoolConfig,
    certificates: Option<TlsCertificates>,
) -> Result<Connections, StoreError> {
    let scheme = if certificates.is_some() {
        "rediss"
    } else {
        "redis"
    };
    let nodes = config
        .cluster_nodes
        .iter()
        .map(|n| format!("{scheme}://{n}"));
    let mut builder = ClusterClientBuilder::new(nodes)
        .connection_timeout(config.timeout)
        .response_timeout(config.timeout)
        .retries(1);
    if let Some(password) = &config.password {
        builder = builder.password(password);
    }
    if let Some(username) = &config.username {
        builder = builder.username(username);
    }
    if let Some(certificates) = certificates {
        builder = builder.tls(TlsMode::Secure).certs(certificates);
    }
    let client = builder.build().map_err(backend)?;
    Ok(Connections::Cluster {
        client: Box::new(client),
        conns: (0..config.pool_size).map(|_| OnceCell::new()).collect(),
    })
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
