//! Telling a dead flow from a stalled Redis, so that a dead flow is replaced within about one
//! timeout while a paused Redis keeps the order of every route's commands.
//!
//! A flow that a NAT or load balancer dropped without a word (no RST, no FIN) and a Redis that is
//! paused (`CLIENT PAUSE`) or busy (`DEBUG SLEEP`, a long script) look the same from the
//! connection: replies stop coming. They call for opposite things. A dead flow must be replaced,
//! or every call routed to it fails until TCP gives up (about 15 minutes). A stalled Redis must
//! not be: all commands of one route go over one connection (`pool.rs`), so that a lock
//! release sent after a lock request that timed out on our side can never run before it; on a
//! new connection the release could overtake the request that Redis still holds, and leave the
//! lock held until it expires (a session's `lock_ttl`).
//!
//! So when the oldest reply of a connection is overdue (the reader's watchdog, which runs
//! anyway), a probe asks Redis on a new connection to run a script (`Endpoint::probe`), within
//! the timeout. Not answered (or answered with an error such as `BUSY`): Redis itself is stuck,
//! and the connection is kept; its commands run in order when Redis resumes. Answered while the
//! old flow still brought nothing: the flow is dead. Its callers get an error, the reader aborts
//! it (an RST where we can, so that our kernel does not deliver its unsent bytes later) and the
//! next call opens a new connection. A script, not `PING`: Redis holds a script wherever it holds
//! our writes (`CLIENT PAUSE WRITE` too), so it cannot pass for alive while it holds them.
//!
//! What is still guaranteed about order: a connection is dropped only after Redis ran a command
//! sent after all of the old connection's commands, while the old flow brought no byte. Its
//! commands either ran before that (only their replies are lost) or never reached Redis; they can
//! run later only if a middlebox holding them delivers them later, which an aborted connection
//! makes unlikely (the middlebox gets our RST). Alternatives weighed: replacing the connection at
//! the first timeout gives up the order while Redis is paused (the tests in `faults.rs` and
//! `http_lock.rs` protect it); fencing the old connection with `CLIENT KILL ID` on the new one
//! would make the order certain, but needs rights (`+client`) the documented minimal ACL does not
//! grant; TCP keepalive (`link.rs`) finds only flows that die while idle, and a `PING` when idle
//! only moves the discovery earlier: both complement the probe, neither replaces it.
//!
//! Cost: nothing on the request path except one relaxed add per read (the proof of life); a
//! probe opens one connection per timeout while a connection stays overdue.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use socket2::SockRef;

use super::super::link::{ReadHalf, Transport, io_error};
use super::reader::Generation;

/// Replies Redis wrote on the old flow before the probe's reply can reach us a little after it
/// (two connections, two paths): the probe waits this long, plus twice its round trip, before it
/// declares the old flow dead.
const GRACE: Duration = Duration::from_millis(50);

/// Starts a probe of `generation`'s connection, unless one runs.
pub(super) fn start(generation: &Arc<Generation>) {
    if generation.probing.swap(true, Ordering::AcqRel) || generation.failed() {
        return;
    }
    tokio::spawn(probe(Arc::clone(generation)));
}

async fn probe(generation: Arc<Generation>) {
    let reads = generation.reads.load(Ordering::Relaxed);
    if let Ok(took) = generation.endpoint.probe().await {
        tokio::time::sleep(took * 2 + GRACE).await;
        let silent = generation.reads.load(Ordering::Relaxed) == reads;
        if silent && !generation.failed() {
            let endpoint = &generation.endpoint;
            tracing::warn!(
                host = %endpoint.host,
                port = endpoint.port,
                "a connection to Redis stopped answering while Redis answers on a new one: \
                 replacing it"
            );
            generation.dead.store(true, Ordering::Release);
            generation.fail(&io_error(
                std::io::ErrorKind::ConnectionAborted,
                format!(
                    "the connection to Redis at {}:{} stopped answering while Redis answers on \
                     a new one (a dead flow): it was dropped",
                    endpoint.host, endpoint.port
                ),
            ));
        }
    }
    generation.probing.store(false, Ordering::Release);
}

/// Makes the close of a dead connection an abort (RST, unsent bytes discarded) rather than a
/// FIN after them: bytes of ours still in the kernel must not reach Redis later, after commands
/// sent on the new connection. Only for plain TCP: the TLS half does not expose its socket, and
/// there a late delivery is as unlikely as on a plain flow that died for good.
pub(super) fn abort(read: &ReadHalf) {
    if let Transport::Plain(tcp) = read {
        let _ = SockRef::from(tcp.as_ref()).set_linger(Some(Duration::ZERO));
    }
}
