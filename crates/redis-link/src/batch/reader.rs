//! The reading side of one connection: who waits for which replies, the watchdog that gives
//! callers past their deadline a timeout error (and has a connection whose oldest reply is
//! overdue probed, `probe.rs`), and the reader task that hands out replies in order. Apart from
//! the queue and the writer (`mod.rs`) because the two sides share only the line of waiting
//! callers ([`Generation`]).

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures_util::task::AtomicWaker;
use redis::{RedisError, RedisResult, Value};
use tokio::io::AsyncReadExt;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::super::link::{Endpoint, ReadHalf, WriteHalf, io_error};
use super::super::pool::lock;
use super::super::resp::{Parsed, parse};
use super::probe;

pub(super) type Replies = RedisResult<Vec<RedisResult<Value>>>;

/// A caller waiting for `count` replies until `deadline`; `tx` is `None` once it got a timeout
/// (its replies are still read, and dropped).
pub(super) struct Caller {
    pub(super) count: usize,
    pub(super) deadline: Instant,
    pub(super) tx: Option<oneshot::Sender<Replies>>,
}

impl Caller {
    /// Hands the caller `replies` (unless it gave up).
    pub(super) fn answer(&mut self, replies: Replies) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(replies);
        }
    }
}

/// The error of a call that got no answer within `timeout`.
pub(super) fn timed_out(timeout: Duration) -> RedisError {
    io_error(
        io::ErrorKind::TimedOut,
        format!("Redis did not answer within {timeout:?}"),
    )
}

/// One open connection: its write half (the writer's) and what it shares with its reader.
pub(super) struct Link {
    pub(super) write: WriteHalf,
    pub(super) generation: Arc<Generation>,
}

impl Link {
    pub(super) async fn open(endpoint: &Arc<Endpoint>) -> RedisResult<Self> {
        let stream = endpoint.open().await?;
        let (read, write) = stream.split();
        let generation = Arc::new(Generation {
            waiting: Mutex::new(Waiting::default()),
            stopped: AtomicBool::new(false),
            reader: AtomicWaker::new(),
            timeout: endpoint.timeout,
            endpoint: Arc::clone(endpoint),
            reads: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            dead: AtomicBool::new(false),
        });
        tokio::spawn(read_loop(Arc::clone(&generation), read));
        Ok(Self { write, generation })
    }

    pub(super) fn failed(&self) -> bool {
        self.generation.failed()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.generation.stop();
    }
}

/// Between the writer and the reader of one connection.
pub(super) struct Generation {
    waiting: Mutex<Waiting>,
    /// Tells the reader to stop: the writer dropped the connection, or it failed.
    stopped: AtomicBool,
    /// The reader task, woken to stop. (A `Notify` cost the reader about 230 instructions per
    /// wake-up, polled beside the socket every time; this is one atomic load.)
    reader: AtomicWaker,
    /// The pool's timeout.
    timeout: Duration,
    /// Where the connection goes: a probe opens another one there.
    pub(super) endpoint: Arc<Endpoint>,
    /// Reads that brought bytes: the flow is alive while this grows.
    pub(super) reads: AtomicU64,
    /// A probe runs (`probe.rs`): one at a time per connection.
    pub(super) probing: AtomicBool,
    /// A probe found the flow dead: the reader aborts the connection (no late delivery).
    pub(super) dead: AtomicBool,
}

#[derive(Default)]
struct Waiting {
    /// Callers whose commands were sent, in order.
    callers: VecDeque<Caller>,
    /// The connection failed: no more callers are accepted.
    failed: bool,
}

impl Generation {
    /// Takes over `callers` (emptying it) unless the connection failed, or, with `only_if_idle`,
    /// unless a caller is still waiting for replies (see `Queue::write_inline`).
    pub(super) fn expect(&self, callers: &mut Vec<Caller>, only_if_idle: bool) -> bool {
        let mut waiting = lock(&self.waiting);
        if waiting.failed || (only_if_idle && !waiting.callers.is_empty()) {
            return false;
        }
        waiting.callers.extend(callers.drain(..));
        true
    }

    /// Whether the connection failed (no more callers are accepted).
    pub(super) fn failed(&self) -> bool {
        lock(&self.waiting).failed
    }

    /// Fails every waiting caller with `error` and refuses new ones.
    pub(super) fn fail(&self, error: &RedisError) {
        let callers = {
            let mut waiting = lock(&self.waiting);
            waiting.failed = true;
            std::mem::take(&mut waiting.callers)
        };
        for mut caller in callers {
            caller.answer(Err(error.clone()));
        }
        self.stop();
    }

    /// Makes the reader stop (and so close the connection).
    fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.reader.wake();
    }

    /// Ready once the reader must stop. The reader task's waker is registered once, when it
    /// starts (a task's waker stays valid for its life), so each poll is one atomic load.
    async fn stopped(&self) {
        std::future::poll_fn(|cx| {
            self.reader.register(cx.waker());
            Poll::Ready(())
        })
        .await;
        std::future::poll_fn(|_| {
            if self.stopped.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }

    /// Gives a timeout error to every waiting caller past its deadline at `now` (they stay in
    /// line for their replies) and returns when to look again: the deadline of the oldest
    /// caller still waiting, or a timeout from now; and whether the oldest reply is overdue.
    fn expire(
        &self,
        now: Instant,
        current: &mut Option<(Caller, Vec<RedisResult<Value>>)>,
    ) -> (Instant, bool) {
        let error = timed_out(self.timeout);
        if let Some((caller, _)) = current.as_mut().filter(|(c, _)| c.deadline <= now) {
            caller.answer(Err(error.clone()));
        }
        let mut waiting = lock(&self.waiting);
        let oldest = current.as_ref().map(|(c, _)| c).or(waiting.callers.front());
        let overdue = oldest.is_some_and(|c| c.deadline <= now);
        let mut next = now + self.timeout;
        for caller in waiting.callers.iter_mut().filter(|c| c.tx.is_some()) {
            if caller.deadline > now {
                // Deadlines grow along the line (up to the jitter of concurrent callers).
                next = next.min(caller.deadline);
                break;
            }
            caller.answer(Err(error.clone()));
        }
        if let Some((caller, _)) = current.as_ref().filter(|(c, _)| c.tx.is_some()) {
            next = next.min(caller.deadline);
        }
        (next, overdue)
    }
}

/// The reply buffer of a connection, and the most it keeps once a long reply has passed.
const BUFFER: usize = 16 * 1024;
pub(super) const BUFFER_KEPT: usize = 1 << 20;

/// Reads replies until the connection fails or the writer drops it, handing them out in order.
async fn read_loop(generation: Arc<Generation>, mut read: ReadHalf) {
    let mut buf = BytesMut::with_capacity(BUFFER);
    let mut current: Option<(Caller, Vec<RedisResult<Value>>)> = None;
    let mut needed = 0;
    let stop = generation.stopped();
    tokio::pin!(stop);
    let watchdog = tokio::time::sleep(generation.timeout);
    tokio::pin!(watchdog);
    let error = 'read: loop {
        // Replies first: they are what wakes this task nearly every time.
        let read = tokio::select! {
            biased;
            read = read.read_buf(&mut buf) => read,
            () = &mut watchdog => {
                let (next, overdue) = generation.expire(Instant::now(), &mut current);
                if overdue {
                    probe::start(&generation);
                }
                watchdog.as_mut().reset(next);
                continue;
            }
            () = &mut stop => break io_error(io::ErrorKind::ConnectionAborted, "the connection was closed"),
        };
        match read {
            Ok(0) => {
                break io_error(io::ErrorKind::UnexpectedEof, "Redis closed the connection");
            }
            Ok(_) => {
                // Proof of life for a probe (`probe.rs`); one uncontended add per read.
                generation.reads.fetch_add(1, Ordering::Relaxed);
                if buf.len() < needed {
                    continue;
                }
            }
            Err(e) => break RedisError::from(e),
        }
        loop {
            match parse(&buf) {
                Ok(Parsed::Reply(value, used)) => {
                    buf.advance(used);
                    let reply = match value {
                        Value::ServerError(e) => Err(e.into()),
                        value => Ok(value),
                    };
                    if let Err(e) = deliver(&generation, &mut current, reply) {
                        break 'read e;
                    }
                }
                Ok(Parsed::Incomplete(more)) => {
                    needed = more;
                    if buf.is_empty() && buf.capacity() > BUFFER_KEPT {
                        // A long reply passed: do not keep its room for the connection's life.
                        buf = BytesMut::with_capacity(BUFFER);
                    }
                    // Room for a long reply at once (bounded: the length comes from the wire).
                    buf.reserve(more.saturating_sub(buf.len()).min(1 << 20));
                    break;
                }
                Err(e) => break 'read io_error(io::ErrorKind::InvalidData, e.0),
            }
        }
    };
    if let Some((mut caller, _)) = current {
        caller.answer(Err(error.clone()));
    }
    generation.fail(&error);
    if generation.dead.load(Ordering::Acquire) {
        probe::abort(&read);
    }
}

/// Adds `reply` to the caller it answers and hands the caller its replies once all are in.
fn deliver(
    generation: &Generation,
    current: &mut Option<(Caller, Vec<RedisResult<Value>>)>,
    reply: RedisResult<Value>,
) -> RedisResult<()> {
    let (caller, replies) = match current {
        Some(current) => current,
        None => {
            let Some(caller) = lock(&generation.waiting).callers.pop_front() else {
                return Err(io_error(
                    io::ErrorKind::InvalidData,
                    "Redis sent a reply nobody asked for",
                ));
            };
            let replies = Vec::with_capacity(caller.count);
            current.insert((caller, replies))
        }
    };
    replies.push(reply);
    if replies.len() == caller.count
        && let Some((mut caller, replies)) = current.take()
    {
        caller.answer(Ok(replies));
    }
    Ok(())
}
