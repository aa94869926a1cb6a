//! `format = resonance`: live sessions shared with the PHP framework through a private Redis.
//! Real PHP (php-cli with the igbinary and redis extensions, `tests/php/session.php`) writes
//! and reads the sessions the way the framework does; the real `counter` serves them over HTTP.

mod common;

use std::process::Command;
use std::time::Duration;

use common::Counter;
use redis_test_support::RedisServer;

const RESONANCE: &str = "format = resonance";

/// Runs `tests/php/session.php PORT KEY args...`; its standard output.
fn php(redis: &RedisServer, key: &str, args: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/php/session.php");
    let output = Command::new("php")
        .arg(script)
        .arg(redis.port().to_string())
        .arg(key)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run php ({e}): apt-get install php-cli php-igbinary php-redis")
        });
    assert!(
        output.status.success(),
        "php {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The session id in a `dmsession=...` cookie.
fn id_of(cookie: &str) -> &str {
    cookie.strip_prefix("dmsession=").expect("a session cookie")
}

fn key_of(cookie: &str) -> String {
    format!("dm:.session{}", id_of(cookie))
}

/// A 256-hex id PHP would make, sent as the cookie of a session PHP wrote.
fn php_session(redis: &RedisServer) -> (String, String, String) {
    let id: String = (0..128)
        .map(|i| format!("{:02x}", (i * 37 + 11) % 256))
        .collect();
    let cookie = format!("dmsession={id}");
    let key = key_of(&cookie);
    let export = php(redis, &key, &["write"]);
    (cookie, key, export)
}

fn get_bytes(redis: &RedisServer, key: &str) -> Option<Vec<u8>> {
    match redis.cmd(&["GET", key]) {
        redis::Value::BulkString(bytes) => Some(bytes),
        redis::Value::Nil => None,
        other => panic!("GET answered {other:?}"),
    }
}

fn set_bytes(redis: &RedisServer, key: &str, value: &[u8]) {
    let client = redis::Client::open(format!("redis://127.0.0.1:{}", redis.port())).expect("url");
    let mut connection = client.get_connection().expect("connect");
    redis::cmd("SET")
        .arg(key)
        .arg(value)
        .query::<()>(&mut connection)
        .expect("SET");
}

fn pttl(redis: &RedisServer, key: &str) -> i64 {
    match redis.cmd(&["PTTL", key]) {
        redis::Value::Int(ms) => ms,
        other => panic!("PTTL answered {other:?}"),
    }
}

#[tokio::test]
async fn rust_changes_one_key_of_a_php_session_and_php_reads_everything_else_intact() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), RESONANCE, "");
    let (cookie, key, written) = php_session(&redis);
    assert!(written.contains("'n' => 5,"), "{written}");
    assert_eq!(pttl(&redis, &key), -1, "the framework writes no TTL");

    let reply = app.get("/incr", Some(&cookie)).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "6"), "{reply:?}");
    // The first Rust request gives PHP's session a TTL, and refreshes the cookie with it.
    let refreshed = reply.set_cookie.as_deref().unwrap_or_default();
    assert!(
        refreshed.starts_with(&format!("{cookie};")),
        "the id stays: {refreshed}"
    );

    let read = php(&redis, &key, &["read"]);
    let expected = format!("{}\nmeta: yes\n", written.trim_end()).replace("'n' => 5,", "'n' => 6,");
    assert_eq!(read, expected);
    let ttl = pttl(&redis, &key);
    assert!(
        ttl > 86_000_000,
        "the library gives the key its TTL: {ttl} ms"
    );

    // Byte for byte: Rust's blob, without the library's metadata entry, is what PHP itself
    // writes for the same session with n = 6 (shared object, shared array and all).
    let php_own = format!("{key}:php");
    php(&redis, &php_own, &["write", "6"]);
    let ours = igbinary::decode(&get_bytes(&redis, &key).expect("blob")).expect("igbinary");
    let mut ours = ours.as_array().expect("an array").clone();
    assert!(ours.remove(&igbinary::Key::php("\0meta")).is_some());
    let ours = igbinary::encode(&igbinary::Value::Array(std::sync::Arc::new(ours)));
    assert_eq!(ours, get_bytes(&redis, &php_own).expect("PHP's blob"));

    // PHP writes again (dropping the TTL, as the framework does); Rust still reads its change.
    php(&redis, &key, &["add", "from_php", "hello"]);
    assert_eq!(app.get("/incr", Some(&cookie)).await.body, "7");
    let read = php(&redis, &key, &["read"]);
    assert!(read.contains("'from_php' => 'hello',"), "{read}");
    assert!(read.contains("'n' => 7,"), "{read}");
}

#[tokio::test]
async fn a_session_rust_creates_is_read_by_php() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), RESONANCE, "");
    let created = app.new_session().await;
    let id = id_of(&created);
    assert_eq!(id.len(), 256);
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    let key = key_of(&created);
    assert_eq!(
        php(&redis, &key, &["read"]),
        "array (\n  'n' => 1,\n)\nmeta: yes\n"
    );
    let ttl = pttl(&redis, &key);
    assert!(ttl > 86_000_000, "{ttl}");
    assert_eq!(app.get("/read", Some(&created)).await.body, "1");
}

#[tokio::test]
async fn concurrent_writes_to_different_keys_by_rust_and_php_are_all_kept() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), RESONANCE, "");
    let (cookie, key, _) = php_session(&redis);
    // The slow request loads first and saves last: its merge must keep both other writes.
    let slow = app.get("/incr?key=a&delay_ms=600", Some(&cookie));
    let others = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let fast = app.get("/incr?key=b", Some(&cookie)).await;
        php(&redis, &key, &["add", "php", "kept"]);
        fast
    };
    let (slow, fast) = tokio::join!(slow, others);
    assert_eq!((slow.body.as_str(), fast.body.as_str()), ("1", "1"));
    let read = php(&redis, &key, &["read"]);
    for wanted in ["'a' => 1,", "'b' => 1,", "'php' => 'kept',", "'n' => 5,"] {
        assert!(read.contains(wanted), "{wanted} in {read}");
    }
}

#[tokio::test]
async fn locked_increments_lose_nothing() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), RESONANCE, "");
    let cookie = app.new_session().await;
    let requests = (0..20).map(|_| app.get("/incr-locked?key=c&delay_ms=5", Some(&cookie)));
    for reply in futures_util::future::join_all(requests).await {
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    assert_eq!(app.get("/read?key=c", Some(&cookie)).await.body, "20");
}

#[tokio::test]
async fn a_write_racing_a_logout_does_not_bring_the_session_back() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), RESONANCE, "");
    let (cookie, key, _) = php_session(&redis);
    let late = app.get("/incr?delay_ms=400", Some(&cookie));
    let logout = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        app.get("/logout", Some(&cookie)).await
    };
    let (late, logout) = tokio::join!(late, logout);
    assert_eq!(logout.status, 200, "{logout:?}");
    assert_eq!(late.status, 409, "{late:?}");
    assert_eq!(get_bytes(&redis, &key), None, "not resurrected");
    let again = app.get("/read", Some(&cookie)).await;
    assert_eq!((again.status, again.body.as_str()), (200, "0"));
}

#[tokio::test]
async fn login_moves_the_session_to_a_new_id_and_ends_the_old_one() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), RESONANCE, "");
    let (cookie, old_key, written) = php_session(&redis);
    let login = app.get("/login", Some(&cookie)).await;
    assert_eq!(login.status, 200, "{login:?}");
    let new = login.cookie();
    assert_ne!(id_of(&new), id_of(&cookie));
    assert_eq!(id_of(&new).len(), 256);
    assert_eq!(get_bytes(&redis, &old_key), None, "the old id is dead");
    let read = php(&redis, &key_of(&new), &["read"]);
    for line in written
        .lines()
        .filter(|l| l.contains("=>") && !l.contains("array ("))
    {
        assert!(read.contains(line), "{line} carried over: {read}");
    }
    assert_eq!(app.get("/incr", Some(&cookie)).await.status, 409);
    assert_eq!(app.get("/incr", Some(&new)).await.body, "6");
}

#[tokio::test]
async fn a_blob_that_does_not_decode_is_never_overwritten() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), RESONANCE, "");
    let (cookie, key, _) = php_session(&redis);
    // PHP's native serialize() (the framework's fallback without igbinary) and a truncation.
    for garbage in [
        &b"a:1:{s:1:\"n\";i:5;}"[..],
        &b"\x00\x00\x00\x02\x14\x05"[..],
    ] {
        set_bytes(&redis, &key, garbage);
        let reply = app.get("/incr", Some(&cookie)).await;
        assert!(reply.status >= 500, "{reply:?}");
        assert_eq!(get_bytes(&redis, &key).as_deref(), Some(garbage));
    }
}

#[tokio::test]
async fn ids_of_the_other_format_are_not_adopted() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), RESONANCE, "");
    let native = redis_sessions::SessionId::generate().expose();
    let reply = app.get("/incr", Some(&format!("dmsession={native}"))).await;
    assert_eq!(reply.body, "1", "a new session");
    assert_eq!(id_of(&reply.cookie()).len(), 256);
    let upper = "A".repeat(256);
    let reply = app.get("/read", Some(&format!("dmsession={upper}"))).await;
    assert_eq!((reply.body.as_str(), reply.set_cookie), ("0", None));
}

#[tokio::test]
async fn flash_messages_and_users_sessions_work_in_the_framework_layout() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), RESONANCE, "");
    let (cookie, key, _) = php_session(&redis);
    assert_eq!(app.get("/flash?msg=hi", Some(&cookie)).await.status, 200);
    let (a, b) = tokio::join!(
        app.get("/flashes?delay_ms=100", Some(&cookie)),
        app.get("/flashes?delay_ms=100", Some(&cookie)),
    );
    assert_eq!(format!("{}{}", a.body, b.body), "hi\n", "shown once");
    let login = app
        .get("/login?user=zoe&about=phone", Some(&cookie))
        .await
        .cookie();
    let other = app.get("/login?user=zoe&about=laptop", None).await.cookie();
    let listed = app.get("/sessions", Some(&login)).await.body;
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert_eq!(app.get("/logout-others", Some(&login)).await.status, 200);
    assert_eq!(app.get("/incr", Some(&other)).await.status, 409, "revoked");
    assert_eq!(get_bytes(&redis, &key_of(&other)), None);
    assert!(
        get_bytes(&redis, &key).is_none(),
        "the login moved the PHP session"
    );
    assert!(php(&redis, &key_of(&login), &["read"]).contains("'n' => 5,"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_the_lock_and_tombstone_share_the_session_keys_slot() {
    let cluster = redis_test_support::RedisCluster::start(3);
    let pool = format!("default[cluster_nodes] = {}", cluster.nodes().join(","));
    let app = Counter::start(1, RESONANCE, &pool);
    let mut cookies = Vec::new();
    for _ in 0..6 {
        cookies.push(app.new_session().await);
    }
    for cookie in &cookies {
        // The lock and the compare-and-set script name two keys: a CROSSSLOT error would be a 5xx.
        let requests = (0..5).map(|_| app.get("/incr-locked?key=c", Some(cookie)));
        for reply in futures_util::future::join_all(requests).await {
            assert_eq!(reply.status, 200, "{reply:?}");
        }
        assert_eq!(app.get("/read?key=c", Some(cookie)).await.body, "5");
        let login = app.get("/login", Some(cookie)).await;
        assert_eq!(login.status, 200, "{login:?}");
        assert_eq!(app.get("/incr", Some(cookie)).await.status, 409, "ended");
        let new = login.cookie();
        assert_eq!(app.get("/read?key=c", Some(&new)).await.body, "5");
        assert_eq!(app.get("/logout", Some(&new)).await.status, 200);
        assert_eq!(app.get("/incr", Some(&new)).await.status, 409);
    }
}

#[test]
fn the_format_key_is_checked_with_the_settings_it_depends_on() {
    use redis_sessions::{Config, ConfigError, SessionFormat};
    let load = |text: &str| Config::from_ini_str(text);
    let config = load("[session]\nformat = resonance\n").expect("valid");
    assert_eq!(config.session.format, SessionFormat::Resonance);
    assert_eq!(
        load("").expect("valid").session.format,
        SessionFormat::Native
    );
    let refused = |text: &str, key: &str| match load(text) {
        Err(error @ ConfigError::Invalid { .. }) => {
            let message = error.to_string();
            assert!(message.contains(key), "{message}");
            message
        }
        other => panic!("{text:?} gave {other:?}"),
    };
    let message = refused("[session]\nformat = php\n", "format");
    assert!(message.contains("native or resonance"), "{message}");
    // The 256-character id leaves room for a name of 3,840 bytes, not 4,053.
    let long = "n".repeat(3_841);
    let message = refused(
        &format!("[session]\nformat = resonance\ncookie_name = {long}\n"),
        "cookie_name",
    );
    assert!(message.contains("3840"), "{message}");
    assert!(
        load(&format!(
            "[session]\nformat = resonance\ncookie_name = {}\n",
            &long[1..]
        ))
        .is_ok()
    );
    assert!(
        load(&format!("[session]\ncookie_name = {long}\n")).is_ok(),
        "native ids are short"
    );
    let message = refused(
        "[session]\nformat = resonance\n[redis]\ndefault[prefix] = {app}\n",
        "default[prefix]",
    );
    assert!(message.contains("hash tag"), "{message}");
    let built = Config::builder()
        .format(SessionFormat::Resonance)
        .build()
        .expect("valid");
    assert_eq!(built.session.format, SessionFormat::Resonance);
}

/// The framework layout keeps the tombstone in a key of its own, so a plain `SET` would write a
/// record over an id a revoke ended first (a login writes its index entry before its record):
/// the create must see the tombstone and write nothing.
#[tokio::test]
async fn a_create_never_revives_an_id_a_revoke_ended_before_it() {
    use redis_sessions::store::redis::ResonanceStore;
    use redis_sessions::store::{
        EndOutcome, EndRequest, Loaded, Record, SaveOutcome, SessionStore,
    };
    let server = redis_test_support::RedisServer::start();
    let config = redis_sessions::RedisPoolConfig {
        port: server.port(),
        ..redis_sessions::RedisPoolConfig::default()
    };
    let store = ResonanceStore::new(&config).expect("store");
    let id = redis_sessions::SessionId::generate_for(redis_sessions::SessionFormat::Resonance)
        .storage_id();
    let revoke = EndRequest {
        tombstone: Duration::from_secs(65),
        lock: None,
        require_lock: false,
        successor: "",
    };
    assert_eq!(store.end(&id, revoke).await.ok(), Some(EndOutcome::NotLive));
    let record = Record {
        fields: vec![(
            "a".into(),
            bytes::Bytes::from_static(b"\x00\x00\x00\x02\x06\x01"),
        )],
        meta: redis_sessions::store::Meta {
            created_ms: 1,
            touched_ms: 1,
        },
    };
    let created = store
        .create(&id, &record, std::time::Duration::from_secs(60))
        .await;
    assert_eq!(created.expect("create"), SaveOutcome::Gone);
    assert_eq!(store.load(&id).await.ok(), Some(Loaded::Ended));
}
