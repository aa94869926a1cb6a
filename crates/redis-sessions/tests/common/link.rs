//! What the link's fault tests (`link_faults*.rs`) share: a store with one connection through
//! the fault proxy, plain or TLS, records that carry their owner's tag, and what Redis says
//! about its clients afterwards.

#![allow(dead_code)] // each test file uses its own part

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use redis_sessions::id::{SessionId, StorageId};
use redis_sessions::store::{ChangeSet, Loaded, Meta, Record, SessionStore};
use redis_sessions::{RedisPoolConfig, RedisStore};
use redis_test_support::RedisServer;

/// `timeout` of the pools in these tests.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(1);
/// The TTL of the records.
pub(crate) const LONG: Duration = Duration::from_secs(600);
/// The size of each save that fills a stalled socket.
pub(crate) const SAVE_BYTES: usize = 60 * 1024;
/// Saves written at once into a stalled connection: 6 MB, far more than a loopback connection
/// takes while stalled (about 70 KB when fresh, more once the kernel grew its send buffer), so
/// the writes really block.
pub(crate) const SAVES: usize = 100;
/// How long the proxy holds the Redis-bound direction.
pub(crate) const STALL: Duration = Duration::from_millis(300);

const META: Meta = Meta {
    created_ms: 1_000,
    touched_ms: 2_000,
};

/// A store of `pool_size` connections to 127.0.0.1:`port` (a proxy), over TLS trusting
/// `server`'s CA when `tls`, with the timeout [`TIMEOUT`].
pub(crate) fn store(port: u16, server: &RedisServer, tls: bool, pool_size: usize) -> RedisStore {
    store_timing_out(port, server, tls, pool_size, TIMEOUT)
}

/// [`store`] with the timeout `timeout`.
pub(crate) fn store_timing_out(
    port: u16,
    server: &RedisServer,
    tls: bool,
    pool_size: usize,
    timeout: Duration,
) -> RedisStore {
    let config = RedisPoolConfig {
        port,
        pool_size,
        timeout,
        tls,
        tls_ca: tls.then(|| server.tls_certificates().ca.clone()),
        ..RedisPoolConfig::default()
    };
    RedisStore::new(&config).expect("a store")
}

/// A new storage id.
pub(crate) fn id() -> StorageId {
    SessionId::generate().storage_id()
}

/// A record whose field `owner` is `owner`.
pub(crate) fn owned(owner: &str) -> Record {
    Record {
        meta: META,
        fields: vec![("owner".to_owned(), Bytes::from(owner.to_owned()))],
    }
}

/// A change set writing `value` to `field` and `owner` again.
pub(crate) fn write(owner: &str, field: &str, value: Bytes) -> ChangeSet {
    ChangeSet {
        set: vec![
            ("owner".to_owned(), Bytes::from(owner.to_owned())),
            (field.to_owned(), value),
        ],
        removed: Vec::new(),
        meta: Meta {
            created_ms: 1_000,
            touched_ms: 3_000,
        },
        ttl: LONG,
        unlock: None,
        within_lifetime: false,
    }
}

/// Creates a record owned by `owner`, retrying for a few seconds (the proxy may be faulty).
pub(crate) async fn create(store: &dyn SessionStore, owner: &str) -> StorageId {
    let id = id();
    for _ in 0..50 {
        if store.create(&id, &owned(owner), LONG).await.is_ok() {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("could not create a record for {owner}");
}

/// The field `name` of a loaded record.
pub(crate) fn field<'a>(loaded: &'a Loaded, name: &str) -> Option<&'a [u8]> {
    let Loaded::Found(record) = loaded else {
        return None;
    };
    record
        .fields
        .iter()
        .find(|(field, _)| field == name)
        .map(|(_, value)| value.as_ref())
}

/// The clients connected to `server` (but the one asking), as `CLIENT LIST` lines.
pub(crate) fn clients(server: &RedisServer) -> Vec<String> {
    bulk(server, &["CLIENT", "LIST"])
        .lines()
        .filter(|line| !line.contains(" cmd=client|list "))
        .map(str::to_owned)
        .collect()
}

/// Clients of `server` with a command partly received (`qbuf` not 0): half a command waits.
pub(crate) fn half_commands(server: &RedisServer) -> Vec<String> {
    clients(server)
        .into_iter()
        .filter(|line| !line.contains(" qbuf=0 "))
        .collect()
}

/// The `ERR` replies `server` sent (`INFO errorstats`; the library's own `NOSCRIPT` is left
/// out): a command split across connections shows as `ERR` (an unknown "command" made of a
/// value's bytes).
pub(crate) fn error_replies(server: &RedisServer) -> Vec<String> {
    bulk(server, &["INFO", "errorstats"])
        .lines()
        .filter(|line| line.starts_with("errorstat_ERR:"))
        .map(str::to_owned)
        .collect()
}

/// The bulk string `server` answers to `args`, asked over a bare socket: a `redis` client's
/// `CLIENT SETINFO` on connect is itself an `ERR` before Redis 7.2, which would count in
/// [`error_replies`].
fn bulk(server: &RedisServer, args: &[&str]) -> String {
    let mut conn = TcpStream::connect(("127.0.0.1", server.port())).expect("a connection");
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a read timeout");
    let mut command = format!("*{}\r\n", args.len());
    for arg in args {
        command.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    conn.write_all(command.as_bytes())
        .expect("the command sent");
    let mut reply = Vec::new();
    let mut chunk = [0; 4096];
    // `$len\r\n`, then `len` bytes and `\r\n`.
    loop {
        let n = conn.read(&mut chunk).expect("the reply");
        assert!(n > 0, "Redis closed the connection");
        reply.extend_from_slice(&chunk[..n]);
        let Some(end) = reply.windows(2).position(|w| w == b"\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&reply[..end]).into_owned();
        let len: usize = head
            .strip_prefix('$')
            .and_then(|len| len.parse().ok())
            .unwrap_or_else(|| panic!("{args:?} answered {head}"));
        if reply.len() >= end + 2 + len + 2 {
            return String::from_utf8_lossy(&reply[end + 2..end + 2 + len]).into_owned();
        }
    }
}
