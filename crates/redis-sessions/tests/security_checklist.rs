//! The session-management security checklist (OWASP's Session Management Cheat Sheet, as issue 8
//! lists it), one test per item, named after the property, each asserting it against the real
//! `counter` example over HTTP and a private `redis-server` (or, where the property is about
//! start-up or `Debug`, against the real configuration loader and types). Several properties are
//! also covered in more depth elsewhere (races.rs, no_id_leaks.rs, http*.rs, limits.rs,
//! manager.rs); these tests stand on their own.
//!
//! Not here: "revoking all sessions of a user" belongs to the users' sessions index, which is
//! built separately.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Counter, id_of, int, key_of, key_type, keys, session_keys};
use redis_sessions::config::{MAX_COOKIE_BYTES, MAX_NAME_BYTES};
use redis_sessions::{Config, SessionId};
use redis_test_support::{CountingProxy, RedisServer};

#[tokio::test]
async fn session_ids_come_from_a_csprng_with_at_least_128_bits() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "", "");
    let mut seen = HashSet::new();
    let (mut ones, mut bits) = (0u32, 0u32);
    for _ in 0..64 {
        let cookie = app.new_session().await;
        let bytes = URL_SAFE_NO_PAD.decode(id_of(&cookie)).expect("base64url");
        assert!(bytes.len() * 8 >= 128, "{} bits", bytes.len() * 8);
        assert_eq!(bytes.len(), 32, "the id is 256 bits");
        ones += bytes.iter().map(|b| b.count_ones()).sum::<u32>();
        bits += u32::try_from(bytes.len() * 8).unwrap_or(0);
        // No two ids share their first 64 bits: not a counter, a clock or a reused seed.
        assert!(seen.insert(bytes[..8].to_vec()), "repeated id prefix");
    }
    // 16,384 random bits: the share of ones is 0.5 +- 0.004 (1 sigma); 0.47..0.53 is 7.5 sigma.
    let share = f64::from(ones) / f64::from(bits);
    assert!((0.47..0.53).contains(&share), "share of one bits {share}");
}

#[tokio::test]
async fn session_ids_carry_no_data() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "", "");
    let small = app.new_session().await;
    let key = "k".repeat(2000);
    let big = app.get(&format!("/incr?key={key}"), None).await;
    assert_eq!(big.status, 200, "{big:?}");
    let big = big.cookie();
    // The same length whatever the session holds, and nothing of the data in it.
    assert_eq!(id_of(&small).len(), 43);
    assert_eq!(id_of(&big).len(), 43);
    let decoded = URL_SAFE_NO_PAD.decode(id_of(&big)).expect("base64url");
    assert!(
        !decoded.windows(4).any(|w| w == b"kkkk"),
        "the key is in the id"
    );
    // Changing the data does not change the id (it is not derived from the data).
    for expected in ["2", "3"] {
        let reply = app.get("/incr", Some(&small)).await;
        assert_eq!(reply.body, expected);
        assert!(reply.set_cookie.is_none(), "{reply:?}");
    }
    assert_eq!(app.get("/read", Some(&small)).await.body, "3");
}

#[tokio::test]
async fn unknown_session_ids_are_not_adopted() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "", "");
    let chosen = format!("dmsession={}", SessionId::generate().expose());
    let reply = app.get("/incr", Some(&chosen)).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "1"), "{reply:?}");
    let issued = reply.cookie();
    assert_ne!(issued, chosen, "the server must issue its own id");
    assert_eq!(key_type(&redis, &key_of(&chosen)), "none");
    assert_eq!(key_type(&redis, &key_of(&issued)), "hash");
    // The chosen id stays unknown: a later request with it starts empty again.
    assert_eq!(app.get("/read", Some(&chosen)).await.body, "0");
}

#[tokio::test]
async fn a_new_id_on_login_and_on_privilege_change_and_the_old_one_is_dead() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "", "");
    for route in ["/login", "/rotate"] {
        let old = app.new_session().await;
        let reply = app.get(route, Some(&old)).await;
        assert_eq!(reply.status, 200, "{route}: {reply:?}");
        let new = reply.cookie();
        assert_ne!(new, old, "{route} must issue a new id");
        assert_eq!(
            app.get("/read", Some(&new)).await.body,
            "1",
            "{route} keeps data"
        );
        assert_eq!(
            app.get("/read", Some(&old)).await.body,
            "0",
            "{route}: old id reads"
        );
        let write = app.get("/incr", Some(&old)).await;
        assert_eq!(
            write.status, 409,
            "{route}: a write with the old id: {write:?}"
        );
        assert!(write.set_cookie.is_none(), "{write:?}");
        assert_ne!(
            key_type(&redis, &key_of(&old)),
            "hash",
            "{route}: old record"
        );
    }
}

#[tokio::test]
async fn logout_invalidates_on_the_server_even_with_a_concurrent_request_in_flight() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "", "");
    let cookie = app.new_session().await;
    let logout = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        app.get("/logout", Some(&cookie)).await
    };
    let (slow, logout) = tokio::join!(app.get("/incr?delay_ms=500", Some(&cookie)), logout);
    assert_eq!(logout.status, 200, "{logout:?}");
    let msg = "the in-flight write must neither succeed after the logout nor set a cookie";
    assert_eq!(
        (slow.status, slow.set_cookie.as_deref()),
        (409, None),
        "{msg}"
    );
    assert_ne!(
        key_type(&redis, &key_of(&cookie)),
        "hash",
        "nothing came back"
    );
    assert!(session_keys(&redis).is_empty(), "{:?}", keys(&redis));
    assert_eq!(app.get("/read", Some(&cookie)).await.body, "0");
}

#[tokio::test]
async fn the_idle_timeout_is_enforced_on_the_server() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "cookie_lifespan = 1", "");
    let cookie = app.new_session().await;
    let pttl = int(redis.cmd(&["PTTL", &key_of(&cookie)]));
    assert!(
        (1..=1000).contains(&pttl),
        "the record's TTL is the idle timeout: {pttl} ms"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // A client that ignores the cookie's Max-Age and sends the id anyway gets nothing.
    let reply = app.get("/read", Some(&cookie)).await;
    assert_eq!(reply.body, "0", "{reply:?}");
    assert_eq!(key_type(&redis, &key_of(&cookie)), "none");
}

#[tokio::test]
async fn the_absolute_lifetime_counts_from_the_stored_creation_time() {
    let redis = RedisServer::start();
    let app = Counter::start(
        redis.port(),
        "cookie_lifespan = 3600\nabsolute_lifetime = 3",
        "",
    );
    let created = Instant::now();
    let first = app.new_session().await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // A login moves the session to a new id; its lifetime still counts from the creation.
    let cookie = app.get("/login", Some(&first)).await.cookie();
    let pttl = int(redis.cmd(&["PTTL", &key_of(&cookie)]));
    let left = Duration::from_secs(3).saturating_sub(created.elapsed());
    assert!(
        pttl > 0 && u128::try_from(pttl).unwrap_or(0) <= left.as_millis() + 100,
        "the new id's TTL must be the rest of the lifetime ({left:?}), not a new one: {pttl} ms"
    );
    // Constant activity does not extend it.
    let mut last = String::new();
    while created.elapsed() < Duration::from_millis(3400) {
        last = app.get("/incr", Some(&cookie)).await.body;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_ne!(last, "", "the session was written while it lived");
    assert_eq!(
        app.get("/read", Some(&cookie)).await.body,
        "0",
        "over its lifetime"
    );
    assert_eq!(key_type(&redis, &key_of(&cookie)), "none");
}

#[tokio::test]
async fn the_cookie_is_secure_httponly_samesite_with_an_optional_host_prefix() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "", "");
    let reply = app.get("/incr", None).await;
    let attrs = reply.attributes();
    for wanted in ["secure", "httponly", "samesite=lax", "path=/"] {
        assert!(attrs.iter().any(|a| a == wanted), "{wanted} in {attrs:?}");
    }
    assert!(
        !attrs.iter().any(|a| a.starts_with("domain")),
        "host-only: {attrs:?}"
    );

    let host = Counter::start(redis.port(), "cookie_name = __Host-sid", "");
    let reply = host.get("/incr", None).await;
    let cookie = reply.cookie();
    assert!(cookie.starts_with("__Host-sid="), "{cookie}");
    let attrs = reply.attributes();
    assert!(attrs.iter().any(|a| a == "secure") && attrs.iter().any(|a| a == "path=/"));
    assert!(!attrs.iter().any(|a| a.starts_with("domain")), "{attrs:?}");
    assert_eq!(
        host.get("/incr", Some(&cookie)).await.body,
        "2",
        "the cookie works"
    );
    // A __Host- name with attributes browsers would drop it for is refused at start-up.
    let refused = Config::from_ini_str("[session]\ncookie_name = __Host-sid\ncookie_path = /app\n");
    let message = refused.expect_err("refused").to_string();
    assert!(
        message.contains("cookie_name = \"__Host-sid\""),
        "{message}"
    );
    assert!(message.contains("cookie_path = \"/app\""), "{message}");
}

#[tokio::test]
async fn the_cookie_fits_in_4096_bytes() {
    let redis = RedisServer::start();
    let name = "n".repeat(MAX_NAME_BYTES);
    let app = Counter::start(redis.port(), &format!("cookie_name = {name}"), "");
    let reply = app.get("/incr", None).await;
    let cookie = reply.cookie();
    // Name and value (the pair without its '=') take all 4096 bytes, and the cookie works.
    let works = app.get("/incr", Some(&cookie)).await.body;
    assert_eq!((cookie.len() - 1, works.as_str()), (MAX_COOKIE_BYTES, "2"));
    // One byte more is refused at start-up, naming the key.
    let text = format!("[session]\ncookie_name = {name}n\n");
    let message = Config::from_ini_str(&text).expect_err("refused");
    let message = message.to_string();
    assert!(
        message.starts_with("[session] cookie_name = \"nnnn"),
        "{message:.80}"
    );
    assert!(message.contains("4096 bytes"), "{message:.80}");
}

#[tokio::test]
async fn the_session_id_travels_only_in_the_cookie() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "", "");
    let cookie = app.new_session().await;
    let id = id_of(&cookie).to_owned();
    for route in ["/read", "/incr", "/login"] {
        let response = reqwest::Client::new()
            .get(format!("{}{route}", app.base))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("request");
        assert!(
            response.headers().get("location").is_none(),
            "{route}: no redirect"
        );
        for (name, value) in response.headers() {
            if name != "set-cookie" {
                let value = value.to_str().unwrap_or_default();
                assert!(!value.contains(&id), "{route}: the id in the {name} header");
            }
        }
        let body = response.text().await.expect("body");
        assert!(!body.contains(&id), "{route}: the id in the body {body:?}");
    }
    // An id in the URL is not a session: it is neither read nor adopted.
    let other = app.new_session().await;
    let in_url = format!("/read?dmsession={}&key=n", id_of(&other));
    let reply = app.get(&in_url, None).await;
    assert_eq!(
        (reply.body.as_str(), reply.set_cookie.as_deref()),
        ("0", None)
    );
    let reply = app
        .get(&format!("/read;dmsession={}", id_of(&other)), None)
        .await;
    assert_ne!(reply.body, "1", "{reply:?}");
}

#[tokio::test]
async fn logout_expires_the_cookie() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "", "");
    let cookie = app.new_session().await;
    let reply = app.get("/logout", Some(&cookie)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.cookie(), "dmsession=", "the value is emptied");
    let attrs = reply.attributes();
    for wanted in ["max-age=0", "path=/", "secure", "httponly"] {
        assert!(attrs.iter().any(|a| a == wanted), "{wanted} in {attrs:?}");
    }
}

#[tokio::test]
async fn the_session_id_is_never_in_logs_or_debug_output() {
    let redis = RedisServer::start();
    let app = Counter::start_logged(redis.port(), "touch_interval = 0.001", "");
    let mut ids = Vec::new();
    let cookie = app.new_session().await;
    ids.push(id_of(&cookie).to_owned());
    let _ = app.get("/read", Some(&cookie)).await;
    let login = app.get("/login", Some(&cookie)).await.cookie();
    ids.push(id_of(&login).to_owned());
    // A write with the rotated-away id and one after a logout: errors that are logged.
    assert_eq!(app.get("/incr", Some(&cookie)).await.status, 409);
    let _ = app.get("/logout", Some(&login)).await;
    assert_eq!(app.get("/incr", Some(&login)).await.status, 409);
    let log = app.log();
    assert!(
        log.contains("session not persisted"),
        "the errors were logged: {log:.400}"
    );
    assert!(log.contains("TRACE"), "trace logging is on: {log:.400}");
    for id in &ids {
        assert!(!log.contains(id.as_str()), "an id in the counter's log");
        let parsed = SessionId::parse(id).expect("id");
        let shown = format!("{parsed:?} {parsed} {:?}", parsed.storage_id());
        assert!(!shown.contains(id.as_str()), "{shown}");
    }
}

#[tokio::test]
async fn ids_are_validated_before_a_key_is_built_and_keys_are_namespaced_and_hashed() {
    let redis = RedisServer::start();
    let proxy = CountingProxy::start(redis.port());
    let app = Counter::start(proxy.port(), "", "");
    let good = SessionId::generate().expose();
    let malformed = [
        good[..42].to_owned(),
        format!("{good}A"),
        format!("{}*", &good[..42]),
        format!("{}}}", &good[..42]),
        "../../etc/passwd".to_owned(),
        "*".to_owned(),
        format!("{}=", &good[..42]),
        String::new(),
    ];
    proxy.wait_idle();
    proxy.reset();
    for bad in &malformed {
        let reply = app.get("/read", Some(&format!("dmsession={bad}"))).await;
        assert_eq!(
            (reply.body.as_str(), reply.set_cookie.as_deref()),
            ("0", None)
        );
    }
    proxy.wait_idle();
    assert_eq!(proxy.round_trips(), 0, "{:?}", proxy.command_names());

    let cookie = app.new_session().await;
    let stored = session_keys(&redis);
    assert_eq!(
        stored,
        [key_of(&cookie)],
        "one hash, under dm:{{storage id}}"
    );
    let hashed = stored[0]
        .strip_prefix("dm:{")
        .and_then(|k| k.strip_suffix('}'))
        .expect("namespaced under the prefix, in a hash tag");
    assert_eq!(hashed.len(), 22, "128 bits of SHA-256, base64url");
    assert!(
        !stored[0].contains(id_of(&cookie)),
        "the raw id is not the key"
    );
}

#[tokio::test]
async fn an_untouched_session_is_neither_written_nor_given_a_cookie() {
    let redis = RedisServer::start();
    let proxy = CountingProxy::start(redis.port());
    let app = Counter::start(proxy.port(), "", "");
    let cookie = app.new_session().await;
    proxy.wait_idle();
    proxy.reset();
    // Started and read, never changed: one HGETALL, no write, no Set-Cookie.
    let reply = app.get("/read", Some(&cookie)).await;
    assert_eq!(
        (reply.body.as_str(), reply.set_cookie.as_deref()),
        ("1", None)
    );
    // Started without a cookie and never changed: nothing at all.
    let reply = app.get("/read", None).await;
    assert_eq!(
        (reply.body.as_str(), reply.set_cookie.as_deref()),
        ("0", None)
    );
    proxy.wait_idle();
    assert_eq!(proxy.command_names(), ["HGETALL"]);
    assert_eq!(session_keys(&redis).len(), 1, "no session was created");
}
