//! The library's own connections to Redis (`crates/redis-link`: `batch/` and `link.rs`), against a
//! real server: every caller gets its own replies whatever else is on the connection (many
//! callers at once, a caller that gave up before its reply came), a connection that dies fails
//! its waiting callers at once and the next call opens a new one, long replies arrive whole, a
//! long call that fills the socket is finished before the next call's bytes, a
//! store keeps working after the runtime that first used it is gone, and dropping a store closes
//! its connections.

use std::time::{Duration, Instant};

use bytes::Bytes;
use redis_sessions::id::{SessionId, StorageId};
use redis_sessions::store::{Loaded, Meta, Record, SessionStore};
use redis_sessions::{RedisPoolConfig, RedisStore, StoreError};
use redis_test_support::{PauseMode, RedisServer};

fn pool(server: &RedisServer, timeout: Duration, pool_size: usize) -> RedisPoolConfig {
    RedisPoolConfig {
        port: server.port(),
        timeout,
        pool_size,
        ..RedisPoolConfig::default()
    }
}

/// A new session holding `value` under the key `v`.
async fn create(store: &RedisStore, value: &[u8]) -> StorageId {
    let id = SessionId::generate().storage_id();
    let record = Record {
        meta: Meta {
            created_ms: 1,
            touched_ms: 1,
        },
        fields: vec![("v".to_owned(), Bytes::copy_from_slice(value))],
    };
    store
        .create(&id, &record, Duration::from_secs(60))
        .await
        .expect("create");
    id
}

/// The value under `v` of the session `id`.
async fn value(store: &RedisStore, id: &StorageId) -> Result<Vec<u8>, StoreError> {
    match store.load(id).await? {
        Loaded::Found(record) => Ok(record
            .fields
            .iter()
            .find(|(key, _)| key == "v")
            .map(|(_, v)| v.to_vec())
            .expect("the key v")),
        other => panic!("session not found: {other:?}"),
    }
}

fn connected_clients(server: &RedisServer) -> usize {
    let redis::Value::BulkString(info) = server.cmd(&["INFO", "clients"]) else {
        panic!("INFO answered no text");
    };
    let info = String::from_utf8_lossy(&info);
    info.lines()
        .find_map(|line| line.strip_prefix("connected_clients:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("connected_clients in INFO")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_on_one_connection_each_get_their_own_session() {
    let server = RedisServer::start();
    let store = RedisStore::new(&pool(&server, Duration::from_secs(5), 1)).expect("store");
    let mut ids = Vec::new();
    for n in 0..300u32 {
        ids.push((create(&store, &n.to_be_bytes()).await, n));
    }
    let loads = ids.iter().map(|(id, n)| {
        let store = store.clone();
        let id = id.clone();
        let n = *n;
        tokio::spawn(async move { (value(&store, &id).await.expect("load"), n) })
    });
    for load in futures_util::future::join_all(loads).await {
        let (got, n) = load.expect("task");
        assert_eq!(got, n.to_be_bytes(), "session {n} got another's data");
    }
}

#[tokio::test]
async fn a_reply_that_comes_after_its_caller_gave_up_answers_nobody_else() {
    let server = RedisServer::start();
    let store = RedisStore::new(&pool(&server, Duration::from_millis(200), 1)).expect("store");
    let first = create(&store, b"first").await;
    let second = create(&store, b"second").await;
    server.pause(Duration::from_millis(700), PauseMode::All);
    let started = Instant::now();
    let gave_up = value(&store, &first).await;
    assert!(
        matches!(gave_up, Err(StoreError::Unavailable(_))),
        "{gave_up:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(600));
    // The first reply is still coming on this connection; the next call must not take it.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(value(&store, &second).await.expect("load"), b"second");
    assert_eq!(value(&store, &first).await.expect("load"), b"first");
}

#[tokio::test]
async fn a_connection_that_dies_fails_its_waiting_callers_at_once_and_the_next_call_reconnects() {
    let mut server = RedisServer::start_persistent();
    let timeout = Duration::from_secs(5);
    let store = RedisStore::new(&pool(&server, timeout, 1)).expect("store");
    let id = create(&store, b"kept").await;
    // Redis stalls with our load in flight, then dies.
    let sleeping = server.sleep_in_background(Duration::from_secs(3));
    let load = {
        let store = store.clone();
        let id = id.clone();
        tokio::spawn(async move { value(&store, &id).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = Instant::now();
    server.kill();
    let failed = load.await.expect("task");
    assert!(
        matches!(failed, Err(StoreError::Unavailable(_))),
        "{failed:?}"
    );
    assert!(
        killed.elapsed() < Duration::from_secs(1),
        "the caller waited {:?} for a dead connection",
        killed.elapsed()
    );
    drop(sleeping);
    server.restart();
    // The append-only file kept the session; the next call opens a new connection.
    let mut again = value(&store, &id).await;
    if again.is_err() {
        again = value(&store, &id).await;
    }
    assert_eq!(again.expect("after the restart"), b"kept");
}

#[tokio::test]
async fn a_long_reply_arrives_whole() {
    let server = RedisServer::start();
    let store = RedisStore::new(&pool(&server, Duration::from_secs(5), 1)).expect("store");
    let long: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let id = create(&store, &long).await;
    let short = create(&store, b"short").await;
    let (got_long, got_short) = tokio::join!(value(&store, &id), value(&store, &short));
    assert!(got_long.expect("load") == long, "the long value differs");
    assert_eq!(got_short.expect("load"), b"short");
}

/// A call on an idle connection is written by its caller at once; one too long for the socket
/// (Redis asleep, its buffers full) is finished by the writer, and a call made meanwhile goes
/// after it, never into the middle of it.
#[tokio::test]
async fn a_long_call_cut_short_by_a_full_socket_is_finished_before_the_next() {
    let server = RedisServer::start();
    let store = RedisStore::new(&pool(&server, Duration::from_secs(10), 1)).expect("store");
    create(&store, b"opens the connection").await;
    let long: Vec<u8> = (0..16 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let sleeping = server.sleep_in_background(Duration::from_millis(1500));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let first = {
        let (store, long) = (store.clone(), long.clone());
        tokio::spawn(async move { create(&store, &long).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = {
        let store = store.clone();
        tokio::spawn(async move { create(&store, b"after").await })
    };
    let (first, second) = (first.await.expect("task"), second.await.expect("task"));
    drop(sleeping);
    assert!(
        value(&store, &first).await.expect("load") == long,
        "the long value differs"
    );
    assert_eq!(value(&store, &second).await.expect("load"), b"after");
}

#[test]
fn a_store_keeps_working_after_the_runtime_that_first_used_it_is_gone() {
    let server = RedisServer::start();
    let store = RedisStore::new(&pool(&server, Duration::from_secs(2), 1)).expect("store");
    let first = tokio::runtime::Runtime::new().expect("runtime");
    let id = first.block_on(create(&store, b"across"));
    drop(first);
    let second = tokio::runtime::Runtime::new().expect("runtime");
    let started = Instant::now();
    let got = second.block_on(value(&store, &id));
    assert_eq!(got.expect("load on the second runtime"), b"across");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn dropping_the_store_closes_its_connections() {
    let server = RedisServer::start();
    let before = connected_clients(&server);
    let store = RedisStore::new(&pool(&server, Duration::from_secs(2), 4)).expect("store");
    for n in 0..16u8 {
        create(&store, &[n]).await;
    }
    let open = connected_clients(&server);
    assert!(
        open > before,
        "{open} clients with the store, {before} before"
    );
    drop(store);
    let deadline = Instant::now() + Duration::from_secs(3);
    while connected_clients(&server) > before {
        assert!(
            Instant::now() < deadline,
            "still {} clients, {before} before the store",
            connected_clients(&server)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
