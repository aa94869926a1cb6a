//! HTTP-level specification of the session lock (`/incr-locked`) in one app process: it
//! serialises read-modify-write, leaves no lock key behind, and survives clients that go away.

mod common;

use std::time::{Duration, Instant};

use common::{Counter, lock_keys, session_keys};
use redis_test_support::{PauseMode, RedisServer};

#[tokio::test]
async fn the_session_lock_serialises_read_modify_write_of_one_key() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "", "");
    let cookie = app.new_session().await;
    let requests = (0..20).map(|_| app.get("/incr-locked?key=c&delay_ms=10", Some(&cookie)));
    let replies = futures_util::future::join_all(requests).await;
    assert!(replies.iter().all(|r| r.status == 200), "{replies:?}");
    assert_eq!(app.get("/read?key=c", Some(&cookie)).await.body, "20");
    assert_eq!(
        lock_keys(&redis),
        Vec::<String>::new(),
        "a lock key is left behind"
    );
}

#[tokio::test]
async fn a_locked_request_abandoned_by_its_client_releases_the_lock() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "lock_ttl = 30\nlock_wait = 20", "");
    let cookie = app.new_session().await;
    let abandoned = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client")
        .get(format!("{}/incr-locked?delay_ms=5000", app.base))
        .header("cookie", &cookie)
        .send()
        .await;
    assert!(
        abandoned.is_err(),
        "the client gives up before the handler ends"
    );
    let started = Instant::now();
    let next = app.get("/incr-locked", Some(&cookie)).await;
    assert_eq!(next.status, 200, "{next:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "waited {:?} for a lock whose request was cancelled",
        started.elapsed()
    );
}

#[tokio::test]
async fn locked_requests_cancelled_at_any_point_leave_no_lock_behind() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "lock_ttl = 30\nlock_wait = 20", "");
    let cookie = app.new_session().await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(150))
        .build()
        .expect("client");
    let requests = (0..48).map(|i| {
        let request = impatient
            .get(format!("{}/incr-locked?delay_ms={}", app.base, i % 4 * 10))
            .header("cookie", &cookie);
        async move { request.send().await.map(|r| r.status().as_u16()) }
    });
    let outcomes = futures_util::future::join_all(requests).await;
    assert!(
        outcomes.iter().any(Result::is_err),
        "some requests must be cut off: {outcomes:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let next = app.get("/incr-locked", Some(&cookie)).await;
    assert_eq!(next.status, 200, "{next:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(
        lock_keys(&redis),
        Vec::<String>::new(),
        "a lock key is left behind"
    );
}

/// A locked request persists in its own task: when its client goes away while the save waits
/// for Redis, the save still lands and the lock is released.
///
/// The save is made to wait by a `CLIENT PAUSE WRITE` that starts once the lock is held and ends
/// after the client has given up. `SCRIPT FLUSH` makes the save take a second round trip
/// (`NOSCRIPT`, then `EVAL`) after the pause: a persist dropped with the request future would
/// never send it.
#[tokio::test]
async fn a_locked_save_completes_after_its_client_has_gone() {
    let redis = RedisServer::start();
    let app = Counter::start(
        redis.port(),
        "lock_ttl = 30\nlock_wait = 10",
        "default[timeout] = 5",
    );
    let cookie = app.new_session().await;
    redis.cmd(&["SCRIPT", "FLUSH"]);
    let request = app.try_get(
        "/incr-locked?key=c&delay_ms=400",
        Some(&cookie),
        Duration::from_millis(700),
    );
    let pause = async {
        let deadline = Instant::now() + Duration::from_secs(2);
        while lock_keys(&redis).is_empty() {
            assert!(Instant::now() < deadline, "the lock was never taken");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        redis.pause(Duration::from_millis(1200), PauseMode::Write);
        Instant::now()
    };
    let (outcome, paused_at) = tokio::join!(request, pause);
    assert!(
        outcome.is_err(),
        "the client must give up while the save waits: {outcome:?}"
    );
    assert_eq!(
        redis.cmd(&["HEXISTS", &session_keys(&redis)[0], "c"]),
        redis::Value::Int(0),
        "the save must still be held back when the client gives up"
    );
    let deadline = paused_at + Duration::from_secs(6);
    loop {
        let read = app.get("/read?key=c", Some(&cookie)).await;
        if read.body == "1" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the save of the abandoned request never landed: {read:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        lock_keys(&redis),
        Vec::<String>::new(),
        "a lock key is left behind"
    );
}
