//! The link (`crates/redis-link`: `batch/`, `link.rs`) under network faults made on purpose by the
//! fault proxy: a black-holed flow is replaced while a stalled Redis keeps its connection, and a
//! reset in the middle of a batch splits no command across connections (back-pressure is in
//! `link_faults_flush.rs`, reply ownership under random faults in `link_faults_owners.rs`). Each
//! test prints what it measured (time until calls succeed again, connections opened).

#[path = "common/link.rs"]
mod link;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use link::{
    SAVE_BYTES, SAVES, STALL, TIMEOUT, create, error_replies, field, half_commands, store, write,
};
use redis_sessions::RedisStore;
use redis_sessions::id::StorageId;
use redis_sessions::store::{Loaded, SaveOutcome, SessionStore};
use redis_test_support::{Direction, Fault, FaultProxy, PauseMode, RedisServer};
use tokio::task::JoinSet;

/// A call that was started at `started` and ended at `ended`, `ok` or not.
struct Outcome {
    started: Instant,
    ended: Instant,
    ok: bool,
}

/// A flow that a NAT or load balancer silently dropped (the proxy holds every byte, sends no
/// RST, while new flows pass) is replaced: with `pool_size = 1, timeout = 1`, calls succeed
/// again within 2 x timeout + 1 s of the freeze, and only a few connections are opened for it.
/// On the old code the connection was kept: no call succeeded again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_flow_is_replaced_within_two_timeouts() {
    let redis = RedisServer::start();
    let proxy = FaultProxy::start(redis.port());
    let store = Arc::new(store(proxy.port(), &redis, false, 1));
    let id = create(&*store, "a").await;
    assert!(matches!(store.load(&id).await, Ok(Loaded::Found(_))));
    let before = proxy.connections_opened();

    proxy.set(Fault::BlackHole);
    let frozen = Instant::now();
    let outcomes = loads_every(&store, &id, Duration::from_millis(50), frozen + 6 * TIMEOUT).await;
    let opened = proxy.connections_opened() - before;
    let first = outcomes.iter().filter(|o| o.ok).map(|o| o.ended).min();
    let failed = outcomes.iter().filter(|o| !o.ok).count();
    eprintln!(
        "black hole: {} calls, {failed} failed, first success {:?} after the freeze, {opened} \
         connection(s) opened since",
        outcomes.len(),
        first.map(|t| t - frozen)
    );
    let Some(first) = first else {
        panic!(
            "no call succeeded within {:?} of the freeze ({failed} failed, {opened} \
             connection(s) opened)",
            6 * TIMEOUT
        );
    };
    let bound = 2 * TIMEOUT + Duration::from_secs(1);
    assert!(
        first - frozen <= bound,
        "calls succeeded again {:?} after the freeze, not within {bound:?}",
        first - frozen
    );
    let late: Vec<Duration> = outcomes
        .iter()
        .filter(|o| o.started > first && !o.ok)
        .map(|o| o.started - frozen)
        .collect();
    assert!(
        late.is_empty(),
        "calls started after the recovery failed (started at {late:?} after the freeze)"
    );
    assert!(
        opened <= 4,
        "{opened} connections opened to replace one dead flow"
    );
}

/// How Redis stops answering in [`a_stalled_redis_keeps_the_connection_of_its_sessions`].
#[derive(Debug, Clone, Copy)]
enum Stall {
    Sleep,
    Pause(PauseMode),
}

/// A Redis that is stalled for longer than the timeout (`DEBUG SLEEP`, `CLIENT PAUSE ALL`,
/// `CLIENT PAUSE WRITE`) is not taken for a dead flow: the probe on a new connection is not
/// answered either (a script waits wherever a write does), so the connection is kept, and
/// the commands of each session keep their order (a lock release can never overtake its lock
/// request). After the stall the calls go on over the same connection, and only probes were
/// opened meanwhile. (This guards the design: a connection replaced at the first timeout, or
/// probed with `PING`, which `CLIENT PAUSE WRITE` answers, fails it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_redis_keeps_the_connection_of_its_sessions() {
    let redis = RedisServer::start();
    let proxy = FaultProxy::start(redis.port());
    let store = Arc::new(store(proxy.port(), &redis, false, 1));
    let id = create(&*store, "a").await;
    let lasts = 2 * TIMEOUT + TIMEOUT / 2;
    for stall in [
        Stall::Sleep,
        Stall::Pause(PauseMode::All),
        Stall::Pause(PauseMode::Write),
    ] {
        let opened = proxy.connections_opened();
        let sleeping = match stall {
            Stall::Sleep => Some(redis.sleep_in_background(lasts)),
            Stall::Pause(mode) => {
                redis.pause(lasts, mode);
                None
            }
        };
        let stalled = Instant::now();
        let mut saves = JoinSet::new();
        for n in 0..(lasts.as_millis() / 100) {
            let store = Arc::clone(&store);
            let id = id.clone();
            saves.spawn(async move {
                let value = Bytes::from(n.to_string());
                store.save(&id, &write("a", "n", value)).await
            });
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let failed = saves.join_all().await.iter().filter(|s| s.is_err()).count();
        if let Some(sleeping) = sleeping {
            sleeping.join();
        }
        tokio::time::sleep((stalled + lasts).saturating_duration_since(Instant::now())).await;
        let on_first = proxy.traffic_on(0).to_server;
        let saved = store
            .save(&id, &write("a", "after", Bytes::from_static(b"1")))
            .await;
        let probes = proxy.connections_opened() - opened;
        eprintln!("{stall:?}: {failed} saves failed during it, {probes} probe(s) opened");
        assert!(
            matches!(saved, Ok(SaveOutcome::Saved)),
            "{stall:?}: a save after it: {saved:?}"
        );
        assert!(
            proxy.traffic_on(0).to_server > on_first,
            "{stall:?}: the calls after it left the first connection"
        );
        assert!(
            failed > 0,
            "{stall:?}: no call waited: Redis was not stalled"
        );
        assert!(
            probes <= 4,
            "{stall:?}: {probes} connections opened meanwhile"
        );
    }
}

/// Loads `id` every `pace` until `until`, each call in its own task.
async fn loads_every(
    store: &Arc<RedisStore>,
    id: &StorageId,
    pace: Duration,
    until: Instant,
) -> Vec<Outcome> {
    let mut calls = JoinSet::new();
    while Instant::now() < until {
        let store = Arc::clone(store);
        let id = id.clone();
        calls.spawn(async move {
            let started = Instant::now();
            let ok = matches!(store.load(&id).await, Ok(Loaded::Found(_)));
            Outcome {
                started,
                ended: Instant::now(),
                ok,
            }
        });
        tokio::time::sleep(pace).await;
    }
    calls.join_all().await
}

/// A reset while a connection is full of half-written saves (the proxy stalls until the socket
/// is full, then resets; or forwards 100,000 bytes, the middle of the second save, then resets)
/// fails those calls and splits no command across connections: Redis never reads the middle of
/// a command as one of its own (no error reply at all), holds no half command, and every
/// session then saves and loads its own data at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_in_the_middle_of_a_batch_splits_no_command() {
    let redis = RedisServer::start();
    let proxy = FaultProxy::start(redis.port());
    let store = Arc::new(store(proxy.port(), &redis, false, 1));
    let mut ids = Vec::new();
    for n in 0..SAVES {
        ids.push(create(&*store, &format!("s{n}")).await);
    }
    let cut = Fault::CutAfter {
        bytes: 100_000,
        direction: Direction::ToServer,
    };
    for (before, after) in [
        (Fault::Stall(Direction::ToServer), Some(Fault::Reset)),
        (cut, None),
    ] {
        proxy.set(before);
        let mut saves = JoinSet::new();
        for (n, id) in ids.iter().enumerate() {
            let store = Arc::clone(&store);
            let id = id.clone();
            saves.spawn(async move {
                let value = Bytes::from(vec![b'x'; SAVE_BYTES]);
                store
                    .save(&id, &write(&format!("s{n}"), "big", value))
                    .await
            });
        }
        tokio::time::sleep(STALL).await;
        if let Some(after) = after {
            proxy.set(after);
        }
        let reset = Instant::now();
        let outcomes = saves.join_all().await;
        let failed = outcomes.iter().filter(|o| o.is_err()).count();

        let mut recovered = None;
        for (n, id) in ids.iter().enumerate() {
            let owner = format!("s{n}");
            let saved = store
                .save(id, &write(&owner, "small", Bytes::from_static(b"1")))
                .await;
            assert!(
                matches!(saved, Ok(SaveOutcome::Saved)),
                "{before:?}: save {n} after the reset: {saved:?}"
            );
            recovered.get_or_insert_with(|| reset.elapsed());
            let loaded = store.load(id).await.expect("a load after the reset");
            assert_eq!(field(&loaded, "owner"), Some(owner.as_bytes()), "load {n}");
        }
        eprintln!(
            "{before:?} then {after:?}: {failed} of {} saves failed; the first call after it \
             succeeded {recovered:?} after; {} connection(s) opened so far",
            outcomes.len(),
            proxy.connections_opened()
        );
        let errors = error_replies(&redis);
        assert!(errors.is_empty(), "Redis answered errors: {errors:?}");
        let half = half_commands(&redis);
        assert!(half.is_empty(), "Redis holds half a command: {half:?}");
    }
}
