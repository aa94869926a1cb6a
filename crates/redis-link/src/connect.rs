//! Building a client's connections from its settings: where the servers are (one server,
//! Cluster seeds, or the sentinels of a master) and how to log in (TLS, ACL user, password,
//! database). No connection is made here.

use std::sync::Arc;
use std::time::Duration;

use redis::{ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo};

use crate::LinkError;
use crate::batch;
use crate::cluster::ClusterPool;
use crate::link::{Endpoint, Login};
use crate::pool::Connections;
use crate::sentinel::SentinelPool;

/// Where a client's servers are.
#[derive(Clone, Debug)]
pub enum Topology {
    /// One server.
    Single {
        /// Its host name or address.
        host: String,
        /// Its port.
        port: u16,
    },
    /// A Redis Cluster, known through some of its nodes (the slot map is read from them on
    /// first use and followed after slot moves and failovers).
    Cluster {
        /// Nodes to ask for the slot map: host and port.
        seeds: Vec<(String, u16)>,
    },
    /// A master found through Redis Sentinel, followed after a failover.
    Sentinel {
        /// The sentinels: host and port (plain TCP).
        nodes: Vec<(String, u16)>,
        /// The master's name, as the sentinels know it.
        master: String,
        /// The sentinels' password, if they require one.
        password: Option<String>,
    },
}

/// Everything a [`Client`](crate::Client) needs; session-agnostic.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Where the servers are.
    pub topology: Topology,
    /// How to log in to a data server (not to the sentinels).
    pub login: Login,
    /// Bounds every call (and opening a connection).
    pub timeout: Duration,
    /// Connections per server (per Cluster master, per Sentinel client slot) when `lanes` is 0.
    pub per_server: usize,
    /// 0: one set of `per_server` connections for both lanes. Above 0: `lanes` connections per
    /// server for each of [`Lane::Read`](crate::Lane::Read) and
    /// [`Lane::Write`](crate::Lane::Write), so that reads never wait behind a `WAIT`.
    pub lanes: usize,
}

/// The connections `config` describes, `per_server` of them to each server: lazily connecting
/// managers for one server, per-node managers of a Cluster once its slot map is read on first
/// use, or slots that find the master through the sentinels on first use.
pub(crate) fn connections(
    config: ClientConfig,
    per_server: usize,
) -> Result<Connections, LinkError> {
    let target = MasterTarget {
        login: config.login,
        timeout: config.timeout,
    };
    Ok(match config.topology {
        Topology::Single { host, port } => Connections::Single(
            (0..per_server)
                .map(|_| target.batcher(&host, port))
                .collect(),
        ),
        Topology::Cluster { seeds } => Connections::Cluster(Box::new(ClusterPool::new(
            seeds,
            target,
            per_server,
            config.timeout,
        ))),
        Topology::Sentinel {
            nodes,
            master,
            password,
        } => {
            let sentinels = nodes
                .into_iter()
                .map(|(host, port)| sentinel_client(host, port, password.as_deref()))
                .collect::<Result<Vec<_>, _>>()?;
            Connections::Sentinel(Box::new(SentinelPool::new(
                sentinels,
                master,
                target,
                per_server,
                config.timeout,
            )))
        }
    })
}

/// A `redis` client for a sentinel: plain TCP, logged in with `password` when there is one.
fn sentinel_client(
    host: String,
    port: u16,
    password: Option<&str>,
) -> Result<redis::Client, LinkError> {
    let mut settings = RedisConnectionInfo::default();
    if let Some(password) = password {
        settings = settings.set_password(password);
    }
    let info = ConnectionAddr::Tcp(host, port)
        .into_connection_info()
        .map_err(|e| LinkError::Backend(e.to_string()))?
        .set_redis_settings(settings);
    redis::Client::open(info).map_err(|e| LinkError::Backend(e.to_string()))
}

/// How the client reaches a data server at a given address: the login, database and TLS for
/// its own connections (`link.rs`). A single server has one address; under Sentinel the address
/// changes with each failover, on a Cluster each node has its own.
pub(crate) struct MasterTarget {
    login: Login,
    /// Bounds opening a connection.
    timeout: Duration,
}

impl MasterTarget {
    /// A lazily connecting connection to `host:port` behind a batching queue; does no I/O.
    pub(crate) fn batcher(&self, host: &str, port: u16) -> Arc<batch::Batcher> {
        batch::Batcher::new(Endpoint {
            host: host.to_owned(),
            port,
            login: self.login.clone(),
            timeout: self.timeout,
        })
    }
}
