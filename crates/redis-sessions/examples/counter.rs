//! A counter kept in the session: the server the tests and benchmarks drive.
//!
//! ```text
//! cargo run --release --example counter -- --config config.ini --listen 127.0.0.1:3000
//! ```
//!
//! Routes: `GET /` answers `ok` and never touches the session; `GET /plain` is the same route on
//! a router without the session layer (the benchmark's baseline); `GET /read?key=K` returns the
//! integer under K (default `n`) or 0; `GET /incr?key=K&delay_ms=D` reads K, waits D ms, stores
//! K+1 and returns it; `GET /incr-locked?key=K&delay_ms=D` the same under the session lock;
//! `GET /rotate?delay_ms=D` waits D ms, then gives the session a new id; `GET /login?delay_ms=D&
//! user=U&about=A` the same under the session lock, binding it to user U (default `alice`,
//! described as A); `GET /logout` destroys it. Users' sessions: `GET /sessions` lists the
//! signed-in user's sessions, one line each (`handle current created_ms last_seen_ms about`);
//! `GET /logout-others` ends the others; `GET /revoke?handle=H` ends one; `GET /revoke-all?user=U`
//! ends all of U's sessions (as after a password change). Flash messages: `GET /flash?msg=M&
//! delay_ms=D` adds the message M (under the key `info`) after D ms; `GET /flashes?delay_ms=D`
//! loads the session, waits D ms, then takes its messages, one line each; `GET
//! /flashes-extracted` takes them through the `Flashes` extractor.
//!
//! `--metrics` installs a `metrics-exporter-prometheus` recorder (as the `basket` demo does,
//! with the same latency buckets) before the manager is built and serves it on `GET /metrics`;
//! without it no recorder is installed. The benchmark compares the two (`BENCH_LIBS="ours
//! ours+--metrics"`).

use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use redis_sessions::{Flashes, LockedSession, Session, SessionError, SessionManager};
use serde::Deserialize;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Deserialize)]
struct Params {
    key: Option<String>,
    delay_ms: Option<u64>,
    user: Option<String>,
    about: Option<String>,
    handle: Option<String>,
    msg: Option<String>,
}

impl Params {
    fn key(&self) -> &str {
        self.key.as_deref().filter(|k| !k.is_empty()).unwrap_or("n")
    }

    async fn delay(&self) {
        if let Some(ms) = self.delay_ms.filter(|&ms| ms > 0) {
            tokio::time::sleep(Duration::from_millis(ms.min(60_000))).await;
        }
    }
}

async fn read(session: Session, Query(p): Query<Params>) -> Result<String, SessionError> {
    Ok(session.get::<i64>(p.key())?.unwrap_or(0).to_string())
}

async fn increment(session: &Session, p: &Params) -> Result<String, SessionError> {
    let n = session.get::<i64>(p.key())?.unwrap_or(0);
    p.delay().await;
    session.put(p.key(), &(n + 1))?;
    Ok((n + 1).to_string())
}

async fn incr(session: Session, Query(p): Query<Params>) -> Result<String, SessionError> {
    increment(&session, &p).await
}

async fn incr_locked(
    session: LockedSession,
    Query(p): Query<Params>,
) -> Result<String, SessionError> {
    increment(&session, &p).await
}

async fn rotate(session: Session, Query(p): Query<Params>) -> &'static str {
    p.delay().await;
    session.rotate();
    "rotated"
}

async fn login(
    session: LockedSession,
    Query(p): Query<Params>,
) -> Result<&'static str, SessionError> {
    p.delay().await;
    let user = p.user.as_deref().unwrap_or("alice");
    session.put("user", user)?;
    session.bind_user(user)?;
    if let Some(about) = &p.about {
        session.describe(about)?;
    }
    Ok("logged in")
}

/// The signed-in user, or `401`.
fn signed_in(session: &Session) -> Result<String, (StatusCode, &'static str)> {
    session
        .user_id()
        .ok_or((StatusCode::UNAUTHORIZED, "not signed in"))
}

async fn sessions(
    session: Session,
    State(manager): State<SessionManager>,
) -> Result<String, Response> {
    let user = signed_in(&session).map_err(IntoResponse::into_response)?;
    let list = manager
        .user_sessions(&user, Some(&session))
        .await
        .map_err(IntoResponse::into_response)?;
    let ms = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    };
    Ok(list
        .iter()
        .map(|s| {
            let about = s.description.as_deref().unwrap_or("-");
            let (created, seen) = (ms(s.created), ms(s.last_seen));
            format!("{} {} {created} {seen} {about}\n", s.handle, s.current)
        })
        .collect())
}

async fn logout_others(
    session: Session,
    State(manager): State<SessionManager>,
) -> Result<String, Response> {
    let user = signed_in(&session).map_err(IntoResponse::into_response)?;
    let ended = manager.revoke_user_sessions(&user, Some(&session)).await;
    Ok(ended.map_err(IntoResponse::into_response)?.to_string())
}

async fn revoke(
    session: Session,
    State(manager): State<SessionManager>,
    Query(p): Query<Params>,
) -> Result<String, Response> {
    let user = signed_in(&session).map_err(IntoResponse::into_response)?;
    let handle = p.handle.as_deref().unwrap_or_default();
    let ended = manager.revoke_user_session(&user, handle).await;
    Ok(ended.map_err(IntoResponse::into_response)?.to_string())
}

async fn revoke_all(
    State(manager): State<SessionManager>,
    Query(p): Query<Params>,
) -> Result<String, SessionError> {
    let user = p.user.as_deref().unwrap_or("alice");
    Ok(manager.revoke_user_sessions(user, None).await?.to_string())
}

async fn flash(session: Session, Query(p): Query<Params>) -> Result<&'static str, SessionError> {
    p.delay().await;
    session.flash("info", p.msg.as_deref().unwrap_or_default())?;
    Ok("flashed")
}

async fn flashes(
    State(manager): State<SessionManager>,
    session: Session,
    Query(p): Query<Params>,
) -> Result<String, SessionError> {
    p.delay().await;
    let flashes = manager.take_flashes::<String>(&session).await?;
    Ok(flashes.into_iter().map(|(_, m)| m + "\n").collect())
}

/// The same through the axum extractor (no delay).
async fn flashes_extracted(Flashes(flashes): Flashes) -> String {
    flashes.into_iter().map(|(_, m)| m + "\n").collect()
}

async fn logout(session: Session) -> &'static str {
    session.destroy();
    "bye"
}

/// The counter app over `manager` (public so the tests can serve it in-process).
fn app(manager: &SessionManager) -> Router {
    let sessions = Router::new()
        .route("/", get(|| async { "ok" }))
        .route("/read", get(read))
        .route("/incr", get(incr))
        .route("/incr-locked", get(incr_locked))
        .route("/rotate", get(rotate))
        .route("/login", get(login))
        .route("/logout", get(logout))
        .route("/sessions", get(sessions))
        .route("/logout-others", get(logout_others))
        .route("/revoke", get(revoke))
        .route("/revoke-all", get(revoke_all))
        .route("/flash", get(flash))
        .route("/flashes", get(flashes))
        .route("/flashes-extracted", get(flashes_extracted))
        .layer(manager.layer())
        .with_state(manager.clone());
    Router::new()
        .route("/plain", get(|| async { "ok" }))
        .merge(sessions)
}

/// Bucket bounds of the latency histograms, in seconds (the `basket` demo's).
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// `GET /metrics` over `handle`, and a task doing the recorder's upkeep (draining histogram
/// samples) every 5 s, as the exporter's own HTTP listener would, so that memory stays bounded
/// when nobody scrapes.
fn metrics_routes(handle: PrometheusHandle) -> Router {
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    Router::new().route(
        "/metrics",
        get(move || async move {
            handle.run_upkeep();
            (
                [(CONTENT_TYPE, "text/plain; version=0.0.4")],
                handle.render(),
            )
        }),
    )
}

struct Args {
    config: String,
    listen: String,
    workers: usize,
    metrics: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        config: "config.ini".into(),
        listen: "127.0.0.1:3000".into(),
        workers: 1,
        metrics: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--config" => args.config = value()?,
            "--listen" => args.listen = value()?,
            "--metrics" => args.metrics = true,
            "--workers" => {
                args.workers = value()?
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or("--workers needs a whole number above 0")?;
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?} (use --config PATH --listen ADDR --workers N --metrics)"
                ));
            }
        }
    }
    Ok(args)
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    if let Err(error) = run() {
        eprintln!("counter: {error}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args = parse_args()?;
    // Before the manager is built: it registers its metrics with the recorder it finds.
    let metrics = if args.metrics {
        Some(
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_duration_seconds".into()),
                    LATENCY_BUCKETS,
                )?
                .install_recorder()?,
        )
    } else {
        None
    };
    // One thread was measured fastest on a 2-core machine shared with Redis and the load
    // generator; `--workers 1` runs tokio's current-thread scheduler, more use the multi-thread one.
    let runtime = if args.workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.workers)
            .enable_all()
            .build()?
    };
    runtime.block_on(async {
        let config = redis_sessions::Config::from_ini_file(&args.config)?;
        let manager = SessionManager::connect(config).await?;
        let listener = tokio::net::TcpListener::bind(&args.listen).await?;
        eprintln!("counter listening on http://{}", listener.local_addr()?);
        let app = match metrics {
            Some(handle) => app(&manager).merge(metrics_routes(handle)),
            None => app(&manager),
        };
        axum::serve(listener, app).await?;
        Ok(())
    })
}
