//! A session whose hash slot is being migrated between two masters of a real Redis Cluster
//! (`CLUSTER SETSLOT ... IMPORTING/MIGRATING`, `MIGRATE ... KEYS`, `SETSLOT ... NODE`): Redis
//! then answers `ASK` per key and `TRYAGAIN` for scripts whose keys the migration has split,
//! and the store must find the session wherever it is at that moment: only the redirected
//! commands follow the redirection, the others' replies stay, and a script waits (within the
//! timeout) for the migration rather than failing.
//!
//! Each step of the migration is driven by the test when the call under test has reached the
//! point that matters (the lock key appeared on the target, a `TRYAGAIN` was answered), not
//! after a sleep.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::Value;
use redis_sessions::id::SessionId;
use redis_sessions::store::redis::ResonanceStore;
use redis_sessions::store::{
    ChangeSet, EndOutcome, EndRequest, Loaded, LockToken, LockedLoad, Meta, Record, SaveOutcome,
    SessionStore,
};
use redis_sessions::{RedisPoolConfig, RedisStore};
use redis_test_support::RedisCluster;

use common::{Counter, int, key_of};

const LONG: Duration = Duration::from_secs(60);

/// The counter over `cluster` with a 1 s timeout.
fn app(cluster: &RedisCluster) -> Counter {
    let pool = format!(
        "default[cluster_nodes] = {}\ndefault[timeout] = 1",
        cluster.nodes().join(",")
    );
    // The port is unused: the pool reads the slot map from the nodes.
    Counter::start(1, "", &pool)
}

/// Keys of `slot` on node `node` (works on a node importing it, unlike `EXISTS`).
fn keys_in_slot(cluster: &RedisCluster, node: usize, slot: u16) -> i64 {
    int(cluster.servers()[node].cmd(&["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]))
}

/// `errorstat_<code>` summed over the nodes (`INFO errorstats`).
fn error_count(cluster: &RedisCluster, code: &str) -> u64 {
    let prefix = format!("errorstat_{code}:count=");
    let count = |node: &redis_test_support::RedisServer| match node.cmd(&["INFO", "errorstats"]) {
        Value::BulkString(b) => String::from_utf8_lossy(&b)
            .lines()
            .find_map(|l| l.strip_prefix(&prefix)?.split(',').next()?.parse().ok())
            .unwrap_or(0),
        other => panic!("INFO answered {other:?}"),
    };
    cluster.servers().iter().map(count).sum()
}

/// Polls `done` every 5 ms (on a blocking thread: it asks Redis synchronously) for up to 5 s.
async fn wait_for(what: &str, done: impl Fn() -> bool + Send + 'static) {
    let what = what.to_owned();
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    })
    .await
    .expect("the wait");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_request_during_a_slot_migration_keeps_the_users_session() {
    let cluster = Arc::new(RedisCluster::start(3));
    let app = app(&cluster);
    let cookie = app.new_session_within(Duration::from_secs(5)).await;
    for want in ["2", "3"] {
        let reply = app.get("/incr-locked", Some(&cookie)).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, want),
            "{reply:?}"
        );
    }
    let key = key_of(&cookie);
    let slot = cluster.slot_of_key(&key);
    let from = cluster.owner_of_slot(slot, 0);
    let to = (from + 1) % 3;
    cluster.begin_slot_move(slot, from, to);

    // The load takes the lock on `to` (absent on `from`, which answers ASK for it) and reads
    // the session on `from` (still there). While the handler waits, the session moves to `to`,
    // so the save (a script on the session and its lock) must follow it there.
    let request = app.get("/incr-locked?delay_ms=300", Some(&cookie));
    let mover = {
        let cluster = Arc::clone(&cluster);
        async move {
            let watched = Arc::clone(&cluster);
            wait_for("the lock key on the target", move || {
                keys_in_slot(&watched, to, slot) > 0
            })
            .await;
            tokio::task::spawn_blocking(move || cluster.migrate_slot_keys(slot, from, to, 10))
                .await
                .expect("the migration")
        }
    };
    let (reply, moved) = tokio::join!(request, mover);
    assert_eq!(
        (
            reply.status,
            reply.body.as_str(),
            reply.set_cookie.is_some()
        ),
        (200, "4", false),
        "a request during the migration must see and keep the user's session: {reply:?}"
    );
    assert!(moved >= 1, "the session key was moved");

    cluster.end_slot_move(slot, to);
    cluster.wait_settled();
    let reply = app.get("/incr-locked", Some(&cookie)).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "5"), "{reply:?}");
    assert!(reply.set_cookie.is_none(), "{reply:?}");
    assert_eq!(
        keys_in_slot(&cluster, to, slot),
        1,
        "the session, no lock left"
    );
    assert_eq!(keys_in_slot(&cluster, from, slot), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_slot_migration_answers_a_bounded_503_and_never_a_new_session() {
    let cluster = Arc::new(RedisCluster::start(3));
    let app = app(&cluster);
    let cookie = app.new_session_within(Duration::from_secs(5)).await;
    let key = key_of(&cookie);
    let slot = cluster.slot_of_key(&key);
    let from = cluster.owner_of_slot(slot, 0);
    let to = (from + 1) % 3;
    // Opened, and no key moves: the save (a script on the session, on `from`, and the lock, on
    // `to`) gets TRYAGAIN for as long as it tries.
    cluster.begin_slot_move(slot, from, to);
    let started = Instant::now();
    let reply = app.get("/incr-locked", Some(&cookie)).await;
    let took = started.elapsed();
    assert_eq!(
        (reply.status, reply.set_cookie.is_some()),
        (503, false),
        "neither a success nor a new session while the save cannot run: {reply:?}"
    );
    assert!(
        took < Duration::from_secs(2),
        "a 503 within timeout + 1 s, took {took:?}"
    );
    // Reads still work: the session is where it was.
    let read = app.get("/read", Some(&cookie)).await;
    assert_eq!((read.status, read.body.as_str()), (200, "1"), "{read:?}");

    cluster.migrate_slot_keys(slot, from, to, 10);
    cluster.end_slot_move(slot, to);
    cluster.wait_settled();
    // The failed request released its lock (on `to`): no wait for `lock_ttl`.
    let started = Instant::now();
    let reply = app.get("/incr-locked", Some(&cookie)).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "2"), "{reply:?}");
    assert!(reply.set_cookie.is_none(), "{reply:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the lock was left behind: {:?}",
        started.elapsed()
    );
}

fn store(cluster: &RedisCluster) -> RedisStore {
    let config = RedisPoolConfig {
        cluster_nodes: cluster.nodes(),
        prefix: "cl:".into(),
        timeout: Duration::from_secs(1),
        ..RedisPoolConfig::default()
    };
    RedisStore::new(&config).expect("store")
}

fn record(value: &str) -> Record {
    Record {
        meta: Meta {
            created_ms: 1_000,
            touched_ms: 2_000,
        },
        fields: [
            ("basket".to_owned(), Bytes::from(value.to_owned())),
            ("flash".to_owned(), Bytes::from_static(b"hello")),
        ]
        .into(),
    }
}

fn basket(loaded: &Loaded) -> Option<Bytes> {
    match loaded {
        Loaded::Found(record) => record
            .fields
            .iter()
            .find(|(k, _)| k == "basket")
            .map(|(_, v)| v.clone()),
        _ => None,
    }
}

/// Runs `call` and, once a node has answered a `TRYAGAIN` more than before (the call is
/// waiting for the migration) or the call has returned, `step` (on a blocking thread); returns
/// the call's result.
async fn when_tryagain<T>(
    cluster: &Arc<RedisCluster>,
    call: impl Future<Output = T>,
    step: impl FnOnce(&RedisCluster) + Send + 'static,
) -> T {
    let before = error_count(cluster, "TRYAGAIN");
    let returned = Arc::new(AtomicBool::new(false));
    let call = async {
        let result = call.await;
        returned.store(true, Ordering::SeqCst);
        result
    };
    let stepper = {
        let (cluster, returned) = (Arc::clone(cluster), Arc::clone(&returned));
        async move {
            let watched = Arc::clone(&cluster);
            wait_for("a TRYAGAIN", move || {
                returned.load(Ordering::SeqCst) || error_count(&watched, "TRYAGAIN") > before
            })
            .await;
            tokio::task::spawn_blocking(move || step(&cluster))
                .await
                .expect("the migration step");
        }
    };
    tokio::join!(call, stepper).0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_session_call_finds_the_session_on_either_side_of_a_slot_migration() {
    let cluster = Arc::new(RedisCluster::start(3));
    let store = store(&cluster);
    let id = SessionId::generate().storage_id();
    store
        .create(&id, &record("apple"), LONG)
        .await
        .expect("create");
    let key = store.session_key(&id);
    let slot = cluster.slot_of_key(&key);
    let from = cluster.owner_of_slot(slot, 0);
    let to = (from + 1) % 3;
    cluster.begin_slot_move(slot, from, to);

    // The session is on `from`, nothing moved yet.
    let loaded = store.load(&id).await.expect("load");
    assert_eq!(
        basket(&loaded).as_deref(),
        Some(&b"apple"[..]),
        "{loaded:?}"
    );
    let token = LockToken("t1".into());
    let locked = store.load_locked(&id, &token, LONG).await;
    match &locked {
        Ok(LockedLoad::Acquired(loaded)) => {
            assert_eq!(basket(loaded).as_deref(), Some(&b"apple"[..]), "{locked:?}");
        }
        other => panic!("a locked load must find the session on the source: {other:?}"),
    }
    assert_eq!(
        store
            .take_fields(&id, &["flash".to_owned()])
            .await
            .expect("take"),
        vec![true]
    );

    // The locked save runs a script on the session (on `from`) and its lock (on `to`): Redis
    // answers TRYAGAIN until the session has moved too.
    let changes = ChangeSet {
        set: [("basket".to_owned(), Bytes::from_static(b"pear"))].into(),
        removed: Vec::new(),
        meta: record("").meta,
        ttl: LONG,
        unlock: Some(token.clone()),
        within_lifetime: true,
    };
    let saved = when_tryagain(&cluster, store.save(&id, &changes), move |c| {
        c.migrate_slot_keys(slot, from, to, 10);
    })
    .await;
    assert_eq!(
        saved.expect("a locked save during the migration"),
        SaveOutcome::Saved
    );
    let loaded = store.load(&id).await.expect("load from the target");
    assert_eq!(basket(&loaded).as_deref(), Some(&b"pear"[..]), "{loaded:?}");

    // The session is on `to` and has no lock: the end script (session and lock) gets TRYAGAIN
    // from the importing node until the slot is `to`'s.
    let end = EndRequest {
        tombstone: Duration::from_secs(60),
        lock: None,
        require_lock: false,
        successor: "",
    };
    let ended = when_tryagain(&cluster, store.end(&id, end), move |c| {
        c.end_slot_move(slot, to);
    })
    .await;
    assert!(
        matches!(ended, Ok(EndOutcome::Ended(_))),
        "a logout during the migration: {ended:?}"
    );
    cluster.wait_settled();
    assert!(
        matches!(store.load(&id).await, Ok(Loaded::Ended)),
        "the session is ended on its new node"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resonance_formats_locked_load_finds_the_session_during_a_slot_migration() {
    let cluster = Arc::new(RedisCluster::start(3));
    let store = ResonanceStore::new(&RedisPoolConfig {
        cluster_nodes: cluster.nodes(),
        prefix: "app".into(),
        timeout: Duration::from_secs(1),
        ..RedisPoolConfig::default()
    })
    .expect("store");
    let id = SessionId::generate().storage_id();
    // No data: the values of this format are igbinary, what matters here is the record.
    let empty = Record {
        meta: record("").meta,
        fields: Vec::new(),
    };
    store.create(&id, &empty, LONG).await.expect("create");
    let key = store.session_key(&id);
    let slot = cluster.slot_of_key(&key);
    let from = cluster.owner_of_slot(slot, 0);
    let to = (from + 1) % 3;
    cluster.begin_slot_move(slot, from, to);
    // Its locked load pipelines `SET lock NX` (absent on `from`: ASK) and `GET session` (on
    // `from`), as the native one does.
    let token = LockToken("t1".into());
    let locked = store.load_locked(&id, &token, LONG).await;
    match &locked {
        Ok(LockedLoad::Acquired(Loaded::Found(_))) => {}
        other => panic!("a locked load must find the session on the source: {other:?}"),
    }
    cluster.migrate_slot_keys(slot, from, to, 10);
    cluster.end_slot_move(slot, to);
    cluster.wait_settled();
    store.unlock(&id, &token).await.expect("unlock");
    let loaded = store.load(&id).await.expect("load from the target");
    assert!(matches!(loaded, Loaded::Found(_)), "{loaded:?}");
}
