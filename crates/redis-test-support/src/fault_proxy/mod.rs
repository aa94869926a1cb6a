//! A TCP proxy that injects network faults on command: delay, a stalled direction, a black
//! hole, a reset, bytes dripped one at a time, a cut after N bytes.
//!
//! Exists so that tests can make happen, on purpose and at an exact point of the byte stream,
//! what networks do to a Redis connection in production: a NAT or load balancer that silently
//! drops a flow, a socket that fills up (TCP back-pressure), a connection reset in the middle of
//! a batch, a slow link. It forwards bytes, so TLS passes through untouched.
//!
//! Design: one event-loop thread (`mio`, no async runtime needed by the test) owns every
//! socket and applies each command between two reads or writes; [`FaultProxy::set`] and its
//! siblings return only once the loop has applied the fault. So after `set(Fault::Stall(..))`
//! returns, not one more byte is forwarded in that direction, and after `set(Fault::Reset)`
//! returns, both peers have been sent their RST. Stalled data is not read at all (it stays in
//! the kernel's socket buffers, which the proxy keeps small, see [`SOCKET_BUFFER_BYTES`] and
//! [`SEGMENT_BYTES`]), so the sender feels back-pressure after tens of KB, as over a real
//! network; [`FaultProxy::unread_on`] shows what is held there.

mod conn;
mod event_loop;
mod fault;
mod live;
mod queues;
mod random;

pub use fault::{Direction, Fault, SEGMENT_BYTES, SOCKET_BUFFER_BYTES, Traffic};
pub use random::FaultMix;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use crate::process::{POLL_INTERVAL, WAIT_TIMEOUT, lock};

/// Which connections a command applies to.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// Every live connection.
    Live,
    /// Every live connection and those accepted from now on.
    All,
    /// Connections accepted from now on.
    New,
    /// The connection with this index.
    One(usize),
}

/// What the event loop is asked to do.
#[derive(Debug, Clone, Copy)]
enum Action {
    /// Set a fault on some connections.
    Set(Target, Fault),
    /// Nothing: a barrier, so that what the loop did before is visible to the caller.
    Sync,
    /// Close every connection and end the loop.
    Stop,
}

/// A command to the event loop, with the channel on which it acknowledges it.
struct Command {
    /// What to do.
    action: Action,
    /// Sent to once the command has been applied, with the number of connections accepted
    /// by then.
    done: mpsc::Sender<usize>,
}

/// What one connection has done, readable by the test at any time.
#[derive(Debug, Clone, Copy, Default)]
struct ConnStats {
    /// Neither closed nor reset yet.
    live: bool,
    /// Bytes forwarded so far.
    traffic: Traffic,
    /// The client's port (the peer of the proxy's client-side socket).
    client_port: u16,
    /// The local port of the proxy's upstream socket (0 if it could not connect).
    upstream_local_port: u16,
}

/// State shared between the handle and the event loop.
struct Shared {
    /// Commands not yet applied, in order.
    commands: Mutex<VecDeque<Command>>,
    /// Per connection, by index (accept order).
    stats: Mutex<Vec<ConnStats>>,
    /// Wakes the event loop when a command was queued.
    waker: mio::Waker,
    /// Set by the loop when it ends (normally only on drop).
    finished: AtomicBool,
}

/// A TCP proxy on a free 127.0.0.1 port in front of a server port, which forwards every
/// accepted connection to its own upstream connection and injects [`Fault`]s on command, per
/// connection or for all, while traffic runs. Stops, closing every connection, on drop (also
/// when a test panics).
///
/// Connections are numbered from 0 in the order they were accepted
/// ([`FaultProxy::connections_opened`] is the next number). The proxy's one thread is named
/// `fault-px-PORT` (to find it in `/proc/self/task`); it sleeps while faults hold bytes.
///
/// ```no_run
/// use std::time::Duration;
/// use redis_test_support::{Direction, Fault, FaultProxy, RedisServer};
///
/// let server = RedisServer::start();
/// let proxy = FaultProxy::start(server.port());
/// let client = redis::Client::open(proxy.url()).unwrap();
/// let mut con = client.get_connection().unwrap();
/// proxy.set(Fault::Delay { by: Duration::from_millis(100), direction: Direction::ToClient });
/// let _: () = redis::cmd("PING").query(&mut con).unwrap(); // takes 100 ms more
/// proxy.set(Fault::BlackHole); // the next command gets no answer, nor an error
/// proxy.heal(); // and now it is answered
/// ```
pub struct FaultProxy {
    /// The proxy's own listening port.
    port: u16,
    /// The server port every connection is forwarded to.
    upstream_port: u16,
    /// State shared with the event loop.
    shared: Arc<Shared>,
    /// The event loop's thread; `None` once joined.
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy on a free 127.0.0.1 port that forwards every connection to
    /// 127.0.0.1:`upstream_port` (e.g. [`crate::RedisServer::port`] or
    /// [`crate::RedisServer::tls_port`]), with every fault [`Fault::Pass`]. A client connection
    /// whose upstream cannot be reached is reset at once. Panics if the proxy cannot start.
    pub fn start(upstream_port: u16) -> FaultProxy {
        let (event_loop, shared) = event_loop::EventLoop::new(upstream_port)
            .unwrap_or_else(|e| panic!("FaultProxy: cannot start the event loop: {e}"));
        let port = event_loop.port();
        let thread = thread::Builder::new()
            .name(format!("fault-px-{port}"))
            .spawn(move || event_loop.run())
            .unwrap_or_else(|e| panic!("FaultProxy: cannot spawn its thread: {e}"));
        FaultProxy {
            port,
            upstream_port,
            shared,
            thread: Some(thread),
        }
    }

    /// The proxy's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/` of the proxy (for a TLS upstream, build a `rediss://` URL
    /// with [`FaultProxy::port`]).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// How many client connections the proxy has accepted since it started. The loop accepts
    /// what is waiting before it answers, so this normally includes every client whose
    /// `connect` returned before the call; where a test depends on it (the kernel may finish a
    /// handshake a little after `connect` returned), use [`FaultProxy::wait_for_connections`].
    pub fn connections_opened(&self) -> usize {
        self.command(Action::Sync)
    }

    /// How many accepted connections are neither closed nor reset yet (as seen by the proxy:
    /// a peer's close is seen when the proxy reads it, not while its direction is stalled).
    pub fn live_connections(&self) -> usize {
        self.command(Action::Sync);
        lock(&self.shared.stats).iter().filter(|c| c.live).count()
    }

    /// Waits until at least `count` connections have been accepted, e.g. for a client that
    /// connects in the background. Panics after a few seconds.
    pub fn wait_for_connections(&self, count: usize) {
        let deadline = Instant::now() + WAIT_TIMEOUT;
        loop {
            let opened = self.connections_opened();
            if opened >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "FaultProxy on port {}: {opened} connection(s) opened, not {count}, within \
                 {WAIT_TIMEOUT:?}",
                self.port,
            );
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Sets `fault` on every live connection (not on later ones: see
    /// [`FaultProxy::set_for_new`]). Returns once it applies.
    ///
    /// ```no_run
    /// # use redis_test_support::{Direction, Fault, FaultProxy};
    /// # let proxy = FaultProxy::start(6379);
    /// proxy.set(Fault::Stall(Direction::ToServer)); // commands stop reaching Redis
    /// let held = proxy.traffic().to_server;
    /// // ... the client writes; proxy.traffic().to_server stays at `held` ...
    /// proxy.set(Fault::Pass); // and everything written meanwhile goes through
    /// ```
    pub fn set(&self, fault: Fault) {
        self.command(Action::Set(Target::Live, fault));
    }

    /// Sets the fault that connections accepted from now on start with (live ones keep
    /// theirs). E.g. [`Fault::BlackHole`] on live connections only ([`FaultProxy::set`]) is a
    /// dropped flow after which reconnecting works; on new ones too ([`FaultProxy::set_all`])
    /// the server looks gone. Returns once it applies.
    pub fn set_for_new(&self, fault: Fault) {
        self.command(Action::Set(Target::New, fault));
    }

    /// Sets `fault` on every live connection and on those accepted from now on, in one step:
    /// e.g. `set_all(Fault::BlackHole)` for a server that vanished (its live flows and every
    /// new one get nothing back), `set_all(Fault::Reset)` for one whose port is closed.
    ///
    /// ```no_run
    /// # use redis_test_support::{Fault, FaultProxy};
    /// # let proxy = FaultProxy::start(6379);
    /// proxy.set_all(Fault::BlackHole); // the host is gone
    /// // ... the client times out, reconnects, times out again ...
    /// proxy.heal(); // it is back
    /// ```
    pub fn set_all(&self, fault: Fault) {
        self.command(Action::Set(Target::All, fault));
    }

    /// Sets `fault` on the connection numbered `index` (0 is the first one accepted). Does
    /// nothing if that connection is already closed; panics if it was never opened. Returns
    /// once it applies.
    pub fn set_on(&self, index: usize, fault: Fault) {
        let opened = self.command(Action::Set(Target::One(index), fault));
        assert!(
            index < opened,
            "FaultProxy on port {}: set_on({index}, {fault:?}) but only {opened} connection(s) \
             were opened",
            self.port
        );
    }

    /// Sets every live connection and the default for new ones back to [`Fault::Pass`]; data
    /// held by a stall, a black hole, a delay or a drip is then forwarded at once.
    pub fn heal(&self) {
        self.set_all(Fault::Pass);
    }

    /// Bytes forwarded so far over all connections, per direction: every byte written to a
    /// receiving socket before this call is counted.
    pub fn traffic(&self) -> Traffic {
        self.command(Action::Sync);
        lock(&self.shared.stats)
            .iter()
            .fold(Traffic::default(), |sum, c| Traffic {
                to_server: sum.to_server + c.traffic.to_server,
                to_client: sum.to_client + c.traffic.to_client,
            })
    }

    /// Bytes forwarded so far on the connection numbered `index`. Panics if it was never
    /// opened.
    pub fn traffic_on(&self, index: usize) -> Traffic {
        self.command(Action::Sync);
        let stats = lock(&self.shared.stats);
        stats.get(index).map(|c| c.traffic).unwrap_or_else(|| {
            panic!(
                "FaultProxy on port {}: traffic_on({index}) but only {} connection(s) were \
                 opened",
                self.port,
                stats.len()
            )
        })
    }

    /// Bytes that the peers have sent on the connection numbered `index` and that the proxy
    /// has not read yet: what a [`Fault::Stall`] or a [`Fault::BlackHole`] holds, in the kernel
    /// receive queues of the proxy's sockets (`to_server`: the client's bytes, `to_client`: the
    /// server's). 0 once the connection is closed. Panics if it was never opened.
    ///
    /// ```no_run
    /// # use redis_test_support::{Direction, Fault, FaultProxy};
    /// # let proxy = FaultProxy::start(6379);
    /// proxy.set(Fault::Stall(Direction::ToServer));
    /// // ... the client starts a large write ...
    /// while proxy.unread_on(0).to_server < 4096 {
    ///     std::thread::sleep(std::time::Duration::from_millis(10));
    /// }
    /// // The proxy's side is full: the client's socket fills up from now on.
    /// ```
    pub fn unread_on(&self, index: usize) -> Traffic {
        self.command(Action::Sync);
        let conn = lock(&self.shared.stats).get(index).copied();
        let Some(conn) = conn else {
            panic!(
                "FaultProxy on port {}: unread_on({index}) but only {} connection(s) were opened",
                self.port,
                self.connections_opened()
            );
        };
        if !conn.live {
            return Traffic::default();
        }
        Traffic {
            to_server: queues::unread(self.port, conn.client_port),
            to_client: queues::unread(conn.upstream_local_port, self.upstream_port),
        }
    }

    /// Queues a command for the event loop, wakes it and waits until it is applied; returns
    /// the number of connections accepted by then (0 if the loop has ended).
    fn command(&self, action: Action) -> usize {
        if self.shared.finished.load(Ordering::SeqCst) {
            assert!(
                matches!(action, Action::Stop),
                "FaultProxy on port {}: its thread has ended (did it panic?), cannot apply \
                 {action:?}",
                self.port
            );
            return 0;
        }
        let (done, applied) = mpsc::channel();
        lock(&self.shared.commands).push_back(Command { action, done });
        if let Err(e) = self.shared.waker.wake() {
            panic!(
                "FaultProxy on port {}: cannot wake its thread: {e}",
                self.port
            );
        }
        match applied.recv_timeout(WAIT_TIMEOUT) {
            Ok(opened) => opened,
            Err(_) if matches!(action, Action::Stop) => 0,
            Err(_) => panic!(
                "FaultProxy on port {}: its thread did not apply {action:?} within \
                 {WAIT_TIMEOUT:?} (finished: {})",
                self.port,
                self.shared.finished.load(Ordering::SeqCst)
            ),
        }
    }
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Without a round trip to the loop: Debug must work even if the loop has ended.
        let stats = lock(&self.shared.stats);
        f.debug_struct("FaultProxy")
            .field("port", &self.port)
            .field("upstream_port", &self.upstream_port)
            .field("connections_opened", &stats.len())
            .field("live_connections", &stats.iter().filter(|c| c.live).count())
            .finish_non_exhaustive()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Stop, closing every connection (no panic here: a test may already be panicking).
        self.command(Action::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
