//! `sessionctl` against one private redis-server: each subcommand's output and exit code,
//! `destroy` holding against a late save, `purge --dry-run` deleting nothing, and the errors
//! scripts must be able to tell apart (bad input, bad config, Redis down, Redis refusing).

mod common;

use common::{Ctl, PREFIX, create, end, lock, run, runtime};
use redis::Value;
use redis_sessions::SessionId;
use redis_sessions::store::{SaveOutcome, SessionStore as _, now_ms};
use redis_test_support::RedisServer;
use serde_json::json;

fn dbsize(server: &RedisServer) -> i64 {
    match server.cmd(&["DBSIZE"]) {
        Value::Int(n) => n,
        other => panic!("DBSIZE gave {other:?}"),
    }
}

#[test]
fn count_counts_live_sessions_only() {
    let server = RedisServer::start();
    let ctl = Ctl::single(&server);
    let rt = runtime();
    let store = ctl.store(&rt);
    let ids: Vec<SessionId> = (0..4)
        .map(|i| rt.block_on(create(&store, &[("n", json!(i))])))
        .collect();
    rt.block_on(end(&store, &ids[0].storage_id())); // a tombstone (string)
    rt.block_on(lock(&store, &ids[1].storage_id())); // a lock key (string) beside a session
    // Not sessions: another prefix, and a hash of ours that is not of the session layout.
    server.cmd(&["HSET", "other:{AAAAAAAAAAAAAAAAAAAAAA}", "a", "1"]);
    server.cmd(&["HSET", &format!("{PREFIX}users"), "a", "1"]);

    let (code, json) = ctl.json(&["count"]);
    assert_eq!(code, 0);
    assert_eq!(json["sessions"], 3, "{json}");
    assert_eq!(json["pool"], "default");
    assert_eq!(json["prefix"], PREFIX);
    assert_eq!(json["masters"][0]["sessions"], 3);

    let text = ctl.run(&["count"]);
    assert_eq!(text.code, 0);
    assert!(
        text.stdout
            .contains("pool default (prefix \"t:\"): 3 live sessions on 1 master"),
        "{text:?}"
    );
}

#[test]
fn show_decodes_times_ttl_and_values() {
    let server = RedisServer::start();
    let ctl = Ctl::single(&server);
    let rt = runtime();
    let store = ctl.store(&rt);
    let basket = json!({"apple": 2, "pear": {"ripe": true, "price": 1.5}});
    let id = rt.block_on(create(
        &store,
        &[("items", json!(3)), ("basket", basket.clone())],
    ));
    let storage = id.storage_id();

    for arg in [id.expose(), storage.as_str().to_owned()] {
        let (code, json) = ctl.json(&["show", &arg]);
        assert_eq!(code, 0, "{json}");
        assert_eq!(json["status"], "live");
        assert_eq!(json["storage_id"], storage.as_str());
        assert_eq!(json["key"], format!("{PREFIX}{{{storage}}}"));
        assert_eq!(json["fields"], json!({"items": 3, "basket": basket}));
        let created = json["created_ms"].as_u64().expect("created_ms");
        assert!(now_ms() - created < 60_000, "{json}");
        assert_eq!(json["touched_ms"], json["created_ms"]);
        let ttl = json["ttl_ms"].as_u64().expect("ttl_ms");
        assert!(ttl > 3_500_000 && ttl <= 3_600_000, "{json}");
    }

    let text = ctl.run(&["show", storage.as_str()]);
    assert_eq!(text.code, 0);
    assert!(text.stdout.contains("status   live"), "{text:?}");
    assert!(text.stdout.contains("  items = 3"), "{text:?}");
    assert!(text.stdout.contains("ttl      59 min"), "{text:?}");
    assert!(
        !text.stdout.contains(&id.expose()),
        "show never prints the cookie"
    );

    // Unknown, ended and malformed ids.
    let (code, json) = ctl.json(&["show", &SessionId::generate().expose()]);
    assert_eq!((code, json["status"].clone()), (1, json!("not_found")));
    rt.block_on(end(&store, &storage));
    let (code, json) = ctl.json(&["show", &id.expose()]);
    assert_eq!(
        (code, json["status"].clone()),
        (1, json!("ended")),
        "{json}"
    );
    assert_eq!(json["rotated_to"], json!(null));
    let bad = ctl.run(&["show", "not-a-session"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(
        bad.stderr.contains("neither a session cookie value"),
        "{bad:?}"
    );
}

#[test]
fn destroy_ends_the_session_and_a_late_save_cannot_recreate_it() {
    let server = RedisServer::start();
    let ctl = Ctl::single(&server);
    let rt = runtime();
    let store = ctl.store(&rt);
    let id = rt.block_on(create(
        &store,
        &[("items", json!(1)), ("user", json!("ann"))],
    ));
    let storage = id.storage_id();

    let (code, json) = ctl.json(&["destroy", &id.expose()]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["status"], "destroyed");
    assert_eq!(json["fields"], 2);
    // The manager's tombstone time for cookie_lifespan = 3600: 60 s + 5 s of clock margin.
    assert_eq!(json["tombstone_ms"], 65_000);

    // A request that loaded the session before the destroy now saves with plain commands
    // (the fast path the tombstone protects): nothing comes back.
    let late = common::late_save("items", &json!(2));
    let outcome = rt.block_on(store.save(&storage, &late)).expect("save");
    assert_eq!(outcome, SaveOutcome::Gone);
    let key = format!("{PREFIX}{{{storage}}}");
    assert_eq!(
        server.cmd(&["TYPE", &key]),
        Value::SimpleString("string".into())
    );
    assert_eq!(ctl.count(), 0);

    // Again: no such session, exit 1.
    let (code, json) = ctl.json(&["destroy", storage.as_str()]);
    assert_eq!((code, json["status"].clone()), (1, json!("not_found")));
    let text = ctl.run(&["destroy", &SessionId::generate().expose()]);
    assert_eq!(text.code, 1);
    assert!(text.stdout.contains("no such session"), "{text:?}");
}

#[test]
fn purge_dry_run_counts_and_purge_deletes_only_session_keys() {
    let server = RedisServer::start();
    let ctl = Ctl::single(&server);
    let rt = runtime();
    let store = ctl.store(&rt);
    let ids: Vec<SessionId> = (0..5)
        .map(|_| rt.block_on(create(&store, &[("x", json!(true))])))
        .collect();
    rt.block_on(end(&store, &ids[0].storage_id()));
    rt.block_on(lock(&store, &ids[1].storage_id()));
    server.cmd(&["SET", "unrelated", "1"]);
    server.cmd(&["SET", &format!("{PREFIX}app-setting"), "1"]);
    let before = dbsize(&server);
    assert_eq!(before, 8);

    let (code, json) = ctl.json(&["purge", "--dry-run"]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["dry_run"], true);
    assert_eq!(
        (
            &json["keys"],
            &json["sessions"],
            &json["tombstones"],
            &json["locks"]
        ),
        (&json!(6), &json!(4), &json!(1), &json!(1)),
        "{json}"
    );
    assert_eq!(dbsize(&server), before, "a dry run deletes nothing");

    // No terminal and no --yes: refused, nothing deleted.
    let refused = ctl.run(&["purge"]);
    assert_eq!(refused.code, 5, "{refused:?}");
    assert!(refused.stderr.contains("--yes"), "{refused:?}");
    assert_eq!(dbsize(&server), before);

    let text = ctl.run(&["purge", "--yes"]);
    assert_eq!(text.code, 0, "{text:?}");
    assert!(
        text.stdout
            .contains("deleted 6 keys (4 sessions, 1 tombstone, 1 lock) under prefix \"t:\""),
        "{text:?}"
    );
    assert_eq!(
        dbsize(&server),
        2,
        "only the keys of other layouts are left"
    );
    assert_eq!(ctl.count(), 0);
    let (code, json) = ctl.json(&["purge", "--yes"]);
    assert_eq!((code, json["keys"].clone()), (0, json!(0)));
}

#[test]
fn errors_have_their_own_exit_codes_and_sentences() {
    // Missing config file: 2.
    let missing = run(&["--config", "/nonexistent/config.ini", "count"]);
    assert_eq!(missing.code, 2, "{missing:?}");
    assert!(
        missing.stderr.contains("cannot read configuration file"),
        "{missing:?}"
    );
    // Invalid config: 2, naming the key.
    let bad = Ctl::with_pool("default[port] = many");
    let run = bad.run(&["count"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("default[port]"), "{run:?}");
    // Unknown pool: 2. Unknown subcommand: 2.
    let server = RedisServer::start();
    let ctl = Ctl::single(&server);
    let (code, json) = ctl.json(&["--pool", "nope", "count"]);
    assert_eq!((code, json["kind"].clone()), (2, json!("usage")), "{json}");
    assert_eq!(ctl.run(&["frobnicate"]).code, 2);

    // Redis refusing (a password is required): 4.
    let locked = RedisServer::start_with_args(&["--requirepass", "secret"]);
    let (code, json) = Ctl::single(&locked).json(&["count"]);
    assert_eq!(
        (code, json["kind"].clone()),
        (4, json!("redis_error")),
        "{json}"
    );

    // Redis down: 3, for every command.
    let mut gone = RedisServer::start();
    let down = Ctl::single(&gone);
    gone.stop();
    let id = SessionId::generate().expose();
    for args in [
        vec!["count"],
        vec!["show", &id],
        vec!["destroy", &id],
        vec!["purge", "--dry-run"],
    ] {
        let run = down.run(&args);
        assert_eq!(run.code, 3, "{args:?}: {run:?}");
        assert!(run.stderr.contains("Redis is unreachable"), "{run:?}");
        assert!(!run.stderr.contains("panicked"), "{run:?}");
    }
}

#[test]
fn a_resonance_config_is_refused_with_a_usage_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config.ini");
    std::fs::write(&config, "[session]\nformat = resonance\n").expect("write config");
    let config = config.to_str().expect("utf-8 path");
    let refused = common::run(&["--config", config, "count"]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("format = resonance"), "{refused:?}");
}

#[test]
fn a_pool_whose_prefix_holds_braces_is_refused_with_a_usage_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config.ini");
    // Port 9 on loopback: nothing listens, so an unchecked run fails on connecting instead.
    let text = "[redis]\ndefault[port] = 9\ncache[port] = 9\ncache[prefix] = {cache}:\n";
    std::fs::write(&config, text).expect("write config");
    let config = config.to_str().expect("utf-8 path");
    // The sessions' pool is fine; `--pool cache` would route by the wrong hash tag.
    let refused = common::run(&["--config", config, "--pool", "cache", "count"]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("cache[prefix]"), "{refused:?}");
    assert!(refused.stderr.contains("hash tag"), "{refused:?}");
}
