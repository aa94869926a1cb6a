//! A private `redis-server` process.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread;
use std::time::Instant;

use tempfile::TempDir;

use crate::tls::TestCertificates;

use crate::process::{
    IO_TIMEOUT, POLL_INTERVAL, WAIT_TIMEOUT, Watched, file_contains_after, file_len, find_binary,
    free_port, lock, log_tail, ping_line, ping_means_ready, port_accepts,
};

/// How many fresh ports [`RedisServer::start`] tries before giving up.
const START_ATTEMPTS: usize = 5;

/// Line that redis-server logs (at the default `notice` level) once its
/// listening sockets are open. Only our own server writes to our log file,
/// so seeing it proves that the server answering on the port is ours and not
/// some other process that raced us for the port.
const READY_MARKER: &str = "Ready to accept connections";

/// Lines of the server log quoted in panic messages.
pub(crate) const LOG_TAIL_LINES: usize = 30;

/// A private `redis-server` on a free 127.0.0.1 port in its own temporary
/// directory. Killed (and its directory removed) on drop, also when the test
/// panics.
///
/// The server runs with `--bind 127.0.0.1 --save "" --appendonly no
/// --enable-debug-command local --daemonize no`, so by default it keeps
/// nothing on disk: data does not survive [`RedisServer::stop`] /
/// [`RedisServer::restart`]. [`RedisServer::start_persistent`] (or extras
/// given to [`RedisServer::start_with_args`], which override these defaults)
/// turns the append-only file on, and then the data does survive
/// [`RedisServer::kill`] + [`RedisServer::restart`]. Its stdout and stderr go
/// to `redis.log` in [`RedisServer::dir`]; the log's tail is quoted in every
/// panic message about the server.
///
/// Even if the test process is killed outright (SIGKILL, a test runner's
/// timeout), or the handle is never dropped (a server shared by tests in a
/// `static`), the server does not outlive the test process: it runs under a
/// tiny `/bin/sh` watchdog that kills it when the pipe from this process
/// closes. Only the temporary directory is left behind in those cases.
///
/// `RedisServer` is `Send + Sync`; [`RedisServer::stop`] and
/// [`RedisServer::restart`] take `&mut self`.
pub struct RedisServer {
    /// The port the server listens on, kept across restarts.
    port: u16,
    /// Every argument given to redis-server (port, dir and the extras).
    args: Vec<String>,
    /// Value of `--requirepass` among the extras, used by [`RedisServer::cmd`].
    password: Option<String>,
    /// Path of the server's log file.
    pub(crate) log: PathBuf,
    /// The TLS port and certificates of a [`RedisServer::start_tls`] server.
    tls: Option<(u16, TestCertificates)>,
    /// The running process, `None` after [`RedisServer::stop`].
    process: Mutex<Option<Watched>>,
    /// The temporary working directory; removed on drop, after the process
    /// field above has been dropped (and the server killed).
    dir: TempDir,
}

impl RedisServer {
    /// Starts a server with the default arguments and waits until it answers
    /// `PING`. Panics (with the log tail) if it cannot be started.
    pub fn start() -> RedisServer {
        RedisServer::start_with_args(&[])
    }

    /// Starts a server with extra `redis-server` arguments appended to the
    /// defaults, e.g. `&["--requirepass", "secret"]` or
    /// `&["--maxmemory", "1mb"]`, and waits until it answers `PING`.
    ///
    /// An extra that names a default option overrides it (redis-server keeps
    /// the last value given), e.g. `&["--appendonly", "yes"]`; the port and
    /// the directory must not be overridden.
    ///
    /// The extras must leave the log going to stdout at level `notice` or
    /// more verbose (don't pass `--logfile` or `--loglevel warning`): the
    /// readiness check looks for redis-server's "Ready to accept
    /// connections" line in its log.
    pub fn start_with_args(extra: &[&str]) -> RedisServer {
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        RedisServer::launch(&extra, false)
    }

    /// Starts a server with `extra` arguments, and with `--cluster-port` set
    /// to a second free port when `cluster_bus` is true (Redis' default of
    /// port + 10000 may not exist or may be taken). Retries with new ports
    /// when the server fails to start, e.g. because another process took the
    /// port between [`free_port`] and redis-server's bind.
    pub(crate) fn launch(extra: &[String], cluster_bus: bool) -> RedisServer {
        RedisServer::launch_with(extra, cluster_bus, None)
    }

    /// [`RedisServer::launch`] plus a TLS listener on its own free port, with certificates
    /// made in the server's directory (see [`RedisServer::start_tls`]).
    /// `certs` are shared (a Cluster's nodes trust one CA); `None` makes new ones in the
    /// server's own directory.
    pub(crate) fn launch_tls(
        extra: &[String],
        cluster_bus: bool,
        certs: Option<TestCertificates>,
        client_auth: bool,
    ) -> RedisServer {
        RedisServer::launch_with(extra, cluster_bus, Some((certs, client_auth)))
    }

    /// The TLS port and certificates, for a server with TLS.
    pub(crate) fn tls(&self) -> Option<(u16, &TestCertificates)> {
        self.tls.as_ref().map(|(port, certs)| (*port, certs))
    }

    fn launch_with(
        extra: &[String],
        cluster_bus: bool,
        tls: Option<(Option<TestCertificates>, bool)>,
    ) -> RedisServer {
        let binary = find_binary("redis-server");
        let dir = tempfile::Builder::new()
            .prefix("redis-test-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory for redis: {e}"));
        let log = dir.path().join("redis.log");
        let password = extra
            .iter()
            .position(|a| a == "--requirepass")
            .and_then(|i| extra.get(i + 1))
            .cloned();

        let client_auth = tls.as_ref().is_some_and(|(_, auth)| *auth);
        let certs =
            tls.map(|(certs, _)| certs.unwrap_or_else(|| TestCertificates::generate(dir.path())));
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let tls_port = free_port();
            let mut args: Vec<String> = vec![
                "--port".into(),
                port.to_string(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--save".into(),
                String::new(),
                "--appendonly".into(),
                "no".into(),
                // `DEBUG SLEEP` for fault tests; from loopback clients only.
                "--enable-debug-command".into(),
                "local".into(),
                "--dir".into(),
                dir.path().display().to_string(),
                "--daemonize".into(),
                "no".into(),
            ];
            if cluster_bus {
                args.push("--cluster-port".into());
                args.push(free_port().to_string());
            }
            if let Some(certs) = &certs {
                args.extend(certs.server_args(tls_port, client_auth));
            }
            args.extend(extra.iter().cloned());

            match spawn_and_wait(&binary, &args, port, dir.path(), &log) {
                Ok(process) => {
                    return RedisServer {
                        port,
                        args,
                        password,
                        log,
                        tls: certs.map(|certs| (tls_port, certs)),
                        process: Mutex::new(Some(process)),
                        dir,
                    };
                }
                Err(message) => failures.push(format!("port {port}: {message}")),
            }
        }
        panic!(
            "redis-server could not be started after {START_ATTEMPTS} attempts:\n{}\n{}",
            failures.join("\n"),
            log_tail(&log, LOG_TAIL_LINES)
        )
    }

    /// The port the server listens on (the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/`.
    ///
    /// It never contains a password, even when the server was started with
    /// `--requirepass`; [`RedisServer::cmd`] logs in by itself.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The server's temporary working directory (holds `redis.log`, and
    /// `nodes.conf` for cluster nodes). Removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server (SIGKILL, the same as [`RedisServer::kill`]) and
    /// waits until it is gone and its port no longer accepts connections.
    /// Does nothing if it is not running. Panics if the port still answers
    /// after a few seconds.
    pub fn stop(&mut self) {
        let process = lock(&self.process).take();
        if let Some(mut process) = process
            && let Err(message) = process.terminate()
        {
            panic!(
                "redis-server on port {} could not be stopped: {message}\n{}",
                self.port,
                log_tail(&self.log, LOG_TAIL_LINES)
            );
        }
        let deadline = Instant::now() + WAIT_TIMEOUT;
        while port_accepts(self.port) {
            assert!(
                Instant::now() < deadline,
                "port {} still accepts connections {WAIT_TIMEOUT:?} after its redis-server was \
                 killed",
                self.port
            );
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Starts the server again on the same port, with the same arguments and
    /// directory, and waits until it has loaded its data and answers `PING`.
    /// Stops it first if it is still running. With the default arguments the
    /// data set starts empty (nothing is persisted), except that a cluster
    /// node keeps its `nodes.conf`; a server started with the append-only
    /// file on ([`RedisServer::start_persistent`]) reloads it.
    pub fn restart(&mut self) {
        if self.is_running() {
            self.stop();
        }
        // Reap a process that died on its own (crash, SHUTDOWN).
        drop(lock(&self.process).take());

        let binary = find_binary("redis-server");
        let deadline = Instant::now() + WAIT_TIMEOUT;
        loop {
            match spawn_and_wait(&binary, &self.args, self.port, self.dir.path(), &self.log) {
                Ok(process) => {
                    *lock(&self.process) = Some(process);
                    return;
                }
                // The port may be held for a moment by someone else: retry on
                // the same port until the deadline.
                Err(message) if Instant::now() >= deadline => panic!(
                    "redis-server could not be restarted on port {}: {message}\n{}",
                    self.port,
                    log_tail(&self.log, LOG_TAIL_LINES)
                ),
                Err(_) => thread::sleep(std::time::Duration::from_millis(100)),
            }
        }
    }

    /// Whether the server process is running (false after
    /// [`RedisServer::stop`], or if it died or was shut down by a command).
    pub fn is_running(&self) -> bool {
        lock(&self.process)
            .as_mut()
            .is_some_and(Watched::is_running)
    }

    /// A synchronous `redis` client for this server, logged in with the
    /// `--requirepass` password if one was given.
    pub(crate) fn client(&self) -> redis::Client {
        let info = redis::IntoConnectionInfo::into_connection_info(self.url())
            .unwrap_or_else(|e| panic!("invalid redis url {}: {e}", self.url()));
        let info = match &self.password {
            Some(password) => {
                let settings = info.redis_settings().clone().set_password(password);
                info.set_redis_settings(settings)
            }
            None => info,
        };
        redis::Client::open(info)
            .unwrap_or_else(|e| panic!("cannot create a redis client for {}: {e}", self.url()))
    }

    /// Runs one command on a fresh synchronous connection and returns the
    /// raw reply, e.g. `server.cmd(&["TTL", "key"])` → `Value::Int(..)`.
    ///
    /// Handy for assertions (`TTL`, `HGETALL`, `KEYS`, `DBSIZE`, ...). A Redis
    /// error reply is returned as [`redis::Value::ServerError`], not a panic;
    /// a connection or I/O failure (e.g. the server is stopped) panics.
    /// Logs in with the `--requirepass` password if one was given. On a
    /// cluster node the command runs on that node only.
    ///
    /// Each call is a new connection, so commands that act on their
    /// connection do not see the previous call: `WAIT` after a `SET` made
    /// with `cmd` returns at once without waiting for that write (run both
    /// on one connection of a [`redis::Client`] opened on
    /// [`RedisServer::url`]), and `MULTI`, `SELECT` or `CLIENT SETNAME`
    /// last for that one call only.
    pub fn cmd(&self, args: &[&str]) -> redis::Value {
        let Some((name, rest)) = args.split_first() else {
            panic!("RedisServer::cmd needs at least a command name");
        };
        let client = self.client();
        let mut con = client
            .get_connection_with_timeout(IO_TIMEOUT)
            .unwrap_or_else(|e| {
                panic!(
                    "cannot connect to redis-server on port {} for {args:?}: {e}\n{}",
                    self.port,
                    log_tail(&self.log, LOG_TAIL_LINES)
                )
            });
        let timeouts = con
            .set_read_timeout(Some(IO_TIMEOUT))
            .and_then(|()| con.set_write_timeout(Some(IO_TIMEOUT)));
        if let Err(e) = timeouts {
            panic!("cannot set socket timeouts: {e}");
        }
        let mut command = redis::cmd(name);
        for arg in rest {
            command.arg(*arg);
        }
        redis::ConnectionLike::req_command(&mut con, &command).unwrap_or_else(|e| {
            panic!(
                "command {args:?} on redis-server port {} failed: {e}\n{}",
                self.port,
                log_tail(&self.log, LOG_TAIL_LINES)
            )
        })
    }
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServer")
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .field("running", &self.is_running())
            .finish()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // Never panic here: we may already be unwinding from a failed test.
        if let Some(mut process) = lock(&self.process).take() {
            let _ = process.terminate();
        }
    }
}

/// Spawns redis-server and waits until it is ready: its own log says it
/// listens and the port answers `PING`. Returns an error (after killing the
/// process) if it exits or does not get ready in time.
fn spawn_and_wait(
    binary: &Path,
    args: &[String],
    port: u16,
    dir: &Path,
    log: &Path,
) -> Result<Watched, String> {
    let log_start = file_len(log);
    let mut process = Watched::spawn(binary, args, dir, log);
    let deadline = Instant::now() + WAIT_TIMEOUT;
    let mut last_reply = None;
    loop {
        if let Some(status) = process.exit_status() {
            return Err(format!("redis-server exited during startup ({status})"));
        }
        if file_contains_after(log, log_start, READY_MARKER) {
            last_reply = ping_line(port);
            if last_reply.as_deref().is_some_and(ping_means_ready) {
                return Ok(process);
            }
        }
        if Instant::now() >= deadline {
            let _ = process.terminate();
            return Err(format!(
                "redis-server did not get ready within {WAIT_TIMEOUT:?} (last PING reply: \
                 {last_reply:?})"
            ));
        }
        thread::sleep(POLL_INTERVAL);
    }
}
