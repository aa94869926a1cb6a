//! HTTP-level specification of `persist`: `before_response` answers after the write has landed,
//! `after_response` answers first and writes in the background.

mod common;

use std::time::{Duration, Instant};

use common::{Counter, int};
use redis_test_support::{PauseMode, RedisServer};

#[tokio::test]
async fn after_response_mode_sets_the_cookie_and_writes_in_the_background() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "persist = after_response", "");
    let cookie = app.new_session().await;
    let started = Instant::now();
    loop {
        if app.get("/read", Some(&cookie)).await.body == "1" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the write never landed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How long Redis holds writes back in the tests below.
const PAUSE: Duration = Duration::from_millis(1500);

/// Keys in the private Redis (read commands pass a `CLIENT PAUSE WRITE`).
fn dbsize(redis: &RedisServer) -> i64 {
    int(redis.cmd(&["DBSIZE"]))
}

/// Waits (at most 5 s) until Redis holds `n` keys; returns when that was first seen.
async fn wait_for_keys(redis: &RedisServer, n: i64) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if dbsize(redis) == n {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "Redis never held {n} keys");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A counter whose one Redis connection is open (a first session written), so that nothing but
/// the request under test needs Redis during the pause. The command timeout outlasts the pause.
async fn warm_counter(redis: &RedisServer, session: &str) -> Counter {
    let app = Counter::start(redis.port(), session, "default[timeout] = 5");
    app.new_session().await;
    wait_for_keys(redis, 1).await;
    app
}

#[tokio::test]
async fn after_response_answers_before_the_write_lands() {
    let redis = RedisServer::start();
    let app = warm_counter(&redis, "persist = after_response").await;
    redis.pause(PAUSE, PauseMode::Write);
    let paused = Instant::now();

    // A new session: no load, only the write, which Redis holds back.
    let reply = app.get("/incr", None).await;
    let answered = paused.elapsed();
    assert_eq!((reply.status, reply.body.as_str()), (200, "1"), "{reply:?}");
    assert!(
        answered < PAUSE / 2,
        "after_response waited {answered:?} for a write held back for {PAUSE:?}"
    );
    assert_eq!(
        dbsize(&redis),
        1,
        "the write cannot have landed during the pause"
    );

    let landed = wait_for_keys(&redis, 2).await - paused;
    assert!(
        landed >= PAUSE * 8 / 10,
        "the write landed after {landed:?}, during a {PAUSE:?} pause"
    );
    assert_eq!(app.get("/read", Some(&reply.cookie())).await.body, "1");
}

#[tokio::test]
async fn before_response_answers_only_once_the_write_has_landed() {
    let redis = RedisServer::start();
    let app = warm_counter(&redis, "persist = before_response").await;
    redis.pause(PAUSE, PauseMode::Write);
    let paused = Instant::now();

    let reply = app.get("/incr", None).await;
    let answered = paused.elapsed();
    assert_eq!((reply.status, reply.body.as_str()), (200, "1"), "{reply:?}");
    assert!(
        answered >= PAUSE * 8 / 10,
        "before_response answered after {answered:?}, while Redis held writes for {PAUSE:?}"
    );
    assert_eq!(dbsize(&redis), 2, "answered before the write landed");
    assert_eq!(app.get("/read", Some(&reply.cookie())).await.body, "1");
}
