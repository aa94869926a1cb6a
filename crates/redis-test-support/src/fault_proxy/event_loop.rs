//! The fault proxy's event loop: one thread that accepts connections, connects them
//! upstream, applies the test's commands and pumps every connection's bytes.
//!
//! One thread owns every socket, so a command is applied between two reads or writes and
//! acknowledged only then: that is what makes a fault start at an exact point of the byte
//! stream (threads blocked in `read` or `write` per direction could still forward a chunk
//! after the test set a stall). The sockets are non-blocking and registered edge-triggered;
//! each wake-up pumps every connection until it would block or its fault holds it, so no
//! readiness is lost while a fault holds a connection.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use socket2::{Domain, Protocol, Socket, Type};

use super::conn::{Conn, State};
use super::{
    Action, Command, ConnStats, Fault, SEGMENT_BYTES, SOCKET_BUFFER_BYTES, Shared, Target, Traffic,
};
use crate::process::{local_addr, lock};

/// The listener's token.
const LISTENER: Token = Token(0);
/// The waker's token; connection `i` has tokens `2 + 2i` (client) and `3 + 2i` (server).
const WAKER: Token = Token(1);
/// How long connecting upstream (to a loopback port) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The loop's state, owned by its thread.
pub(super) struct EventLoop {
    /// The readiness poll of every socket.
    poll: Poll,
    /// The proxy's listening socket.
    listener: TcpListener,
    /// Its port.
    port: u16,
    /// Where connections are forwarded.
    upstream: SocketAddr,
    /// State shared with the handle.
    shared: Arc<Shared>,
    /// Live connections by index.
    conns: BTreeMap<usize, Conn>,
    /// The fault new connections start with.
    for_new: Fault,
    /// A connection stopped pumping with work left: poll without waiting.
    busy: bool,
}

/// On the loop thread's exit (also by a panic): marks the loop finished and drops the queued
/// commands, so that their callers stop waiting at once.
struct Finish(Arc<Shared>);

impl Drop for Finish {
    fn drop(&mut self) {
        self.0.finished.store(true, Ordering::SeqCst);
        lock(&self.0.commands).clear();
    }
}

impl EventLoop {
    /// Binds the listener (small socket buffers, see [`SOCKET_BUFFER_BYTES`]) and sets up the
    /// poll for a proxy in front of 127.0.0.1:`upstream_port`.
    pub(super) fn new(upstream_port: u16) -> io::Result<(EventLoop, Arc<Shared>)> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        // Accepted sockets inherit the buffer sizes (and the window scale is chosen from
        // them during the handshake, hence before listen).
        small_buffers(&socket)?;
        socket.bind(&local_addr(0).into())?;
        socket.listen(1024)?;
        socket.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(socket.into());
        let port = listener.local_addr()?.port();
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let shared = Arc::new(Shared {
            commands: Mutex::default(),
            stats: Mutex::default(),
            waker,
            finished: false.into(),
        });
        let event_loop = EventLoop {
            poll,
            listener,
            port,
            upstream: local_addr(upstream_port),
            shared: Arc::clone(&shared),
            conns: BTreeMap::new(),
            for_new: Fault::Pass,
            busy: false,
        };
        Ok((event_loop, shared))
    }

    /// The listening port.
    pub(super) fn port(&self) -> u16 {
        self.port
    }

    /// Runs until the handle asks to stop (on its drop); then closes every connection.
    pub(super) fn run(mut self) {
        let _finish = Finish(Arc::clone(&self.shared));
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = self.timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != io::ErrorKind::Interrupted
            {
                return;
            }
            // Every connection is pumped below, whatever its events: they only wake us.
            // Accepting first makes every client whose `connect` returned before a command
            // was sent a connection the command sees.
            self.accept();
            if !self.apply_commands() {
                return;
            }
            self.pump_all();
        }
    }

    /// How long the poll may wait: not at all when busy, else until the earliest deadline of
    /// a delay or a drip, else until an event.
    fn timeout(&self) -> Option<Duration> {
        if self.busy {
            return Some(Duration::ZERO);
        }
        let now = Instant::now();
        self.conns
            .values()
            .filter_map(Conn::next_deadline)
            .min()
            .map(|deadline| deadline.saturating_duration_since(now))
    }

    /// Applies the queued commands in order, acknowledging each. Returns false on the stop
    /// command, after closing every connection.
    fn apply_commands(&mut self) -> bool {
        loop {
            let Some(command) = lock(&self.shared.commands).pop_front() else {
                return true;
            };
            let Command { action, done } = command;
            let (target, fault) = match action {
                Action::Set(target, fault) => (target, fault),
                Action::Sync => {
                    let _ = done.send(self.opened());
                    continue;
                }
                Action::Stop => {
                    let indexes: Vec<usize> = self.conns.keys().copied().collect();
                    for index in indexes {
                        self.remove(index);
                    }
                    let _ = done.send(self.opened());
                    return false;
                }
            };
            let indexes: Vec<usize> = match target {
                Target::New => {
                    self.for_new = fault;
                    Vec::new()
                }
                Target::Live => self.conns.keys().copied().collect(),
                Target::One(index) => vec![index],
            };
            for index in indexes {
                if let Some(conn) = self.conns.get_mut(&index)
                    && conn.set_fault(fault) == State::Reset
                {
                    self.remove(index);
                }
            }
            let _ = done.send(self.opened());
        }
    }

    /// How many connections have been accepted.
    fn opened(&self) -> usize {
        lock(&self.shared.stats).len()
    }

    /// Accepts every waiting client, connects it upstream and gives it the fault for new
    /// connections. A client whose upstream cannot be reached is reset.
    fn accept(&mut self) {
        loop {
            let client = match self.listener.accept() {
                Ok((client, _)) => client,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // WouldBlock, or e.g. too many open files: retried at the next wake-up.
                Err(_) => return,
            };
            let index = {
                let mut stats = lock(&self.shared.stats);
                stats.push(ConnStats {
                    live: true,
                    traffic: Traffic::default(),
                });
                stats.len() - 1
            };
            let _ = client.set_nodelay(true);
            let server = match connect(self.upstream) {
                Ok(server) => server,
                Err(_) => {
                    let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));
                    lock(&self.shared.stats)[index].live = false;
                    continue;
                }
            };
            let mut conn = Conn::new(client, server);
            let registry = self.poll.registry();
            let interest = Interest::READABLE | Interest::WRITABLE;
            let [client, server] = conn.sockets_mut();
            let registered = registry
                .register(client, Token(2 + 2 * index), interest)
                .and_then(|()| registry.register(server, Token(3 + 2 * index), interest));
            if registered.is_err() {
                conn.reset();
                lock(&self.shared.stats)[index].live = false;
                continue;
            }
            self.conns.insert(index, conn);
            if let Some(conn) = self.conns.get_mut(&index)
                && conn.set_fault(self.for_new) == State::Reset
            {
                self.remove(index);
            }
        }
    }

    /// Pumps every connection, records what was forwarded and drops the ended ones.
    fn pump_all(&mut self) {
        self.busy = false;
        let mut ended = Vec::new();
        for (&index, conn) in &mut self.conns {
            let mut traffic = Traffic::default();
            let state = conn.pump(&mut traffic);
            if traffic != Traffic::default() {
                let mut stats = lock(&self.shared.stats);
                stats[index].traffic.to_server += traffic.to_server;
                stats[index].traffic.to_client += traffic.to_client;
            }
            match state {
                State::Idle => {}
                State::Busy => self.busy = true,
                State::Closed | State::Reset => ended.push(index),
            }
        }
        for index in ended {
            self.remove(index);
        }
    }

    /// Deregisters and drops connection `index` (an RST leaves if it was reset, else a FIN
    /// if not sent yet) and marks it not live.
    fn remove(&mut self, index: usize) {
        if let Some(mut conn) = self.conns.remove(&index) {
            for socket in conn.sockets_mut() {
                let _ = self.poll.registry().deregister(socket);
            }
        }
        if let Some(stats) = lock(&self.shared.stats).get_mut(index) {
            stats.live = false;
        }
    }
}

/// Asks for [`SOCKET_BUFFER_BYTES`] of receive and send buffer on `socket`, and for
/// [`SEGMENT_BYTES`] segments.
fn small_buffers(socket: &Socket) -> io::Result<()> {
    socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES)?;
    socket.set_send_buffer_size(SOCKET_BUFFER_BYTES)?;
    socket.set_tcp_mss(SEGMENT_BYTES)
}

/// Connects to `upstream` with small buffers (set before `connect`) and `TCP_NODELAY`, then
/// makes the socket non-blocking for the poll.
fn connect(upstream: SocketAddr) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    small_buffers(&socket)?;
    socket.set_tcp_nodelay(true)?;
    socket.connect_timeout(&upstream.into(), CONNECT_TIMEOUT)?;
    socket.set_nonblocking(true)?;
    Ok(TcpStream::from_std(socket.into()))
}
