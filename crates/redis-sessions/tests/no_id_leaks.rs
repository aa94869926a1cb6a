//! The session id is a bearer secret: it must not appear in any `Debug` or `Display` output,
//! any log line (at every level, ours and our dependencies'), or any error, on every path
//! (create, read, touch, save, rotate, destroy, a late write, Redis down). Also: Redis's eviction
//! settings are checked, because an evicted tombstone could undo a logout.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Request;
use redis_sessions::{Config, RedisPoolConfig, RedisStore, SessionError, SessionManager};
use redis_test_support::RedisServer;

/// Everything logged, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn request(cookie: Option<&str>) -> Request<()> {
    let mut builder = Request::builder().uri("/");
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", cookie);
    }
    builder.body(()).expect("request")
}

fn cookie_value(persisted: &redis_sessions::Persisted) -> String {
    let header = persisted.set_cookie.as_ref().expect("a cookie");
    let text = header.to_str().expect("ascii");
    let pair = text.split(';').next().unwrap_or_default();
    pair.split_once('=')
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn no_session_id_in_any_debug_display_log_or_error() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut redis = RedisServer::start();
    let mut config = Config::default();
    config.pools.insert(
        "default".into(),
        RedisPoolConfig {
            port: redis.port(),
            timeout: Duration::from_millis(300),
            ..RedisPoolConfig::default()
        },
    );
    config.session.touch_interval = Duration::from_millis(1);
    let manager = SessionManager::new(config).expect("manager");
    let mut seen: Vec<String> = Vec::new();
    let mut ids: Vec<String> = Vec::new();

    // Create, read (with a touch), write, rotate.
    let mut req = request(None);
    let session = manager.start(&mut req).await.expect("start");
    session.put("n", &1).expect("put");
    let created = manager.persist_session(&req).await.expect("create");
    seen.push(format!("{created:?} {session:?} {manager:?}"));
    ids.push(cookie_value(&created));
    let cookie = format!("dmsession={}", ids[0]);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut req = request(Some(&cookie));
    let session = manager.start(&mut req).await.expect("start");
    session.put("n", &2).expect("put");
    session.rotate();
    let rotated = manager.persist_session(&req).await.expect("rotate");
    seen.push(format!("{rotated:?} {session:?}"));
    ids.push(cookie_value(&rotated));
    // A late write with the rotated-away id, then a logout.
    let mut late = request(Some(&cookie));
    let session = manager.start(&mut late).await.expect("start");
    session.put("n", &3).expect("put");
    let gone = manager.persist_session(&late).await.expect_err("gone");
    seen.push(format!("{gone} {gone:?} {session:?}"));
    let new_cookie = format!("dmsession={}", ids[1]);
    let mut logout = request(Some(&new_cookie));
    let session = manager.start(&mut logout).await.expect("start");
    session.destroy();
    let removed = manager.persist_session(&logout).await.expect("logout");
    seen.push(format!("{removed:?} {session:?}"));
    // A late write through the layer, which logs its 409.
    let app = axum::Router::new()
        .route(
            "/incr",
            axum::routing::get(|session: redis_sessions::Session| async move {
                session.put("n", &9)?;
                Ok::<_, SessionError>("ok")
            }),
        )
        .layer(manager.layer());
    let call = async |cookie: &str| {
        let request = http::Request::builder()
            .uri("/incr")
            .header("cookie", cookie)
            .body(axum::body::Body::empty())
            .expect("request");
        tower::ServiceExt::oneshot(app.clone(), request)
            .await
            .expect("infallible")
    };
    let response = call(&cookie).await;
    assert_eq!(response.status(), 409, "a late write through the layer");
    seen.push(format!("{response:?}"));
    // Redis down: errors on start and on persist, directly and through the layer.
    let mut req = request(None);
    manager
        .start(&mut req)
        .await
        .expect("start")
        .put("n", &1)
        .expect("put");
    ids.push(cookie_value(
        &manager.persist_session(&req).await.expect("create"),
    ));
    let new_cookie = format!("dmsession={}", ids[2]);
    let mut req = request(Some(&new_cookie));
    let session = manager.start(&mut req).await.expect("start");
    redis.stop();
    session.put("n", &4).expect("put");
    let down = manager.persist_session(&req).await.expect_err("down");
    assert!(matches!(down, SessionError::Store(_)));
    let start_err = manager
        .start(&mut request(Some(&new_cookie)))
        .await
        .expect_err("down");
    seen.push(format!(
        "{down} {down:?} {start_err} {start_err:?} {session:?}"
    ));
    let response = call(&new_cookie).await;
    assert_eq!(response.status(), 503);
    seen.push(format!("{response:?}"));

    let logs = String::from_utf8_lossy(&captured.0.lock().expect("logs")).into_owned();
    assert!(
        logs.contains("session not persisted") || logs.contains("session error"),
        "the subscriber captured the library's logs: {logs}"
    );
    assert_eq!(ids.len(), 3);
    for id in &ids {
        assert_eq!(id.len(), 43, "a real id: {id}");
        for text in &seen {
            assert!(!text.contains(id.as_str()), "the id leaks in: {text}");
        }
        assert!(!logs.contains(id.as_str()), "the id leaks into the logs");
    }
}

#[tokio::test]
async fn a_redis_that_may_evict_keys_is_reported_at_start_up() {
    let evicting = RedisServer::start_with_args(&[
        "--maxmemory",
        "64mb",
        "--maxmemory-policy",
        "volatile-lru",
    ]);
    let safe = RedisServer::start_with_args(&["--maxmemory", "64mb"]);
    let unbounded = RedisServer::start();
    let risk = async |server: &RedisServer| {
        let pool = RedisPoolConfig {
            port: server.port(),
            ..RedisPoolConfig::default()
        };
        RedisStore::new(&pool)
            .expect("store")
            .eviction_risk()
            .await
            .expect("INFO answered")
    };
    let reported = risk(&evicting)
        .await
        .expect("volatile-lru may evict tombstones");
    assert_eq!(reported.policy, "volatile-lru");
    assert!(reported.to_string().contains("noeviction"), "{reported}");
    assert_eq!(risk(&safe).await, None, "noeviction (the default) is safe");
    assert_eq!(
        risk(&unbounded).await,
        None,
        "no maxmemory: nothing is evicted"
    );
}
