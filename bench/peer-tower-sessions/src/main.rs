//! Peer server for the load benchmark: axum 0.8 + tower-sessions 0.14 + tower-sessions-redis-store
//! 0.16 (fred 10). Same routes as our `examples/counter.rs`:
//!
//! - `GET /`          -> `ok`, never touches the session
//! - `GET /read?key=K` -> integer under K (default `n`) or `0`; never creates a session
//! - `GET /incr?key=K` -> reads K, stores K+1, returns it (creates the session if needed)
//!
//! Usage: `peer-tower-sessions --redis redis://127.0.0.1:PORT/ --listen 127.0.0.1:PORT
//!         [--pool N] [--workers N] [--refresh-on-read 0|1]`
//!
//! Tuning (measured on the 2-core bench machine, wrk -t2 -c64, Redis and wrk on the same cores;
//! see bench/README.md):
//! - `--workers`: 0 = tokio `current_thread` runtime, N >= 1 = multi-thread runtime with N
//!   workers. The default is the faster one measured here (see DEFAULT_WORKERS).
//! - `--pool`: fred pool size (multiplexed connections, round robin). 1 was fastest here.
//! - Expiry: `Expiry::OnInactivity(1 day)`. By default tower-sessions extends it only when the
//!   session is written (`always_save = false`, the library default); `--refresh-on-read 1` sets
//!   `with_always_save(true)`, which re-`SET`s the whole record on every request with a session.

use std::collections::HashMap;

use axum::{Router, extract::Query, routing::get};
use tower_sessions::{Expiry, Session, SessionManagerLayer};
use tower_sessions_redis_store::{
    RedisStore,
    fred::prelude::{ClientLike, Config, Pool},
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runtime flavour measured fastest on the 2-core machine (bench/results/tuning.md): the tokio
/// `current_thread` runtime (one worker) beat the multi-thread runtime with 2 workers on every
/// scenario tried (medians of 3 rounds: read 57.2k vs 54.5k req/s, modify 45.0k vs 38.3k, new
/// 52.0k vs 48.9k) and costs Redis about half the CPU per request (one connection driven by one
/// thread sends bigger pipelined batches). wrk and redis-server already occupy the other core.
const DEFAULT_WORKERS: usize = 0;
/// fred pool size: 1, 2 and 4 were tried (bench/results/tuning.md); the differences were within
/// the noise of the machine and the Redis/app CPU per request was the same, so 1 it is.
const DEFAULT_POOL: usize = 1;

fn key_of(q: &HashMap<String, String>) -> String {
    q.get("key").cloned().unwrap_or_else(|| "n".to_owned())
}

async fn root() -> &'static str {
    "ok"
}

async fn read(session: Session, Query(q): Query<HashMap<String, String>>) -> String {
    let n: i64 = session.get(&key_of(&q)).await.ok().flatten().unwrap_or(0);
    n.to_string()
}

async fn incr(
    session: Session,
    Query(q): Query<HashMap<String, String>>,
) -> Result<String, (axum::http::StatusCode, String)> {
    let key = key_of(&q);
    let err = |e: tower_sessions::session::Error| {
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    };
    let n: i64 = session.get(&key).await.map_err(err)?.unwrap_or(0) + 1;
    session.insert(&key, n).await.map_err(err)?;
    Ok(n.to_string())
}

struct Args {
    redis: String,
    listen: String,
    pool: usize,
    workers: usize,
    refresh_on_read: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        redis: "redis://127.0.0.1:6379/".into(),
        listen: "127.0.0.1:3001".into(),
        pool: DEFAULT_POOL,
        workers: DEFAULT_WORKERS,
        refresh_on_read: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let val = it
            .next()
            .unwrap_or_else(|| panic!("missing value for {flag}"));
        match flag.as_str() {
            "--redis" => a.redis = val,
            "--listen" => a.listen = val,
            "--pool" => a.pool = val.parse().expect("--pool N"),
            "--workers" => a.workers = val.parse().expect("--workers N"),
            "--refresh-on-read" => a.refresh_on_read = val == "1",
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

async fn serve(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let pool = Pool::new(Config::from_url(&args.redis)?, None, None, None, args.pool)?;
    let _conn = pool.connect();
    pool.wait_for_connect().await?;

    let layer = SessionManagerLayer::new(RedisStore::new(pool))
        .with_secure(false)
        .with_expiry(Expiry::OnInactivity(time::Duration::days(1)))
        .with_always_save(args.refresh_on_read);

    let app = Router::new()
        .route("/", get(root))
        .route("/read", get(read))
        .route("/incr", get(incr))
        .layer(layer);

    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    eprintln!(
        "peer-tower-sessions listening on {} (pool {}, workers {}, refresh on read {})",
        args.listen, args.pool, args.workers, args.refresh_on_read
    );
    axum::serve(listener, app).await?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args();
    let rt = if args.workers == 0 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.workers)
            .enable_all()
            .build()?
    };
    rt.block_on(serve(args))
}
