//! A TCP proxy that counts Redis round trips and records commands.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::process::{IO_TIMEOUT, WAIT_TIMEOUT, local_addr, lock};

/// How long no byte may have moved for [`CountingProxy::wait_idle`] to return.
const IDLE_PERIOD: Duration = Duration::from_millis(50);

/// Largest array header accepted by the RESP parser (Redis' own limit).
const MAX_ARGS: usize = 1024 * 1024;

/// Largest header line (`*N` or `$N`) accepted by the RESP parser.
const MAX_HEADER_LINE: usize = 32;

/// A TCP proxy on a free 127.0.0.1 port in front of a Redis port, which
/// counts Redis round trips and records the commands that pass. Runs on std
/// threads (no async runtime needed); stops, closing every proxied
/// connection, on drop.
///
/// Point the code under test at `redis://127.0.0.1:{proxy.port()}/` instead of
/// the server's URL.
///
/// # What is a round trip
///
/// Counted per client connection: a round trip begins when the client sends
/// bytes after the server has sent it something (a reply), or when the client
/// sends the first bytes of the connection. Hence:
///
/// - one command and its reply is one round trip;
/// - a pipeline written in one go is **one** round trip, even when TCP splits
///   it into several segments. Caveat: if a segment ends exactly between two
///   commands and Redis has already replied to the first part when the next
///   segment arrives, that segment starts a second round trip (bytes that
///   complete a half-received command never do). Small pipelines written
///   with one `write` arrive whole on loopback, so this does not happen in
///   practice;
/// - a `MULTI` ... `EXEC` transaction sent as one pipeline is one round trip;
/// - two sequential commands (the second sent after the first's reply) are
///   two round trips; so are the connection's handshake commands (`HELLO`,
///   `CLIENT SETINFO`, ...) if a client sends them: [`CountingProxy::reset`]
///   after connecting when they should not count.
/// - Data the server pushes without a request (pub/sub messages, RESP3
///   pushes) counts as a reply, so the next bytes the client sends start a
///   new round trip.
///
/// The totals are summed over all client connections since start or the last
/// [`CountingProxy::reset`].
///
/// # Consistency
///
/// Client bytes are counted and parsed *before* they are forwarded to Redis,
/// and the "server replied" mark is set *before* the reply is forwarded to
/// the client. So once the client holds a reply, every round trip and command
/// that led to it is already visible in [`CountingProxy::round_trips`] and
/// [`CountingProxy::commands`]. Only traffic that the code under test
/// performs in the background, after it answered the test, can still be in
/// flight: [`CountingProxy::wait_idle`] waits for that.
///
/// Commands are parsed from the client→server byte stream as RESP arrays of
/// bulk strings, incrementally (a command may be split across reads, and one
/// read may hold several commands). Inline commands (`PING\r\n`) are passed
/// through but not recorded; after malformed input the connection is still
/// proxied but no longer parsed.
pub struct CountingProxy {
    /// The proxy's own listening port.
    port: u16,
    /// State shared with the proxy threads.
    shared: Arc<Shared>,
    /// The thread accepting client connections.
    acceptor: Option<JoinHandle<()>>,
}

/// State shared between the proxy handle and its threads.
struct Shared {
    /// Redis port that every connection is forwarded to.
    upstream_port: u16,
    /// Set on drop; the acceptor stops at its next wake-up.
    stopping: AtomicBool,
    /// Counters and recorded commands.
    stats: Mutex<Stats>,
    /// Both sockets of every live connection, to close them on drop.
    connections: Mutex<HashMap<u64, [TcpStream; 2]>>,
    /// Id of the next connection.
    next_id: AtomicU64,
    /// When a byte last moved in either direction.
    last_activity: Mutex<Instant>,
}

/// What the proxy has seen since start or the last reset.
#[derive(Default)]
struct Stats {
    /// Number of round trips, over all connections.
    round_trips: usize,
    /// Argv of every command, in the order seen.
    commands: Vec<Vec<String>>,
}

impl CountingProxy {
    /// Starts a proxy on a free 127.0.0.1 port that forwards every
    /// connection to 127.0.0.1:`upstream_port`. A client connection for
    /// which the upstream cannot be reached is closed at once.
    pub fn start(upstream_port: u16) -> CountingProxy {
        let listener = TcpListener::bind(local_addr(0))
            .unwrap_or_else(|e| panic!("CountingProxy: cannot bind 127.0.0.1:0: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("CountingProxy: cannot read the listener's address: {e}"))
            .port();
        let shared = Arc::new(Shared {
            upstream_port,
            stopping: AtomicBool::new(false),
            stats: Mutex::new(Stats::default()),
            connections: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            last_activity: Mutex::new(Instant::now()),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("counting-proxy-{port}"))
                .spawn(move || accept_loop(&listener, &shared))
                .unwrap_or_else(|e| panic!("CountingProxy: cannot spawn a thread: {e}"))
        };
        CountingProxy {
            port,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The proxy's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/` of the proxy.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Round trips over all client connections since start or the last
    /// [`CountingProxy::reset`] (see the type's documentation for the
    /// definition).
    pub fn round_trips(&self) -> usize {
        lock(&self.shared.stats).round_trips
    }

    /// Every command seen since start or the last reset, in order, as its
    /// argv converted to strings (lossy UTF-8), e.g.
    /// `["HGETALL", "dm:{abc}"]`.
    pub fn commands(&self) -> Vec<Vec<String>> {
        lock(&self.shared.stats).commands.clone()
    }

    /// The upper-cased first word of every command seen since start or the
    /// last reset, in order, e.g. `["MULTI", "HSET", "EXPIRE", "EXEC"]`.
    pub fn command_names(&self) -> Vec<String> {
        lock(&self.shared.stats)
            .commands
            .iter()
            .map(|argv| argv.first().map(|n| n.to_uppercase()).unwrap_or_default())
            .collect()
    }

    /// Sets the round-trip counter to zero and forgets the recorded commands.
    /// Connections stay open.
    pub fn reset(&self) {
        let mut stats = lock(&self.shared.stats);
        stats.round_trips = 0;
        stats.commands.clear();
    }

    /// Waits until no byte has moved through the proxy for about 50 ms, for
    /// Redis traffic that the code under test does in the background after
    /// it answered. Panics if the traffic does not pause within a few
    /// seconds.
    pub fn wait_idle(&self) {
        let deadline = Instant::now() + WAIT_TIMEOUT;
        loop {
            let quiet_for = lock(&self.shared.last_activity).elapsed();
            if quiet_for >= IDLE_PERIOD {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "CountingProxy on port {}: traffic did not pause for {IDLE_PERIOD:?} within \
                 {WAIT_TIMEOUT:?}",
                self.port
            );
            thread::sleep(IDLE_PERIOD - quiet_for);
        }
    }
}

impl std::fmt::Debug for CountingProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountingProxy")
            .field("port", &self.port)
            .field("upstream_port", &self.shared.upstream_port)
            .field("round_trips", &self.round_trips())
            .finish_non_exhaustive()
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the acceptor blocked in accept(); it sees `stopping` and ends.
        let _ = TcpStream::connect_timeout(&local_addr(self.port), IO_TIMEOUT);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        // No connection can be registered any more: close the live ones so
        // that their threads end.
        for [client, upstream] in lock(&self.shared.connections).values() {
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
        }
    }
}

impl Shared {
    /// Records that bytes moved.
    fn touch(&self) {
        *lock(&self.last_activity) = Instant::now();
    }
}

/// Accepts client connections until the proxy is dropped.
fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        match client {
            Ok(client) => proxy_connection(client, shared),
            // E.g. too many open files: don't spin.
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Connects `client` to the upstream and starts its two forwarding threads.
fn proxy_connection(client: TcpStream, shared: &Arc<Shared>) {
    shared.touch();
    let Ok(upstream) = TcpStream::connect_timeout(&local_addr(shared.upstream_port), IO_TIMEOUT)
    else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (Ok(client_2), Ok(upstream_2), Ok(client_3), Ok(upstream_3)) = (
        client.try_clone(),
        upstream.try_clone(),
        client.try_clone(),
        upstream.try_clone(),
    ) else {
        return;
    };
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    lock(&shared.connections).insert(id, [client_3, upstream_3]);

    // True when the server has sent something since the client last sent
    // bytes: the client's next bytes then start a new round trip.
    let replied = Arc::new(AtomicBool::new(true));
    let to_client = {
        let shared = Arc::clone(shared);
        let replied = Arc::clone(&replied);
        thread::Builder::new()
            .name(format!("counting-proxy-s2c-{id}"))
            .spawn(move || server_to_client(upstream_2, client_2, &shared, &replied))
    };
    let to_server = {
        let shared = Arc::clone(shared);
        thread::Builder::new()
            .name(format!("counting-proxy-c2s-{id}"))
            .spawn(move || {
                client_to_server(client, upstream, &shared, &replied);
                if let Ok(to_client) = to_client {
                    let _ = to_client.join();
                }
                lock(&shared.connections).remove(&id);
            })
    };
    if to_server.is_err()
        && let Some([client, upstream]) = lock(&shared.connections).remove(&id)
    {
        let _ = client.shutdown(Shutdown::Both);
        let _ = upstream.shutdown(Shutdown::Both);
    }
}

/// Forwards client bytes to Redis, counting round trips and recording
/// commands before each forward.
fn client_to_server(
    mut client: TcpStream,
    mut upstream: TcpStream,
    shared: &Shared,
    replied: &AtomicBool,
) {
    let mut parser = RespParser::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) => {
                // The client is done sending; let Redis finish and close.
                let _ = upstream.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => n,
            Err(_) => break,
        };
        {
            let mut stats = lock(&shared.stats);
            // Bytes that complete a partly received command continue the
            // current round trip even if a reply (to earlier commands of the
            // same pipeline) went out in between.
            if replied.swap(false, Ordering::SeqCst) && !parser.in_command() {
                stats.round_trips += 1;
            }
            parser.feed(&buf[..n], &mut stats.commands);
        }
        shared.touch();
        if upstream.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = upstream.shutdown(Shutdown::Both);
    let _ = client.shutdown(Shutdown::Both);
}

/// Forwards Redis bytes to the client, marking the reply before each forward.
fn server_to_client(
    mut upstream: TcpStream,
    mut client: TcpStream,
    shared: &Shared,
    replied: &AtomicBool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match upstream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        replied.store(true, Ordering::SeqCst);
        shared.touch();
        if client.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    // Redis closed (or the client went away): close both sides, which also
    // ends the client-to-server thread.
    let _ = client.shutdown(Shutdown::Both);
    let _ = upstream.shutdown(Shutdown::Both);
}

/// Incremental parser of the commands a client sends: RESP arrays of bulk
/// strings.
#[derive(Default)]
struct RespParser {
    /// Bytes received but not yet parsed into a whole command.
    pending: Vec<u8>,
    /// Set after malformed input; nothing more is parsed.
    broken: bool,
}

impl RespParser {
    /// Whether the bytes received so far end inside a command.
    fn in_command(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Appends `data` and pushes every command it completes onto `out`.
    fn feed(&mut self, data: &[u8], out: &mut Vec<Vec<String>>) {
        if self.broken {
            return;
        }
        self.pending.extend_from_slice(data);
        let mut start = 0;
        while start < self.pending.len() {
            match parse_command(&self.pending[start..]) {
                Ok(Some((command, used))) => {
                    out.extend(command);
                    start += used;
                }
                Ok(None) => break,
                Err(()) => {
                    self.broken = true;
                    self.pending = Vec::new();
                    return;
                }
            }
        }
        self.pending.drain(..start);
    }
}

/// Outcome of [`parse_command`]: a command (or `None` for input that is
/// skipped, like an inline command) and the number of bytes it used.
type Parsed = (Option<Vec<String>>, usize);

/// Parses one command at the start of `buf`.
///
/// `Ok(None)` means more bytes are needed; `Err(())` means the input is not
/// a command a Redis client would send.
fn parse_command(buf: &[u8]) -> Result<Option<Parsed>, ()> {
    if buf.first() != Some(&b'*') {
        // Inline command: skipped up to and including its newline.
        return Ok(buf
            .iter()
            .position(|&b| b == b'\n')
            .map(|newline| (None, newline + 1)));
    }
    let Some((count, mut pos)) = parse_header(buf, 0, b'*')? else {
        return Ok(None);
    };
    let count = match usize::try_from(count) {
        Ok(count) if count > 0 => count,
        // `*-1` (null array) or `*0`: nothing to record.
        _ => return Ok(Some((None, pos))),
    };
    if count > MAX_ARGS {
        return Err(());
    }
    let mut argv = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let Some((len, data_start)) = parse_header(buf, pos, b'$')? else {
            return Ok(None);
        };
        let len = usize::try_from(len).map_err(|_| ())?;
        let data_end = data_start.checked_add(len).ok_or(())?;
        let Some(terminator) = buf.get(data_end..data_end + 2) else {
            return Ok(None);
        };
        if terminator != b"\r\n" {
            return Err(());
        }
        argv.push(String::from_utf8_lossy(&buf[data_start..data_end]).into_owned());
        pos = data_end + 2;
    }
    Ok(Some((Some(argv), pos)))
}

/// Parses a `<kind><integer>\r\n` line at `buf[pos..]`, returning the
/// integer and the position after the line, `Ok(None)` if incomplete.
fn parse_header(buf: &[u8], pos: usize, kind: u8) -> Result<Option<(i64, usize)>, ()> {
    let rest = buf.get(pos..).unwrap_or_default();
    let Some(&first) = rest.first() else {
        return Ok(None);
    };
    if first != kind {
        return Err(());
    }
    let Some(cr) = rest.iter().position(|&b| b == b'\r') else {
        return if rest.len() > MAX_HEADER_LINE {
            Err(())
        } else {
            Ok(None)
        };
    };
    let Some(&lf) = rest.get(cr + 1) else {
        return Ok(None);
    };
    if lf != b'\n' {
        return Err(());
    }
    let number = std::str::from_utf8(&rest[1..cr])
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(())?;
    Ok(Some((number, pos + cr + 2)))
}

#[cfg(test)]
mod tests {
    use super::RespParser;

    fn parse_in_chunks(input: &[u8], chunk: usize) -> Vec<Vec<String>> {
        let mut parser = RespParser::default();
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            parser.feed(piece, &mut out);
        }
        assert!(parser.pending.is_empty(), "bytes left over");
        out
    }

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn parses_pipelines_split_anywhere() {
        let input = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv\r\nv!\r\n*1\r\n$4\r\nPING\r\n";
        let expected = vec![
            argv(&["GET", "k"]),
            argv(&["SET", "k", "v\r\nv!"]),
            argv(&["PING"]),
        ];
        for chunk in 1..=input.len() {
            assert_eq!(parse_in_chunks(input, chunk), expected, "chunk {chunk}");
        }
    }

    #[test]
    fn skips_inline_and_empty_arrays() {
        let input = b"PING\r\n*0\r\n*-1\r\n*1\r\n$4\r\nINFO\r\n";
        assert_eq!(parse_in_chunks(input, 3), vec![argv(&["INFO"])]);
    }

    #[test]
    fn empty_and_binary_arguments() {
        let input = b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$2\r\n\xff\x00\r\n";
        assert_eq!(
            parse_in_chunks(input, 2),
            vec![argv(&["SET", "", "\u{fffd}\u{0}"])]
        );
    }

    #[test]
    fn stops_parsing_after_garbage() {
        let mut parser = RespParser::default();
        let mut out = Vec::new();
        parser.feed(b"*1\r\n:5\r\n", &mut out);
        parser.feed(b"*1\r\n$4\r\nPING\r\n", &mut out);
        assert!(out.is_empty());
        assert!(parser.broken);
    }
}
