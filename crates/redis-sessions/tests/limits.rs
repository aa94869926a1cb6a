//! Size limits: `max_session_bytes` counts the bytes of the keys as well as those of the encoded
//! values, for keys put in one request and for a session loaded from the store; over HTTP a
//! session that would grow past it answers 413 and keeps its old data.

mod common;

use http::Request;
use redis_sessions::store::memory::MemoryStore;
use redis_sessions::{Config, DataError, SessionManager};
use redis_test_support::RedisServer;

use common::Counter;

/// Length of each session key: four of them (1,204 bytes with their one-byte values) exceed the
/// 1,000-byte limit, while their values alone (4 bytes) are far below it.
const KEY_LEN: usize = 300;
const LIMITS: &str = "max_value_bytes = 100\nmax_session_bytes = 1000";

fn long_key(i: usize) -> String {
    format!("{i}{}", "k".repeat(KEY_LEN - 1))
}

#[tokio::test]
async fn key_bytes_count_towards_max_session_bytes_over_http() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), LIMITS, "");
    let first = app.get(&format!("/incr?key={}", long_key(0)), None).await;
    assert_eq!(first.status, 200, "{first:?}");
    let cookie = first.cookie();
    for i in 1..3 {
        let reply = app
            .get(&format!("/incr?key={}", long_key(i)), Some(&cookie))
            .await;
        assert_eq!(reply.status, 200, "3 x 301 = 903 bytes fit: {reply:?}");
    }

    let over = app
        .get(&format!("/incr?key={}", long_key(3)), Some(&cookie))
        .await;
    assert_eq!(
        over.status, 413,
        "4 keys of {KEY_LEN} bytes with 1-byte values are 1,204 bytes, over 1,000: {over:?}"
    );

    let read = async |i: usize| {
        app.get(&format!("/read?key={}", long_key(i)), Some(&cookie))
            .await
            .body
    };
    assert_eq!(read(3).await, "0", "the refused key was stored");
    for i in 0..3 {
        assert_eq!(read(i).await, "1", "key {i} lost");
    }
    let small = app.get("/incr?key=s", Some(&cookie)).await;
    assert_eq!(small.status, 200, "903 + 2 bytes still fit: {small:?}");
}

fn manager() -> SessionManager {
    let mut config = Config::default();
    config.session.max_value_bytes = 100;
    config.session.max_session_bytes = 1000;
    SessionManager::with_store(config, MemoryStore::default()).expect("valid config")
}

fn request(cookie: Option<&str>) -> Request<()> {
    let mut builder = Request::builder().uri("/");
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", cookie);
    }
    builder.body(()).expect("request")
}

#[tokio::test]
async fn key_bytes_count_in_one_request_and_after_a_load() {
    let manager = manager();
    let mut req = request(None);
    let session = manager.start(&mut req).await.expect("start");
    for i in 0..3 {
        session.put(&long_key(i), &1u8).expect("3 x 301 bytes fit");
    }
    let err = session
        .put(&long_key(3), &1u8)
        .expect_err("a fourth long key exceeds max_session_bytes");
    assert!(
        matches!(err, DataError::SessionTooLarge { limit: 1000, size } if size > 1000),
        "{err:?}"
    );
    session
        .put(&long_key(0), &2u8)
        .expect("replacing a value does not grow the session");
    let persisted = manager.persist_session(&req).await.expect("persist");
    let header = persisted.set_cookie.expect("a cookie for the new session");
    let cookie = header
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();

    // The same session loaded from the store counts its stored keys too.
    let mut req = request(Some(&cookie));
    let loaded = manager.start(&mut req).await.expect("load");
    assert_eq!(loaded.get::<u8>(&long_key(0)).expect("decode"), Some(2));
    let err = loaded
        .put(&long_key(3), &1u8)
        .expect_err("a fourth long key exceeds max_session_bytes after a load");
    assert!(matches!(err, DataError::SessionTooLarge { .. }), "{err:?}");
    loaded.put("s", &1u8).expect("903 + 2 bytes fit");
}
