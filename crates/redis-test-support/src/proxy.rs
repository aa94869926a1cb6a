//! A TCP proxy that counts Redis round trips and records commands.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::process::{IO_TIMEOUT, WAIT_TIMEOUT, local_addr, lock};
use crate::resp::RespParser;

/// How long no byte may have moved for [`CountingProxy::wait_idle`] to return.
const IDLE_PERIOD: Duration = Duration::from_millis(50);

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
