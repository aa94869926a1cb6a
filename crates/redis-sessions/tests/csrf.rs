//! The CSRF synchronizer token against a private `redis-server`: made on demand, stable within a
//! session, different between sessions, replaced by a rotation (also when another request made
//! one during the login), dropped by a logout, and the axum `CsrfGuard` that checks it.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::{Request, StatusCode};
use redis_sessions::{
    Config, CsrfGuard, DataError, LockedSession, RedisPoolConfig, Session, SessionError,
    SessionManager,
};
use redis_test_support::{CountingProxy, RedisServer};
use tower::ServiceExt as _;

fn manager(port: u16) -> SessionManager {
    let mut config = Config::default();
    config.pools.insert(
        "default".into(),
        RedisPoolConfig {
            port,
            timeout: Duration::from_millis(500),
            ..RedisPoolConfig::default()
        },
    );
    SessionManager::new(config).expect("valid config")
}

fn request(cookie: Option<&str>) -> Request<()> {
    let mut builder = Request::builder().uri("/");
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", cookie);
    }
    builder.body(()).expect("request")
}

/// The `dmsession=...` pair of a persist's cookie.
fn pair(persisted: &redis_sessions::Persisted) -> String {
    let header = persisted.set_cookie.as_ref().expect("a Set-Cookie header");
    let text = header.to_str().expect("ASCII");
    text.split(';').next().unwrap_or_default().to_owned()
}

/// One request with `cookie`: runs `f` on its session, persists, and returns what `f` gave and
/// the new cookie, if any.
async fn with_session<T>(
    manager: &SessionManager,
    cookie: Option<&str>,
    f: impl FnOnce(&Session) -> T,
) -> (T, Option<String>) {
    let mut req = request(cookie);
    let session = manager.start(&mut req).await.expect("start");
    let out = f(&session);
    let persisted = manager.persist_session(&req).await.expect("persist");
    (
        out,
        persisted.set_cookie.is_some().then(|| pair(&persisted)),
    )
}

/// A stored session with a token: its cookie and the token.
async fn session_with_token(manager: &SessionManager) -> (String, String) {
    let (token, cookie) = with_session(manager, None, |s| s.csrf_token()).await;
    let cookie = cookie.expect("a new session with a token is stored and gets a cookie");
    (cookie, token.expect("a token"))
}

#[tokio::test]
async fn the_token_is_made_once_and_stays_the_same_for_the_session() {
    let redis = RedisServer::start();
    let manager = manager(redis.port());
    let (cookie, token) = session_with_token(&manager).await;
    assert_eq!(token.len(), redis_sessions::csrf::CSRF_TOKEN_LEN);
    assert!(!cookie.contains(&token), "the token is not the id");

    let ((again, ok), set) = with_session(&manager, Some(&cookie), |s| {
        (s.csrf_token().expect("token"), s.verify_csrf(&token))
    })
    .await;
    assert_eq!(again, token);
    assert!(ok);
    assert_eq!(set, None, "reading the token again writes nothing");
}

#[tokio::test]
async fn sessions_have_different_tokens_and_one_s_token_fails_in_another() {
    let redis = RedisServer::start();
    let manager = manager(redis.port());
    let (cookie_a, token_a) = session_with_token(&manager).await;
    let (cookie_b, token_b) = session_with_token(&manager).await;
    assert_ne!(token_a, token_b);
    let (ok, _) = with_session(&manager, Some(&cookie_b), |s| s.verify_csrf(&token_a)).await;
    assert!(!ok, "session B must refuse session A's token");
    let (ok, _) = with_session(&manager, Some(&cookie_a), |s| s.verify_csrf(&token_a)).await;
    assert!(ok);
}

#[tokio::test]
async fn wrong_empty_or_absent_tokens_are_refused_and_verifying_makes_none() {
    let redis = RedisServer::start();
    let manager = manager(redis.port());
    // A stored session that never asked for a token.
    let (_, cookie) = with_session(&manager, None, |s| s.put("n", &1).expect("put")).await;
    let cookie = cookie.expect("cookie");
    let (ok, set) = with_session(&manager, Some(&cookie), |s| {
        s.verify_csrf("") || s.verify_csrf(&"A".repeat(43))
    })
    .await;
    assert!(!ok && set.is_none());
    let (ok, _) = with_session(&manager, Some(&cookie), |s| {
        let none_yet = !s.verify_csrf("anything");
        let token = s.csrf_token().expect("made now, by asking");
        (none_yet, token)
    })
    .await;
    assert!(ok.0, "verify_csrf never creates a token");
    let token = ok.1;
    let mut wrong = token.clone().into_bytes();
    wrong[0] = if wrong[0] == b'x' { b'y' } else { b'x' };
    let wrong = String::from_utf8(wrong).expect("ASCII");
    let (results, _) = with_session(&manager, Some(&cookie), |s| {
        [
            s.verify_csrf(&wrong),
            s.verify_csrf(&token[..42]),
            s.verify_csrf(&format!("{token} ")),
            s.verify_csrf(""),
            s.verify_csrf(&token),
        ]
    })
    .await;
    assert_eq!(results, [false, false, false, false, true]);

    // A visitor without a session: refused, and nothing is stored.
    let (ok, set) = with_session(&manager, None, |s| s.verify_csrf(&token)).await;
    assert!(!ok && set.is_none());
    assert_eq!(redis.cmd(&["DBSIZE"]), redis::Value::Int(1));
}

#[tokio::test]
async fn a_rotation_replaces_the_token_so_one_learned_before_login_is_useless() {
    let redis = RedisServer::start();
    let manager = manager(redis.port());
    let (cookie, before) = session_with_token(&manager).await;
    let ((), rotated) = with_session(&manager, Some(&cookie), |s| {
        s.put("user", "alice").expect("put");
        s.rotate();
    })
    .await;
    let rotated = rotated.expect("a new id");
    assert_ne!(rotated, cookie);
    let ((old_ok, after), _) = with_session(&manager, Some(&rotated), |s| {
        (s.verify_csrf(&before), s.csrf_token().expect("token"))
    })
    .await;
    assert!(!old_ok, "the pre-login token must not pass after the login");
    assert_ne!(after, before);
    let (ok, _) = with_session(&manager, Some(&rotated), |s| s.verify_csrf(&after)).await;
    assert!(ok, "the fresh token is stored with the new id");
}

#[tokio::test]
async fn a_token_asked_for_after_rotate_in_the_login_request_is_the_new_one() {
    let redis = RedisServer::start();
    let manager = manager(redis.port());
    let (cookie, before) = session_with_token(&manager).await;
    let (fresh, rotated) = with_session(&manager, Some(&cookie), |s| {
        s.rotate();
        s.csrf_token().expect("token")
    })
    .await;
    assert_ne!(fresh, before);
    let rotated = rotated.expect("a new id");
    let (ok, _) = with_session(&manager, Some(&rotated), |s| s.verify_csrf(&fresh)).await;
    assert!(ok);
}

#[tokio::test]
async fn a_token_another_request_made_during_a_login_is_not_carried_over() {
    let redis = RedisServer::start();
    let manager = manager(redis.port());
    let (_, cookie) = with_session(&manager, None, |s| s.put("n", &1).expect("put")).await;
    let cookie = cookie.expect("cookie");
    // The login loads the session (no token yet) ...
    let mut login = request(Some(&cookie));
    let session = manager.start(&mut login).await.expect("start");
    // ... another tab (or an attacker holding the pre-login cookie) gets a token meanwhile ...
    let (token, _) = with_session(&manager, Some(&cookie), |s| s.csrf_token()).await;
    let token = token.expect("token");
    // ... and the login rotates, carrying over what other requests wrote.
    session.put("user", "alice").expect("put");
    session.rotate();
    let rotated = pair(&manager.persist_session(&login).await.expect("login"));
    let ((ok, user), _) = with_session(&manager, Some(&rotated), |s| {
        (s.verify_csrf(&token), s.get::<String>("user"))
    })
    .await;
    assert_eq!(user.expect("user").as_deref(), Some("alice"));
    assert!(
        !ok,
        "a token made before the rotation ended must not reach the new id"
    );
}

#[tokio::test]
async fn logout_drops_the_token_and_stores_no_new_session() {
    let redis = RedisServer::start();
    let manager = manager(redis.port());
    let (cookie, token) = session_with_token(&manager).await;
    let mut req = request(Some(&cookie));
    let session = manager.start(&mut req).await.expect("start");
    session.destroy();
    assert!(!session.verify_csrf(&token));
    let persisted = manager.persist_session(&req).await.expect("logout");
    let header = persisted.set_cookie.expect("the removal cookie");
    assert!(header.to_str().unwrap_or_default().contains("Max-Age=0"));
    let hashes: Vec<String> = match redis.cmd(&["KEYS", "dm:*"]) {
        redis::Value::Array(keys) => keys
            .into_iter()
            .filter_map(|k| match k {
                redis::Value::BulkString(b) => String::from_utf8(b).ok(),
                _ => None,
            })
            .filter(|k| redis.cmd(&["TYPE", k]) == redis::Value::SimpleString("hash".into()))
            .collect(),
        other => panic!("KEYS answered {other:?}"),
    };
    assert!(
        hashes.is_empty(),
        "no session is left or created: {hashes:?}"
    );
}

#[tokio::test]
async fn handlers_cannot_read_list_or_clear_the_token_as_data() {
    let redis = RedisServer::start();
    let manager = manager(redis.port());
    let (cookie, token) = session_with_token(&manager).await;
    let (checks, _) = with_session(&manager, Some(&cookie), |s| {
        let read = s.get::<String>("\0csrf");
        let keys: Vec<String> = s.data().keys().map(str::to_owned).collect();
        s.data().clear();
        (read, keys, s.verify_csrf(&token))
    })
    .await;
    assert!(matches!(checks.0, Err(DataError::ReservedKey { .. })));
    assert!(checks.1.is_empty(), "{:?}", checks.1);
    assert!(checks.2, "clear() keeps the token");
}

// The guard, over HTTP through the layer.

async fn token_route(session: Session) -> Result<String, SessionError> {
    Ok(session.csrf_token()?)
}

async fn guarded(guard: CsrfGuard) -> Result<&'static str, SessionError> {
    guard.put("changed", &true)?;
    Ok("changed")
}

async fn guarded_locked(guard: CsrfGuard<LockedSession>) -> Result<&'static str, SessionError> {
    guard.put("locked-change", &true)?;
    Ok("changed under the lock")
}

fn app(manager: &SessionManager) -> Router {
    Router::new()
        .route("/csrf", get(token_route))
        .route("/change", post(guarded))
        .route("/change-locked", post(guarded_locked))
        .layer(manager.layer())
}

async fn call(
    app: &Router,
    path: &str,
    cookie: Option<&str>,
    token: Option<&str>,
) -> (StatusCode, String) {
    let mut builder = Request::builder()
        .method(if path == "/csrf" { "GET" } else { "POST" })
        .uri(path);
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", cookie);
    }
    if let Some(token) = token {
        builder = builder.header("x-csrf-token", token);
    }
    let response = app
        .clone()
        .oneshot(builder.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .expect("body");
    let body = String::from_utf8(body.to_vec()).expect("UTF-8");
    if status == StatusCode::FORBIDDEN {
        assert_eq!(content_type.as_deref(), Some("application/json"), "{body}");
        let value: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert!(
            value["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    }
    (status, body)
}

#[tokio::test]
async fn the_guard_lets_only_the_session_s_token_through_and_answers_403_json_otherwise() {
    let redis = RedisServer::start();
    let proxy = CountingProxy::start(redis.port());
    let manager = manager(proxy.port());
    let app = app(&manager);
    let (cookie, token) = session_with_token(&manager).await;
    let (_, other_token) = session_with_token(&manager).await;
    proxy.wait_idle();
    proxy.reset();

    let (status, body) = call(&app, "/change", Some(&cookie), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("X-CSRF-Token"), "{body}");
    proxy.wait_idle();
    assert_eq!(proxy.round_trips(), 0, "no header: refused before loading");

    for path in ["/change", "/change-locked"] {
        for wrong in [other_token.as_str(), "", "not-a-token"] {
            let (status, body) = call(&app, path, Some(&cookie), Some(wrong)).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path} {wrong:?}: {body}");
            assert!(body.contains("invalid CSRF token"), "{body}");
        }
        let (status, _) = call(&app, path, None, Some(&token)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "no session, no token");
        let (status, body) = call(&app, path, Some(&cookie), Some(&token)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let (changes, _) = with_session(&manager, Some(&cookie), |s| {
        (s.get::<bool>("changed"), s.get::<bool>("locked-change"))
    })
    .await;
    assert_eq!(changes.0.expect("decode"), Some(true));
    assert_eq!(changes.1.expect("decode"), Some(true));

    // GET /csrf hands out the same token the session holds.
    let (status, body) = call(&app, "/csrf", Some(&cookie), None).await;
    assert_eq!((status, body), (StatusCode::OK, token));
}
