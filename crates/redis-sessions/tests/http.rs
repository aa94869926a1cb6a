//! HTTP-level specification of cookies, ids and round trips: the real `counter` example, through
//! the real layer, against a private `redis-server`, with real cookies. Lifetimes, the lock,
//! persist modes, size limits and faults have their own `http_*`, `limits`, `two_processes` and
//! `faults*` files.

mod common;

use std::time::{Duration, Instant};

use common::{Counter, session_keys};
use redis_test_support::{CountingProxy, RedisServer};

#[tokio::test]
async fn set_cookie_carries_only_the_id_with_the_configured_attributes() {
    let redis = RedisServer::start();
    let app = Counter::start(
        redis.port(),
        "cookie_lifespan = 1234\ncookie_samesite = strict",
        "",
    );
    let reply = app.get("/incr", None).await;
    let header = reply
        .set_cookie
        .clone()
        .expect("Set-Cookie on a new session");
    let mut parts: Vec<&str> = header.split(';').map(str::trim).collect();
    let pair = parts.remove(0);
    let (name, value) = pair.split_once('=').expect("name=value");
    assert_eq!(name, "dmsession");
    assert_eq!(
        value.len(),
        43,
        "the value is the bare 43-character id: {value}"
    );
    parts.sort_unstable();
    assert_eq!(
        parts,
        [
            "HttpOnly",
            "Max-Age=1234",
            "Path=/",
            "SameSite=Strict",
            "Secure"
        ]
    );
}

#[tokio::test]
async fn round_trips_per_request_match_the_budget() {
    let redis = RedisServer::start();
    let proxy = CountingProxy::start(redis.port());
    let app = Counter::start(proxy.port(), "", "");
    let cookie = app.new_session().await;
    // The first save loads the script into Redis (NOSCRIPT, SCRIPT LOAD): once per server.
    app.get("/incr", Some(&cookie)).await;
    let measure = async |path: &str, cookie: Option<&str>| {
        proxy.reset();
        let reply = app.get(path, cookie).await;
        assert!(reply.status == 200, "{path}: {reply:?}");
        (proxy.round_trips(), proxy.command_names())
    };
    let malformed = "dmsession=not-a-session-id";
    assert_eq!(
        measure("/", Some(&cookie)).await.0,
        0,
        "route that never starts the session"
    );
    assert_eq!(
        measure("/read", None).await.0,
        0,
        "started but untouched, no cookie"
    );
    assert_eq!(
        measure("/read", Some(malformed)).await.0,
        0,
        "malformed cookie"
    );
    let (trips, commands) = measure("/read", Some(&cookie)).await;
    assert_eq!(
        (trips, commands),
        (1, vec!["HGETALL".to_owned()]),
        "read is one plain HGETALL"
    );
    let (trips, commands) = measure("/incr", Some(&cookie)).await;
    assert_eq!(trips, 2, "modify = load + save: {commands:?}");
    assert_eq!(commands[0], "HGETALL");
    let (trips, commands) = measure("/incr", None).await;
    assert_eq!(trips, 1, "new session is one pipelined write: {commands:?}");
    assert_eq!(commands, ["HSET", "PEXPIRE"]);
}

#[tokio::test]
async fn a_read_costs_one_extra_touch_at_most_once_per_interval() {
    let redis = RedisServer::start();
    let proxy = CountingProxy::start(redis.port());
    let app = Counter::start(proxy.port(), "touch_interval = 0.5", "");
    let cookie = app.new_session().await;
    app.get("/incr", Some(&cookie)).await; // loads the save script
    tokio::time::sleep(Duration::from_millis(600)).await;
    proxy.reset();
    let first = app.get("/read", Some(&cookie)).await;
    assert_eq!(
        proxy.round_trips(),
        2,
        "the read after the interval touches"
    );
    assert!(first.set_cookie.is_some(), "the touch re-issues the cookie");
    proxy.reset();
    let second = app.get("/read", Some(&cookie)).await;
    assert_eq!(proxy.round_trips(), 1, "the next read does not touch again");
    assert!(second.set_cookie.is_none());
}

#[tokio::test]
async fn a_well_formed_unknown_id_is_never_adopted() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "", "");
    let chosen = format!("dmsession={}", "A".repeat(43));
    let reply = app.get("/incr", Some(&chosen)).await;
    assert_eq!(reply.body, "1");
    assert_ne!(reply.cookie(), chosen, "a fresh id is issued");
    assert_eq!(
        app.get("/read", Some(&chosen)).await.body,
        "0",
        "the chosen id stays unknown"
    );
    assert_eq!(app.get("/read", Some(&reply.cookie())).await.body, "1");
}

#[tokio::test]
async fn concurrent_writes_to_different_keys_of_one_session_all_survive() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "", "");
    let cookie = app.new_session().await;
    let requests = (0..64).map(|i| {
        let (app, cookie) = (&app, &cookie);
        async move {
            app.get(&format!("/incr?key=k{i}&delay_ms=100"), Some(cookie))
                .await
        }
    });
    let replies = futures_util::future::join_all(requests).await;
    assert!(
        replies.iter().all(|r| r.status == 200 && r.body == "1"),
        "{replies:?}"
    );
    for i in 0..64 {
        assert_eq!(
            app.get(&format!("/read?key=k{i}"), Some(&cookie))
                .await
                .body,
            "1",
            "k{i} lost"
        );
    }
}

#[tokio::test]
async fn a_save_after_destroy_neither_resurrects_the_session_nor_answers_200() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "", "");
    let cookie = app.new_session().await;
    let slow = app.get("/incr?delay_ms=500", Some(&cookie));
    let logout = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        app.get("/logout", Some(&cookie)).await
    };
    let (slow, logout) = tokio::join!(slow, logout);
    assert_eq!(logout.status, 200);
    assert!(
        logout
            .set_cookie
            .as_deref()
            .is_some_and(|c| c.contains("Max-Age=0")),
        "{logout:?}"
    );
    assert_eq!(slow.status, 409, "the in-flight save must fail: {slow:?}");
    assert!(session_keys(&redis).is_empty(), "the session came back");
    assert_eq!(app.get("/read", Some(&cookie)).await.body, "0");
}

#[tokio::test]
async fn rotation_keeps_the_data_and_kills_the_old_id() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "", "");
    let old = app.new_session().await;
    let reply = app.get("/rotate", Some(&old)).await;
    let new = reply.cookie();
    assert_ne!(new, old);
    assert_eq!(app.get("/read", Some(&new)).await.body, "1", "data kept");
    assert_eq!(app.get("/read", Some(&old)).await.body, "0", "old id dead");
    assert_eq!(session_keys(&redis).len(), 1);
}

#[tokio::test]
async fn with_redis_down_the_layer_answers_503_quickly_and_recovers() {
    let mut redis = RedisServer::start();
    let app = Counter::start(redis.port(), "", "default[timeout] = 1");
    let cookie = app.new_session().await;
    redis.stop();
    for path in ["/incr", "/read"] {
        let started = Instant::now();
        let reply = app.get(path, Some(&cookie)).await;
        assert_eq!(reply.status, 503, "{path}: {reply:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{path} took {:?}",
            started.elapsed()
        );
    }
    let fresh = app.get("/incr", None).await;
    assert_eq!(fresh.status, 503, "a new session cannot be written either");
    assert!(
        fresh.set_cookie.is_none(),
        "no cookie for a write that did not land"
    );
    assert_eq!(
        app.get("/", Some(&cookie)).await.status,
        200,
        "routes without sessions work"
    );
    redis.restart();
    let started = Instant::now();
    loop {
        let reply = app.get("/incr", None).await;
        if reply.status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no recovery: {reply:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_started_but_unwritten_session_sets_no_cookie_and_writes_nothing() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "", "");
    let reply = app.get("/read", None).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "0"));
    assert!(reply.set_cookie.is_none(), "{reply:?}");
    assert_eq!(redis.cmd(&["DBSIZE"]), redis::Value::Int(0));
}
