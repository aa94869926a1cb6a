//! HTTP-level specification: the real `counter` example, through the real layer, against a
//! private `redis-server`, with real cookies.

mod common;

use std::time::{Duration, Instant};

use common::{Counter, int, session_keys};
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
async fn the_session_lock_serialises_read_modify_write_of_one_key() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "", "");
    let cookie = app.new_session().await;
    let requests = (0..20).map(|_| app.get("/incr-locked?key=c&delay_ms=10", Some(&cookie)));
    let replies = futures_util::future::join_all(requests).await;
    assert!(replies.iter().all(|r| r.status == 200), "{replies:?}");
    assert_eq!(app.get("/read?key=c", Some(&cookie)).await.body, "20");
    let locks = session_keys(&redis);
    assert_eq!(locks.len(), 1, "no lock key is left behind");
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
}
