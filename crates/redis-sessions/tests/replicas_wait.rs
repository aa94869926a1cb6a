//! Reads never wait behind a `WAIT`: with `min_replicas_ack`, a write is followed by `WAIT n
//! timeout`, which holds its whole connection until the replicas answer or the time is up. When
//! no replica acknowledges, writes must fail (503, as the README says), but reads of other
//! sessions must go on at full speed: they travel on connections that never carry a `WAIT`.
//!
//! Each test runs the same traffic against one deployment (single server, `format =
//! resonance`, Cluster, Sentinel): the real counter with `min_replicas_ack = 1`, `timeout = 1`
//! and `pool_size = 1` (the worst case: one connection per lane), writers (`/incr`,
//! `/incr-locked`, new sessions) and readers (`/read`) of distinct sessions, all at once, for
//! a few seconds. The sessions are made beforehand by a counter without `min_replicas_ack`.

mod common;

use std::time::{Duration, Instant};

use common::Counter;
use redis_sessions::id::SessionId;
use redis_sessions::store::{Loaded, LockToken, SessionStore};
use redis_sessions::{RedisPoolConfig, RedisStore, StoreError};
use redis_test_support::{PauseMode, RedisCluster, RedisSentinelSet, RedisServer};

/// How long the mixed traffic runs.
const TRAFFIC: Duration = Duration::from_secs(3);
/// Concurrent readers, each reading two sessions in turn.
const READERS: usize = 4;
/// Writers of existing sessions per server (one `/incr`, one `/incr-locked`); one more writer
/// makes new sessions.
const WRITERS_PER_NODE: usize = 2;
/// The slowest read allowed at the 99th percentile: far below the `WAIT`'s half a second.
const P99_BOUND: Duration = Duration::from_millis(200);

/// What the traffic saw.
struct Seen {
    /// Every read's status and time.
    reads: Vec<(u16, Duration)>,
    /// Every write's status.
    writes: Vec<u16>,
}

impl Seen {
    /// The read time at quantile `q` (0 to 1).
    fn read_quantile(&self, q: f64) -> Duration {
        let mut times: Vec<Duration> = self.reads.iter().map(|(_, t)| *t).collect();
        times.sort();
        let rank = ((q * times.len() as f64).ceil() as usize).clamp(1, times.len());
        times[rank - 1]
    }

    /// Fails unless every read was answered 200 within [`P99_BOUND`] at the 99th percentile
    /// and every write failed with 503.
    fn check(&self, deployment: &str) {
        let (p50, p99, max) = (
            self.read_quantile(0.5),
            self.read_quantile(0.99),
            self.read_quantile(1.0),
        );
        let slow = self
            .reads
            .iter()
            .filter(|(_, t)| *t > Duration::from_millis(400))
            .count();
        let failed: Vec<u16> = (self.reads.iter().map(|(s, _)| *s))
            .filter(|s| *s != 200)
            .collect();
        let summary = format!(
            "{deployment}: {} reads (p50 {p50:?}, p99 {p99:?}, max {max:?}, {slow} over 0.4 s, \
             {} not 200: {failed:?}), {} writes ({} answered 503)",
            self.reads.len(),
            failed.len(),
            self.writes.len(),
            self.writes.iter().filter(|s| **s == 503).count(),
        );
        eprintln!("{summary}");
        assert!(
            self.writes.iter().all(|s| *s == 503),
            "a write no replica acknowledged must fail with 503: {summary}"
        );
        assert!(failed.is_empty(), "every read must succeed: {summary}");
        assert!(
            p99 < P99_BOUND,
            "reads must not wait behind WAIT (p99 under {P99_BOUND:?}): {summary}"
        );
        assert!(self.reads.len() >= 20, "too few reads ran: {summary}");
        assert!(self.writes.len() >= 3, "too few writes ran: {summary}");
    }
}

/// Readers and writers of distinct sessions against `durable` at once, for [`TRAFFIC`]; the
/// sessions are made by `plain` (same Redis, no `min_replicas_ack`). `node_of` tells which of
/// `nodes` servers holds a session (a Cluster's masters; 0 elsewhere): every server gets
/// [`WRITERS_PER_NODE`] writers, so every reader shares its server with writers.
async fn mixed_traffic(
    plain: &Counter,
    durable: &Counter,
    nodes: usize,
    node_of: impl Fn(&str) -> usize,
) -> Seen {
    let mut read_cookies = Vec::new();
    let mut write_cookies = Vec::new();
    let mut per_node = vec![0; nodes];
    for _ in 0..200 {
        let done = per_node.iter().all(|n| *n >= WRITERS_PER_NODE);
        if done && read_cookies.len() >= READERS * 2 {
            break;
        }
        let cookie = plain.new_session_within(Duration::from_secs(5)).await;
        let node = node_of(&cookie);
        if per_node[node] < WRITERS_PER_NODE {
            per_node[node] += 1;
            write_cookies.push(cookie);
        } else if read_cookies.len() < READERS * 2 {
            read_cookies.push(cookie);
        }
    }
    assert_eq!(read_cookies.len(), READERS * 2, "sessions to read");
    assert!(
        per_node.iter().all(|n| *n >= WRITERS_PER_NODE),
        "sessions to write on every node: {per_node:?}"
    );
    // Warm-up: the durable app opens its connections (and reads the Cluster's slot map or asks
    // the sentinels) before the clock starts; all of these are reads.
    for cookie in &read_cookies {
        let reply = durable.get("/read", Some(cookie)).await;
        assert_eq!(reply.status, 200, "a read before the traffic: {reply:?}");
    }
    let until = Instant::now() + TRAFFIC;
    let reader = |cookies: [String; 2]| async move {
        let mut seen = Vec::new();
        let mut turn = 0;
        while Instant::now() < until {
            let started = Instant::now();
            let cookie = &cookies[turn % 2];
            let status = match durable.try_get("/read", Some(cookie), TRAFFIC).await {
                Ok(reply) => reply.status,
                Err(_) => 0,
            };
            seen.push((status, started.elapsed()));
            turn += 1;
        }
        seen
    };
    let writer = |kind: usize, cookie: Option<String>| async move {
        let mut seen = Vec::new();
        while Instant::now() < until {
            let (path, cookie) = match (&cookie, kind % 2) {
                (Some(cookie), 0) => ("/incr", Some(cookie.as_str())),
                (Some(cookie), _) => ("/incr-locked", Some(cookie.as_str())),
                (None, _) => ("/incr", None),
            };
            let status = match durable.try_get(path, cookie, TRAFFIC).await {
                Ok(reply) => reply.status,
                Err(_) => 0,
            };
            seen.push(status);
        }
        seen
    };
    let readers = (read_cookies.chunks(2))
        .map(|pair| reader([pair[0].clone(), pair[1].clone()]))
        .collect::<Vec<_>>();
    let writers = (write_cookies
        .into_iter()
        .map(Some)
        .chain([None])
        .enumerate())
    .map(|(kind, cookie)| writer(kind, cookie))
    .collect::<Vec<_>>();
    let (reads, writes) = tokio::join!(
        futures_util::future::join_all(readers),
        futures_util::future::join_all(writers)
    );
    Seen {
        reads: reads.into_iter().flatten().collect(),
        writes: writes.into_iter().flatten().collect(),
    }
}

/// The plain and the durable counter over the same Redis: `session` lines for both, `pool`
/// lines for both; the durable one adds `min_replicas_ack = 1` and `timeout = 1`.
fn apps(port: u16, session: &str, pool: &str) -> (Counter, Counter) {
    let plain = Counter::start(port, session, pool);
    let durable_pool = format!("{pool}\ndefault[min_replicas_ack] = 1\ndefault[timeout] = 1");
    let durable = Counter::start(port, session, &durable_pool);
    (plain, durable)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_never_wait_behind_the_wait_of_a_write_no_replica_acknowledges() {
    // A master that never had a replica: every WAIT runs for its whole half second.
    let master = RedisServer::start();
    let (plain, durable) = apps(master.port(), "", "");
    mixed_traffic(&plain, &durable, 1, |_| 0)
        .await
        .check("single server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resonance_reads_never_wait_behind_the_wait_of_a_write() {
    let master = RedisServer::start();
    let (plain, durable) = apps(master.port(), "format = resonance", "");
    mixed_traffic(&plain, &durable, 1, |_| 0)
        .await
        .check("format = resonance");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_reads_never_wait_behind_the_wait_of_a_write() {
    // Masters without replicas.
    let cluster = RedisCluster::start(3);
    let pool = format!("default[cluster_nodes] = {}", cluster.nodes().join(","));
    // The port is unused: the pool reads the slot map from the nodes.
    let (plain, durable) = apps(1, "", &pool);
    let masters = cluster.servers();
    // The master that holds a session's key (the others answer MOVED).
    let node_of = |cookie: &str| {
        let key = common::key_of(cookie);
        (masters.iter())
            .position(|m| m.cmd(&["EXISTS", &key]) == redis::Value::Int(1))
            .expect("a master holds the session")
    };
    mixed_traffic(&plain, &durable, masters.len(), node_of)
        .await
        .check("Cluster");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_reads_never_wait_behind_the_wait_of_a_write() {
    let set = RedisSentinelSet::start();
    let pool = format!(
        "default[sentinel_nodes] = {}\ndefault[sentinel_master] = {}",
        set.sentinel_nodes().join(", "),
        set.master_name()
    );
    // The port is unused: the pool asks the sentinels.
    let (plain, durable) = apps(1, "", &pool);
    // The replica stops acknowledging (it sleeps) for longer than the whole test.
    let replica = &set.servers()[1];
    let asleep = replica.sleep_in_background(Duration::from_secs(10));
    let seen = mixed_traffic(&plain, &durable, 1, |_| 0).await;
    drop(durable);
    drop(plain);
    let _ = asleep.join();
    seen.check("Sentinel");
}

/// The connections Redis has open, less the one that asks.
fn connected_clients(server: &RedisServer) -> usize {
    let redis::Value::BulkString(info) = server.cmd(&["INFO", "clients"]) else {
        panic!("INFO answered no text");
    };
    let info = String::from_utf8_lossy(&info);
    let all: usize = (info.lines())
        .find_map(|line| line.strip_prefix("connected_clients:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("connected_clients in INFO");
    all - 1
}

/// The ordering guarantee of `pool.rs` with two lanes: a lock request whose reply timed out
/// (Redis paused) and the release sent after it travel on one connection, so the release runs
/// after the acquire and no lock is left behind; the connections that carry `WAIT` are not
/// even opened by a request that only took and released the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_min_replicas_ack_a_lock_is_released_on_the_connection_that_took_it() {
    let server = RedisServer::start();
    let config = RedisPoolConfig {
        port: server.port(),
        timeout: Duration::from_millis(300),
        pool_size: 1,
        min_replicas_ack: 1,
        ..RedisPoolConfig::default()
    };
    let store = RedisStore::new(&config).expect("store");
    let id = SessionId::generate().storage_id();
    let token = LockToken("the request's token".to_owned());
    // The read connection is open before the pause (a connection opened during it would time
    // out before sending anything).
    assert!(matches!(store.load(&id).await, Ok(Loaded::Missing)));
    assert_eq!(connected_clients(&server), 1, "the read connection");

    server.pause(Duration::from_millis(800), PauseMode::All);
    let acquired = store
        .load_locked(&id, &token, Duration::from_secs(30))
        .await;
    assert!(
        matches!(acquired, Err(StoreError::Unavailable(_))),
        "the lock request times out while Redis is paused: {acquired:?}"
    );
    let released = store.unlock(&id, &token).await;
    assert!(
        matches!(released, Err(StoreError::Unavailable(_))),
        "so does the release: {released:?}"
    );
    // Both run once the pause is over.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let locks = match server.cmd(&["KEYS", "*:l"]) {
        redis::Value::Array(keys) => keys.len(),
        other => panic!("KEYS answered {other:?}"),
    };
    assert_eq!(
        locks, 0,
        "the release ran after the acquire: no lock is left"
    );
    assert_eq!(
        connected_clients(&server),
        1,
        "the acquire and the release went over the read connection; no WAIT connection opened"
    );
}
