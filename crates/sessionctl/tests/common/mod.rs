//! Shared harness of the `sessionctl` tests: a `config.ini` pointing at a private Redis (one
//! server or a Cluster), the built binary run as a script would run it (no terminal on stdin),
//! and sessions written the way the library writes them (`RedisStore::create`, `end`,
//! `load_locked`), or in bulk with raw `HSET`/`PEXPIRE` of the same layout.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use redis_sessions::id::StorageId;
use redis_sessions::store::{ChangeSet, EndOutcome, EndRequest, LockToken, Meta, Record, now_ms};
use redis_sessions::{Config, RedisPoolConfig, RedisStore, SessionId, SessionStore as _};
use redis_test_support::{RedisCluster, RedisServer};
use serde_json::Value as Json;
use tempfile::TempDir;

/// The key prefix of the tests' pool (not the default, to prove `prefix` is followed).
pub const PREFIX: &str = "t:";

/// A config file for one pool and a way to run `sessionctl` with it.
pub struct Ctl {
    _dir: TempDir,
    pub config: PathBuf,
}

/// What a run of the binary gave.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Stdout parsed as the one JSON object `--json` promises.
    pub fn json(&self) -> Json {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {self:?}"))
    }
}

impl Ctl {
    /// A config whose `default` pool is `pool_lines` (`default[key] = value` lines).
    pub fn with_pool(pool_lines: &str) -> Ctl {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("config.ini");
        let text = format!(
            "[session]\ncookie_lifespan = 3600\n\n[redis]\ndefault[prefix] = {PREFIX}\n\
             default[timeout] = 2\n{pool_lines}\n"
        );
        std::fs::write(&config, text).expect("write config");
        Ctl { _dir: dir, config }
    }

    /// A config for a single server.
    pub fn single(server: &RedisServer) -> Ctl {
        Ctl::with_pool(&format!("default[port] = {}", server.port()))
    }

    /// A config for a Cluster, through its nodes as seeds.
    pub fn cluster(cluster: &RedisCluster) -> Ctl {
        Ctl::with_pool(&format!(
            "default[cluster_nodes] = {}",
            cluster.nodes().join(",")
        ))
    }

    /// Runs `sessionctl --config <ours> args...` with stdin not a terminal.
    pub fn run(&self, args: &[&str]) -> Run {
        let config = self.config.to_str().expect("utf-8 path");
        run(&[&["--config", config], args].concat())
    }

    /// Runs with `--json` and returns the exit code and the parsed object.
    pub fn json(&self, args: &[&str]) -> (i32, Json) {
        let run = self.run(&[&["--json"], args].concat());
        (run.code, run.json())
    }

    /// The pool of the config, as the library reads it.
    pub fn pool(&self) -> RedisPoolConfig {
        let config = Config::from_ini_file(&self.config).expect("config");
        config.pool().expect("pool").clone()
    }

    /// The library's store for the pool, made inside `rt` (its connections need a runtime).
    pub fn store(&self, rt: &tokio::runtime::Runtime) -> RedisStore {
        let _inside = rt.enter();
        RedisStore::new(&self.pool()).expect("store")
    }

    /// `count --json`: the number of sessions (asserting exit 0).
    pub fn count(&self) -> u64 {
        let (code, json) = self.json(&["count"]);
        assert_eq!(code, 0, "{json}");
        json["sessions"].as_u64().expect("sessions")
    }
}

/// Runs the built binary with `args` (no `--config` added).
pub fn run(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_sessionctl"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run sessionctl");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A runtime for the library's async store.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A value as the library encodes it (`SessionData::put`: MessagePack with field names).
pub fn encoded(value: &Json) -> Bytes {
    Bytes::from(rmp_serde::to_vec_named(value).expect("encode"))
}

/// The save of a request that loaded the session before it was destroyed: `key = value`, on
/// the plain path (`within_lifetime`, the one the tombstone must protect).
pub fn late_save(key: &str, value: &Json) -> ChangeSet {
    let now = now_ms();
    ChangeSet {
        set: vec![(key.to_owned(), encoded(value))],
        removed: Vec::new(),
        meta: Meta {
            created_ms: now,
            touched_ms: now,
        },
        ttl: Duration::from_secs(3600),
        unlock: None,
        within_lifetime: true,
    }
}

/// The record of a new session holding `fields`, created and touched `age_ms` ago.
pub fn record(fields: &[(&str, Json)], age_ms: u64) -> Record {
    let at = now_ms() - age_ms;
    Record {
        meta: Meta {
            created_ms: at,
            touched_ms: at,
        },
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), encoded(v)))
            .collect(),
    }
}

/// Creates a session with `RedisStore::create` (TTL one hour) and returns its cookie id.
pub async fn create(store: &RedisStore, fields: &[(&str, Json)]) -> SessionId {
    let id = SessionId::generate();
    store
        .create(
            &id.storage_id(),
            &record(fields, 0),
            Duration::from_secs(3600),
        )
        .await
        .expect("create");
    id
}

/// Ends a session as a logout does (a tombstone of 65 s).
pub async fn end(store: &RedisStore, id: &StorageId) -> EndOutcome {
    let request = EndRequest {
        tombstone: Duration::from_secs(65),
        lock: None,
        require_lock: false,
        successor: "",
    };
    store.end(id, request).await.expect("end")
}

/// Takes the session lock as a locked request does (leaves the `...}:l` key).
pub async fn lock(store: &RedisStore, id: &StorageId) {
    let token = LockToken("test-lock".into());
    store
        .load_locked(id, &token, Duration::from_secs(600))
        .await
        .expect("lock");
}
