//! Peer server for the load benchmark: actix-web 4 + actix-session 0.11 with `RedisSessionStore`
//! (redis-rs `ConnectionManager`: one multiplexed connection shared by all workers). Same routes
//! as our `examples/counter.rs`:
//!
//! - `GET /`          -> `ok`, never touches the session (actix-session's middleware still loads
//!   the session state eagerly when a cookie is present: that is the library's design)
//! - `GET /read?key=K` -> integer under K (default `n`) or `0`; never creates a session
//! - `GET /incr?key=K` -> reads K, stores K+1, returns it (creates the session if needed)
//!
//! Usage: `peer-actix-session --redis redis://127.0.0.1:PORT/ --listen 127.0.0.1:PORT
//!         [--workers N] [--refresh-on-read 0|1]`
//!
//! Configuration: actix's default worker count (= number of cores, 2 here), which measured
//! fastest; persistent cookie with a 1-day idle TTL (`PersistentSession::session_ttl`), extended
//! on every write (the library default `TtlExtensionPolicy::OnStateChanges`, which matches
//! tower-sessions' `Expiry::OnInactivity` without `always_save`). `--refresh-on-read 1` switches
//! to `OnEveryRequest` (an extra `EXPIRE` + `Set-Cookie` on every request with a session) for a
//! strict sliding expiry. Cookie not `Secure` (plain-HTTP benchmark); default cookie name `id`
//! and default (private, encrypted) cookie content.

use std::collections::HashMap;

use actix_session::{
    Session, SessionMiddleware,
    config::{PersistentSession, TtlExtensionPolicy},
    storage::RedisSessionStore,
};
use actix_web::{App, HttpResponse, HttpServer, cookie::Key, web};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn key_of(q: &HashMap<String, String>) -> String {
    q.get("key").cloned().unwrap_or_else(|| "n".to_owned())
}

async fn root() -> &'static str {
    "ok"
}

async fn read(session: Session, q: web::Query<HashMap<String, String>>) -> String {
    let n: i64 = session.get(&key_of(&q)).ok().flatten().unwrap_or(0);
    n.to_string()
}

async fn incr(session: Session, q: web::Query<HashMap<String, String>>) -> HttpResponse {
    let key = key_of(&q);
    let n: i64 = match session.get::<i64>(&key) {
        Ok(v) => v.unwrap_or(0) + 1,
        Err(e) => return HttpResponse::ServiceUnavailable().body(e.to_string()),
    };
    if let Err(e) = session.insert(&key, n) {
        return HttpResponse::ServiceUnavailable().body(e.to_string());
    }
    HttpResponse::Ok().body(n.to_string())
}

fn main() -> std::io::Result<()> {
    let mut redis = "redis://127.0.0.1:6379/".to_owned();
    let mut listen = "127.0.0.1:3002".to_owned();
    let mut workers: Option<usize> = None;
    let mut refresh_on_read = false;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let val = it
            .next()
            .unwrap_or_else(|| panic!("missing value for {flag}"));
        match flag.as_str() {
            "--redis" => redis = val,
            "--listen" => listen = val,
            "--workers" => workers = Some(val.parse().expect("--workers N")),
            "--refresh-on-read" => refresh_on_read = val == "1",
            other => panic!("unknown flag {other}"),
        }
    }

    actix_web::rt::System::new().block_on(async move {
        let store = RedisSessionStore::new(redis)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        // A fixed key is fine for a benchmark; it signs/encrypts the cookie value.
        let key = Key::from(&[7u8; 64]);
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(
                    SessionMiddleware::builder(store.clone(), key.clone())
                        .cookie_secure(false)
                        .session_lifecycle(
                            PersistentSession::default()
                                .session_ttl(actix_web::cookie::time::Duration::days(1))
                                .session_ttl_extension_policy(if refresh_on_read {
                                    TtlExtensionPolicy::OnEveryRequest
                                } else {
                                    TtlExtensionPolicy::OnStateChanges
                                }),
                        )
                        .build(),
                )
                .route("/", web::get().to(root))
                .route("/read", web::get().to(read))
                .route("/incr", web::get().to(incr))
        });
        if let Some(w) = workers {
            server = server.workers(w);
        }
        eprintln!("peer-actix-session listening on {listen} (workers {workers:?}, default = cores; refresh on read {refresh_on_read})");
        server.bind(&listen)?.run().await
    })
}
