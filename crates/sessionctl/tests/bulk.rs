//! A scan of 100,000 sessions: written in bulk with raw pipelined `HSET` (metadata under the
//! empty field, one MessagePack value) + `PEXPIRE`, the layout `RedisStore::create` writes, plus
//! tombstones and locks that must not be counted; `count` must find exactly 100,000, and
//! `purge --yes` must leave nothing of the prefix. The times are printed (run with
//! `--nocapture` to see them).

mod common;

use std::time::Instant;

use common::{Ctl, PREFIX, encoded};
use redis::Value;
use redis_sessions::SessionId;
use redis_sessions::store::{Meta, now_ms};
use redis_test_support::RedisServer;
use serde_json::json;

const SESSIONS: usize = 100_000;
const BATCH: usize = 5_000;

/// Writes `SESSIONS` session hashes, 100 tombstones and 100 locks (with TTLs longer than the
/// test, unlike the real ones, so that none expires under a slow machine); returns the seconds
/// it took.
fn fill(server: &RedisServer) -> f64 {
    let started = Instant::now();
    let client = redis::Client::open(server.url()).expect("client");
    let mut conn = client.get_connection().expect("connection");
    let now = now_ms();
    let meta = Meta {
        created_ms: now,
        touched_ms: now,
    }
    .encode();
    let value = encoded(&json!({"items": 1}));
    for start in (0..SESSIONS).step_by(BATCH) {
        let mut pipe = redis::pipe();
        for _ in start..(start + BATCH).min(SESSIONS) {
            let key = format!("{PREFIX}{{{}}}", SessionId::generate().storage_id());
            pipe.cmd("HSET")
                .arg(&key)
                .arg("")
                .arg(&meta[..])
                .arg("basket")
                .arg(&value[..])
                .ignore();
            pipe.cmd("PEXPIRE").arg(&key).arg(3_600_000).ignore();
        }
        pipe.exec(&mut conn).expect("bulk write");
    }
    let mut pipe = redis::pipe();
    for _ in 0..100 {
        let tag = SessionId::generate().storage_id();
        pipe.cmd("SET")
            .arg(format!("{PREFIX}{{{tag}}}"))
            .arg("")
            .arg("PX")
            .arg(600_000)
            .ignore();
        pipe.cmd("SET")
            .arg(format!("{PREFIX}{{{tag}}}:l"))
            .arg("token")
            .arg("PX")
            .arg(600_000)
            .ignore();
    }
    pipe.exec(&mut conn).expect("tombstones and locks");
    started.elapsed().as_secs_f64()
}

#[test]
fn a_hundred_thousand_sessions_are_counted_exactly_and_purged() {
    let server = RedisServer::start();
    let ctl = Ctl::single(&server);
    let filled = fill(&server);
    assert_eq!(
        server.cmd(&["DBSIZE"]),
        Value::Int(i64::try_from(SESSIONS).unwrap_or(0) + 200)
    );

    let started = Instant::now();
    let (code, json) = ctl.json(&["count"]);
    let counted = started.elapsed().as_secs_f64();
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["sessions"], SESSIONS, "{json}");
    let scan_ms = json["elapsed_ms"].as_u64().unwrap_or(0);

    let started = Instant::now();
    let (code, json) = ctl.json(&["purge", "--yes"]);
    let purged = started.elapsed().as_secs_f64();
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["sessions"], SESSIONS, "{json}");
    assert_eq!(
        (&json["tombstones"], &json["locks"]),
        (&json!(100), &json!(100))
    );
    assert_eq!(server.cmd(&["DBSIZE"]), Value::Int(0));
    println!(
        "{SESSIONS} sessions: written in {filled:.2} s, `sessionctl count` {counted:.2} s \
         (its scan {scan_ms} ms), `purge --yes` {purged:.2} s"
    );
}
