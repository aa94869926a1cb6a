//! A Redis Sentinel set: a master, one replica and three sentinels, for failover tests.
//!
//! Kept apart from `server.rs` because sentinels are not data servers: they are
//! `redis-server <config> --sentinel` processes that need a writable config file (Sentinel
//! rewrites it), log a different readiness line, and are asked about the master rather than
//! used for data.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::RedisServer;
use crate::process::{
    IO_TIMEOUT, POLL_INTERVAL, WAIT_TIMEOUT, Watched, file_contains_after, file_len, find_binary,
    free_port, lock, log_tail, ping_line, ping_means_ready,
};
use crate::server::LOG_TAIL_LINES;

/// The name the sentinels monitor the master under.
const MASTER_NAME: &str = "mymaster";

/// How many sentinels a set runs; a quorum of 2 of them detects a failure.
const SENTINELS: usize = 3;

/// What a sentinel logs once it monitors the master.
const SENTINEL_READY: &str = "+monitor master";

/// How long the sentinels need to know each other and the replica (hello messages every 2 s).
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// A master, one replica (`--replicaof`; more with [`RedisSentinelSet::start_with_replicas`]) and three `redis-sentinel` processes
/// (`redis-server sentinel.conf --sentinel`) monitoring it as [`RedisSentinelSet::master_name`]
/// with quorum 2, `down-after-milliseconds 1000` and `failover-timeout 2000`, all on free
/// 127.0.0.1 ports (`sentinel announce-ip 127.0.0.1`, `sentinel resolve-hostnames no`).
///
/// [`RedisSentinelSet::start`] returns once every sentinel knows the replica and the two other
/// sentinels, so a failover can happen at once. [`RedisSentinelSet::kill_master`] kills the
/// current master (SIGKILL) and [`RedisSentinelSet::wait_for_new_master`] polls the sentinels
/// until they name another master that says it is one; [`RedisSentinelSet::failover`] forces
/// a failover with nothing killed (the old master is demoted to a replica). Every process runs under the same
/// watchdog as [`RedisServer`] and is killed on drop, also when the test panics.
#[derive(Debug)]
pub struct RedisSentinelSet {
    /// The data servers: the first master, then its replicas.
    servers: Vec<RedisServer>,
    sentinels: Vec<SentinelProcess>,
}

/// One sentinel process.
#[derive(Debug)]
struct SentinelProcess {
    port: u16,
    /// The sentinels' `requirepass`, if any.
    password: Option<String>,
    log: PathBuf,
    process: Mutex<Option<Watched>>,
    /// Holds `sentinel.conf`; removed on drop, after the process.
    _dir: TempDir,
}

impl RedisSentinelSet {
    /// Starts the master, the replica (waiting until it has synced) and the three sentinels,
    /// and waits until the sentinels know each other and the replica. Panics with the logs on
    /// failure.
    pub fn start() -> RedisSentinelSet {
        RedisSentinelSet::start_with_replicas(1)
    }

    /// Like [`RedisSentinelSet::start`] with `replicas` (at least 1) replicas. With two or more,
    /// a replica is left after a failover: the sentinels point it at the new master, so writes
    /// that wait for a replica (`WAIT 1`) succeed again.
    pub fn start_with_replicas(replicas: usize) -> RedisSentinelSet {
        RedisSentinelSet::launch(replicas, None)
    }

    /// Like [`RedisSentinelSet::start`], but the sentinels require `password` (`requirepass`
    /// in their configuration, and `sentinel sentinel-pass` to talk to each other); the
    /// harness's own commands to them log in with it.
    pub fn start_with_sentinel_password(password: &str) -> RedisSentinelSet {
        RedisSentinelSet::launch(1, Some(password))
    }

    fn launch(replicas: usize, password: Option<&str>) -> RedisSentinelSet {
        assert!(replicas >= 1, "a Sentinel failover needs a replica");
        let master = RedisServer::start();
        let port = master.port().to_string();
        let mut servers = vec![master];
        for _ in 0..replicas {
            let replica = RedisServer::start_with_args(&["--replicaof", "127.0.0.1", &port]);
            wait_until("a replica to sync with the master", WAIT_TIMEOUT, || {
                info(&replica, "replication").contains("master_link_status:up")
            });
            servers.push(replica);
        }
        let sentinels = (0..SENTINELS)
            .map(|_| SentinelProcess::start(servers[0].port(), password))
            .collect();
        let set = RedisSentinelSet { servers, sentinels };
        let (replicas, others) = (replicas.to_string(), (SENTINELS - 1).to_string());
        for sentinel in &set.sentinels {
            wait_until(
                "a sentinel to know the replicas and the other sentinels",
                DISCOVERY_TIMEOUT,
                || {
                    let fields = sentinel.master_fields();
                    fields.get("num-slaves") == Some(&replicas)
                        && fields.get("num-other-sentinels") == Some(&others)
                },
            );
        }
        set
    }

    /// The name the sentinels know the master by (`SENTINEL get-master-addr-by-name NAME`).
    pub fn master_name(&self) -> &str {
        MASTER_NAME
    }

    /// `127.0.0.1:PORT` of each sentinel.
    pub fn sentinel_nodes(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect()
    }

    /// The data servers (the first master, then the replicas), whatever their role now.
    pub fn servers(&self) -> &[RedisServer] {
        &self.servers
    }

    /// The data servers, mutably, e.g. to [`RedisServer::restart`] a master crashed with
    /// [`RedisSentinelSet::kill_master`]: it comes back on its port as a master with an empty
    /// data set (nothing is persisted) until the sentinels reconfigure it as a replica of the
    /// new master, which they do within a few seconds.
    pub fn servers_mut(&mut self) -> &mut [RedisServer] {
        &mut self.servers
    }

    /// The port of the master as the first sentinel that answers names it.
    pub fn master_port(&self) -> u16 {
        self.sentinels
            .iter()
            .filter(|s| s.is_running())
            .find_map(SentinelProcess::master_port)
            .unwrap_or_else(|| panic!("no sentinel names a master for {MASTER_NAME}"))
    }

    /// The data server that is the master now.
    pub fn master(&self) -> &RedisServer {
        let port = self.master_port();
        self.servers
            .iter()
            .find(|s| s.port() == port)
            .unwrap_or_else(|| panic!("the sentinels name an unknown master on port {port}"))
    }

    /// Kills the current master (SIGKILL, a crash) and returns its port.
    pub fn kill_master(&mut self) -> u16 {
        let port = self.master_port();
        let server = self
            .servers
            .iter_mut()
            .find(|s| s.port() == port)
            .unwrap_or_else(|| panic!("the sentinels name an unknown master on port {port}"));
        server.kill();
        port
    }

    /// Polls the sentinels until all of them name a master other than `old_port` and that
    /// server answers `ROLE` as a master; returns its port. Panics after `timeout`.
    pub fn wait_for_new_master(&self, old_port: u16, timeout: Duration) -> u16 {
        let mut new_port = 0;
        wait_until("the sentinels to elect a new master", timeout, || {
            let ports: Vec<Option<u16>> = self
                .sentinels
                .iter()
                .map(SentinelProcess::master_port)
                .collect();
            let Some(Some(port)) = ports.first().copied() else {
                return false;
            };
            if port == old_port || ports.iter().any(|p| *p != Some(port)) {
                return false;
            }
            let is_master = self.servers.iter().any(|s| {
                s.port() == port
                    && s.is_running()
                    && matches!(s.cmd(&["ROLE"]), redis::Value::Array(items)
                        if items.first().is_some_and(|r| value_text(r) == "master"))
            });
            new_port = port;
            is_master
        });
        new_port
    }

    /// Forces a failover without killing anything (`SENTINEL FAILOVER`): the sentinels promote
    /// a replica and demote the old master to a replica of it (killing its client
    /// connections). Waits until all sentinels name the new master and the old one answers
    /// `ROLE` as a replica; returns the new master's port. Panics after `timeout`.
    pub fn failover(&self, timeout: Duration) -> u16 {
        let old_port = self.master_port();
        let name = self.master_name().to_owned();
        let reply = self.sentinel_cmd(0, &["SENTINEL", "FAILOVER", &name]);
        assert_eq!(
            reply,
            redis::Value::Okay,
            "SENTINEL FAILOVER answered {reply:?}"
        );
        let new_port = self.wait_for_new_master(old_port, timeout);
        let old = self
            .servers
            .iter()
            .find(|s| s.port() == old_port)
            .unwrap_or_else(|| panic!("no data server on port {old_port}"));
        wait_until("the old master to be demoted to a replica", timeout, || {
            matches!(old.cmd(&["ROLE"]), redis::Value::Array(items)
                if items.first().is_some_and(|r| value_text(r) == "slave"))
        });
        new_port
    }

    /// Runs a command on sentinel `index` (e.g. `SENTINEL MASTER mymaster`).
    pub fn sentinel_cmd(&self, index: usize, args: &[&str]) -> redis::Value {
        self.sentinels[index].cmd(args).unwrap_or_else(|e| {
            panic!(
                "{args:?} on the sentinel on port {} failed: {e}\n{}",
                self.sentinels[index].port,
                log_tail(&self.sentinels[index].log, LOG_TAIL_LINES)
            )
        })
    }
}

impl SentinelProcess {
    fn start(master_port: u16, password: Option<&str>) -> SentinelProcess {
        let binary = find_binary("redis-server");
        let dir = tempfile::Builder::new()
            .prefix("redis-sentinel-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory for a sentinel: {e}"));
        let log = dir.path().join("sentinel.log");
        let config = dir.path().join("sentinel.conf");
        let mut failures = Vec::new();
        for _ in 0..5 {
            let port = free_port();
            write_config(&config, dir.path(), port, master_port, password);
            let args = vec![
                config.display().to_string(),
                "--sentinel".to_owned(),
                "--daemonize".to_owned(),
                "no".to_owned(),
            ];
            let start = file_len(&log);
            let mut process = Watched::spawn(&binary, &args, dir.path(), &log);
            let deadline = Instant::now() + WAIT_TIMEOUT;
            loop {
                if process.exit_status().is_some() {
                    failures.push(format!("port {port}: the sentinel exited during start-up"));
                    break;
                }
                if file_contains_after(&log, start, SENTINEL_READY)
                    && ping_line(port).as_deref().is_some_and(ping_means_ready)
                {
                    return SentinelProcess {
                        port,
                        password: password.map(str::to_owned),
                        log,
                        process: Mutex::new(Some(process)),
                        _dir: dir,
                    };
                }
                if Instant::now() >= deadline {
                    let _ = process.terminate();
                    failures.push(format!("port {port}: not ready within {WAIT_TIMEOUT:?}"));
                    break;
                }
                thread::sleep(POLL_INTERVAL);
            }
        }
        panic!(
            "a sentinel could not be started:\n{}\n{}",
            failures.join("\n"),
            log_tail(&log, LOG_TAIL_LINES)
        )
    }

    fn is_running(&self) -> bool {
        lock(&self.process)
            .as_mut()
            .is_some_and(Watched::is_running)
    }

    fn cmd(&self, args: &[&str]) -> redis::RedisResult<redis::Value> {
        let auth = match &self.password {
            Some(password) => format!(":{password}@"),
            None => String::new(),
        };
        let client = redis::Client::open(format!("redis://{auth}127.0.0.1:{}/", self.port))?;
        let mut con = client.get_connection_with_timeout(IO_TIMEOUT)?;
        con.set_read_timeout(Some(IO_TIMEOUT))?;
        let mut command = redis::cmd(args[0]);
        for arg in &args[1..] {
            command.arg(*arg);
        }
        redis::ConnectionLike::req_command(&mut con, &command)
    }

    /// `SENTINEL get-master-addr-by-name`'s port, if this sentinel answers.
    fn master_port(&self) -> Option<u16> {
        match self.cmd(&["SENTINEL", "get-master-addr-by-name", MASTER_NAME]) {
            Ok(redis::Value::Array(items)) => value_text(items.get(1)?).parse().ok(),
            _ => None,
        }
    }

    /// The fields of `SENTINEL MASTER mymaster` (empty if it does not answer).
    fn master_fields(&self) -> std::collections::HashMap<String, String> {
        let items = match self.cmd(&["SENTINEL", "MASTER", MASTER_NAME]) {
            Ok(redis::Value::Array(items)) => items,
            Ok(redis::Value::Map(pairs)) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
            _ => Vec::new(),
        };
        items
            .chunks(2)
            .filter_map(|pair| Some((value_text(pair.first()?), value_text(pair.get(1)?))))
            .collect()
    }
}

impl Drop for SentinelProcess {
    fn drop(&mut self) {
        if let Some(mut process) = lock(&self.process).take() {
            let _ = process.terminate();
        }
    }
}

fn write_config(path: &Path, dir: &Path, port: u16, master_port: u16, password: Option<&str>) {
    let mut text = format!(
        "port {port}\nbind 127.0.0.1\ndir {}\nsentinel resolve-hostnames no\n\
         sentinel announce-ip 127.0.0.1\n\
         sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
         sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
         sentinel failover-timeout {MASTER_NAME} 2000\n\
         sentinel parallel-syncs {MASTER_NAME} 1\n",
        dir.display()
    );
    if let Some(password) = password {
        text += &format!("requirepass {password}\nsentinel sentinel-pass {password}\n");
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

fn value_text(value: &redis::Value) -> String {
    match value {
        redis::Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        redis::Value::SimpleString(text) | redis::Value::VerbatimString { text, .. } => {
            text.clone()
        }
        other => format!("{other:?}"),
    }
}

fn info(server: &RedisServer, section: &str) -> String {
    value_text(&server.cmd(&["INFO", section]))
}

/// Polls `condition` every 50 ms until it holds; panics after `timeout` naming `what`.
fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}
