//! Reaching the Redis of one `[redis]` pool for the admin commands: the one server, the master
//! the sentinels name, or every master of a Cluster (from `CLUSTER SLOTS`), each with the pool's
//! login, database and TLS settings.
//!
//! The library's own pool (`RedisStore`) routes one session's commands, but a scan has to visit
//! every master in turn, so the tool opens its own plain connections here, from the library's
//! [`NodeClients`] (the same login, database and TLS); `destroy` still goes through the
//! library's store.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value};
use redis_sessions::RedisPoolConfig;
use redis_sessions::store::redis::{NodeClients, hash_slot};

use crate::error::{CtlError, CtlResult};

/// The shortest wait for one reply: a `SCAN` or a batch of `UNLINK`s may take longer than a
/// web request's `timeout`.
const MIN_REPLY_WAIT: Duration = Duration::from_secs(5);

/// One master and the connection to it.
pub(crate) struct Node {
    /// `host:port`, as shown to the user.
    pub(crate) addr: String,
    /// The connection.
    pub(crate) conn: MultiplexedConnection,
}

/// The masters holding a pool's keys, and on a Cluster which one serves each slot.
pub(crate) struct Nodes {
    /// Every master (one unless it is a Cluster).
    pub(crate) masters: Vec<Node>,
    /// Cluster slot ranges: first slot, last slot, index in `masters`. Empty when not a Cluster.
    slots: Vec<(u16, u16, usize)>,
}

impl Nodes {
    /// Connects to every master of `pool`.
    pub(crate) async fn connect(pool: &RedisPoolConfig) -> CtlResult<Self> {
        let dialer = Dialer::new(pool)?;
        if !pool.cluster_nodes.is_empty() {
            return cluster(&dialer, &pool.cluster_nodes).await;
        }
        let (host, port) = if pool.sentinel_nodes.is_empty() {
            (pool.host.clone(), pool.port)
        } else {
            sentinel_master(pool).await?
        };
        let conn = dialer.connect(&host, port).await?;
        let addr = format!("{host}:{port}");
        Ok(Self {
            masters: vec![Node { addr, conn }],
            slots: Vec::new(),
        })
    }

    /// Whether these are the masters of a Cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        !self.slots.is_empty()
    }

    /// The master that holds the keys of a session (its storage id is the hash tag).
    pub(crate) fn owner_of(&mut self, storage_id: &str) -> CtlResult<&mut Node> {
        let index = if self.slots.is_empty() {
            0
        } else {
            let slot = hash_slot(storage_id);
            self.slots
                .iter()
                .find(|(first, last, _)| (*first..=*last).contains(&slot))
                .map(|(_, _, i)| *i)
                .ok_or_else(|| {
                    CtlError::Redis(format!("no Cluster master serves hash slot {slot}"))
                })?
        };
        self.masters
            .get_mut(index)
            .ok_or_else(|| CtlError::Redis("the Cluster's slot map names no master".into()))
    }
}

/// How to open a connection to a data server of the pool: the library's [`NodeClients`] (login,
/// database, TLS) with the tool's own reply wait.
struct Dialer {
    clients: NodeClients,
    config: AsyncConnectionConfig,
}

impl Dialer {
    fn new(pool: &RedisPoolConfig) -> CtlResult<Self> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(pool.timeout))
            .set_response_timeout(Some(pool.timeout.max(MIN_REPLY_WAIT)));
        Ok(Self {
            clients: NodeClients::new(pool).map_err(|e| CtlError::Usage(e.to_string()))?,
            config,
        })
    }

    async fn connect(&self, host: &str, port: u16) -> CtlResult<MultiplexedConnection> {
        let what = format!("connecting to {host}:{port}");
        let client = (self.clients.client(host, port)).map_err(|e| CtlError::redis(&what, &e))?;
        client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await
            .map_err(|e| CtlError::redis(&what, &e))
    }
}

/// `host:port` split; the port defaults to `default_port`.
fn host_port(node: &str, default_port: u16) -> CtlResult<(String, u16)> {
    match node.rsplit_once(':') {
        Some((host, port)) => port
            .parse()
            .map(|port| (host.to_owned(), port))
            .map_err(|_| CtlError::Usage(format!("{node:?} is not host:port"))),
        None => Ok((node.to_owned(), default_port)),
    }
}

/// Asks the sentinels in turn for the master's address.
async fn sentinel_master(pool: &RedisPoolConfig) -> CtlResult<(String, u16)> {
    let name = pool.sentinel_master.clone().unwrap_or_default();
    let dialer = Dialer {
        clients: NodeClients::sentinels(pool),
        config: AsyncConnectionConfig::new()
            .set_connection_timeout(Some(pool.timeout))
            .set_response_timeout(Some(pool.timeout)),
    };
    let mut last = CtlError::Unreachable("no sentinel configured".into());
    for node in &pool.sentinel_nodes {
        let (host, port) = host_port(node, 26379)?;
        let mut conn = match dialer.connect(&host, port).await {
            Ok(conn) => conn,
            Err(e) => {
                last = e;
                continue;
            }
        };
        let answer: Result<Option<(String, u16)>, _> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(&name)
            .query_async(&mut conn)
            .await;
        match answer {
            Ok(Some(addr)) => return Ok(addr),
            Ok(None) => {
                last = CtlError::Redis(format!("sentinel {node} knows no master named {name:?}"));
            }
            Err(e) => last = CtlError::redis(&format!("asking sentinel {node}"), &e),
        }
    }
    Err(last)
}

/// Reads the slot map from the first seed that answers and connects to every master.
async fn cluster(dialer: &Dialer, seeds: &[String]) -> CtlResult<Nodes> {
    let mut last = CtlError::Unreachable("no Cluster node configured".into());
    for seed in seeds {
        let (seed_host, seed_port) = host_port(seed, 6379)?;
        let reply: Value = match dialer.connect(&seed_host, seed_port).await {
            Ok(mut conn) => match redis::cmd("CLUSTER")
                .arg("SLOTS")
                .query_async(&mut conn)
                .await
            {
                Ok(reply) => reply,
                Err(e) => {
                    last = CtlError::redis(&format!("CLUSTER SLOTS on {seed}"), &e);
                    continue;
                }
            },
            Err(e) => {
                last = e;
                continue;
            }
        };
        let ranges = parse_slots(reply, &seed_host)?;
        let mut nodes = Nodes {
            masters: Vec::new(),
            slots: Vec::new(),
        };
        for (first, last, (host, port)) in ranges {
            let addr = format!("{host}:{port}");
            let index = match nodes.masters.iter().position(|n| n.addr == addr) {
                Some(index) => index,
                None => {
                    let conn = dialer.connect(&host, port).await?;
                    nodes.masters.push(Node { addr, conn });
                    nodes.masters.len() - 1
                }
            };
            nodes.slots.push((first, last, index));
        }
        if nodes.masters.is_empty() {
            return Err(CtlError::Redis(format!("{seed} reports no Cluster slots")));
        }
        return Ok(nodes);
    }
    Err(last)
}

/// First slot, last slot and the address of the master serving them.
type SlotRange = (u16, u16, (String, u16));

/// A `CLUSTER SLOTS` reply as (first slot, last slot, master address); a master that does not
/// know its own address (an empty host) is reached at the seed's host.
fn parse_slots(reply: Value, seed_host: &str) -> CtlResult<Vec<SlotRange>> {
    let bad = || CtlError::Redis("unexpected CLUSTER SLOTS reply".into());
    let Value::Array(entries) = reply else {
        return Err(bad());
    };
    let mut ranges = Vec::new();
    for entry in entries {
        let Value::Array(entry) = entry else {
            return Err(bad());
        };
        let mut parts = entry.into_iter();
        let (Some(Value::Int(first)), Some(Value::Int(last)), Some(Value::Array(master))) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let mut master = master.into_iter();
        let (Some(host), Some(Value::Int(port))) = (master.next(), master.next()) else {
            return Err(bad());
        };
        let host = match host {
            Value::BulkString(h) => String::from_utf8_lossy(&h).into_owned(),
            Value::SimpleString(h) => h,
            _ => return Err(bad()),
        };
        let host = if host.is_empty() || host == "?" {
            seed_host.to_owned()
        } else {
            host
        };
        let slot = |n: i64| u16::try_from(n).map_err(|_| bad());
        let port = u16::try_from(port).map_err(|_| bad())?;
        ranges.push((slot(first)?, slot(last)?, (host, port)));
    }
    Ok(ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_ranges_are_read_and_empty_hosts_use_the_seed() {
        let node = |host: &str, port| {
            Value::Array(vec![
                Value::BulkString(host.as_bytes().to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("10.0.0.1", 7000),
            ]),
            Value::Array(vec![Value::Int(5461), Value::Int(16383), node("", 7001)]),
        ]);
        let ranges = parse_slots(reply, "seed").unwrap_or_default();
        assert_eq!(
            ranges,
            vec![
                (0, 5460, ("10.0.0.1".to_owned(), 7000)),
                (5461, 16383, ("seed".to_owned(), 7001)),
            ]
        );
        assert!(parse_slots(Value::Int(1), "seed").is_err());
    }

    #[test]
    fn node_addresses_need_a_numeric_port() {
        assert_eq!(host_port("h:1", 2).ok(), Some(("h".to_owned(), 1)));
        assert_eq!(host_port("h", 2).ok(), Some(("h".to_owned(), 2)));
        assert!(host_port("h:x", 2).is_err());
    }
}
