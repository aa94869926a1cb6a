//! `sessionctl user list` and `user revoke` against sessions bound to users through the
//! library's manager (start, `bind_user`, `describe`, persist: what a login does), on one
//! server and on a 3-master Cluster: the list shows them, `--handle` ends one, a bare revoke ends
//! the rest, a second revoke finds nothing (exit 1), each revoked record is a tombstone, other
//! users are untouched, and a request of a revoked session cannot bring it back.

mod common;

use std::collections::HashSet;

use common::{Ctl, PREFIX, runtime};
use http::Request;
use redis::Value;
use redis_sessions::{Config, SessionError, SessionManager};
use redis_test_support::{RedisCluster, RedisServer};
use serde_json::json;
use tokio::runtime::Runtime;

/// A login: a new session bound to `user`, described, persisted. Returns its handle and cookie.
async fn login(manager: &SessionManager, user: &str, about: &str) -> (String, String) {
    let mut req = Request::builder().uri("/").body(()).expect("request");
    let session = manager.start(&mut req).await.expect("start");
    session.put("basket", &1).expect("put");
    session.bind_user(user).expect("bind");
    session.describe(about).expect("describe");
    let persisted = manager.persist_session(&req).await.expect("persist");
    let cookie = persisted.set_cookie.expect("a cookie");
    let cookie = cookie.to_str().expect("ascii").split(';').next();
    let handle = session.handle().expect("stored, so it has a handle");
    (handle, cookie.unwrap_or_default().to_owned())
}

/// The manager of the test's config (inside `rt`: a Cluster pool needs a runtime).
fn manager(ctl: &Ctl, rt: &Runtime) -> SessionManager {
    let _inside = rt.enter();
    SessionManager::new(Config::from_ini_file(&ctl.config).expect("config")).expect("manager")
}

fn handles(json: &serde_json::Value) -> HashSet<String> {
    let sessions = json["sessions"].as_array().expect("sessions");
    sessions
        .iter()
        .map(|s| s["handle"].as_str().expect("handle").to_owned())
        .collect()
}

/// The whole story, on whatever Redis `ctl` points at; `key_type` asks it a key's `TYPE`.
fn list_and_revoke(ctl: &Ctl, key_type: &dyn Fn(&str) -> String) {
    let rt = runtime();
    let manager = manager(ctl, &rt);
    let abouts = ["Firefox on Linux", "Safari on iPhone", "curl/8.5"];
    let alice: Vec<(String, String)> = abouts
        .iter()
        .map(|about| rt.block_on(login(&manager, "alice", about)))
        .collect();
    let (bob, _) = rt.block_on(login(&manager, "bob", "Edge on Windows"));
    let key = |handle: &str| format!("{PREFIX}{{{handle}}}");

    // list: alice's three, with their descriptions; text and JSON.
    let (code, json) = ctl.json(&["user", "list", "alice"]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["count"], 3, "{json}");
    let expected: HashSet<String> = alice.iter().map(|(h, _)| h.clone()).collect();
    assert_eq!(handles(&json), expected, "{json}");
    let described: HashSet<&str> = json["sessions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["description"].as_str())
        .collect();
    assert_eq!(described, abouts.into_iter().collect(), "{json}");
    for s in json["sessions"].as_array().into_iter().flatten() {
        assert!(s["created_ms"].as_u64().unwrap_or(0) > 0, "{json}");
        assert!(
            s["last_seen"].as_str().unwrap_or("").ends_with('Z'),
            "{json}"
        );
    }
    let text = ctl.run(&["user", "list", "alice"]);
    assert_eq!(text.code, 0, "{text:?}");
    assert!(text.stdout.starts_with("HANDLE "), "{text:?}");
    assert!(text.stdout.contains("LAST SEEN"), "{text:?}");
    for ((handle, _), about) in alice.iter().zip(abouts) {
        assert!(
            text.stdout.contains(handle) && text.stdout.contains(about),
            "{text:?}"
        );
    }
    assert!(
        text.stdout
            .contains("3 live sessions of user \"alice\" in pool default"),
        "{text:?}"
    );
    let (code, json) = ctl.json(&["user", "list", "nobody"]);
    assert_eq!((code, json["count"].clone()), (1, json!(0)), "{json}");

    // A request of alice's first session is running while it is revoked.
    let (first, cookie) = &alice[0];
    let mut late = Request::builder()
        .uri("/")
        .header("cookie", cookie)
        .body(())
        .expect("request");
    let session = rt.block_on(manager.start(&mut late)).expect("start");
    assert_eq!(session.user_id().as_deref(), Some("alice"));

    // revoke --handle: that one only; a handle of another user's session ends nothing.
    let (code, json) = ctl.json(&["user", "revoke", "alice", "--handle", first]);
    assert_eq!((code, json["revoked"].clone()), (0, json!(1)), "{json}");
    assert_eq!(key_type(&key(first)), "string", "a tombstone");
    session.put("basket", &2).expect("put");
    let saved = rt.block_on(manager.persist_session(&late));
    assert!(matches!(saved, Err(SessionError::Gone)), "{saved:?}");
    assert_eq!(key_type(&key(first)), "string", "still a tombstone");
    let again = ctl.run(&["user", "revoke", "alice", "--handle", first]);
    assert_eq!(again.code, 1, "{again:?}");
    assert!(again.stdout.contains("nothing was revoked"), "{again:?}");
    let (code, _) = ctl.json(&["user", "revoke", "alice", "--handle", &bob]);
    assert_eq!(code, 1);
    let (code, json) = ctl.json(&["user", "list", "alice"]);
    assert_eq!((code, json["count"].clone()), (0, json!(2)), "{json}");

    // revoke: the other two; then nothing is left, a second revoke exits 1.
    let run = ctl.run(&["user", "revoke", "alice"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("revoked 2 sessions of user \"alice\""),
        "{run:?}"
    );
    for (handle, _) in &alice {
        assert_eq!(key_type(&key(handle)), "string", "{handle} is a tombstone");
    }
    let (code, json) = ctl.json(&["user", "revoke", "alice"]);
    assert_eq!((code, json["revoked"].clone()), (1, json!(0)), "{json}");
    let (code, json) = ctl.json(&["user", "list", "alice"]);
    assert_eq!((code, json["count"].clone()), (1, json!(0)), "{json}");

    // bob's session lives on.
    let (code, json) = ctl.json(&["user", "list", "bob"]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(handles(&json), HashSet::from([bob.clone()]), "{json}");
    assert_eq!(key_type(&key(&bob)), "hash");
}

fn type_name(value: Value) -> String {
    match value {
        Value::SimpleString(s) => s,
        other => panic!("TYPE gave {other:?}"),
    }
}

#[test]
fn list_and_revoke_on_one_server() {
    let server = RedisServer::start();
    let ctl = Ctl::single(&server);
    list_and_revoke(&ctl, &|key| type_name(server.cmd(&["TYPE", key])));
}

#[test]
fn list_and_revoke_on_a_three_master_cluster() {
    let cluster = RedisCluster::start(3);
    let ctl = Ctl::cluster(&cluster);
    let client = redis::cluster::ClusterClient::new(cluster.urls()).expect("cluster client");
    let mut conn = client.get_connection().expect("cluster connection");
    let conn = std::cell::RefCell::new(&mut conn);
    list_and_revoke(&ctl, &|key| {
        let value = redis::cmd("TYPE")
            .arg(key)
            .query(*conn.borrow_mut())
            .expect("TYPE");
        type_name(value)
    });
}

#[test]
fn user_commands_report_redis_failures_with_their_exit_codes() {
    // Redis refusing (a password is required): 4.
    let locked = RedisServer::start_with_args(&["--requirepass", "secret"]);
    let ctl = Ctl::single(&locked);
    for args in [["user", "list", "alice"], ["user", "revoke", "alice"]] {
        let (code, json) = ctl.json(&args);
        assert_eq!(
            (code, json["kind"].clone()),
            (4, json!("redis_error")),
            "{args:?}: {json}"
        );
    }
    // Redis down: 3.
    let mut gone = RedisServer::start();
    let down = Ctl::single(&gone);
    gone.stop();
    for args in [
        &["user", "list", "alice"][..],
        &["user", "revoke", "alice"],
        &[
            "user",
            "revoke",
            "alice",
            "--handle",
            "AAAAAAAAAAAAAAAAAAAAAA",
        ],
    ] {
        let run = down.run(args);
        assert_eq!(run.code, 3, "{args:?}: {run:?}");
        assert!(run.stderr.contains("Redis is unreachable"), "{run:?}");
        assert!(!run.stderr.contains("panicked"), "{run:?}");
    }
    // An unknown pool: 2.
    let (code, json) = ctl.json(&["--pool", "nope", "user", "list", "alice"]);
    assert_eq!((code, json["kind"].clone()), (2, json!("usage")), "{json}");
}
