//! Shared test harness: runs the real `counter` example against a private Redis and talks HTTP
//! to it with plain requests (no cookie jar: each test says which cookie it sends).
#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `counter` example built by `cargo test` next to this test binary.
fn counter_exe() -> PathBuf {
    let mut path = std::env::current_exe().expect("test binary path");
    path.pop(); // deps/
    path.pop(); // debug/
    path.push("examples");
    path.push("counter");
    assert!(
        path.exists(),
        "{} missing: run through `cargo test`",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running counter server; killed on drop.
pub struct Counter {
    child: Child,
    pub base: String,
    _dir: tempfile::TempDir,
    client: reqwest::Client,
}

/// One response, reduced to what the tests look at.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub set_cookie: Option<String>,
    pub body: String,
}

impl Reply {
    /// The `dmsession=VALUE` pair of the Set-Cookie header, to send back as `Cookie`.
    pub fn cookie(&self) -> String {
        let header = self.set_cookie.as_deref().expect("a Set-Cookie header");
        header
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned()
    }
}

impl Counter {
    /// Starts the counter with `[session]` lines `session` and pool lines `pool` added to a config
    /// that points at `redis_port`.
    pub fn start(redis_port: u16, session: &str, pool: &str) -> Counter {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("config.ini");
        std::fs::write(
            &config,
            format!(
                "[session]\ncookie_name = dmsession\ncookie_lifespan = 86400\n\
                 redis_connection_pool = default\n{session}\n\
                 [redis]\ndefault[host] = 127.0.0.1\ndefault[port] = {redis_port}\n\
                 default[prefix] = dm:\ndefault[pool_size] = 1\n{pool}\n"
            ),
        )
        .expect("write config");
        let port = free_port();
        let child = Command::new(counter_exe())
            .args(["--config", config.to_str().unwrap_or_default()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--workers", "2"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start counter");
        let counter = Counter {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("http client"),
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "counter did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        counter
    }

    /// `GET path`, sending `cookie` (a `name=value` pair) when given.
    pub async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.expect("HTTP request");
        let status = response.status().as_u16();
        let set_cookie = response
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        let body = response.text().await.unwrap_or_default();
        Reply {
            status,
            set_cookie,
            body,
        }
    }

    /// A new session holding `n = 1`; returns its cookie.
    pub async fn new_session(&self) -> String {
        let reply = self.get("/incr", None).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.cookie()
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Live session keys on `server`: hashes under `dm:`, not lock keys or tombstones.
pub fn session_keys(server: &redis_test_support::RedisServer) -> Vec<String> {
    match server.cmd(&["KEYS", "dm:*"]) {
        redis::Value::Array(items) => items
            .into_iter()
            .filter_map(|v| match v {
                redis::Value::BulkString(b) => String::from_utf8(b).ok(),
                _ => None,
            })
            .filter(|k| server.cmd(&["TYPE", k]) == redis::Value::SimpleString("hash".into()))
            .collect(),
        other => panic!("KEYS answered {other:?}"),
    }
}

/// An integer reply.
pub fn int(value: redis::Value) -> i64 {
    match value {
        redis::Value::Int(n) => n,
        other => panic!("expected an integer, got {other:?}"),
    }
}
