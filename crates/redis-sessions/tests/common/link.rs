//! What the link's fault tests (`link_faults*.rs`) share: a store with one connection through
//! the fault proxy, plain or TLS, records that carry their owner's tag, and what Redis says
//! about its clients afterwards.

#![allow(dead_code)] // each test file uses its own part

use std::time::Duration;

use bytes::Bytes;
use redis_sessions::id::{SessionId, StorageId};
use redis_sessions::store::{ChangeSet, Loaded, Meta, Record, SessionStore};
use redis_sessions::{RedisPoolConfig, RedisStore};
use redis_test_support::RedisServer;

/// `timeout` of the pools in these tests.
pub const TIMEOUT: Duration = Duration::from_secs(1);
/// The TTL of the records.
pub const LONG: Duration = Duration::from_secs(600);

const META: Meta = Meta {
    created_ms: 1_000,
    touched_ms: 2_000,
};

/// A store of `pool_size` connections to 127.0.0.1:`port` (a proxy), over TLS trusting
/// `server`'s CA when `tls`.
pub fn store(port: u16, server: &RedisServer, tls: bool, pool_size: usize) -> RedisStore {
    let config = RedisPoolConfig {
        port,
        pool_size,
        timeout: TIMEOUT,
        tls,
        tls_ca: tls.then(|| server.tls_certificates().ca.clone()),
        ..RedisPoolConfig::default()
    };
    RedisStore::new(&config).expect("a store")
}

/// A new storage id.
pub fn id() -> StorageId {
    SessionId::generate().storage_id()
}

/// A record whose field `owner` is `owner`.
pub fn owned(owner: &str) -> Record {
    Record {
        meta: META,
        fields: vec![("owner".to_owned(), Bytes::from(owner.to_owned()))],
    }
}

/// A change set writing `value` to `field` and `owner` again.
pub fn write(owner: &str, field: &str, value: Bytes) -> ChangeSet {
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
pub async fn create(store: &dyn SessionStore, owner: &str) -> StorageId {
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
pub fn field<'a>(loaded: &'a Loaded, name: &str) -> Option<&'a [u8]> {
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
pub fn clients(server: &RedisServer) -> Vec<String> {
    let list = match server.cmd(&["CLIENT", "LIST"]) {
        redis::Value::BulkString(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        redis::Value::VerbatimString { text, .. } => text,
        other => panic!("CLIENT LIST answered {other:?}"),
    };
    list.lines()
        .filter(|line| !line.contains(" cmd=client|list "))
        .map(str::to_owned)
        .collect()
}

/// Clients of `server` with a command partly received (`qbuf` not 0): half a command waits.
pub fn half_commands(server: &RedisServer) -> Vec<String> {
    clients(server)
        .into_iter()
        .filter(|line| !line.contains(" qbuf=0 "))
        .collect()
}

/// The `ERR` replies `server` sent (`INFO errorstats`; the library's own `NOSCRIPT` is left
/// out): a command split across connections shows as `ERR` (an unknown "command" made of a
/// value's bytes).
pub fn error_replies(server: &RedisServer) -> Vec<String> {
    let info = match server.cmd(&["INFO", "errorstats"]) {
        redis::Value::BulkString(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        redis::Value::VerbatimString { text, .. } => text,
        other => panic!("INFO answered {other:?}"),
    };
    info.lines()
        .filter(|line| line.starts_with("errorstat_ERR:"))
        .map(str::to_owned)
        .collect()
}
