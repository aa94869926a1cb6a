//! Fault tests: the counter over a private `redis-server` that crashes (SIGKILL, then restarted
//! on its append-only file) or stalls (`CLIENT PAUSE ALL`, `DEBUG SLEEP`) under locked and
//! unlocked traffic. Every request is answered, within the command timeout + 1 s while Redis is
//! down or stalled; no write answered 200 is lost; no lock is left behind; and the app recovers
//! by itself.

mod common;
#[path = "faults/traffic.rs"]
mod traffic;

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{Counter, keys, lock_keys};
use redis_test_support::{PauseMode, RedisServer};
use traffic::{Route, acknowledged_keys, assert_answered, census, first_success};

/// Sessions, each with one locked and one unlocked client loop.
const SESSIONS: usize = 3;
/// Pause between two requests of one client loop.
const PACE: Duration = Duration::from_millis(10);
/// `default[timeout]`: the bound on every Redis command.
const TIMEOUT: Duration = Duration::from_secs(1);
/// The longest any request may take while Redis is down or stalled.
const BOUND: Duration = Duration::from_secs(2);
/// Margin for a `DEBUG SLEEP` written to Redis's socket to take effect.
const SLEEP_TAKES: Duration = Duration::from_millis(100);

async fn new_sessions(app: &Counter) -> Vec<String> {
    let mut cookies = Vec::new();
    for _ in 0..SESSIONS {
        cookies.push(app.new_session().await);
    }
    cookies
}

/// Every field of every session hash (field names of the traffic are unique across sessions),
/// decoded as integers.
fn stored_fields(redis: &RedisServer) -> HashMap<String, i64> {
    let mut fields = HashMap::new();
    for key in keys(redis) {
        let redis::Value::Array(items) = redis.cmd(&["HGETALL", &key]) else {
            continue; // a lock key or a tombstone
        };
        for pair in items.chunks(2) {
            let [
                redis::Value::BulkString(name),
                redis::Value::BulkString(value),
            ] = pair
            else {
                panic!("HGETALL {key} answered {pair:?}");
            };
            if let Ok(n) = rmp_serde::from_slice::<i64>(value) {
                fields.insert(String::from_utf8_lossy(name).into_owned(), n);
            }
        }
    }
    fields
}

/// After the faults: every unlocked write answered 200 is stored, every session's locked counter
/// is at least the largest value a 200 returned, and a locked increment works at once.
async fn assert_nothing_answered_was_lost(
    redis: &RedisServer,
    app: &Counter,
    cookies: &[String],
    outcomes: &[traffic::Outcome],
) {
    let stored = stored_fields(redis);
    for (session, cookie) in cookies.iter().enumerate() {
        let acknowledged = acknowledged_keys(outcomes, session);
        assert!(
            !acknowledged.is_empty(),
            "session {session}: no write succeeded"
        );
        let lost: Vec<&String> = acknowledged
            .iter()
            .filter(|key| stored.get(*key) != Some(&1))
            .collect();
        assert!(
            lost.is_empty(),
            "session {session}: {} of {} writes answered 200 are lost: {lost:?}",
            lost.len(),
            acknowledged.len()
        );
        let largest = traffic::largest_locked_value(outcomes, session).unwrap_or(0);
        let read = app.get("/read?key=c", Some(cookie)).await;
        let value: i64 = read.body.parse().expect("a number");
        assert!(
            value >= largest,
            "session {session}: c = {value}, but a locked increment answered {largest}"
        );
        let started = Instant::now();
        let next = app.get("/incr-locked?key=c", Some(cookie)).await;
        assert_eq!(
            (next.status, next.body.clone()),
            (200, (value + 1).to_string()),
            "session {session}"
        );
        assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_crash_loses_no_answered_write_and_the_app_recovers() {
    let redis = RedisServer::start_persistent();
    let lock_ttl = Duration::from_secs(2);
    let app = Counter::start(
        redis.port(),
        "lock_ttl = 2\nlock_wait = 2",
        "default[timeout] = 1",
    );
    let cookies = new_sessions(&app).await;
    let t0 = Instant::now();
    let control = tokio::task::spawn_blocking(move || {
        let mut redis = redis;
        sleep(Duration::from_secs(1));
        let killing = Instant::now();
        redis.kill();
        let killed = Instant::now();
        sleep(Duration::from_millis(1500));
        let restarting = Instant::now();
        redis.restart();
        (redis, killing, killed, restarting, Instant::now())
    });
    let outcomes = traffic::run(&app, &cookies, t0 + Duration::from_secs(9), PACE).await;
    let (redis, killing, killed, restarting, restarted) =
        control.await.expect("the control thread");
    let first = outcomes.iter().map(|o| o.started).min().unwrap_or(t0);
    eprintln!(
        "crash: {} requests {:?}; killed at {:?} (took {:?}), restarted at {:?} (took {:?})",
        outcomes.len(),
        census(&outcomes),
        killing - first,
        killed - killing,
        restarting - first,
        restarted - restarting
    );

    assert_answered(
        &outcomes,
        "before the crash",
        |o| o.ended() < killing,
        &[200],
        BOUND,
    );
    assert_answered(
        &outcomes,
        "started and answered while Redis was down",
        |o| o.started >= killed && o.ended() < restarting,
        &[503],
        BOUND,
    );
    assert_answered(
        &outcomes,
        "in flight when Redis was killed or started while it was down",
        |o| o.ended() >= killing && o.started < restarting,
        &[200, 503],
        BOUND,
    );
    // After the restart a locked request may wait for a lock restored from the AOF (at most
    // lock_wait) before its commands run.
    assert_answered(
        &outcomes,
        "after the restart",
        |o| o.started >= restarting,
        &[200, 503],
        Duration::from_secs(2) + TIMEOUT + Duration::from_secs(1),
    );
    for (route, within) in [
        (Route::Unlocked, Duration::from_secs(3)),
        (Route::Locked, lock_ttl + Duration::from_secs(3)),
    ] {
        let back = first_success(&outcomes, route, restarting)
            .unwrap_or_else(|| panic!("{route:?}: no success after the restart"));
        let after = back.saturating_duration_since(restarted);
        eprintln!("crash: {route:?} route back {after:?} after the restart");
        assert!(
            after <= within,
            "{route:?}: first success {after:?} after the restart"
        );
    }
    assert_nothing_answered_was_lost(&redis, &app, &cookies, &outcomes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_or_sleeping_redis_delays_no_answer_and_leaks_no_lock() {
    let redis = Arc::new(RedisServer::start());
    let app = Counter::start(
        redis.port(),
        "lock_ttl = 30\nlock_wait = 1",
        "default[timeout] = 1",
    );
    let cookies = new_sessions(&app).await;
    let t0 = Instant::now();
    let control = tokio::task::spawn_blocking({
        let redis = Arc::clone(&redis);
        move || {
            sleep(Duration::from_millis(500));
            // In effect once Redis answered: the window starts after that (taken before it, a
            // request served in the meantime counted as one during the pause).
            redis.pause(Duration::from_secs(3), PauseMode::All);
            let paused = Instant::now();
            sleep(Duration::from_millis(3500));
            let sleeping = redis.sleep_in_background(Duration::from_secs(3));
            // The command is on the socket: Redis runs it within far less than SLEEP_TAKES.
            let slept = Instant::now() + SLEEP_TAKES;
            sleeping.join();
            (paused, slept, Instant::now())
        }
    });
    let outcomes = traffic::run(&app, &cookies, t0 + Duration::from_secs(9), PACE).await;
    let (paused, slept, over) = control.await.expect("the control thread");
    eprintln!(
        "stall: {} requests {:?}; pause at {:?}, sleep at {:?}, over at {:?}",
        outcomes.len(),
        census(&outcomes),
        paused - t0,
        slept - t0,
        over - t0
    );

    assert_answered(&outcomes, "at any time", |_| true, &[200, 503], BOUND);
    // Windows surely inside each stall: the sleep ends no earlier than 3 s after its command was
    // written, whatever the moment its reply reached this test.
    for (name, from, to) in [
        ("pause", paused, paused + Duration::from_secs(3)),
        ("sleep", slept, slept - SLEEP_TAKES + Duration::from_secs(3)),
    ] {
        assert_answered(
            &outcomes,
            &format!("started and answered during the {name}"),
            |o| o.started >= from && o.ended() <= to,
            &[503],
            BOUND,
        );
    }

    // Releases are sent as the requests end; half a second is ample for them to land, and far
    // less than lock_ttl, so a lock that was leaked is still there.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let leaked: Vec<(String, redis::Value)> = lock_keys(&redis)
        .into_iter()
        .map(|key| {
            let pttl = redis.cmd(&["PTTL", &key]);
            (key, pttl)
        })
        .collect();
    let after: Vec<_> = outcomes.iter().filter(|o| o.started >= over).collect();
    assert!(
        leaked.is_empty(),
        "lock keys (with their PTTL in ms) left behind after the stalls: {leaked:?}; locked \
         requests after the stalls: {:?}",
        after
            .iter()
            .filter(|o| o.route == Route::Locked)
            .map(|o| (o.session, o.status()))
            .collect::<Vec<_>>()
    );
    for route in [Route::Locked, Route::Unlocked] {
        assert!(
            first_success(&outcomes, route, over).is_some(),
            "{route:?}: no success after the stalls"
        );
    }
    assert_nothing_answered_was_lost(&redis, &app, &cookies, &outcomes).await;
}
