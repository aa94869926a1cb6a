//! Session values are secrets too (the CSRF token, the user a session is bound to, whatever a
//! handler keeps), and `{:?}` reaches logs easily: `#[tracing::instrument]` records every handler
//! argument with it by default. So no `Debug` of the public API shows a value or a token (keys,
//! counts and sizes only), nor does an error about a value, nor a pool's `Debug` its passwords.
//! `no_id_leaks.rs` does the same for session ids.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::get;
use bytes::Bytes;
use http::Request;
use redis_sessions::id::SessionId;
use redis_sessions::store::memory::MemoryStore;
use redis_sessions::store::{ChangeSet, EndRequest, LockToken, Meta, Record, SessionStore};
use redis_sessions::{
    Config, CsrfGuard, Flashes, LockedSession, RedisPoolConfig, Session, SessionError,
    SessionManager,
};

/// A value a handler stores.
const VALUE: &str = "value-s3cret-9f41c2";
/// A number a handler stores, as it would be printed.
const NUMBER: u64 = 918_273_645_546;
/// The user the session is bound to.
const USER: &str = "user-4711-s3cret@example.com";
/// The session's description in its user's list.
const DESCRIPTION: &str = "device-s3cret-7e2d";
/// A flash message.
const FLASH: &str = "flash-s3cret-55aa01";
/// A lock token.
const LOCK: &str = "lock-token-s3cret-31c8";
/// Passwords of a pool and of its sentinels.
const PASSWORDS: [&str; 2] = ["pool-password-s3cret", "sentinel-password-s3cret"];

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

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
}

/// The secrets that `text` shows.
fn shown<'a>(text: &str, secrets: &'a [String]) -> Vec<&'a str> {
    (secrets.iter().map(String::as_str))
        .filter(|s| text.contains(s))
        .collect()
}

/// `value` with `{:?}` and `{:#?}`.
fn both<T: std::fmt::Debug>(value: &T) -> String {
    format!("{value:?}\n{value:#?}")
}

fn request(cookie: Option<&str>, csrf: Option<&str>) -> Request<axum::body::Body> {
    let mut builder = Request::builder().uri("/");
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", cookie);
    }
    if let Some(token) = csrf {
        builder = builder.header("x-csrf-token", token);
    }
    builder.body(axum::body::Body::empty()).expect("request")
}

fn cookie_pair(persisted: &redis_sessions::Persisted) -> String {
    let header = persisted.set_cookie.as_ref().expect("a cookie");
    let text = header.to_str().expect("ascii");
    text.split(';').next().unwrap_or_default().to_owned()
}

/// A handler as applications write them: `#[tracing::instrument]` records its arguments with
/// `Debug`. Answers with the arguments' `Debug`, so the test sees that too.
#[tracing::instrument]
async fn instrumented(session: Session, flashes: Flashes) -> Result<String, SessionError> {
    tracing::info!("in the handler");
    let value: Option<String> = session.get("secret")?;
    assert_eq!(value.as_deref(), Some(VALUE), "the handler reads the value");
    Ok(format!("{}\n{}", both(&session), both(&flashes)))
}

#[tracing::instrument]
async fn instrumented_locked(guard: CsrfGuard<LockedSession>) -> String {
    tracing::info!("in the locked handler");
    format!("{}\n{}", both(&guard), both(&*guard))
}

#[tracing::instrument]
async fn instrumented_guarded(guard: CsrfGuard) -> String {
    tracing::info!("in the guarded handler");
    both(&guard)
}

#[tokio::test]
async fn no_value_token_or_password_in_any_debug_log_or_error() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut config = Config::default();
    let pool = config.pools.entry("default".into()).or_default();
    pool.password = Some(PASSWORDS[0].into());
    pool.sentinel_password = Some(PASSWORDS[1].into());
    pool.sentinel_nodes = vec!["127.0.0.1:1".into()];
    pool.sentinel_master = Some("main".into());
    let manager =
        SessionManager::with_store(config.clone(), MemoryStore::default()).expect("manager");
    let mut secrets: Vec<String> = [VALUE, USER, DESCRIPTION, FLASH, LOCK]
        .into_iter()
        .chain(PASSWORDS)
        .map(str::to_owned)
        .collect();
    secrets.push(NUMBER.to_string());
    let mut seen: Vec<(&str, String)> = Vec::new();

    // A session holding a value, a number, a CSRF token, a bound user, a description, a flash.
    let mut req = request(None, None);
    let session = manager.start(&mut req).await.expect("start");
    session.put("secret", VALUE).expect("put");
    session.put("number", &NUMBER).expect("put");
    // Binding a user (a login) renews the CSRF token: take it after.
    session.bind_user(USER).expect("bind");
    let token = session.csrf_token().expect("csrf token");
    secrets.push(token.clone());
    session.describe(DESCRIPTION).expect("describe");
    session.flash("info", FLASH).expect("flash");
    seen.push(("Session (before persist)", both(&session)));
    seen.push(("DataGuard", both(&session.data())));
    seen.push(("SessionData", both(&*session.data())));
    let persisted = manager.persist_session(&req).await.expect("persist");
    seen.push(("Persisted and Session", both(&(&persisted, &session))));
    let cookie = cookie_pair(&persisted);
    seen.push(("SessionManager", both(&manager)));
    seen.push(("Config", both(&config)));
    seen.push(("RedisPoolConfig", both(&config.pools["default"])));
    let builder = Config::builder().pool(
        "default",
        RedisPoolConfig {
            password: Some(PASSWORDS[0].into()),
            ..RedisPoolConfig::default()
        },
    );
    seen.push(("ConfigBuilder", both(&builder)));

    // The user's list of sessions.
    let listed = manager.user_sessions(USER, None).await.expect("list");
    assert_eq!(listed.len(), 1);
    seen.push(("UserSession", both(&listed)));

    // An error about a value: the string read as a number.
    let mut req = request(Some(&cookie), None);
    let again = manager.start(&mut req).await.expect("start");
    let error = again.get::<u32>("secret").expect_err("not a number");
    seen.push(("DataError", format!("{error} {}", both(&error))));
    let error = SessionError::from(error);
    seen.push(("SessionError", format!("{error} {}", both(&error))));
    let error = again.get::<bool>("number").expect_err("not a bool");
    seen.push(("DataError (number)", format!("{error} {}", both(&error))));
    drop(again);

    // Through the layer, in handlers that `#[tracing::instrument]` their arguments.
    let app = axum::Router::new()
        .route("/", get(instrumented))
        .route("/locked", get(instrumented_locked))
        .route("/guarded", get(instrumented_guarded))
        .layer(manager.layer());
    let call = async |path: &str| {
        let mut request = request(Some(&cookie), Some(&token));
        *request.uri_mut() = path.parse().expect("uri");
        let response = tower::ServiceExt::oneshot(app.clone(), request)
            .await
            .expect("infallible");
        assert_eq!(response.status(), 200, "{path}");
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        String::from_utf8_lossy(&body).into_owned()
    };
    for path in ["/", "/locked", "/guarded"] {
        seen.push(("a handler's Debug of its arguments", call(path).await));
    }
    let logged = captured.text();
    assert!(
        logged.contains("instrumented{session=Session {")
            && logged.contains("instrumented_locked{guard=CsrfGuard(LockedSession("),
        "the handlers' spans were captured:\n{logged}"
    );

    // The store's types, as a custom store or a test sees them.
    let store = MemoryStore::default();
    let id = SessionId::generate().storage_id();
    let record = Record {
        meta: Meta {
            created_ms: 1,
            touched_ms: 2,
        },
        fields: vec![("secret".into(), Bytes::from(VALUE))],
    };
    store
        .create(&id, &record, Duration::from_secs(60))
        .await
        .expect("create");
    let lock = LockToken(LOCK.into());
    let loaded = store
        .load_locked(&id, &lock, Duration::from_secs(5))
        .await
        .expect("load");
    let changes = ChangeSet {
        set: vec![("secret".into(), Bytes::from(VALUE))],
        removed: vec![],
        meta: record.meta,
        ttl: Duration::from_secs(60),
        unlock: Some(lock.clone()),
        within_lifetime: true,
    };
    let end = EndRequest {
        tombstone: Duration::from_secs(60),
        lock: Some(&lock),
        require_lock: true,
        successor: "",
    };
    seen.push((
        "Record, LockedLoad, ChangeSet, LockToken, EndRequest",
        both(&(&record, &loaded, &changes, &lock, &end)),
    ));
    seen.push(("MemoryStore", both(&store)));
    let ended = store.end(&id, end).await.expect("end");
    seen.push(("EndOutcome", both(&ended)));

    seen.push(("the log", captured.text()));
    let leaks: Vec<String> = (seen.iter())
        .filter(|(_, text)| !shown(text, &secrets).is_empty())
        .map(|(what, text)| format!("{what} shows {:?}:\n{text}", shown(text, &secrets)))
        .collect();
    let places: Vec<&str> = (seen.iter())
        .filter(|(_, text)| !shown(text, &secrets).is_empty())
        .map(|(what, _)| *what)
        .collect();
    assert!(
        leaks.is_empty(),
        "secrets shown by {places:?}\n{}",
        leaks.join("\n")
    );
    // Keys and sizes stay visible: what Debug is for.
    let session_debug = &seen[0].1;
    assert!(
        session_debug.contains("\"secret\"") && session_debug.contains("bytes>"),
        "{session_debug}"
    );
}
