//! The manager's start -> modify -> persist story, used directly (no layer), against a private
//! `redis-server`.

use std::time::Duration;

use http::Request;
use redis_sessions::{Config, DataError, RedisPoolConfig, SessionError, SessionManager};
use redis_test_support::{CountingProxy, RedisServer};

fn manager(port: u16, tweak: impl FnOnce(&mut Config)) -> SessionManager {
    let mut config = Config::default();
    config.pools.insert(
        "default".into(),
        RedisPoolConfig {
            port,
            timeout: Duration::from_millis(500),
            ..RedisPoolConfig::default()
        },
    );
    tweak(&mut config);
    SessionManager::new(config).expect("valid config")
}

fn request(cookie: Option<&str>) -> Request<()> {
    let mut builder = Request::builder().uri("/");
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", cookie);
    }
    builder.body(()).expect("request")
}

/// Persists a new session holding `pairs` and returns its cookie (`dmsession=...`).
async fn stored_session(manager: &SessionManager, pairs: &[(&str, i64)]) -> String {
    let mut req = request(None);
    let session = manager.start(&mut req).await.expect("start");
    for (k, v) in pairs {
        session.put(k, v).expect("put");
    }
    let persisted = manager.persist_session(&req).await.expect("persist");
    let header = persisted.set_cookie.expect("cookie for a new session");
    header
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn no_redis_connection_is_made_until_a_session_is_started() {
    let redis = RedisServer::start();
    let proxy = CountingProxy::start(redis.port());
    let manager = manager(proxy.port(), |_| {});
    let mut req = request(None);
    let session = manager.start(&mut req).await.expect("start without cookie");
    assert!(session.is_new());
    let _ = manager
        .persist_session(&req)
        .await
        .expect("persist of untouched session");
    proxy.wait_idle();
    assert!(
        proxy.commands().is_empty(),
        "talked to Redis: {:?}",
        proxy.command_names()
    );
}

#[tokio::test]
async fn start_returns_the_same_session_for_the_rest_of_the_request() {
    let redis = RedisServer::start();
    let proxy = CountingProxy::start(redis.port());
    let manager = manager(proxy.port(), |_| {});
    let cookie = stored_session(&manager, &[("n", 1)]).await;
    proxy.reset();
    let mut req = request(Some(&cookie));
    let first = manager.start(&mut req).await.expect("start");
    first.put("n", &2).expect("put");
    let second = manager.start(&mut req).await.expect("start again");
    assert_eq!(
        second.get::<i64>("n").expect("get"),
        Some(2),
        "same session"
    );
    let mut names = proxy.command_names();
    names.retain(|n| n != "CLIENT"); // a pooled connection's first use sends CLIENT SETINFO
    assert_eq!(names, ["HGETALL"], "loaded once");
}

#[tokio::test]
async fn start_and_persist_return_errors_while_redis_is_down() {
    let mut redis = RedisServer::start();
    let manager = manager(redis.port(), |_| {});
    let cookie = stored_session(&manager, &[("n", 1)]).await;
    let mut req = request(Some(&cookie));
    let session = manager.start(&mut req).await.expect("start");
    redis.stop();
    session.put("n", &2).expect("put is memory only");
    let err = manager
        .persist_session(&req)
        .await
        .expect_err("persist must fail");
    assert!(matches!(err, SessionError::Store(_)), "{err}");
    assert_eq!(err.status(), 503);
    let err = manager
        .start(&mut request(Some(&cookie)))
        .await
        .expect_err("start must fail");
    assert!(matches!(err, SessionError::Store(_)), "{err}");
    redis.restart();
    // The failed changes stayed pending, so persisting again (after recovery) writes them.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while manager.persist_session(&req).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "no recovery");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Redis restarted empty (no persistence), so the retried save recreates the changed key.
    let session = manager
        .start(&mut request(Some(&cookie)))
        .await
        .expect("start");
    assert_eq!(
        session.get::<i64>("n").expect("get"),
        Some(2),
        "the retry wrote the change"
    );
}

#[tokio::test]
async fn a_corrupt_stored_value_is_an_error_for_that_key_only() {
    let redis = RedisServer::start();
    let manager = manager(redis.port(), |_| {});
    let cookie = stored_session(&manager, &[("good", 7), ("bad", 1)]).await;
    let key = match redis.cmd(&["KEYS", "dm:*"]) {
        redis::Value::Array(keys) => match &keys[..] {
            [redis::Value::BulkString(k)] => String::from_utf8_lossy(k).into_owned(),
            other => panic!("expected one key, got {other:?}"),
        },
        other => panic!("{other:?}"),
    };
    // 0xc1 is never valid MessagePack.
    let client = redis::Client::open(redis.url()).expect("client");
    let mut conn = client.get_connection().expect("connection");
    redis::cmd("HSET")
        .arg(&key)
        .arg("bad")
        .arg(&[0xc1u8][..])
        .exec(&mut conn)
        .expect("HSET");

    let session = manager
        .start(&mut request(Some(&cookie)))
        .await
        .expect("start");
    let err = session.get::<i64>("bad").expect_err("corrupt value");
    assert!(
        matches!(err, DataError::Decode { ref key, .. } if key == "bad"),
        "{err}"
    );
    assert!(
        err.to_string().contains("\"bad\""),
        "the message names the key: {err}"
    );
    assert_eq!(
        session.get::<i64>("good").expect("other keys readable"),
        Some(7)
    );
}

#[tokio::test]
async fn a_value_over_max_value_bytes_fails_at_put_and_nothing_is_written() {
    let redis = RedisServer::start();
    let manager = manager(redis.port(), |c| c.session.max_value_bytes = 100);
    let mut req = request(None);
    let session = manager.start(&mut req).await.expect("start");
    let err = session.put("big", &"x".repeat(200)).expect_err("too large");
    assert!(
        matches!(err, DataError::ValueTooLarge { limit: 100, .. }),
        "{err}"
    );
    let persisted = manager.persist_session(&req).await.expect("persist");
    assert!(
        persisted.set_cookie.is_none(),
        "nothing to store, no cookie"
    );
    assert_eq!(redis.cmd(&["DBSIZE"]), redis::Value::Int(0));
}

#[tokio::test]
async fn the_absolute_lifetime_ends_even_an_active_session() {
    let redis = RedisServer::start();
    let manager = manager(redis.port(), |c| {
        c.session.absolute_lifetime = Some(Duration::from_millis(1500));
        c.session.touch_interval = Duration::from_millis(100);
    });
    let cookie = stored_session(&manager, &[("n", 1)]).await;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let mut req = request(Some(&cookie));
        let session = manager.start(&mut req).await.expect("start");
        assert_eq!(
            session.get::<i64>("n").expect("get"),
            Some(1),
            "still alive"
        );
        let _ = manager.persist_session(&req).await.expect("touch");
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let session = manager
        .start(&mut request(Some(&cookie)))
        .await
        .expect("start");
    assert!(
        session.is_new(),
        "past the absolute lifetime the session is gone"
    );
}
