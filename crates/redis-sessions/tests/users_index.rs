//! The index of a user's sessions in Redis stays bounded: entries of expired sessions go when
//! the index is next written or read, and the index itself expires with its last session.
//! 10,000 short-lived sessions of one user, through the manager, against a private server.

use std::time::{Duration, Instant};

use http::Request;
use redis::Value;
use redis_sessions::id::UserIndexId;
use redis_sessions::{Config, RedisPoolConfig, SessionManager};
use redis_test_support::RedisServer;

/// Logins per wave and waves: 10,000 sessions in all.
const WAVE: usize = 500;
const WAVES: usize = 20;

fn manager(port: u16) -> SessionManager {
    let mut config = Config::default();
    config.session.cookie_lifespan = Duration::from_secs(1);
    config.session.touch_interval = Duration::from_millis(100);
    config.pools.insert(
        "default".into(),
        RedisPoolConfig {
            port,
            timeout: Duration::from_secs(5),
            ..RedisPoolConfig::default()
        },
    );
    SessionManager::new(config).expect("valid config")
}

/// A new session bound to alice, persisted.
async fn login(manager: &SessionManager) {
    let mut req = Request::builder().uri("/").body(()).expect("request");
    let session = manager.start(&mut req).await.expect("start");
    session.put("basket", &1).expect("put");
    session.bind_user("alice").expect("bind");
    let _ = manager.persist_session(&req).await.expect("persist");
}

fn int(value: Value) -> i64 {
    match value {
        Value::Int(n) => n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_stays_bounded_while_10_000_short_lived_sessions_of_one_user_expire() {
    let redis = RedisServer::start();
    let manager = manager(redis.port());
    let index = format!("dm:u:{{{}}}", UserIndexId::of_user("alice").as_str());
    let started = Instant::now();
    let mut largest = 0;
    for _ in 0..WAVES {
        futures_util::future::join_all((0..WAVE).map(|_| login(&manager))).await;
        largest = largest.max(int(redis.cmd(&["ZCARD", &index])));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let took = started.elapsed();
    eprintln!(
        "{} logins in {took:?}; largest index {largest} entries",
        WAVE * WAVES
    );
    // Each entry is kept for the TTL (1 s) + touch interval + clock margin (0.5 s): about 1.6 s
    // of logins, whatever the total.
    let per_second = (WAVE * WAVES) as f64 / took.as_secs_f64();
    let bound = (per_second * 2.0) as i64 + WAVE as i64;
    assert!(
        largest <= bound && largest < (WAVE * WAVES) as i64 / 2,
        "the index grew to {largest} entries (bound {bound} for {per_second:.0} logins/s)"
    );
    // Once the last session has expired, so has the index.
    let deadline = Instant::now() + Duration::from_secs(10);
    while int(redis.cmd(&["EXISTS", &index])) == 1 {
        assert!(
            Instant::now() < deadline,
            "the index outlived its sessions by 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        manager
            .user_sessions("alice", None)
            .await
            .expect("list")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_users_session_stays_in_the_index_past_its_first_lifespan() {
    let redis = RedisServer::start();
    let manager = manager(redis.port());
    let mut req = Request::builder().uri("/").body(()).expect("request");
    let session = manager.start(&mut req).await.expect("start");
    session.bind_user("alice").expect("bind");
    let persisted = manager.persist_session(&req).await.expect("persist");
    let cookie = persisted.set_cookie.expect("cookie");
    let cookie = cookie
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    // Reads every 150 ms for 4 lifespans: each touch moves the session's TTL on, and must move
    // its index entry on too, or the entry would lapse while the session lives.
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        let mut req = Request::builder()
            .uri("/")
            .header("cookie", &cookie)
            .body(())
            .expect("request");
        let session = manager.start(&mut req).await.expect("start");
        assert_eq!(
            session.user_id().as_deref(),
            Some("alice"),
            "the session lives"
        );
        let _ = manager.persist_session(&req).await.expect("persist");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let listed = manager.user_sessions("alice", None).await.expect("list");
    assert_eq!(
        listed.len(),
        1,
        "the live session must stay revocable: {listed:?}"
    );
    assert_eq!(
        manager
            .revoke_user_sessions("alice", None)
            .await
            .expect("revoke"),
        1
    );
}
