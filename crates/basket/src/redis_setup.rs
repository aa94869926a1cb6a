//! Getting a Redis for the demo, so `cargo run --release --bin basket` works on a fresh machine.
//!
//! [`ensure_redis`] first asks the configured Redis for `PING` (1 s budget). When nothing
//! answers and the configured host is this machine, the demo runs a private `redis-server` itself:
//! found on `PATH` or at `/usr/bin/redis-server`, or installed from Debian's package first when
//! the demo runs as root on a system with `apt-get`. The private server keeps nothing on disk
//! (`--save "" --appendonly no`), listens on the configured port (or a free one when that port
//! is taken by something that is not Redis, and then the configuration is changed to match), and
//! stops with the demo: [`PrivateRedis`] stops it on drop, and a small `sh` watchdog stops it
//! even when the demo is killed outright. Where none of this is possible, the error is one line
//! saying exactly what to do.
//!
//! Everything here is synchronous: it runs once, before the server starts.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use redis_sessions::{Config, ConfigError};

/// How long the configured Redis has to answer `PING`.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a private `redis-server` has to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the demo has no Redis to talk to. Each message is one line that says what to do.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The configuration names no usable pool.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The configured Redis is on another machine and does not answer.
    #[error(
        "Redis at {host}:{port} (from the config) does not answer and is not on this machine: \
         start it, or set default[host] = 127.0.0.1 in [redis] to let the demo run its own"
    )]
    Unreachable {
        /// The configured host.
        host: String,
        /// The configured port.
        port: u16,
    },
    /// `redis-server` is missing and cannot be installed from here.
    #[error("redis-server is not installed and I cannot install it: {what_to_do} and start again")]
    NotInstalled {
        /// The command or step the user should take.
        what_to_do: &'static str,
    },
    /// `apt-get` ran but did not install `redis-server`.
    #[error(
        "installing redis-server with apt-get failed (see its output above): run \
         `apt-get update && apt-get install -y redis-server` yourself and start again"
    )]
    InstallFailed,
    /// A private `redis-server` did not start.
    #[error("could not start {binary} on port {port}: {reason}")]
    StartFailed {
        /// The binary that was run.
        binary: String,
        /// The port it was asked to listen on.
        port: u16,
        /// What went wrong (the last line of its log when there is one).
        reason: String,
    },
}

/// A `redis-server` the demo started; stopped when dropped.
#[derive(Debug)]
pub struct PrivateRedis {
    /// The `sh` watchdog running `redis-server`.
    watchdog: Child,
    /// Our end of the watchdog's stdin: closing it (on drop, or when this process dies in any
    /// way) makes the watchdog stop `redis-server`.
    lifeline: Option<ChildStdin>,
    port: u16,
    /// Working directory and log of the server; removed after it stopped.
    _dir: tempfile::TempDir,
}

impl PrivateRedis {
    /// The port the private server listens on (on 127.0.0.1).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        drop(self.lifeline.take());
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if matches!(self.watchdog.try_wait(), Ok(Some(_)) | Err(_)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The watchdog did not finish in time; at least do not leave it behind.
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
    }
}

/// Makes sure the Redis pool that `config` uses answers, starting a private `redis-server` when
/// it does not (see the module docs). When the private server listens elsewhere than configured,
/// `config`'s pool is changed to point at it. Returns the private server, to be kept alive for as
/// long as the demo runs; `None` when the configured Redis answered (or is a cluster or reached
/// through Sentinel, which the library connects to and reports on by itself).
///
/// # Errors
///
/// [`SetupError`], whose message says what the user should do.
pub fn ensure_redis(config: &mut Config) -> Result<Option<PrivateRedis>, SetupError> {
    let redis = find_or_start(config)?;
    println!("basket demo: {}", storage_note(config)?);
    Ok(redis)
}

/// Where the demo's sessions go, in one line: "sessions are kept in Redis at 127.0.0.1:6379,
/// database 0, under keys basket:*, for 86400 s after their last use".
///
/// # Errors
///
/// [`SetupError::Config`] when the configuration names no usable pool.
pub fn storage_note(config: &Config) -> Result<String, SetupError> {
    let pool = config.pool()?;
    let place = if !pool.cluster_nodes.is_empty() {
        "the Redis Cluster of cluster_nodes".to_owned()
    } else if !pool.sentinel_nodes.is_empty() {
        let master = pool.sentinel_master.as_deref().unwrap_or_default();
        format!(
            "the master {master:?} of sentinel_nodes, database {}",
            pool.db_index
        )
    } else {
        format!(
            "Redis at {}:{}, database {}",
            pool.host, pool.port, pool.db_index
        )
    };
    Ok(format!(
        "sessions are kept in {place}, under keys {}*, for {} s after their last use",
        pool.prefix,
        config.session.cookie_lifespan.as_secs()
    ))
}

fn find_or_start(config: &mut Config) -> Result<Option<PrivateRedis>, SetupError> {
    let pool = config.pool()?.clone();
    let managed = !pool.cluster_nodes.is_empty() || !pool.sentinel_nodes.is_empty();
    if managed || answers(&pool.host, pool.port) {
        return Ok(None);
    }
    if !is_this_machine(&pool.host) {
        return Err(SetupError::Unreachable {
            host: pool.host,
            port: pool.port,
        });
    }
    println!(
        "basket demo: no Redis answers at {}:{}; starting a private redis-server",
        pool.host, pool.port
    );
    let binary = match find_redis_server() {
        Some(binary) => binary,
        None => {
            let binary = install_redis_server()?;
            // Debian's package may have started its own service on the default port.
            if answers(&pool.host, pool.port) {
                return Ok(None);
            }
            binary
        }
    };
    let port = if port_is_free(pool.port) {
        pool.port
    } else {
        let port = free_port().map_err(|e| start_failed(&binary, pool.port, &e.to_string()))?;
        println!(
            "basket demo: port {} is taken by something that is not Redis; using port {port}",
            pool.port
        );
        port
    };
    let redis = start_private(&binary, port, pool.password.as_deref())?;
    let name = config.session.redis_connection_pool.clone();
    if let Some(pool) = config.pools.get_mut(&name) {
        pool.host = "127.0.0.1".to_owned();
        pool.port = port;
    }
    println!(
        "basket demo: private redis-server running on 127.0.0.1:{port} (keeps nothing on disk, \
         stops with the demo)"
    );
    Ok(Some(redis))
}

/// Whether a Redis at `host:port` answers `PING` within a second. An error reply
/// (`-NOAUTH` from a server with a password) counts: a Redis is there, and the library logs in.
#[must_use]
pub fn answers(host: &str, port: u16) -> bool {
    let Ok(addrs) = (host, port).to_socket_addrs() else {
        return false;
    };
    addrs.into_iter().any(|addr| ping(addr).unwrap_or(false))
}

fn ping(addr: SocketAddr) -> std::io::Result<bool> {
    let mut stream = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)?;
    stream.set_read_timeout(Some(PROBE_TIMEOUT))?;
    stream.set_write_timeout(Some(PROBE_TIMEOUT))?;
    stream.write_all(b"PING\r\n")?;
    let mut first = [0_u8; 1];
    stream.read_exact(&mut first)?;
    Ok(matches!(first[0], b'+' | b'-'))
}

fn is_this_machine(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `redis-server` from `PATH`, else `/usr/bin/redis-server` (Debian's, when `PATH` is minimal).
fn find_redis_server() -> Option<PathBuf> {
    find_on_path("redis-server")
        .or_else(|| Some(PathBuf::from("/usr/bin/redis-server")).filter(|p| p.is_file()))
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Installs Debian's `redis-server` package when we are root and `apt-get` exists.
fn install_redis_server() -> Result<PathBuf, SetupError> {
    let Some(apt_get) = find_on_path("apt-get") else {
        return Err(SetupError::NotInstalled {
            what_to_do: "install Redis 6 or newer (redis-server) with your system's package manager",
        });
    };
    if !is_root() {
        return Err(SetupError::NotInstalled {
            what_to_do: "run `sudo apt-get install -y redis-server`",
        });
    }
    println!(
        "basket demo: redis-server is not installed; installing Debian's package \
         (apt-get update && apt-get install -y redis-server)"
    );
    let apt = |args: &[&str]| {
        Command::new(&apt_get)
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    if !apt(&["update", "-q"]) || !apt(&["install", "-y", "-q", "redis-server"]) {
        return Err(SetupError::InstallFailed);
    }
    find_redis_server().ok_or(SetupError::InstallFailed)
}

/// Whether this process runs as root (Linux: the effective uid in `/proc/self/status`).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

fn start_failed(binary: &Path, port: u16, reason: &str) -> SetupError {
    SetupError::StartFailed {
        binary: binary.display().to_string(),
        port,
        reason: reason.to_owned(),
    }
}

/// Starts `binary` on `127.0.0.1:port` under a watchdog and waits until it answers `PING`.
///
/// The watchdog is `sh`: it runs the server in the background and a reader of our pipe beside
/// it; when the pipe closes (we dropped [`PrivateRedis`], or this process died however it died)
/// the reader stops the server. `sh` itself exits when the server does, so a server that fails
/// to start is seen at once.
fn start_private(
    binary: &Path,
    port: u16,
    password: Option<&str>,
) -> Result<PrivateRedis, SetupError> {
    const WATCHDOG: &str = "exec 3<&0; \"$@\" </dev/null 3<&- & pid=$!; \
        { read -r _ <&3; kill \"$pid\" 2>/dev/null; } & wait \"$pid\"";
    let dir = tempfile::Builder::new()
        .prefix("basket-redis-")
        .tempdir()
        .map_err(|e| start_failed(binary, port, &format!("no temporary directory: {e}")))?;
    let log_path = dir.path().join("redis.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| start_failed(binary, port, &format!("cannot create its log: {e}")))?;
    let log_err = log
        .try_clone()
        .map_err(|e| start_failed(binary, port, &e.to_string()))?;
    let mut command = Command::new("sh");
    command
        .args(["-c", WATCHDOG, "sh"])
        .arg(binary)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir.path());
    if let Some(password) = password {
        command.args(["--requirepass", password]);
    }
    let mut watchdog = command
        .stdin(Stdio::piped())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| start_failed(binary, port, &format!("cannot run sh: {e}")))?;
    let lifeline = watchdog.stdin.take();
    let mut redis = PrivateRedis {
        watchdog,
        lifeline,
        port,
        _dir: dir,
    };
    let started = Instant::now();
    loop {
        if answers("127.0.0.1", port) {
            return Ok(redis);
        }
        let exited = matches!(redis.watchdog.try_wait(), Ok(Some(_)));
        if exited || started.elapsed() > START_TIMEOUT {
            let last_line = std::fs::read_to_string(&log_path)
                .ok()
                .and_then(|log| log.lines().last().map(str::to_owned))
                .unwrap_or_default();
            let reason = if exited {
                format!("it exited: {last_line}")
            } else {
                format!("no answer after {} s: {last_line}", START_TIMEOUT.as_secs())
            };
            return Err(start_failed(binary, port, &reason));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_count_as_this_machine() {
        assert!(is_this_machine("127.0.0.1"));
        assert!(is_this_machine("localhost"));
        assert!(is_this_machine("::1"));
        assert!(is_this_machine("[::1]"));
        assert!(!is_this_machine("10.1.2.3"));
        assert!(!is_this_machine("redis.internal"));
    }

    #[test]
    fn the_storage_note_says_where_and_for_how_long() {
        let config = Config::from_ini_str("[redis]\ndefault[prefix] = basket:\n").expect("config");
        assert_eq!(
            storage_note(&config).expect("note"),
            "sessions are kept in Redis at 127.0.0.1:6379, database 0, under keys basket:*, \
             for 86400 s after their last use"
        );
    }

    #[test]
    fn a_port_nobody_listens_on_does_not_answer() {
        let port = free_port().expect("a free port");
        assert!(!answers("127.0.0.1", port));
    }
}
