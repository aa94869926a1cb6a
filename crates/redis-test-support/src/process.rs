//! Process and port helpers shared by the server and cluster harnesses.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// How long to wait for a server to come up, a process to exit, a port to
/// close, and similar local events.
pub(crate) const WAIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Sleep between two polls of a condition.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Socket timeouts for the short connections the harness opens itself.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The loopback address every socket of this crate uses.
pub(crate) const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// Locks a mutex, ignoring poisoning (a panicking test must not make the
/// harness's `Drop` panic too).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `127.0.0.1:port`.
pub(crate) fn local_addr(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(LOCALHOST, port))
}

/// Finds an executable of Debian's `redis-server` package (`redis-server`,
/// `redis-cli`) in `PATH` or in the usual directories, or panics loudly.
pub(crate) fn find_binary(name: &str) -> PathBuf {
    let from_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    let fixed = ["/usr/bin", "/usr/local/bin", "/usr/sbin"].map(PathBuf::from);
    from_path
        .into_iter()
        .chain(fixed)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` was not found in PATH nor in /usr/bin: the integration tests need a \
                 real Redis 7. Install it with `apt-get install -y redis-server` (these tests \
                 are never skipped)"
            )
        })
}

/// Ports handed out by [`free_port`] in this process, never handed out twice
/// so that two tests running in parallel threads cannot race for one port.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A currently free TCP port on 127.0.0.1, found by binding port 0.
///
/// Another process may still take the port before it is used, so callers
/// must retry with a new port when the bind fails.
pub(crate) fn free_port() -> u16 {
    let mut handed_out = lock(&HANDED_OUT);
    let handed_out = handed_out.get_or_insert_with(HashSet::new);
    for _ in 0..100 {
        let listener = TcpListener::bind(local_addr(0))
            .unwrap_or_else(|e| panic!("cannot bind a free port on 127.0.0.1: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("cannot read the local address of a listener: {e}"))
            .port();
        if handed_out.insert(port) {
            return port;
        }
    }
    panic!("could not find a free port on 127.0.0.1 that was not handed out before")
}

/// The last `max_lines` lines of a log file, for panic messages.
pub(crate) fn log_tail(path: &Path, max_lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(max_lines);
            format!(
                "--- last lines of {} ---\n{}\n--- end of log ---",
                path.display(),
                lines[start..].join("\n")
            )
        }
        Err(e) => format!("(log {} unreadable: {e})", path.display()),
    }
}

/// Length of a file in bytes (0 if it does not exist).
pub(crate) fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Whether the file contains `needle` after byte `offset`.
pub(crate) fn file_contains_after(path: &Path, offset: u64, needle: &str) -> bool {
    let Ok(mut file) = File::open(path) else {
        return false;
    };
    if file.seek(SeekFrom::Start(offset)).is_err() {
        return false;
    }
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() {
        return false;
    }
    String::from_utf8_lossy(&bytes).contains(needle)
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub(crate) fn port_accepts(port: u16) -> bool {
    TcpStream::connect_timeout(&local_addr(port), Duration::from_millis(500)).is_ok()
}

/// Sends an inline `PING` to 127.0.0.1:`port` and returns the first reply
/// line, if any arrives within a short timeout.
pub(crate) fn ping_line(port: u16) -> Option<String> {
    let mut stream =
        TcpStream::connect_timeout(&local_addr(port), Duration::from_millis(500)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    stream
        .set_write_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    stream.write_all(b"PING\r\n").ok()?;
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while reply.len() < 512 {
        match stream.read(&mut byte) {
            Ok(1) if byte[0] == b'\n' => break,
            Ok(1) => reply.push(byte[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&reply).trim_end().to_owned())
}

/// Whether a PING reply line means the server is up and serving commands.
/// An authentication error counts as up: the server answers, the caller
/// just has to log in.
pub(crate) fn ping_means_ready(line: &str) -> bool {
    line.starts_with('+') || (line.starts_with('-') && !line.starts_with("-LOADING"))
}

/// `/bin/sh` script that runs `"$0" "$@"` (the real program) in the
/// background and kills it with SIGKILL as soon as the script's standard
/// input reaches end-of-file, which happens when the harness closes the
/// pipe or when the test process dies in any way (even by SIGKILL). The
/// script itself exits, with the program's status, when the program exits.
///
/// An asynchronous list gets `/dev/null` as standard input, so the pipe is
/// first duplicated onto descriptor 3 for the watcher.
const WATCHDOG_SCRIPT: &str = r#"exec 3<&0
"$0" "$@" </dev/null 3<&- &
pid=$!
( read -r _ <&3; kill -9 "$pid" 2>/dev/null ) &
exec 3<&-
wait "$pid"
"#;

/// A program started under [`WATCHDOG_SCRIPT`]: it dies when this handle is
/// dropped or [`Watched::terminate`]d, or when the current process dies.
#[derive(Debug)]
pub(crate) struct Watched {
    /// The `/bin/sh` running the watchdog script; it exits once the program
    /// has exited.
    shell: Child,
    /// Write end of the watchdog pipe; closing it kills the program.
    lifeline: Option<ChildStdin>,
}

impl Watched {
    /// Starts `program args...` in `dir`, appending its stdout and stderr to
    /// `log`.
    pub(crate) fn spawn(program: &Path, args: &[String], dir: &Path, log: &Path) -> Watched {
        let log_file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("cannot open log file {}: {e}", log.display()));
        let log_file_2 = log_file
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot duplicate log file handle: {e}"));
        let mut shell = Command::new("/bin/sh")
            .arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg(program)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(log_file)
            .stderr(log_file_2)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn /bin/sh to run {}: {e}", program.display()));
        let lifeline = shell.stdin.take();
        Watched { shell, lifeline }
    }

    /// Whether the program is still running.
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.shell.try_wait(), Ok(None))
    }

    /// The program's exit status if it has exited.
    pub(crate) fn exit_status(&mut self) -> Option<ExitStatus> {
        self.shell.try_wait().ok().flatten()
    }

    /// Kills the program and waits (bounded) until it is gone.
    ///
    /// Returns an error message when it did not go away in time; the
    /// watchdog shell is then killed anyway.
    pub(crate) fn terminate(&mut self) -> Result<(), String> {
        drop(self.lifeline.take());
        let deadline = Instant::now() + WAIT_TIMEOUT;
        loop {
            match self.shell.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => thread::sleep(POLL_INTERVAL),
                Ok(None) => {
                    let _ = self.shell.kill();
                    let _ = self.shell.wait();
                    return Err(format!(
                        "the watched process did not exit within {WAIT_TIMEOUT:?} of being killed"
                    ));
                }
                Err(e) => return Err(format!("cannot wait for the watched process: {e}")),
            }
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let _ = self.terminate();
    }
}

/// Runs `program args...` to completion with stdout and stderr appended to
/// `log`, killing it and returning `None` if it runs longer than `timeout`.
pub(crate) fn run_bounded(
    program: &Path,
    args: &[String],
    dir: &Path,
    log: &Path,
    timeout: Duration,
) -> Option<ExitStatus> {
    let mut watched = Watched::spawn(program, args, dir, log);
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = watched.exit_status() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None; // dropping `watched` kills the program
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::{find_binary, free_port, ping_means_ready};

    #[test]
    #[should_panic(expected = "apt-get install -y redis-server")]
    fn a_missing_binary_is_a_loud_panic() {
        let _ = find_binary("redis-server-that-does-not-exist");
    }

    #[test]
    fn free_ports_are_never_handed_out_twice() {
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len());
        assert!(!ports.contains(&6379));
    }

    #[test]
    fn ping_replies() {
        assert!(ping_means_ready("+PONG"));
        assert!(ping_means_ready("-NOAUTH Authentication required."));
        assert!(!ping_means_ready(
            "-LOADING Redis is loading the dataset in memory"
        ));
        assert!(!ping_means_ready(""));
    }
}
