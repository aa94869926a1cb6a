//! Redis Sentinel: the app finds the master through the sentinels and follows a failover
//! without a restart. Requests fail with a store error (503) only while the sentinels elect a
//! new master, and with `min_replicas_ack = 1` no write answered before the master died is
//! missing afterwards. Real master, replica and three sentinels; the counter example as the app.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Counter;
use redis_sessions::id::SessionId;
use redis_sessions::store::{Loaded, Meta, Record, SessionStore, StoreError};
use redis_sessions::{RedisPoolConfig, RedisStore};
use redis_test_support::RedisSentinelSet;

/// Longest a failover may leave the app failing requests.
const WINDOW_BOUND: Duration = Duration::from_secs(15);

/// One request: its key tag, when it was sent, and its status.
type Sent = (usize, Instant, u16);

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
    let sent: Mutex<Vec<Sent>> = Mutex::new(Vec::new());
    let killed: Mutex<Option<Instant>> = Mutex::new(None);
    let traffic = async {
        let deadline = Instant::now() + Duration::from_secs(40);
        let mut k = 0;
        loop {
            let started = Instant::now();
            let status = app
                .get(&format!("/incr?key=k{k}"), Some(&cookie))
                .await
                .status;
            sent.lock().expect("list").push((k, started, status));
            k += 1;
            let kill = *killed.lock().expect("kill time");
            let successes_after = kill.map_or(0, |t| {
                let list = sent.lock().expect("list");
                list.iter()
                    .filter(|(_, at, status)| *at > t && *status == 200)
                    .count()
            });
            if successes_after >= 20 || Instant::now() > deadline {
                break;
            }
            if kill.is_some_and(|_| status != 200) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let kill = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let set = tokio::task::spawn_blocking(move || {
            let mut set = set;
            set.kill_master();
            set
        })
        .await
        .expect("kill");
        *killed.lock().expect("kill time") = Some(Instant::now());
        set
    };
    let ((), set) = tokio::join!(traffic, kill);
    let killed_at = killed.into_inner().expect("kill time").expect("killed");
    let sent = sent.into_inner().expect("list");
    let after: Vec<(u128, u16)> = sent
        .iter()
        .filter(|(_, at, _)| *at > killed_at)
        .map(|(_, at, status)| ((*at - killed_at).as_millis(), *status))
        .collect();
    eprintln!("after the kill (ms, status): {after:?}");

    let before = sent.iter().filter(|(_, at, _)| *at < killed_at).count();
    assert!(before > 5, "traffic ran before the kill: {before} requests");
    for (k, _, status) in &sent {
        assert!(
            *status == 200 || *status == 503,
            "request k{k} answered {status}, neither a success nor a store error (503)"
        );
    }
    let first_success = sent
        .iter()
        .find(|(_, at, status)| *at > killed_at && *status == 200)
        .map(|(_, at, _)| *at)
        .expect("a request succeeded after the failover, without an app restart");
    let window = first_success - killed_at;
    // Once the new master answers, the app keeps using it.
    let last_failure = sent
        .iter()
        .filter(|(_, _, status)| *status != 200)
        .map(|(_, at, _)| *at)
        .max();
    assert!(
        last_failure.is_none_or(|t| t < killed_at + WINDOW_BOUND),
        "requests still failed {WINDOW_BOUND:?} after the kill"
    );

    // Every write answered 200, before or after the kill, is on the new master.
    let new_master = set.master_port();
    assert_ne!(new_master, set.servers()[0].port(), "a new master");
    for (k, _, status) in &sent {
        if *status == 200 {
            let reply = app.get(&format!("/read?key=k{k}"), Some(&cookie)).await;
            assert_eq!(
                (reply.status, reply.body.as_str()),
                (200, "1"),
                "k{k} was answered 200 but is missing after the failover"
            );
        }
    }
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
    windows.sort();
    let median = windows[1];
    eprintln!("failover window: median {median:?} of {windows:?}");
    for window in &windows {
        assert!(
            *window < WINDOW_BOUND,
            "the app failed requests for {window:?} after the master died (bound \
             {WINDOW_BOUND:?})"
        );
    }
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
            Ok(()) => break after,
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
