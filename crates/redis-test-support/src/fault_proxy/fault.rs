//! The fault proxy's vocabulary: the faults it injects, the directions they apply to, the
//! bytes it counts, and the socket sizes that make its back-pressure realistic.
//!
//! Kept apart from the proxy's handle so that what a test can ask for reads in one place.

use std::time::Duration;

#[cfg(doc)]
use super::FaultProxy;
use super::conn;

/// The `SO_RCVBUF` and `SO_SNDBUF` the proxy asks for on each of its sockets (set on the
/// listener before `listen`, inherited by accepted sockets, and on the upstream socket before
/// `connect`; Linux doubles the value for its bookkeeping). Small so that a stalled direction
/// fills the proxy's side after a few KB: how much a client can write into a stalled
/// connection before its writes block is then mostly its own send buffer (tens of KB, not
/// megabytes, thanks to [`SEGMENT_BYTES`]).
pub const SOCKET_BUFFER_BYTES: usize = 4096;

/// The TCP maximum segment size (`TCP_MAXSEG`) the proxy's sockets use and announce to their
/// peers: Ethernet's 1460 bytes instead of loopback's 65483. A peer sizes its send buffer from
/// the segment size (Linux grows it to about 2 x 10 segments' memory as soon as data flows), so
/// with loopback's segments a client could write about 2.8 MB into a stalled connection before
/// its writes block; with these, a few tens of KB, as over a real network.
pub const SEGMENT_BYTES: u32 = 1460;

/// One direction of the byte stream through the proxy, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the client (the code under test) to the server (Redis): commands.
    ToServer,
    /// From the server to the client: replies.
    ToClient,
    /// Both directions.
    Both,
}

impl Direction {
    /// Whether this direction includes `flow` (`conn::TO_SERVER` or `conn::TO_CLIENT`).
    pub(super) fn covers(self, flow: usize) -> bool {
        match self {
            Direction::ToServer => flow == conn::TO_SERVER,
            Direction::ToClient => flow == conn::TO_CLIENT,
            Direction::Both => true,
        }
    }
}

/// What the proxy does to a connection's bytes. A connection has one fault at a time; setting
/// another replaces it (data the old fault held is then handled by the new one: [`Fault::Pass`]
/// releases it at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything as it comes (the initial state).
    Pass,
    /// Forward each chunk read in `direction` `by` after it was read (a slow link: the delay is
    /// a latency, chunks read in a row are not spaced out). A chunk is what one `read` got,
    /// at most 16 KiB.
    Delay {
        /// How long each chunk is held.
        by: Duration,
        /// Which bytes are delayed.
        direction: Direction,
    },
    /// Stop reading from the sending side of `direction` and forward nothing in it: the
    /// sender's writes block once its socket buffer and the proxy's are full (real TCP
    /// back-pressure). The other direction keeps flowing. A FIN or RST from the stalled sender
    /// is not seen either until the stall ends.
    Stall(Direction),
    /// Hold everything in both directions and send nothing, no FIN and no RST: a NAT or load
    /// balancer that dropped the flow, a host that vanished. As for [`Fault::Stall`], the held
    /// bytes stay unread in the socket buffers and go through if the fault is later lifted (a
    /// healed partition, after which TCP retransmits). The kernel still answers TCP keepalive
    /// probes on the proxy's sockets, so keepalive does *not* detect this black hole (only an
    /// application-level timeout or `PING` does); a new connection's handshake is also still
    /// completed by the kernel (`connect` succeeds, see [`FaultProxy::set_for_new`]).
    BlackHole,
    /// Close the connection with an RST on both sides (`SO_LINGER` 0): the client sees
    /// `ECONNRESET`. With [`FaultProxy::set_for_new`], every later connection is reset as soon
    /// as it is accepted.
    Reset,
    /// Forward the bytes of `direction` one at a time, waiting `pause` after each.
    Drip {
        /// The pause after each byte.
        pause: Duration,
        /// Which bytes are dripped.
        direction: Direction,
    },
    /// Forward `bytes` more bytes in `direction` (counted from when the fault is set, or from
    /// the start for [`FaultProxy::set_for_new`]; for [`Direction::Both`] the two directions
    /// together), then reset the connection as [`Fault::Reset`] does. The other direction
    /// passes meanwhile. `bytes: 0` resets at once.
    CutAfter {
        /// How many bytes go through before the reset.
        bytes: u64,
        /// Which bytes are counted.
        direction: Direction,
    },
}

/// Bytes forwarded by the proxy (written to the receiving side), per direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Bytes forwarded from the client to the server.
    pub to_server: u64,
    /// Bytes forwarded from the server to the client.
    pub to_client: u64,
}
