//! The store constructor for Redis Sentinel: the pool finds the master through three sentinels,
//! so the whole conformance suite also runs the way a Sentinel deployment is reached.

use std::time::Duration;

use redis_sessions::{RedisPoolConfig, RedisStore};
use redis_test_support::RedisSentinelSet;

/// A store whose pool asks the sentinels of a fresh master, replica and three sentinels for the
/// master; `host`/`port` point nowhere, so nothing reaches Redis but through the sentinels.
pub(crate) fn sentinel_store() -> (RedisStore, RedisSentinelSet) {
    let set = RedisSentinelSet::start();
    let config = RedisPoolConfig {
        port: 1,
        pool_size: 2,
        timeout: Duration::from_secs(2),
        sentinel_nodes: set.sentinel_nodes(),
        sentinel_master: Some(set.master_name().to_owned()),
        ..RedisPoolConfig::default()
    };
    (RedisStore::new(&config).expect("store"), set)
}
