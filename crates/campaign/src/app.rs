//! The application under test: a small axum app on the library whose every route is one of the
//! campaign's operations, and whose answers carry what the checker needs (the values read, the
//! counter, when the handler held the lock). Each app instance is this code in a process of its
//! own (`campaign serve`), so instances can be killed and restarted as real servers are.

use std::fs::File;
use std::io::Write as _;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use redis_sessions::{LockedSession, Session, SessionError, SessionManager};
use serde::Deserialize;
use serde_json::{Value, json};

/// The keys `put` writes (a few, so that tabs overwrite each other's values).
pub const KEYS: [&str; 3] = ["k0", "k1", "k2"];

/// The counter the locked increment updates.
const COUNTER: &str = "n";

/// The tag of the login that made the session (as described in the user's list).
const LOGIN: &str = "login";

#[derive(Deserialize)]
struct Params {
    key: Option<String>,
    value: Option<String>,
    user: Option<String>,
    tag: Option<String>,
    op: Option<String>,
    delay_ms: Option<u64>,
}

/// Where the locked handlers log when they held the lock: `<op> <from_us> <to_us>` per line,
/// written before the response (and whatever it turns out to be: `2xx`, or `409` when the
/// persist finds the lock lost), so the checker sees every hold, not only acknowledged ones.
static HOLDS: OnceLock<Mutex<File>> = OnceLock::new();

fn log_hold(p: &Params, from: u64, to: u64) {
    let (Some(holds), Some(op)) = (HOLDS.get(), &p.op) else {
        return;
    };
    let mut file = holds.lock().unwrap_or_else(PoisonError::into_inner);
    // One `write` per line on an append-only file: whole lines, kept if the process is killed.
    let _ = file.write_all(format!("{op} {from} {to}\n").as_bytes());
}

/// Wall-clock microseconds: the instances run on one machine, so their clocks agree, and the
/// lock's hold intervals of two instances can be compared.
fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

async fn delay(p: &Params) {
    if let Some(ms) = p.delay_ms.filter(|&ms| ms > 0) {
        tokio::time::sleep(Duration::from_millis(ms.min(5_000))).await;
    }
}

fn json_body(value: &Value) -> Response {
    ([("content-type", "application/json")], value.to_string()).into_response()
}

async fn all(session: Session) -> Result<Response, SessionError> {
    let mut keys = serde_json::Map::new();
    for key in KEYS {
        if let Some(v) = session.get::<String>(key)? {
            keys.insert(key.into(), v.into());
        }
    }
    Ok(json_body(&json!({
        "keys": keys,
        "n": session.get::<i64>(COUNTER)?,
        "login": session.get::<String>(LOGIN)?,
        "user": session.user_id(),
    })))
}

async fn put(session: Session, Query(p): Query<Params>) -> Result<Response, Response> {
    let key = p.key.as_deref().unwrap_or_default();
    if !KEYS.contains(&key) {
        return Err((StatusCode::BAD_REQUEST, "unknown key").into_response());
    }
    let value = p.value.as_deref().unwrap_or_default();
    session
        .put(key, value)
        .map_err(|e| SessionError::from(e).into_response())?;
    Ok(json_body(&json!({ "put": value })))
}

async fn incr(session: LockedSession, Query(p): Query<Params>) -> Result<Response, SessionError> {
    let from = now_us();
    let n = session.get::<i64>(COUNTER)?.unwrap_or(0) + 1;
    delay(&p).await;
    session.put(COUNTER, &n)?;
    let to = now_us();
    log_hold(&p, from, to);
    Ok(json_body(&json!({ "n": n, "from": from, "to": to })))
}

async fn login(session: LockedSession, Query(p): Query<Params>) -> Result<Response, SessionError> {
    let from = now_us();
    let user = p.user.as_deref().unwrap_or("nobody");
    let tag = p.tag.as_deref().unwrap_or_default();
    delay(&p).await;
    session.put(LOGIN, tag)?;
    session.bind_user(user)?;
    session.describe(tag)?;
    let to = now_us();
    log_hold(&p, from, to);
    Ok(json_body(&json!({ "from": from, "to": to })))
}

async fn logout(session: Session) -> Response {
    session.destroy();
    json_body(&json!({ "logout": true }))
}

fn signed_in(session: &Session) -> Result<String, Box<Response>> {
    session
        .user_id()
        .ok_or_else(|| Box::new((StatusCode::UNAUTHORIZED, "not signed in").into_response()))
}

async fn revoke_others(
    session: Session,
    State(manager): State<SessionManager>,
) -> Result<Response, Response> {
    let user = signed_in(&session).map_err(|r| *r)?;
    let ended = manager.revoke_user_sessions(&user, Some(&session)).await;
    let ended = ended.map_err(IntoResponse::into_response)?;
    Ok(json_body(&json!({ "user": user, "ended": ended })))
}

async fn list(
    session: Session,
    State(manager): State<SessionManager>,
) -> Result<Response, Response> {
    let user = signed_in(&session).map_err(|r| *r)?;
    let sessions = manager.user_sessions(&user, Some(&session)).await;
    let sessions = sessions.map_err(IntoResponse::into_response)?;
    let entries: Vec<Value> = sessions
        .iter()
        .map(|s| json!({ "about": s.description, "current": s.current }))
        .collect();
    Ok(json_body(&json!({ "user": user, "sessions": entries })))
}

/// The app's routes over `manager`.
pub fn router(manager: &SessionManager) -> Router {
    Router::new()
        .route("/all", get(all))
        .route("/put", get(put))
        .route("/incr", get(incr))
        .route("/login", get(login))
        .route("/logout", get(logout))
        .route("/revoke-others", get(revoke_others))
        .route("/list", get(list))
        .layer(manager.layer())
        .with_state(manager.clone())
}

/// Serves the app on `listen` with the configuration file `config` until the process is killed,
/// logging the lock's holds to `holds` (appended).
///
/// # Errors
///
/// A bad configuration or the address taken. Redis is not needed to start (an instance
/// restarted during a Redis fault serves `503`s until Redis is back, as a real one would).
pub async fn serve(
    config: &str,
    listen: &str,
    holds: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let file = File::options().create(true).append(true).open(holds)?;
    let _ = HOLDS.set(Mutex::new(file));
    let config = redis_sessions::Config::from_ini_file(config)?;
    let manager = SessionManager::new(config)?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(listener, router(&manager)).await?;
    Ok(())
}
