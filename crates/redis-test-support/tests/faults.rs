//! Integration tests of the harness's fault injection: a crash with a
//! persistent data set, `CLIENT PAUSE`, `DEBUG SLEEP`, background commands
//! and a process's resident memory.

use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use redis::Value;
use redis_test_support::{PauseMode, RedisServer, rss_bytes};

fn accepts(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn get(server: &RedisServer, key: &str) -> Value {
    server.cmd(&["GET", key])
}

#[test]
fn a_persistent_server_keeps_its_data_across_kill_and_restart() {
    let mut server = RedisServer::start_persistent();
    let port = server.port();
    assert_eq!(
        server.cmd(&["CONFIG", "GET", "appendfsync"]),
        Value::Array(vec![
            Value::BulkString(b"appendfsync".to_vec()),
            Value::BulkString(b"always".to_vec())
        ])
    );
    for i in 0..100 {
        server.cmd(&["SET", &format!("k{i}"), &i.to_string()]);
    }
    server.cmd(&["SET", "short", "x", "PX", "300"]);

    server.kill();
    assert!(!server.is_running());
    assert!(!accepts(port));
    thread::sleep(Duration::from_millis(400));
    server.restart();

    assert_eq!(server.port(), port);
    for i in 0..100 {
        assert_eq!(
            get(&server, &format!("k{i}")),
            Value::BulkString(i.to_string().into_bytes()),
            "k{i} lost"
        );
    }
    assert_eq!(
        get(&server, "short"),
        Value::Nil,
        "an expired key came back"
    );
    // A second crash keeps what was written after the first restart too.
    server.cmd(&["SET", "after", "1"]);
    server.kill();
    server.restart();
    assert_eq!(get(&server, "after"), Value::BulkString(b"1".to_vec()));
    assert_eq!(get(&server, "k99"), Value::BulkString(b"99".to_vec()));
}

#[test]
fn a_default_server_loses_its_data_on_kill() {
    let mut server = RedisServer::start();
    server.cmd(&["SET", "k", "v"]);
    server.kill();
    server.restart();
    assert_eq!(get(&server, "k"), Value::Nil);
}

#[test]
fn debug_sleep_stalls_the_server_without_blocking_the_caller() {
    let server = RedisServer::start();
    let started = Instant::now();
    let sleep = server.sleep_in_background(Duration::from_millis(1000));
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "sleep_in_background blocked for {:?}",
        started.elapsed()
    );
    assert!(!sleep.is_finished());
    // Another client waits until the sleep is over.
    assert_eq!(server.cmd(&["PING"]), Value::SimpleString("PONG".into()));
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(800), "PING took {waited:?}");
    assert_eq!(sleep.join(), Value::Okay);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_write_pause_holds_writes_and_lets_reads_through() {
    let server = RedisServer::start();
    server.cmd(&["SET", "k", "before"]);
    let started = Instant::now();
    server.pause(Duration::from_millis(1000), PauseMode::Write);

    assert_eq!(get(&server, "k"), Value::BulkString(b"before".to_vec()));
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "a read waited {:?}",
        started.elapsed()
    );
    let write = server.cmd_in_background(&["SET", "k", "after"]);
    thread::sleep(Duration::from_millis(300));
    assert!(!write.is_finished(), "the write was not held back");
    assert_eq!(get(&server, "k"), Value::BulkString(b"before".to_vec()));
    assert_eq!(write.join(), Value::Okay);
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(get(&server, "k"), Value::BulkString(b"after".to_vec()));
}

#[test]
fn an_all_pause_holds_reads_too() {
    let server = RedisServer::start();
    let started = Instant::now();
    server.pause(Duration::from_millis(700), PauseMode::All);
    assert_eq!(server.cmd(&["PING"]), Value::SimpleString("PONG".into()));
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "PING answered after {:?}",
        started.elapsed()
    );
}

#[test]
fn an_error_reply_of_a_background_command_is_a_value() {
    let server = RedisServer::start();
    let reply = server.cmd_in_background(&["NOSUCHCOMMAND"]).join();
    assert!(matches!(reply, Value::ServerError(_)), "{reply:?}");
}

#[test]
fn rss_of_a_process_grows_with_what_it_touches() {
    let before = rss_bytes(std::process::id());
    assert!(before > 100_000, "{before}");
    let block = vec![1u8; 64 << 20];
    let after = rss_bytes(std::process::id());
    assert!(after >= before + (32 << 20), "{before} -> {after}");
    assert_eq!(block[block.len() - 1], 1);
}

#[test]
#[should_panic(expected = "is process")]
fn rss_of_a_missing_process_panics() {
    let _ = rss_bytes(u32::MAX - 1);
}
