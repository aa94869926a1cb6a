//! Redis Sentinel: the app finds the master through the sentinels and follows a failover
//! without a restart. Requests fail with a store error (503) only while the sentinels elect a
//! new master, and with `min_replicas_ack = 1` no write answered before the master died is
//! missing afterwards. Real master, replica and three sentinels; the counter example as the app.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Counter;
use common::failover::{self, WINDOW_BOUND};
use redis_sessions::id::SessionId;
use redis_sessions::store::{Loaded, Meta, Record, SessionStore, StoreError};
use redis_sessions::{RedisPoolConfig, RedisStore};
use redis_test_support::RedisSentinelSet;

/// The counter app over the set's sentinels, with every write acknowledged by the replica.
fn app(set: &RedisSentinelSet) -> Counter {
    let pool = format!(
        "default[sentinel_nodes] = {}\ndefault[sentinel_master] = {}\n\
         default[min_replicas_ack] = 1\ndefault[timeout] = 0.5\ndefault[pool_size] = 2",
        set.sentinel_nodes().join(", "),
        set.master_name()
    );
    // The port argument is unused: the pool asks the sentinels.
    Counter::start(1, "", &pool)
}

/// Kills the master under traffic; returns the time from the kill to the first request sent
/// after it that succeeded, after checking that every write answered 200 reads back.
async fn one_failover() -> Duration {
    // Two replicas: after the failover one is left to acknowledge writes (`WAIT 1`).
    let set = RedisSentinelSet::start_with_replicas(2);
    let app = app(&set);
    let cookie = app.new_session().await;
    let (set, run) = failover::incr_through_a_kill(&app, &cookie, move || {
        let mut set = set;
        set.kill_master();
        set
    })
    .await;
    let window = run.window();
    let new_master = set.master_port();
    assert_ne!(new_master, set.servers()[0].port(), "a new master");
    run.check_acknowledged_writes(&app, &cookie).await;
    drop(set);
    window
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_follows_a_failover_and_loses_no_acknowledged_write() {
    let mut windows = Vec::new();
    for run in 1..=3 {
        let window = one_failover().await;
        eprintln!("failover run {run}: requests failed for {window:?} after the kill");
        windows.push(window);
    }
    failover::median(windows);
}

/// `[redis]` lines loaded as a file.
fn redis_ini(lines: &str) -> Result<redis_sessions::Config, redis_sessions::ConfigError> {
    redis_sessions::Config::from_ini_str(&format!("[redis]\n{lines}\n"))
}

/// The error of `config`, checked to name `key` and `value`.
fn refused(
    config: Result<redis_sessions::Config, redis_sessions::ConfigError>,
    key: &str,
    value: &str,
) -> String {
    let message = config.expect_err("refused").to_string();
    assert!(
        message.contains(key) && message.contains(value),
        "{message:?} should name {key} and {value:?}"
    );
    message
}

#[test]
fn the_sentinel_keys_are_read_and_checked() {
    let config = redis_ini(
        "default[sentinel_nodes] = 10.0.0.1:26379, 10.0.0.2:26379\n\
         default[sentinel_master] = mymaster\ndefault[sentinel_password] = pw",
    )
    .expect("valid");
    let pool = config.pool().expect("pool");
    assert_eq!(pool.sentinel_nodes, ["10.0.0.1:26379", "10.0.0.2:26379"]);
    assert_eq!(pool.sentinel_master.as_deref(), Some("mymaster"));
    assert_eq!(pool.sentinel_password.as_deref(), Some("pw"));

    refused(
        redis_ini("default[sentinel_nodes] = 10.0.0.1"),
        "default[sentinel_nodes]",
        "10.0.0.1",
    );
    let message = refused(
        redis_ini("default[sentinel_nodes] = 10.0.0.1:26379"),
        "default[sentinel_nodes]",
        "10.0.0.1:26379",
    );
    assert!(message.contains("sentinel_master"), "{message}");
    let message = refused(
        redis_ini("default[sentinel_master] = mymaster"),
        "default[sentinel_master]",
        "mymaster",
    );
    assert!(message.contains("sentinel_nodes"), "{message}");
    refused(
        redis_ini("default[sentinel_nodes] = a:1\ndefault[sentinel_master] = my master"),
        "default[sentinel_master]",
        "my master",
    );
    refused(
        redis_ini("default[sentinel_master] = "),
        "default[sentinel_master]",
        "",
    );
    let message = refused(
        redis_ini(
            "default[sentinel_nodes] = a:1\ndefault[sentinel_master] = m\n\
             default[cluster_nodes] = b:2",
        ),
        "default[sentinel_nodes]",
        "a:1",
    );
    assert!(message.contains("cluster_nodes"), "{message}");
    refused(
        redis_ini("default[sentinel_password] = pw"),
        "default[sentinel_password]",
        "",
    );
    // Built in code, the same rules hold.
    let mut config = redis_sessions::Config::default();
    if let Some(pool) = config.pools.get_mut("default") {
        pool.sentinel_nodes = vec!["a:1".into()];
    }
    refused(
        config.validate().map(|()| config),
        "default[sentinel_nodes]",
        "a:1",
    );
}

fn record(value: &str) -> Record {
    Record {
        meta: Meta {
            created_ms: 1_000,
            touched_ms: 2_000,
        },
        fields: vec![("k".to_owned(), Bytes::from(value.to_owned()))],
    }
}

/// A forced failover kills no process: the old master is demoted to a replica, so a connection
/// to it would answer `READONLY` (or be cut by the sentinels). The store moves to the new
/// master; the writes that fail meanwhile fail as `Unavailable`, and the data stays readable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_follows_a_forced_failover_to_the_new_master() {
    let set = RedisSentinelSet::start();
    let config = RedisPoolConfig {
        port: 1,
        pool_size: 1,
        sentinel_nodes: set.sentinel_nodes(),
        sentinel_master: Some(set.master_name().to_owned()),
        min_replicas_ack: 1,
        ..RedisPoolConfig::default()
    };
    let store = RedisStore::new(&config).expect("store");
    let ttl = Duration::from_secs(60);
    let id = SessionId::generate().storage_id();
    store
        .create(&id, &record("before"), ttl)
        .await
        .expect("create");
    let old = set.master_port();

    let (set, new) = tokio::task::spawn_blocking(move || {
        let new = set.failover(Duration::from_secs(30));
        (set, new)
    })
    .await
    .expect("failover");
    assert_ne!(new, old);

    let deadline = Instant::now() + WINDOW_BOUND;
    let mut failures = Vec::new();
    let after = loop {
        let after = SessionId::generate().storage_id();
        // min_replicas_ack = 1 needs the demoted old master to resync first: it is the replica.
        match store.create(&after, &record("after"), ttl).await {
            Ok(_) => break after,
            Err(StoreError::Unavailable(e)) => failures.push(e),
            Err(e) => panic!("a write during the failover failed with {e:?}, not Unavailable"),
        }
        assert!(
            Instant::now() < deadline,
            "no write succeeded {WINDOW_BOUND:?} after the failover: {failures:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "writes failed {} times after the forced failover: {failures:?}",
        failures.len()
    );
    let key = store.session_key(&after);
    assert_eq!(
        set.master().cmd(&["EXISTS", &key]),
        redis::Value::Int(1),
        "the write went to the new master"
    );
    match store.load(&id).await.expect("load") {
        Loaded::Found(record) => assert_eq!(record.fields, self::record("before").fields),
        other => panic!("the session written before the failover loads as {other:?}"),
    }
}

/// Sentinels that require a password: with `sentinel_password` the store finds the master;
/// without it, every call fails as `Unavailable`, naming the sentinels' refusal.
#[tokio::test]
async fn sentinel_password_logs_in_to_the_sentinels() {
    let set = RedisSentinelSet::start_with_sentinel_password("sentinel-pw");
    let config = |password: Option<&str>| RedisPoolConfig {
        port: 1,
        pool_size: 1,
        sentinel_nodes: set.sentinel_nodes(),
        sentinel_master: Some(set.master_name().to_owned()),
        sentinel_password: password.map(str::to_owned),
        ..RedisPoolConfig::default()
    };
    let store = RedisStore::new(&config(Some("sentinel-pw"))).expect("store");
    let id = SessionId::generate().storage_id();
    let ttl = Duration::from_secs(60);
    store.create(&id, &record("v"), ttl).await.expect("create");
    assert!(matches!(store.load(&id).await, Ok(Loaded::Found(_))));

    let refused = RedisStore::new(&config(None)).expect("store");
    match refused.load(&id).await {
        Err(StoreError::Unavailable(message)) => assert!(
            message.contains("NOAUTH") && message.contains("mymaster"),
            "{message}"
        ),
        other => panic!("without sentinel_password: {other:?}"),
    }
    let wrong = RedisStore::new(&config(Some("wrong"))).expect("store");
    assert!(matches!(
        wrong.load(&id).await,
        Err(StoreError::Unavailable(_))
    ));
}

/// A master that stalls longer than the sentinels' `down-after-milliseconds` is failed over
/// while it sleeps, and when it wakes it is still a master for several seconds, answering
/// reads with the data the new master has moved past. The store follows the sentinels'
/// `+switch-master` announcement: its reads go to the new master although no call failed.
/// (Before: the slot kept its connection to the old master, and this read returned "before".)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_leaves_a_stalled_master_the_sentinels_replaced() {
    let set = RedisSentinelSet::start_with_replicas(2);
    let config = RedisPoolConfig {
        port: 1,
        pool_size: 1,
        sentinel_nodes: set.sentinel_nodes(),
        sentinel_master: Some(set.master_name().to_owned()),
        ..RedisPoolConfig::default()
    };
    let store = RedisStore::new(&config).expect("store");
    let id = SessionId::generate().storage_id();
    let ttl = Duration::from_secs(60);
    store
        .create(&id, &record("before"), ttl)
        .await
        .expect("create");
    let old = set.master_port();
    let sleeping = set.master().sleep_in_background(Duration::from_secs(3));
    let (set, new) = tokio::task::spawn_blocking(move || {
        let new = set.wait_for_new_master(old, Duration::from_secs(20));
        (set, new)
    })
    .await
    .expect("failover");
    let key = store.session_key(&id);
    let promoted = set.servers().iter().find(|s| s.port() == new).expect("new");
    promoted.cmd(&["HSET", &key, "k", "after"]);
    tokio::task::spawn_blocking(move || sleeping.join())
        .await
        .expect("the old master woke up");
    let stale = set.servers().iter().find(|s| s.port() == old).expect("old");
    let role = stale.cmd(&["ROLE"]);
    assert!(
        format!("{role:?}").contains("master"),
        "the old master is still a master when it wakes: {role:?}"
    );
    match store.load(&id).await.expect("load") {
        Loaded::Found(record) => assert_eq!(
            record.fields,
            self::record("after").fields,
            "the read went to the new master"
        ),
        other => panic!("the session loads as {other:?}"),
    }
}
