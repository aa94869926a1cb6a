//! Auto-pipelining: the commands of concurrent requests leave for Redis in one write.
//!
//! Redis spends most of its CPU per request on reading sockets and parsing, not on running the
//! commands: measured here (bench/results), a client that sent each command in its own write cost
//! Redis 2-4x the CPU of one that batched, for the same commands. So each connection has a queue:
//! callers append their commands (already encoded) and wait for their replies. One writer task
//! per connection takes whatever is queued and sends it in one write; before taking, it yields
//! once on the multi-thread runtime, which runs a freshly woken task next (its LIFO slot), so
//! the writer would otherwise find one command each time. A reader task per open connection
//! reads the replies in order and hands each caller its own. Batches do not wait for each other:
//! the writer sends the next batch while the replies of the previous one are still on their way.
//! A call that finds its connection idle (no reply outstanding) while calls are not coming
//! together is written by its caller at once, without the hand-off to the writer: nothing could
//! be batched with it (see `Queue::write_inline`).
//!
//! The connection is ours (`link.rs`), not the `redis` crate's: its multiplexed connection put
//! a driver task, a channel and a response timer of its own between this queue and the socket,
//! and its reply parser cost more than the rest of a request's session work (issue 12's
//! profile). Commands come already encoded (`command.rs`) and replies are `redis::Value`s.
//!
//! Failures: a connection that fails (refused, reset, closed, a reply that is not RESP) fails
//! every caller waiting on it with an I/O error, and the next batch opens a new one. So does a
//! connection whose oldest reply is overdue while Redis answers on a new one (a dead flow,
//! `probe.rs`). A command is never split across connections: the rest of a call whose inline
//! write was cut short is written on that connection or not at all (its caller then gets the
//! connection's error), never at the head of a new one, where Redis would read the middle of a
//! command as a command of its own and every later reply would go to the wrong caller.
//!
//! Every write is flushed: over TLS, a write returns once rustls took the bytes, and the records
//! can stay in its buffer when the socket is full; unflushed, the tail of a batch would wait
//! for a later call on the connection to push it out. An inline write whose flush cannot finish
//! at once hands the flush to the writer, as it does the rest of a write.
//!
//! Timeouts: every call is answered within the pool's timeout. Rather than a timer per call
//! (registering and removing one cost about 1,700 instructions, 4 % of a session read), each
//! caller carries its deadline and the reader keeps one timer for its connection: when it
//! fires, the callers past their deadline get a timeout error, and it is set again for the
//! oldest caller still waiting (or a timeout from now). A connection attempt is bounded by the
//! earliest deadline of the batch it carries. A reply that comes after its caller gave up is
//! read and dropped, so the connection stays in step and keeps the order of commands.

mod probe;
mod reader;
#[cfg(test)]
mod tests;

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use redis::{RedisError, RedisResult};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::command::Command;
use super::link::{Endpoint, WriteHalf, io_error};
use super::pool::lock;
use reader::{Caller, Link, Replies, timed_out};

/// Commands waiting for the writer.
#[derive(Default)]
struct Queue {
    /// The queued commands, encoded, in order.
    bytes: Vec<u8>,
    callers: Vec<Caller>,
    /// A writer task runs (it resets this when it ends, also when its runtime drops it).
    writer: bool,
    /// The writer waits for commands: the next caller wakes it.
    writer_waker: Option<Waker>,
    /// The open connection, while the writer is not writing on it (it takes it out meanwhile).
    link: Option<Link>,
    /// A call whose inline write was cut short or not flushed: the rest of it is queued first.
    partial: Option<Partial>,
    /// The writer's last batch carried more than one call: calls come together, so a call
    /// waits to leave with others even when the connection is idle for a moment.
    batching: bool,
}

impl Queue {
    /// Writes the queued call at once, from the caller's task, when the connection is open and
    /// no reply is outstanding on it: nothing could be batched with it, and handing it to the
    /// writer would cost a task wake-up and poll (about 1,000 instructions). Not while calls come
    /// together (the writer's last batch carried several): under wrk, writing the calls that
    /// found the connection idle for a moment cost Redis 15% more read events per request.
    /// Returns `false` when the writer must take over (what could not be written stays queued,
    /// in order, ahead of later calls).
    fn write_inline(&mut self) -> bool {
        let Some(link) = self.link.as_mut() else {
            return false;
        };
        let Some(deadline) = self.callers.first().map(|caller| caller.deadline) else {
            return false;
        };
        if !link.generation.expect(&mut self.callers, true) {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        let mut written = 0;
        while written < self.bytes.len() {
            match Pin::new(&mut link.write).poll_write(&mut cx, &self.bytes[written..]) {
                Poll::Ready(Ok(n)) if n > 0 => written += n,
                Poll::Ready(result) => {
                    let error = result
                        .err()
                        .unwrap_or_else(|| io::ErrorKind::WriteZero.into());
                    return self.fail_inline(error);
                }
                Poll::Pending => break,
            }
        }
        self.bytes.drain(..written);
        if self.bytes.is_empty() {
            // A no-op on plain TCP; TLS may hold records when the socket is full.
            match Pin::new(&mut link.write).poll_flush(&mut cx) {
                Poll::Ready(Ok(())) => return true,
                Poll::Ready(Err(error)) => return self.fail_inline(error),
                Poll::Pending => {}
            }
        }
        self.partial = Some(Partial {
            len: self.bytes.len(),
            deadline,
        });
        false
    }

    /// An inline write failed: the call is the reader's now, and failing the connection
    /// answers it.
    fn fail_inline(&mut self, error: io::Error) -> bool {
        if let Some(link) = self.link.take() {
            link.generation.fail(&RedisError::from(error));
        }
        self.bytes.clear();
        true
    }
}

/// What is left of a call written inline: its first `len` bytes of the queue (possibly none, if
/// only the flush is left), to be written on the connection that took the rest, by `deadline`.
#[derive(Clone, Copy)]
struct Partial {
    len: usize,
    deadline: Instant,
}

struct Shared {
    endpoint: Arc<Endpoint>,
    queue: Mutex<Queue>,
    /// The [`Batcher`] was dropped: the writer ends and closes the connection.
    closed: AtomicBool,
}

/// One connection to Redis with a batching queue in front of it; connects on first use and
/// again after a failure.
pub(super) struct Batcher {
    shared: Arc<Shared>,
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        let writer = lock(&self.shared.queue).writer_waker.take();
        if let Some(writer) = writer {
            writer.wake();
        }
    }
}

impl Batcher {
    /// A queue for connections to `endpoint`; does no I/O.
    pub(super) fn new(endpoint: Endpoint) -> Arc<Self> {
        Arc::new(Self {
            shared: Arc::new(Shared {
                endpoint: Arc::new(endpoint),
                queue: Mutex::new(Queue::default()),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// Sends `commands` (in order, in the same write as other callers' commands) and returns one
    /// reply per command, within the pool's timeout. A server error of one command is that
    /// command's `Err`; a connection failure or the timeout is the outer `Err`.
    pub(super) async fn send(&self, commands: &[Command]) -> Replies {
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        let deadline = Instant::now() + self.shared.endpoint.timeout;
        let (tx, rx) = oneshot::channel();
        let (writer, start_writer) = {
            let mut queue = lock(&self.shared.queue);
            for command in commands {
                command.write_to(&mut queue.bytes);
            }
            queue.callers.push(Caller {
                count: commands.len(),
                deadline,
                tx: Some(tx),
            });
            if queue.callers.len() == 1 && !queue.batching && queue.write_inline() {
                (None, false)
            } else {
                // A waiting writer is woken once, by the caller that found the queue empty.
                let writer = queue.writer_waker.take();
                (writer, !std::mem::replace(&mut queue.writer, true))
            }
        };
        if start_writer {
            tokio::spawn(write_loop(Arc::clone(&self.shared)));
        } else if let Some(writer) = writer {
            writer.wake();
        }
        rx.await.map_err(|_| {
            io_error(
                io::ErrorKind::ConnectionAborted,
                "the connection carrying this command was closed",
            )
        })?
    }
}

/// Marks the writer gone when its task ends, however it ends, and fails what it left queued,
/// so that the next caller starts a new writer instead of waiting for a dead one.
struct WriterGuard(Arc<Shared>);

impl Drop for WriterGuard {
    fn drop(&mut self) {
        let mut queue = lock(&self.0.queue);
        queue.writer = false;
        queue.bytes.clear();
        queue.partial = None;
        queue.callers.clear();
        // Opened on the writer's runtime: useless once that is gone.
        queue.link = None;
    }
}

async fn write_loop(shared: Arc<Shared>) {
    let _guard = WriterGuard(Arc::clone(&shared));
    let mut bytes = Vec::new();
    let mut callers = Vec::new();
    // Let every task that is ready run first and queue its commands. The multi-thread runtime
    // runs a task woken by another one next (its LIFO slot), so the writer steps back once; the
    // current-thread runtime queues it behind the tasks already ready, and a yield there would
    // only cost a poll of the I/O driver (about 1,000 instructions per batch).
    let lifo = tokio::runtime::Handle::current().runtime_flavor()
        != tokio::runtime::RuntimeFlavor::CurrentThread;
    if lifo {
        tokio::task::yield_now().await;
    }
    loop {
        // The connection leaves the queue with the batch, so that no caller writes on it
        // inline meanwhile, and comes back after the write.
        let taken = {
            let mut queue = lock(&shared.queue);
            if queue.bytes.is_empty() && queue.partial.is_none() {
                None
            } else {
                std::mem::swap(&mut queue.bytes, &mut bytes);
                std::mem::swap(&mut queue.callers, &mut callers);
                queue.batching = callers.len() > 1;
                Some((queue.link.take(), queue.partial.take()))
            }
        };
        let Some((mut link, partial)) = taken else {
            if !commands_queued(&shared).await {
                return;
            }
            if lifo {
                tokio::task::yield_now().await;
            }
            continue;
        };
        let sent = send_batch(&shared, &mut link, &bytes, &mut callers, partial).await;
        if let Err(error) = sent {
            for mut caller in callers.drain(..) {
                caller.answer(Err(error.clone()));
            }
        }
        lock(&shared.queue).link = link;
        bytes.clear();
        if bytes.capacity() > reader::BUFFER_KEPT {
            // A long batch passed: do not keep its room for the connection's life.
            bytes = Vec::new();
        }
    }
}

/// Waits until the queue holds commands (`true`) or the batcher is closed (`false`). The waker
/// is kept in the queue, under the lock callers take anyway, rather than in a `Notify` with a
/// lock of its own.
async fn commands_queued(shared: &Shared) -> bool {
    std::future::poll_fn(|cx| {
        let mut queue = lock(&shared.queue);
        if shared.closed.load(Ordering::Acquire) {
            return Poll::Ready(false);
        }
        if !queue.bytes.is_empty() || queue.partial.is_some() {
            return Poll::Ready(true);
        }
        match &mut queue.writer_waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    })
    .await
}

/// Writes one batch, opening the connection first if there is none (or it failed). The callers
/// are handed to the reader before the write; they stay in `callers` only if the batch could
/// not be sent at all. `partial` is a call whose inline write (or flush) the batch finishes: on
/// its own connection only.
async fn send_batch(
    shared: &Shared,
    link: &mut Option<Link>,
    mut bytes: &[u8],
    callers: &mut Vec<Caller>,
    mut partial: Option<Partial>,
) -> RedisResult<()> {
    // No caller of this batch may wait past its deadline for the connection or the write.
    let first = (callers.first().map(|c| c.deadline).into_iter())
        .chain(partial.map(|p| p.deadline))
        .min()
        .unwrap_or_else(Instant::now);
    let mut attempts = 0;
    let sent = loop {
        if link.as_ref().is_some_and(Link::failed) {
            *link = None;
        }
        if link.is_none()
            && let Some(cut) = partial.take()
        {
            // The connection that took the head of this call failed, which answered the call
            // with an error: its rest must not start a new connection's stream (see the
            // module's comment). The later calls' commands, whole, may.
            bytes = &bytes[cut.len..];
            if bytes.is_empty() {
                return Ok(());
            }
        }
        let open = match link {
            Some(open) => open,
            None => {
                let opened = tokio::time::timeout_at(first, Link::open(&shared.endpoint)).await;
                link.insert(opened.map_err(|_| timed_out(shared.endpoint.timeout))??)
            }
        };
        if open.generation.expect(callers, false) {
            break write_by(&mut open.write, bytes, first).await;
        }
        // The connection failed after the check above: nothing of the batch was sent on it
        // (the head of a cut call was, and its rest is dropped above); try a new one once.
        attempts += 1;
        if attempts == 2 {
            return Err(io_error(
                io::ErrorKind::ConnectionReset,
                "the connection to Redis failed while sending",
            ));
        }
    };
    if let Err(e) = sent
        && let Some(failed) = link.take()
    {
        failed.generation.fail(&RedisError::from(e));
    }
    Ok(())
}

/// Writes and flushes `bytes`, failing with a timeout at `deadline`. A write almost always
/// completes at once (the socket's buffer has room), so the timer is only set when it does not.
async fn write_by(write: &mut WriteHalf, bytes: &[u8], deadline: Instant) -> io::Result<()> {
    let mut writing = std::pin::pin!(async {
        write.write_all(bytes).await?;
        write.flush().await
    });
    let at_once = std::future::poll_fn(|cx| Poll::Ready(writing.as_mut().poll(cx))).await;
    match at_once {
        Poll::Ready(written) => written,
        Poll::Pending => tokio::time::timeout_at(deadline, writing)
            .await
            .unwrap_or_else(|_| {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "Redis did not take the commands in time",
                ))
            }),
    }
}
