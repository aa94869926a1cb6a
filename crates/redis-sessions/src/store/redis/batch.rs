//! Auto-pipelining: the commands of concurrent requests leave for Redis in one write.
//!
//! Redis spends most of its CPU per request on reading sockets and parsing, not on running the
//! commands: measured here (bench/results), a client that sent each command in its own write cost
//! Redis 2-4x the CPU of one that batched, for the same commands. So each connection has a queue:
//! callers append their commands (already encoded) and wait for their replies. One writer task
//! per connection takes whatever is queued and sends it in one write; before taking, it yields
//! once, because tokio runs a freshly woken task next (its LIFO slot) and would otherwise find
//! one command each time. A reader task per open connection reads the replies in order and
//! hands each caller its own. Batches do not wait for each other: the writer sends the next
//! batch while the replies of the previous one are still on their way.
//!
//! The connection is ours (`link.rs`), not the `redis` crate's: its multiplexed connection put
//! a driver task, a channel and a response timer of its own between this queue and the socket,
//! and its reply parser cost more than the rest of a request's session work (issue 12's
//! profile). Commands are still `redis::Cmd`s and replies `redis::Value`s, so nothing above
//! this module changed.
//!
//! Failures: a connection that fails (refused, reset, closed, a reply that is not RESP) fails
//! every caller waiting on it with an I/O error, and the next batch opens a new one. Callers
//! bound their wait themselves (the pool's timeout); a reply that comes after a caller gave up
//! is read and dropped, so the connection stays in step and keeps the order of commands.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::{Buf, BytesMut};
use redis::{Cmd, RedisError, RedisResult, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{Notify, oneshot};

use super::link::{Endpoint, Stream, io_error};
use super::resp::{Parsed, parse};

type Replies = RedisResult<Vec<RedisResult<Value>>>;

/// A caller waiting for `count` replies.
struct Caller {
    count: usize,
    tx: oneshot::Sender<Replies>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Commands waiting for the writer.
#[derive(Default)]
struct Queue {
    /// The queued commands, encoded, in order.
    bytes: Vec<u8>,
    callers: Vec<Caller>,
    /// A writer task runs (it resets this when it ends, also when its runtime drops it).
    writer: bool,
}

struct Shared {
    endpoint: Endpoint,
    queue: Mutex<Queue>,
    /// Wakes the writer: new commands in an empty queue, or the connection is closed.
    wake: Notify,
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
        self.shared.wake.notify_one();
    }
}

impl Batcher {
    /// A queue for connections to `endpoint`; does no I/O.
    pub(super) fn new(endpoint: Endpoint) -> Arc<Self> {
        Arc::new(Self {
            shared: Arc::new(Shared {
                endpoint,
                queue: Mutex::new(Queue::default()),
                wake: Notify::new(),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// Sends `commands` (in order, in the same write as other callers' commands) and returns one
    /// reply per command. A server error of one command is that command's `Err`; a connection
    /// failure is the outer `Err`.
    pub(super) async fn send(&self, commands: Vec<Cmd>) -> Replies {
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        let (tx, rx) = oneshot::channel();
        let (was_empty, start_writer) = {
            let mut queue = lock(&self.shared.queue);
            for command in &commands {
                command.write_packed_command(&mut queue.bytes);
            }
            let was_empty = queue.callers.is_empty();
            queue.callers.push(Caller {
                count: commands.len(),
                tx,
            });
            (was_empty, !std::mem::replace(&mut queue.writer, true))
        };
        if start_writer {
            tokio::spawn(write_loop(Arc::clone(&self.shared)));
        } else if was_empty {
            self.shared.wake.notify_one();
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
        queue.callers.clear();
    }
}

async fn write_loop(shared: Arc<Shared>) {
    let _guard = WriterGuard(Arc::clone(&shared));
    let mut link: Option<Link> = None;
    let mut bytes = Vec::new();
    let mut callers = Vec::new();
    // Let every task that is ready run first and queue its commands.
    tokio::task::yield_now().await;
    loop {
        {
            let mut queue = lock(&shared.queue);
            std::mem::swap(&mut queue.bytes, &mut bytes);
            std::mem::swap(&mut queue.callers, &mut callers);
        }
        if callers.is_empty() {
            if shared.closed.load(Ordering::Acquire) {
                return;
            }
            shared.wake.notified().await;
            if shared.closed.load(Ordering::Acquire) {
                return;
            }
            tokio::task::yield_now().await;
            continue;
        }
        if let Err(error) = send_batch(&shared, &mut link, &bytes, &mut callers).await {
            for caller in callers.drain(..) {
                let _ = caller.tx.send(Err(error.clone()));
            }
        }
        bytes.clear();
    }
}

/// Writes one batch, opening the connection first if there is none (or it failed). The callers
/// are handed to the reader before the write; they stay in `callers` only if the batch could
/// not be sent at all.
async fn send_batch(
    shared: &Shared,
    link: &mut Option<Link>,
    bytes: &[u8],
    callers: &mut Vec<Caller>,
) -> RedisResult<()> {
    let mut attempts = 0;
    let sent = loop {
        if link.as_ref().is_none_or(Link::failed) {
            *link = None;
            *link = Some(Link::open(&shared.endpoint).await?);
        }
        let Some(open) = link.as_mut() else {
            unreachable!("opened above");
        };
        if open.generation.expect(callers) {
            break open.write.write_all(bytes).await;
        }
        // The connection failed after the check above: nothing was sent, try a new one once.
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

/// One open connection: its write half (the writer's) and what it shares with its reader.
struct Link {
    write: WriteHalf<Stream>,
    generation: Arc<Generation>,
}

impl Link {
    async fn open(endpoint: &Endpoint) -> RedisResult<Self> {
        let stream = endpoint.open().await?;
        let (read, write) = tokio::io::split(stream);
        let generation = Arc::new(Generation {
            waiting: Mutex::new(Waiting::default()),
            stop: Notify::new(),
        });
        tokio::spawn(read_loop(Arc::clone(&generation), read));
        Ok(Self { write, generation })
    }

    fn failed(&self) -> bool {
        lock(&self.generation.waiting).failed
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.generation.stop.notify_one();
    }
}

/// Between the writer and the reader of one connection.
struct Generation {
    waiting: Mutex<Waiting>,
    /// Tells the reader to stop: the writer dropped the connection.
    stop: Notify,
}

#[derive(Default)]
struct Waiting {
    /// Callers whose commands were sent, in order.
    callers: VecDeque<Caller>,
    /// The connection failed: no more callers are accepted.
    failed: bool,
}

impl Generation {
    /// Takes over `callers` (emptying it) unless the connection failed.
    fn expect(&self, callers: &mut Vec<Caller>) -> bool {
        let mut waiting = lock(&self.waiting);
        if waiting.failed {
            return false;
        }
        waiting.callers.extend(callers.drain(..));
        true
    }

    /// Fails every waiting caller with `error` and refuses new ones.
    fn fail(&self, error: &RedisError) {
        let callers = {
            let mut waiting = lock(&self.waiting);
            waiting.failed = true;
            std::mem::take(&mut waiting.callers)
        };
        for caller in callers {
            let _ = caller.tx.send(Err(error.clone()));
        }
        self.stop.notify_one();
    }
}

/// Reads replies until the connection fails or the writer drops it, handing them out in order.
async fn read_loop(generation: Arc<Generation>, mut read: ReadHalf<Stream>) {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut current: Option<(Caller, Vec<RedisResult<Value>>)> = None;
    let mut needed = 0;
    let stop = generation.stop.notified();
    tokio::pin!(stop);
    let error = 'read: loop {
        let read = tokio::select! {
            biased;
            () = &mut stop => break io_error(io::ErrorKind::ConnectionAborted, "the connection was closed"),
            read = read.read_buf(&mut buf) => read,
        };
        match read {
            Ok(0) => {
                break io_error(io::ErrorKind::UnexpectedEof, "Redis closed the connection");
            }
            Ok(_) if buf.len() < needed => continue,
            Ok(_) => {}
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
                    // Room for a long reply at once (bounded: the length comes from the wire).
                    buf.reserve(more.saturating_sub(buf.len()).min(1 << 20));
                    break;
                }
                Err(e) => break 'read io_error(io::ErrorKind::InvalidData, e.0),
            }
        }
    };
    if let Some((caller, _)) = current {
        let _ = caller.tx.send(Err(error.clone()));
    }
    generation.fail(&error);
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
        && let Some((caller, replies)) = current.take()
    {
        let _ = caller.tx.send(Ok(replies));
    }
    Ok(())
}
