//! HTTP-level specification of session lifetimes: the counter example against a private
//! `redis-server`; the TTL Redis holds for each session (idle lifespan, cut short by
//! `absolute_lifetime`), sessions kept alive by use, and expiry during a request.

mod common;

use std::time::{Duration, Instant};

use common::{Counter, int, session_keys};
use redis_test_support::RedisServer;

#[tokio::test]
async fn every_session_key_has_a_ttl_near_cookie_lifespan() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "cookie_lifespan = 600", "");
    for _ in 0..5 {
        app.new_session().await;
    }
    let keys = session_keys(&redis);
    assert_eq!(keys.len(), 5);
    for key in keys {
        let ttl = int(redis.cmd(&["TTL", &key]));
        assert!((595..=600).contains(&ttl), "{key} has TTL {ttl}");
    }
}

#[tokio::test]
async fn an_active_session_never_expires_while_an_idle_one_does() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "cookie_lifespan = 3", "");
    let active = app.new_session().await;
    let idle = app.new_session().await;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            app.get("/read", Some(&active)).await.body,
            "1",
            "active session lost"
        );
    }
    assert_eq!(
        app.get("/read", Some(&idle)).await.body,
        "0",
        "idle session still alive"
    );
    assert_eq!(
        session_keys(&redis).len(),
        1,
        "only the active session is stored"
    );
}

#[tokio::test]
async fn a_session_that_expires_while_a_request_runs_is_not_brought_back() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "cookie_lifespan = 2", "");
    let cookie = app.new_session().await;
    let slow = app.get("/incr?delay_ms=2600", Some(&cookie)).await;
    assert_eq!(
        slow.status, 409,
        "the save after expiry must fail: {slow:?}"
    );
    assert!(
        session_keys(&redis).is_empty(),
        "the expired session came back"
    );
}

#[tokio::test]
async fn the_ttl_is_cut_short_by_absolute_lifetime() {
    let redis = RedisServer::start();
    let app = Counter::start(
        redis.port(),
        "cookie_lifespan = 3600\nabsolute_lifetime = 5",
        "",
    );
    let created = Instant::now();
    let cookie = app.new_session().await;
    let keys = session_keys(&redis);
    assert_eq!(keys.len(), 1);
    let pttl = int(redis.cmd(&["PTTL", &keys[0]]));
    assert!(
        (1..=5000).contains(&pttl),
        "a new session's PTTL must not exceed absolute_lifetime = 5 s, not cookie_lifespan: \
         {pttl} ms"
    );

    tokio::time::sleep(Duration::from_millis(1000)).await;
    let saved = app.get("/incr", Some(&cookie)).await;
    assert_eq!((saved.status, saved.body.as_str()), (200, "2"), "{saved:?}");
    let pttl = int(redis.cmd(&["PTTL", &keys[0]]));
    let left = Duration::from_secs(5).saturating_sub(created.elapsed());
    assert!(
        pttl > 0 && u128::try_from(pttl).unwrap_or(0) <= left.as_millis() + 100,
        "a save 1 s later must leave at most the rest of the lifetime ({left:?}): PTTL {pttl} ms"
    );

    let end = created + Duration::from_millis(5300);
    tokio::time::sleep(end.saturating_duration_since(Instant::now())).await;
    assert_eq!(
        app.get("/read", Some(&cookie)).await.body,
        "0",
        "the session outlived absolute_lifetime"
    );
    assert!(
        session_keys(&redis).is_empty(),
        "the record outlived absolute_lifetime"
    );
}
