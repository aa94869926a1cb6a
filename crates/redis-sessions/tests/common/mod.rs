//! Shared test harness: runs the real `counter` example against a private Redis and talks HTTP
//! to it with plain requests (no cookie jar: each test says which cookie it sends).
#![allow(dead_code, unreachable_pub)]

pub mod acl;
pub mod backends;
pub mod failover;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

/// The `counter` example next to this test binary, checked to be at least as new as every
/// file of the library and of the example: cargo builds examples only for a whole-package
/// `cargo test -p redis-sessions`, so `cargo test --test http` after a library change would
/// otherwise test the old library. The tests do not build it themselves (cargo holds the
/// build directory's lock while tests run); a stale binary is a loud failure instead.
fn counter_exe() -> PathBuf {
    static CHECKED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match CHECKED.get_or_init(check_counter_exe) {
        Ok(path) => path.clone(),
        Err(message) => panic!("{message}"),
    }
}

const BUILD_IT: &str = "run `cargo build -p redis-sessions --example counter` (a whole-package \
                        `cargo test -p redis-sessions` builds it too)";

fn check_counter_exe() -> Result<PathBuf, String> {
    let mut path = std::env::current_exe().map_err(|e| format!("test binary path: {e}"))?;
    path.pop(); // deps/
    path.pop(); // debug/
    path.push("examples");
    path.push("counter");
    let built = modified(&path).map_err(|e| {
        format!(
            "the counter example {} is missing ({e}): {BUILD_IT}",
            path.display()
        )
    })?;
    let package = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = Vec::new();
    collect_files(&package.join("src"), &mut sources);
    sources.push(package.join("examples").join("counter.rs"));
    for source in sources {
        let changed = modified(&source).map_err(|e| format!("{}: {e}", source.display()))?;
        if changed > built {
            return Err(format!(
                "the counter example {} is older than {}, so these tests would run an old build \
                 of the library: {BUILD_IT}",
                path.display(),
                source.display()
            ));
        }
    }
    Ok(path)
}

fn modified(path: &Path) -> std::io::Result<SystemTime> {
    std::fs::metadata(path)?.modified()
}

/// Every file under `dir`, recursively.
fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
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

impl Reply {
    /// The attributes of the `Set-Cookie` header, lower-cased, without the `name=value` pair.
    pub fn attributes(&self) -> Vec<String> {
        let header = self.set_cookie.as_deref().expect("a Set-Cookie header");
        header
            .split(';')
            .skip(1)
            .map(|a| a.trim().to_ascii_lowercase())
            .collect()
    }
}

/// The id (cookie value) in a `name=value` pair.
pub fn id_of(pair: &str) -> &str {
    pair.split_once('=').map_or("", |(_, v)| v)
}

/// The Redis key the session of a `name=value` cookie pair is stored under (prefix `dm:`).
pub fn key_of(pair: &str) -> String {
    let id = redis_sessions::SessionId::parse(id_of(pair)).expect("a well-formed id");
    format!("dm:{{{}}}", id.storage_id())
}

/// What `TYPE key` answers on `server` (`hash`, `string`, `none`, ...).
pub fn key_type(server: &redis_test_support::RedisServer, key: &str) -> String {
    match server.cmd(&["TYPE", key]) {
        redis::Value::SimpleString(t) => t,
        other => panic!("TYPE answered {other:?}"),
    }
}

impl Counter {
    /// Starts the counter with `[session]` lines `session` and pool lines `pool` added to a config
    /// that points at `redis_port`.
    pub fn start(redis_port: u16, session: &str, pool: &str) -> Counter {
        Self::launch(redis_port, session, pool, false)
    }

    /// Like [`Counter::start`], also logging at every level (`RUST_LOG=trace`, every crate) to
    /// the file that [`Counter::log`] reads.
    pub fn start_logged(redis_port: u16, session: &str, pool: &str) -> Counter {
        Self::launch(redis_port, session, pool, true)
    }

    /// Everything the counter wrote so far: its errors and warnings (why a request failed),
    /// and with [`Counter::start_logged`] its trace log too.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("counter.log")).unwrap_or_default()
    }

    fn launch(redis_port: u16, session: &str, pool: &str, logged: bool) -> Counter {
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
        // The counter binds a port of the kernel's choosing and says which on stderr: a port
        // picked here and bound there later could be taken in between (by another test's
        // server, or as the source port of a connection), and probing it with connects could
        // even connect a socket to itself.
        let log_path = dir.path().join("counter.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut command = Command::new(counter_exe());
        command
            .args(["--config", config.to_str().unwrap_or_default()])
            .args(["--listen", "127.0.0.1:0"])
            .args(["--workers", "2"])
            // tracing's fmt subscriber writes to stdout (warnings by default, such as why a
            // request got a 503: a failing test prints the log's tail); errors go to stderr.
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        if logged {
            command.env("RUST_LOG", "trace");
        }
        let child = command.spawn().expect("start counter");
        let mut counter = Counter {
            child,
            base: String::new(),
            _dir: dir,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("http client"),
        };
        let started = Instant::now();
        counter.base = loop {
            let log = counter.log();
            // Only a whole line: the counter may be in the middle of writing it.
            if let Some(base) = log
                .split_inclusive('\n')
                .filter(|line| line.ends_with('\n'))
                .find_map(|line| line.strip_prefix("counter listening on "))
            {
                break base.trim().to_owned();
            }
            if let Ok(Some(status)) = counter.child.try_wait() {
                panic!("counter exited ({status}) before listening:\n{log}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "counter did not start:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        counter
    }

    /// `GET path`, sending `cookie` (a `name=value` pair) when given.
    pub async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        self.try_get(path, cookie, Duration::from_secs(20))
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// `GET path` that gives up after `timeout`: `Err` when no complete answer came in time
    /// (or the connection failed).
    pub async fn try_get(
        &self,
        path: &str,
        cookie: Option<&str>,
        timeout: Duration,
    ) -> Result<Reply, String> {
        let mut request = self
            .client
            .get(format!("{}{path}", self.base))
            .timeout(timeout);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.map_err(|e| format!("{e:?}"))?;
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

    /// The counter's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The counter's resident memory in bytes.
    pub fn rss(&self) -> u64 {
        redis_test_support::rss_bytes(self.pid())
    }

    /// A new session holding `n = 1`; returns its cookie.
    pub async fn new_session(&self) -> String {
        self.new_session_within(Duration::ZERO).await
    }

    /// [`Counter::new_session`], asking again every 100 ms while the answer is not a success,
    /// for up to `patience` (for a set-up against servers that have just started).
    pub async fn new_session_within(&self, patience: Duration) -> String {
        let deadline = Instant::now() + patience;
        loop {
            let reply = self.get("/incr", None).await;
            if reply.status == 200 || Instant::now() >= deadline {
                assert_eq!(reply.status, 200, "{reply:?}");
                return reply.cookie();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            // What the counter said is part of the failure (the test harness shows it).
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!(
                "counter log, last {} lines:\n{}",
                tail.len(),
                tail.join("\n")
            );
        }
    }
}

/// Every key under `dm:` on `server`.
pub fn keys(server: &redis_test_support::RedisServer) -> Vec<String> {
    match server.cmd(&["KEYS", "dm:*"]) {
        redis::Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                redis::Value::BulkString(b) => String::from_utf8(b).expect("UTF-8 key"),
                other => panic!("KEYS answered {other:?} in its array"),
            })
            .collect(),
        other => panic!("KEYS answered {other:?}"),
    }
}

/// Live session keys on `server`: hashes under `dm:`, not lock keys or tombstones.
pub fn session_keys(server: &redis_test_support::RedisServer) -> Vec<String> {
    keys(server)
        .into_iter()
        .filter(|k| server.cmd(&["TYPE", k]) == redis::Value::SimpleString("hash".into()))
        .collect()
}

/// Session lock keys on `server` (`dm:{...}:l`), whatever their type.
pub fn lock_keys(server: &redis_test_support::RedisServer) -> Vec<String> {
    keys(server)
        .into_iter()
        .filter(|k| k.ends_with(":l"))
        .collect()
}

/// An integer reply.
pub fn int(value: redis::Value) -> i64 {
    match value {
        redis::Value::Int(n) => n,
        other => panic!("expected an integer, got {other:?}"),
    }
}
