//! Fault injection on a [`RedisServer`]: a crash (SIGKILL) with a persistent
//! data set, a paused or sleeping server, and commands whose reply is awaited
//! in a background thread; plus the resident memory of a process.

use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::RedisServer;
use crate::process::{IO_TIMEOUT, log_tail};
use crate::server::LOG_TAIL_LINES;

/// How long a [`BackgroundCommand`] waits for its reply at most.
const BACKGROUND_REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// Which commands `CLIENT PAUSE` holds back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PauseMode {
    /// `ALL`: every command of every normal client waits.
    All,
    /// `WRITE`: commands that may write (and scripts) wait; reads go on.
    Write,
}

impl RedisServer {
    /// Starts a server whose data survives a crash: the defaults with
    /// `--appendonly yes --appendfsync always`, so every write Redis has
    /// answered is on disk (in `appendonlydir/` of [`RedisServer::dir`]) and
    /// comes back after [`RedisServer::kill`] + [`RedisServer::restart`].
    pub fn start_persistent() -> RedisServer {
        RedisServer::start_with_args(&["--appendonly", "yes", "--appendfsync", "always"])
    }

    /// Kills the server with SIGKILL, as a crash would: no `SHUTDOWN`, no
    /// final save or AOF rewrite; only what it had already written to disk
    /// survives (everything it answered, with [`RedisServer::start_persistent`]).
    /// Waits until the port no longer accepts connections; does nothing if
    /// the server is not running. [`RedisServer::restart`] brings it back on
    /// the same port and directory.
    pub fn kill(&mut self) {
        self.stop();
    }

    /// `CLIENT PAUSE <ms> ALL|WRITE`: for `duration`, the server holds back
    /// the commands of its clients (all of them, or the writes), then runs
    /// them. Returns at once, when the pause has started.
    pub fn pause(&self, duration: Duration, mode: PauseMode) {
        let ms = duration.as_millis().to_string();
        let mode = match mode {
            PauseMode::All => "ALL",
            PauseMode::Write => "WRITE",
        };
        let reply = self.cmd(&["CLIENT", "PAUSE", &ms, mode]);
        assert!(
            reply == redis::Value::Okay,
            "CLIENT PAUSE {ms} {mode} answered {reply:?}"
        );
    }

    /// `DEBUG SLEEP <seconds>`: the whole server stops serving for `duration`
    /// (no command runs, new connections wait). Returns as soon as the
    /// command is sent; [`BackgroundCommand::join`] waits for its end. Needs
    /// the default `--enable-debug-command local`.
    pub fn sleep_in_background(&self, duration: Duration) -> BackgroundCommand {
        let seconds = format!("{:.3}", duration.as_secs_f64());
        self.cmd_in_background(&["DEBUG", "SLEEP", &seconds])
    }

    /// Sends one command on a fresh connection and returns at once, without
    /// waiting for the reply, which a background thread awaits (at most 60
    /// s). When this returns the command has been written to the socket, so
    /// a command that blocks the server (`DEBUG SLEEP`, a long script) is
    /// about to take effect. Connection failures panic here, in the caller.
    pub fn cmd_in_background(&self, args: &[&str]) -> BackgroundCommand {
        let Some((name, rest)) = args.split_first() else {
            panic!("RedisServer::cmd_in_background needs at least a command name");
        };
        let mut command = redis::cmd(name);
        for arg in rest {
            command.arg(*arg);
        }
        let mut con = self
            .client()
            .get_connection_with_timeout(IO_TIMEOUT)
            .unwrap_or_else(|e| {
                panic!(
                    "cannot connect to redis-server on port {} for {args:?}: {e}\n{}",
                    self.port(),
                    log_tail(&self.log, LOG_TAIL_LINES)
                )
            });
        con.set_read_timeout(Some(BACKGROUND_REPLY_TIMEOUT))
            .and_then(|()| con.set_write_timeout(Some(IO_TIMEOUT)))
            .unwrap_or_else(|e| panic!("cannot set socket timeouts: {e}"));
        con.send_packed_command(&command.get_packed_command())
            .unwrap_or_else(|e| panic!("cannot send {args:?}: {e}"));
        let described = format!("{args:?} on port {}", self.port());
        let thread_name = format!("redis-bg-{}", self.port());
        let handle = thread::Builder::new()
            .name(thread_name)
            .spawn(move || con.recv_response().map_err(|e| e.to_string()))
            .unwrap_or_else(|e| panic!("cannot spawn a thread: {e}"));
        BackgroundCommand { described, handle }
    }
}

/// A command sent by [`RedisServer::cmd_in_background`] whose reply is
/// awaited in a background thread.
#[derive(Debug)]
pub struct BackgroundCommand {
    /// The command and the server's port, for messages.
    described: String,
    /// The thread reading the reply.
    handle: JoinHandle<Result<redis::Value, String>>,
}

impl BackgroundCommand {
    /// Whether the reply has arrived (or the wait for it failed).
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Waits for the reply (bounded by the 60 s read timeout) and returns it;
    /// an error reply is a [`redis::Value::ServerError`]. Panics when the
    /// connection failed or timed out.
    pub fn join(self) -> redis::Value {
        match self.handle.join() {
            Ok(Ok(value)) => value,
            Ok(Err(e)) => panic!("{} failed: {e}", self.described),
            Err(_) => panic!("the thread awaiting {} panicked", self.described),
        }
    }
}

/// The resident set size of process `pid` in bytes (`VmRSS` of
/// `/proc/<pid>/status`, Linux only), e.g. of an app server a test started,
/// to check that its memory stays bounded. Panics if the process does not
/// exist or the line is missing.
pub fn rss_bytes(pid: u32) -> u64 {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {path} (is process {pid} running?): {e}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or_else(|| panic!("no VmRSS line in kB in {path}:\n{status}"))
}
