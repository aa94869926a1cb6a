//! Everyday sequences that used to break sessions, through the real `counter` example and a
//! private `redis-server`: an active user, a second tab during login or logout, stray cookies.
//! Each test names the property it protects; the interleavings are made on purpose with the
//! routes' `delay_ms`.

mod common;

use std::time::{Duration, Instant};

use common::{Counter, Reply, int};
use redis_test_support::RedisServer;

/// A browser's cookie jar for one cookie: it honours `Max-Age` like a browser does.
#[derive(Default)]
struct Jar {
    cookie: Option<(String, Instant)>,
}

impl Jar {
    fn header(&self) -> Option<&str> {
        self.cookie
            .as_ref()
            .filter(|(_, expires)| Instant::now() < *expires)
            .map(|(pair, _)| pair.as_str())
    }

    fn store(&mut self, reply: &Reply) {
        let Some(header) = &reply.set_cookie else {
            return;
        };
        let max_age = header
            .split(';')
            .find_map(|a| a.trim().strip_prefix("Max-Age="))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        self.cookie = Some((
            reply.cookie(),
            Instant::now() + Duration::from_secs(max_age),
        ));
    }
}

#[tokio::test]
async fn active_writer_keeps_cookie_alive() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "cookie_lifespan = 3\ntouch_interval = 1", "");
    let mut jar = Jar::default();
    let started = Instant::now();
    let mut expected = 1;
    while started.elapsed() < Duration::from_secs(6) {
        let reply = app.get("/incr", jar.header()).await;
        jar.store(&reply);
        assert_eq!(
            reply.body,
            expected.to_string(),
            "after {:?} of writes every 0.4 s the browser lost its session cookie",
            started.elapsed()
        );
        expected += 1;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}

#[tokio::test]
async fn write_with_rotated_id_is_409_without_cookie() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "", "");
    let old = app.new_session().await;
    let login = app.get("/rotate", Some(&old)).await;
    assert_eq!(login.status, 200);
    let late = app.get("/incr", Some(&old)).await;
    assert_eq!(
        late.status, 409,
        "a write with the rotated-away id: {late:?}"
    );
    assert!(
        late.set_cookie.is_none(),
        "no cookie may replace the login's: {late:?}"
    );
    assert_eq!(app.get("/read", Some(&login.cookie())).await.body, "1");
}

#[tokio::test]
async fn read_with_rotated_id_reads_empty_without_cookie() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "touch_interval = 0.001", "");
    let old = app.new_session().await;
    app.get("/rotate", Some(&old)).await;
    let late = app.get("/read", Some(&old)).await;
    assert_eq!((late.status, late.body.as_str()), (200, "0"), "{late:?}");
    assert!(late.set_cookie.is_none(), "{late:?}");
}

#[tokio::test]
async fn write_with_destroyed_id_is_409_without_cookie() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "", "");
    let cookie = app.new_session().await;
    assert_eq!(app.get("/logout", Some(&cookie)).await.status, 200);
    let late = app.get("/incr", Some(&cookie)).await;
    assert_eq!(late.status, 409, "{late:?}");
    assert!(late.set_cookie.is_none(), "{late:?}");
    assert_eq!(
        int(redis.cmd(&["DBSIZE"])),
        1,
        "only the tombstone: no new session was created"
    );
}

#[tokio::test]
async fn rotation_keeps_a_write_that_landed_while_it_ran() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "", "");
    let old = app.new_session().await;
    let login = app.get("/rotate?delay_ms=400", Some(&old));
    let other_tab = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        app.get("/incr?key=basket", Some(&old)).await
    };
    let (login, other_tab) = tokio::join!(login, other_tab);
    assert_eq!(
        (login.status, other_tab.status),
        (200, 200),
        "{login:?} {other_tab:?}"
    );
    let new = login.cookie();
    assert_eq!(
        app.get("/read?key=basket", Some(&new)).await.body,
        "1",
        "the write answered 200 during the login was dropped"
    );
    assert_eq!(app.get("/read", Some(&new)).await.body, "1");
}

#[tokio::test]
async fn a_login_slower_than_lock_ttl_does_not_overwrite_a_locked_write() {
    let redis = RedisServer::start();
    let app = Counter::start(
        redis.port(),
        "lock_ttl = 1\nlock_wait = 3",
        "default[timeout] = 0.5",
    );
    let cookie = app.new_session().await;
    let login = app.get("/login?delay_ms=1800", Some(&cookie));
    let locked_write = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        app.get("/incr-locked", Some(&cookie)).await
    };
    let (login, locked_write) = tokio::join!(login, locked_write);
    assert_eq!(locked_write.status, 200, "{locked_write:?}");
    assert_eq!(locked_write.body, "2");
    assert_eq!(login.status, 409, "the login lost its lock: {login:?}");
    assert!(login.set_cookie.is_none(), "{login:?}");
    assert_eq!(
        app.get("/read", Some(&cookie)).await.body,
        "2",
        "the locked write survives in the session"
    );
}

#[tokio::test]
async fn a_foreign_utf8_cookie_does_not_hide_ours() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "", "");
    let ours = app.new_session().await;
    let header = format!("theme=d\u{e9}j\u{e0}-vu; {ours}; name=J\u{f6}rg");
    let reply = app.get("/read", Some(&header)).await;
    assert_eq!(reply.body, "1", "{reply:?}");
    assert!(reply.set_cookie.is_none());
}

#[tokio::test]
async fn a_stale_cookie_of_our_name_does_not_hide_the_live_one() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "", "");
    let stale = app.new_session().await;
    app.get("/logout", Some(&stale)).await;
    let unknown = format!("dmsession={}", "B".repeat(42) + "A");
    let live = app.new_session().await;
    let header = format!("{unknown}; {stale}; dmsession=junk; {live}");
    assert_eq!(app.get("/read", Some(&header)).await.body, "1");
    let write = app.get("/incr", Some(&header)).await;
    assert_eq!((write.status, write.body.as_str()), (200, "2"), "{write:?}");
    assert!(
        write.set_cookie.is_none(),
        "the live session keeps its cookie"
    );
    assert_eq!(app.get("/read", Some(&live)).await.body, "2");
}

#[tokio::test]
async fn a_tombstone_lives_about_a_minute_whatever_the_lifespan() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "cookie_lifespan = 86400", "");
    let cookie = app.new_session().await;
    app.get("/logout", Some(&cookie)).await;
    let keys = match redis.cmd(&["KEYS", "dm:*"]) {
        redis::Value::Array(keys) => keys,
        other => panic!("{other:?}"),
    };
    assert_eq!(keys.len(), 1, "one tombstone");
    let redis::Value::BulkString(key) = &keys[0] else {
        panic!("{keys:?}");
    };
    let pttl = int(redis.cmd(&["PTTL", &String::from_utf8_lossy(key)]));
    assert!(
        (55_000..=65_000).contains(&pttl),
        "tombstone TTL {pttl} ms, expected about a minute"
    );
}
