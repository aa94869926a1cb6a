//! Hostile input end to end: oversized and non-UTF-8 `Cookie` headers, thousands of cookies in
//! one header, and corrupt or deeply nested data written straight into Redis. Each answer is a
//! clear status (or a typed error), the server keeps serving, and Redis holds afterwards exactly
//! what it held before (checked field by field). The fuzz targets in `fuzz/` cover the same
//! parsers and decoders in process; this file checks the whole path through the real `counter`
//! example and the real layer.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Counter, Reply, session_keys};
use http::HeaderValue;
use redis_sessions::data::MAX_DEPTH;
use redis_sessions::{Config, DataError, RedisPoolConfig, SessionId, SessionManager};
use redis_test_support::{CountingProxy, RedisServer};
use serde::Deserialize;

/// `GET path` with a `Cookie` header of arbitrary bytes; `Err` when the server closed the
/// connection instead of answering.
async fn get_raw(app: &Counter, path: &str, cookie: &[u8]) -> Result<Reply, String> {
    let value = HeaderValue::from_bytes(cookie).map_err(|e| format!("header: {e}"))?;
    let response = reqwest::Client::new()
        .get(format!("{}{path}", app.base))
        .header("cookie", value)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = response.status().as_u16();
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let body = response.text().await.map_err(|e| format!("{e:?}"))?;
    Ok(Reply {
        status,
        set_cookie,
        body,
    })
}

/// Every field of the hash `key`, as raw bytes.
fn hash(redis: &RedisServer, key: &str) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let client = redis::Client::open(redis.url()).expect("client");
    let mut conn = client.get_connection().expect("connection");
    redis::cmd("HGETALL")
        .arg(key)
        .query(&mut conn)
        .expect("HGETALL")
}

/// `HSET key field value` with binary field and value.
fn hset(redis: &RedisServer, key: &str, field: &[u8], value: &[u8]) {
    let client = redis::Client::open(redis.url()).expect("client");
    let mut conn = client.get_connection().expect("connection");
    redis::cmd("HSET")
        .arg(key)
        .arg(field)
        .arg(value)
        .exec(&mut conn)
        .expect("HSET");
}

/// The data fields of a hash (the metadata under the empty field may be refreshed by a touch).
fn data_fields(all: BTreeMap<Vec<u8>, Vec<u8>>) -> BTreeMap<Vec<u8>, Vec<u8>> {
    all.into_iter().filter(|(k, _)| !k.is_empty()).collect()
}

/// The one session hash on `redis`.
fn only_session_key(redis: &RedisServer) -> String {
    let keys = session_keys(redis);
    assert_eq!(keys.len(), 1, "{keys:?}");
    keys.into_iter().next().expect("one key")
}

/// A well-formed id that no session has.
fn unknown_id() -> String {
    SessionId::generate().expose()
}

#[tokio::test]
async fn oversized_cookie_headers_are_ignored_or_refused_and_the_server_lives_on() {
    let redis = RedisServer::start();
    let proxy = CountingProxy::start(redis.port());
    let app = Counter::start(proxy.port(), "", "");
    let cookie = app.new_session().await;
    let key = only_session_key(&redis);
    let before = hash(&redis, &key);

    // 64 KiB of another site's cookie next to ours: ours is still found.
    let big = format!("junk={}; {cookie}", "a".repeat(64 * 1024));
    let reply = get_raw(&app, "/read", big.as_bytes())
        .await
        .expect("answer");
    assert_eq!((reply.status, reply.body.as_str()), (200, "1"), "{reply:?}");

    // A 64 KiB value under our name is no id: no Redis call, no cookie, an empty session.
    proxy.reset();
    let ours = format!("dmsession={}", "A".repeat(64 * 1024));
    let reply = get_raw(&app, "/read", ours.as_bytes())
        .await
        .expect("answer");
    assert_eq!((reply.status, reply.body.as_str()), (200, "0"), "{reply:?}");
    assert!(reply.set_cookie.is_none(), "{reply:?}");
    assert_eq!(proxy.round_trips(), 0, "{:?}", proxy.command_names());

    // 2 MiB is past what the HTTP server reads: refused (431) or the connection is closed,
    // never a crash and never a session.
    let huge = format!("junk={}; {cookie}", "b".repeat(2 << 20));
    match get_raw(&app, "/incr", huge.as_bytes()).await {
        Ok(reply) => assert_eq!(reply.status, 431, "{reply:?}"),
        Err(closed) => eprintln!("2 MiB Cookie header: connection closed ({closed})"),
    }
    let reply = app.get("/read", Some(&cookie)).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "1"),
        "still serving"
    );
    assert_eq!(hash(&redis, &key), before, "Redis changed");
    assert_eq!(session_keys(&redis).len(), 1, "a session was created");
}

#[tokio::test]
async fn thousands_of_cookies_in_one_header_cost_at_most_max_candidates_loads() {
    let redis = RedisServer::start();
    let proxy = CountingProxy::start(redis.port());
    let app = Counter::start(proxy.port(), "", "");
    let cookie = app.new_session().await;

    // 5,000 foreign cookies, then ours: found, with one load.
    let mut header: String = (0..5000).map(|i| format!("c{i}=v{i}; ")).collect();
    header.push_str(&cookie);
    proxy.reset();
    let reply = get_raw(&app, "/read", header.as_bytes())
        .await
        .expect("answer");
    assert_eq!((reply.status, reply.body.as_str()), (200, "1"), "{reply:?}");
    assert_eq!(proxy.command_names(), ["HGETALL"]);

    // 2,000 well-formed unknown ids under our name, then the live one: only the first
    // MAX_CANDIDATES are tried, so the request costs at most 4 loads and sees an empty session.
    let mut header: String = (0..2000)
        .map(|_| format!("dmsession={}; ", unknown_id()))
        .collect();
    header.push_str(&cookie);
    proxy.reset();
    let reply = get_raw(&app, "/read", header.as_bytes())
        .await
        .expect("answer");
    assert_eq!((reply.status, reply.body.as_str()), (200, "0"), "{reply:?}");
    let loads = proxy
        .command_names()
        .iter()
        .filter(|c| *c == "HGETALL")
        .count();
    assert!(
        (1..=redis_sessions::cookie::MAX_CANDIDATES).contains(&loads),
        "{loads} loads: {:?}",
        proxy.command_names()
    );
    assert_eq!(session_keys(&redis).len(), 1, "a session was created");
}

#[tokio::test]
async fn non_utf8_cookie_bytes_neither_hide_our_cookie_nor_reach_redis() {
    let redis = RedisServer::start();
    let proxy = CountingProxy::start(redis.port());
    let app = Counter::start(proxy.port(), "", "");
    let cookie = app.new_session().await;

    let mut header = b"theme=\xff\xfe\x80; x=\xc3\x28; ".to_vec();
    header.extend_from_slice(cookie.as_bytes());
    header.extend_from_slice(b"; tail=\xf0\x9f");
    let reply = get_raw(&app, "/read", &header).await.expect("answer");
    assert_eq!((reply.status, reply.body.as_str()), (200, "1"), "{reply:?}");

    // 43 bytes of obs-text under our name: not an id, so no Redis call at all.
    let mut header = b"dmsession=".to_vec();
    header.extend_from_slice(&[0xe9; 43]);
    proxy.reset();
    let reply = get_raw(&app, "/read", &header).await.expect("answer");
    assert_eq!((reply.status, reply.body.as_str()), (200, "0"), "{reply:?}");
    assert!(reply.set_cookie.is_none(), "{reply:?}");
    assert_eq!(proxy.round_trips(), 0, "{:?}", proxy.command_names());
}

/// 60,000 levels of one-element arrays around an integer (60 KB, under `max_value_bytes`).
fn deeply_nested_array() -> Vec<u8> {
    let mut value = vec![0x91; 60_000];
    value.push(0x01);
    value
}

/// 30,000 levels of `{0: {0: ... 1}}`: how an externally tagged enum's variant 0 is written.
fn deeply_nested_enum() -> Vec<u8> {
    let mut value = [0x81, 0x00].repeat(30_000);
    value.push(0x01);
    value
}

#[tokio::test]
async fn deeply_nested_and_corrupt_stored_values_answer_500_and_stay_untouched() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "", "");
    let cookie = app.new_session().await;
    let key = only_session_key(&redis);
    hset(&redis, &key, b"n", &deeply_nested_array());
    hset(&redis, &key, b"e", &deeply_nested_enum());
    hset(&redis, &key, b"bad", &[0xc1]);
    hset(&redis, &key, b"\xff\xfe", &[0x05]);
    let before = data_fields(hash(&redis, &key));

    for path in [
        "/read",
        "/incr",
        "/read?key=e",
        "/incr?key=bad",
        "/incr-locked",
    ] {
        let reply = app.get(path, Some(&cookie)).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (500, "session error"),
            "{path}: {reply:?}"
        );
    }
    // Other keys still work, and writing one leaves the hostile fields alone.
    let reply = app.get("/incr?key=ok", Some(&cookie)).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "1"), "{reply:?}");
    let mut after = data_fields(hash(&redis, &key));
    assert_eq!(after.remove(&b"ok"[..]), Some(vec![0x01]));
    assert_eq!(after, before, "the stored fields changed");
}

/// A recursive enum, as an application might keep a tree in its session.
#[derive(Deserialize, Debug)]
enum Tree {
    Node(Box<Tree>),
    Leaf(i64),
}

fn manager(port: u16) -> SessionManager {
    let mut config = Config::default();
    config.pools.insert(
        "default".into(),
        RedisPoolConfig {
            port,
            ..RedisPoolConfig::default()
        },
    );
    SessionManager::new(config).expect("valid config")
}

/// Decoding runs on a tokio worker thread (2 MiB of stack), as in a real handler: deep nesting
/// must come back as `DataError::Decode`, not a stack overflow that kills the process (before
/// `data::MAX_DEPTH`, the recursive enum aborted this test), while values exactly as deep as
/// the limit still decode there, and `put` refuses one level more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_values_are_decode_errors_on_a_worker_thread() {
    let redis = RedisServer::start();
    let manager = manager(redis.port());
    let mut request = http::Request::new(());
    let session = manager.start(&mut request).await.expect("start");
    session.put("n", &1).expect("put");
    let persisted = manager.persist_session(&request).await.expect("persist");
    let set_cookie = persisted.set_cookie.expect("a new session's cookie");
    let cookie = set_cookie.to_str().expect("ASCII").split(';').next();
    let cookie = cookie.expect("name=value").to_owned();
    let key = only_session_key(&redis);
    hset(&redis, &key, b"array", &deeply_nested_array());
    hset(&redis, &key, b"enum", &deeply_nested_enum());
    // The deepest values accepted: MAX_DEPTH arrays, and Node^(MAX_DEPTH - 1)(Leaf(5)).
    let mut deepest = vec![0x91; MAX_DEPTH];
    deepest.push(0x01);
    hset(&redis, &key, b"deepest", &deepest);
    let mut tree = [0x81, 0x00].repeat(MAX_DEPTH - 1);
    tree.extend_from_slice(&[0x81, 0x01, 0x05]);
    hset(&redis, &key, b"tree", &tree);

    let task = tokio::spawn(async move {
        let mut request = http::Request::builder()
            .header("cookie", cookie)
            .body(())
            .expect("request");
        let session = manager.start(&mut request).await.expect("load");
        let json = session.get::<serde_json::Value>("array");
        let enum_err = session.get::<Tree>("enum");
        let tree_of_array = session.get::<Tree>("array");
        let json_of_enum = session.get::<serde_json::Value>("enum");
        let deepest = session
            .get::<serde_json::Value>("deepest")
            .expect("decodes");
        let tree = session
            .get::<Tree>("tree")
            .expect("decodes")
            .expect("stored");
        let deeper = serde_json::json!([deepest.clone()]);
        let refused = session.put("deeper", &deeper).expect_err("too deep to put");
        assert!(matches!(refused, DataError::Encode { .. }), "{refused:?}");
        session
            .put("deepest-again", &deepest)
            .expect("as deep as allowed");
        (
            tree,
            [
                json.err(),
                enum_err.err(),
                tree_of_array.err(),
                json_of_enum.err(),
            ],
        )
    });
    let (tree, errors) = task.await.expect("no panic");
    let mut levels = 0;
    let mut node = &tree;
    while let Tree::Node(inner) = node {
        levels += 1;
        node = inner;
    }
    assert!(
        matches!(node, Tree::Leaf(5)) && levels == MAX_DEPTH - 1,
        "{levels}"
    );
    for (i, err) in errors.into_iter().enumerate() {
        assert!(
            matches!(err, Some(DataError::Decode { .. })),
            "case {i}: {err:?}"
        );
    }
}
