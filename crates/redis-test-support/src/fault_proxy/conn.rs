//! One proxied connection: its two sockets, the bytes read but not yet forwarded in each
//! direction, and how its current fault decides what may be read and written now.
//!
//! Kept apart from the event loop so that the fault rules sit in one place: [`Conn::pump`]
//! moves every byte that the fault allows, and [`Conn::next_deadline`] says when a held byte
//! (delay, drip) may move next.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use super::{Fault, Traffic};

/// Index of the client's socket in [`Conn::sockets`].
const CLIENT: usize = 0;
/// Index of the server's socket in [`Conn::sockets`].
const SERVER: usize = 1;
/// The flow that reads the client and writes the server (also its index in `flows`).
pub(super) const TO_SERVER: usize = 0;
/// The flow that reads the server and writes the client.
pub(super) const TO_CLIENT: usize = 1;

/// Most bytes a flow reads ahead of what it has forwarded: beyond this the proxy stops
/// reading, so a slow receiver (or a delay, a drip) slows the sender down, as TCP would.
const PENDING_LIMIT: usize = 64 * 1024;
/// Most bytes read by one `read`, i.e. the largest chunk (the unit of [`Fault::Delay`]).
const READ_SIZE: usize = 16 * 1024;
/// Most read and write rounds in one [`Conn::pump`], so that a fast stream cannot starve the
/// other connections; the loop comes back at once when the limit was hit.
const ROUNDS_PER_PUMP: usize = 64;

/// What [`Conn::pump`] left the connection in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// Open, with nothing more to do until an event or a deadline.
    Idle,
    /// Open, but stopped after [`ROUNDS_PER_PUMP`] rounds with work left: pump again soon.
    Busy,
    /// Both directions ended (FIN forwarded both ways); the sockets can be dropped.
    Closed,
    /// Reset (RST sent to both sides) because of the fault or an error on one side.
    Reset,
}

/// Bytes read in one `read`, with when they were read.
struct Chunk {
    /// When the proxy read them (a [`Fault::Delay`] counts from here).
    read_at: Instant,
    /// The bytes.
    bytes: Vec<u8>,
    /// How many of them have been forwarded already.
    sent: usize,
}

/// One direction of a connection.
#[derive(Default)]
struct Flow {
    /// Read but not yet forwarded, oldest first.
    pending: VecDeque<Chunk>,
    /// Total unsent bytes in `pending`.
    pending_bytes: usize,
    /// The sending side closed its write half (EOF read).
    eof: bool,
    /// The EOF was forwarded (`shutdown(Write)` on the receiving side).
    shut: bool,
    /// With [`Fault::Drip`]: no byte before this instant.
    next_drip: Option<Instant>,
}

/// A client connection and its upstream connection.
pub(super) struct Conn {
    /// The client's and the server's socket ([`CLIENT`], [`SERVER`]).
    sockets: [TcpStream; 2],
    /// [`TO_SERVER`] and [`TO_CLIENT`].
    flows: [Flow; 2],
    /// The current fault.
    fault: Fault,
    /// With [`Fault::CutAfter`]: bytes still to forward before the reset.
    cut_left: u64,
}

impl Conn {
    /// A connection between `client` and `server`, passing everything.
    pub(super) fn new(client: TcpStream, server: TcpStream) -> Conn {
        Conn {
            sockets: [client, server],
            flows: [Flow::default(), Flow::default()],
            fault: Fault::Pass,
            cut_left: 0,
        }
    }

    /// The two sockets, to register them with the poll.
    pub(super) fn sockets_mut(&mut self) -> &mut [TcpStream; 2] {
        &mut self.sockets
    }

    /// Makes `fault` the connection's fault. Returns [`State::Reset`] if it resets the
    /// connection right away ([`Fault::Reset`], [`Fault::CutAfter`] with 0 bytes), else
    /// [`State::Idle`] (the caller pumps next).
    pub(super) fn set_fault(&mut self, fault: Fault) -> State {
        self.fault = fault;
        for flow in &mut self.flows {
            flow.next_drip = None;
        }
        match fault {
            Fault::Reset | Fault::CutAfter { bytes: 0, .. } => {
                self.reset();
                State::Reset
            }
            Fault::CutAfter { bytes, .. } => {
                self.cut_left = bytes;
                State::Idle
            }
            _ => State::Idle,
        }
    }

    /// Prepares an RST to both sides: `SO_LINGER` 0, so that the RST leaves when the caller
    /// drops the connection (at once: the caller does so before forwarding anything else).
    pub(super) fn reset(&mut self) {
        for socket in &self.sockets {
            let _ = socket2::SockRef::from(socket).set_linger(Some(Duration::ZERO));
        }
    }

    /// Whether the fault lets `flow` move bytes (read or write) at all.
    fn flows(&self, flow: usize) -> bool {
        match self.fault {
            Fault::Stall(direction) => !direction.covers(flow),
            Fault::BlackHole => false,
            _ => true,
        }
    }

    /// When a byte held by a delay or a drip may move next, if one is held.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let deadline = |flow: usize| {
            let front = self.flows[flow].pending.front()?;
            match self.fault {
                Fault::Delay { by, direction } if direction.covers(flow) => {
                    Some(front.read_at + by)
                }
                Fault::Drip { direction, .. } if direction.covers(flow) => {
                    self.flows[flow].next_drip
                }
                _ => None,
            }
        };
        match (deadline(TO_SERVER), deadline(TO_CLIENT)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Moves every byte the fault allows now, in both directions, adding what was forwarded
    /// to `traffic`. An I/O error on either side resets the connection (the other side is
    /// sent an RST, as the peer's failure would reach it through a real network path).
    pub(super) fn pump(&mut self, traffic: &mut Traffic) -> State {
        for _ in 0..ROUNDS_PER_PUMP {
            let mut moved = false;
            for flow in [TO_SERVER, TO_CLIENT] {
                let result = self.fill(flow).and_then(|read| {
                    let written = self.forward(flow, traffic)?;
                    Ok(read || written)
                });
                match result {
                    Ok(progress) => moved |= progress,
                    Err(_) => {
                        self.reset();
                        return State::Reset;
                    }
                }
                if matches!(self.fault, Fault::CutAfter { .. }) && self.cut_left == 0 {
                    self.reset();
                    return State::Reset;
                }
            }
            if !moved {
                return self.forward_eofs();
            }
        }
        State::Busy
    }

    /// Forwards each direction's EOF once all its bytes are forwarded and the fault lets it
    /// flow; [`State::Closed`] when both are forwarded.
    fn forward_eofs(&mut self) -> State {
        for flow in [TO_SERVER, TO_CLIENT] {
            let f = &self.flows[flow];
            if f.eof && f.pending.is_empty() && !f.shut && self.flows(flow) {
                let _ = self.sockets[receiver(flow)].shutdown(Shutdown::Write);
                self.flows[flow].shut = true;
            }
        }
        if self.flows.iter().all(|f| f.shut) {
            State::Closed
        } else {
            State::Idle
        }
    }

    /// Reads from `flow`'s sender while the fault allows it, until it would block, the EOF,
    /// or [`PENDING_LIMIT`]. Returns whether anything was read (or the EOF seen).
    fn fill(&mut self, flow: usize) -> io::Result<bool> {
        let mut progress = false;
        let mut buf = [0u8; READ_SIZE];
        while self.flows(flow) && !self.flows[flow].eof {
            let room = PENDING_LIMIT.saturating_sub(self.flows[flow].pending_bytes);
            if room == 0 {
                break;
            }
            let limit = room.min(READ_SIZE);
            match self.sockets[sender(flow)].read(&mut buf[..limit]) {
                Ok(0) => {
                    self.flows[flow].eof = true;
                    progress = true;
                }
                Ok(n) => {
                    let f = &mut self.flows[flow];
                    f.pending.push_back(Chunk {
                        read_at: Instant::now(),
                        bytes: buf[..n].to_vec(),
                        sent: 0,
                    });
                    f.pending_bytes += n;
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(progress)
    }

    /// Writes `flow`'s pending bytes to its receiver as far as the fault allows now, until
    /// the receiver would block. Returns whether anything was written.
    fn forward(&mut self, flow: usize, traffic: &mut Traffic) -> io::Result<bool> {
        let mut progress = false;
        while self.flows(flow) {
            let now = Instant::now();
            let f = &self.flows[flow];
            let Some(chunk) = f.pending.front() else {
                break;
            };
            let mut len = chunk.bytes.len() - chunk.sent;
            match self.fault {
                Fault::Delay { by, direction }
                    if direction.covers(flow) && chunk.read_at + by > now =>
                {
                    break;
                }
                Fault::Drip { direction, .. } if direction.covers(flow) => {
                    if f.next_drip.is_some_and(|at| at > now) {
                        break;
                    }
                    len = 1;
                }
                Fault::CutAfter { direction, .. } if direction.covers(flow) => {
                    let left = usize::try_from(self.cut_left).unwrap_or(usize::MAX);
                    if left == 0 {
                        break;
                    }
                    len = len.min(left);
                }
                _ => {}
            }
            let bytes = &chunk.bytes[chunk.sent..chunk.sent + len];
            match self.sockets[receiver(flow)].write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent(flow, n, now, traffic),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            progress = true;
        }
        Ok(progress)
    }

    /// Accounts for `n` bytes of `flow` written at `now`.
    fn sent(&mut self, flow: usize, n: usize, now: Instant, traffic: &mut Traffic) {
        let n64 = n as u64;
        match flow {
            TO_SERVER => traffic.to_server += n64,
            _ => traffic.to_client += n64,
        }
        match self.fault {
            Fault::Drip { pause, direction } if direction.covers(flow) => {
                self.flows[flow].next_drip = Some(now + pause);
            }
            Fault::CutAfter { direction, .. } if direction.covers(flow) => {
                self.cut_left = self.cut_left.saturating_sub(n64);
            }
            _ => {}
        }
        let f = &mut self.flows[flow];
        f.pending_bytes -= n;
        if let Some(chunk) = f.pending.front_mut() {
            chunk.sent += n;
            if chunk.sent == chunk.bytes.len() {
                f.pending.pop_front();
            }
        }
    }
}

/// The socket `flow` reads from.
fn sender(flow: usize) -> usize {
    if flow == TO_SERVER { CLIENT } else { SERVER }
}

/// The socket `flow` writes to.
fn receiver(flow: usize) -> usize {
    if flow == TO_SERVER { SERVER } else { CLIENT }
}
