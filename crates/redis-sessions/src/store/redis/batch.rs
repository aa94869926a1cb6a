//! Auto-pipelining: the commands of concurrent requests leave for Redis in one write.
//!
//! Redis spends most of its CPU per request on reading sockets and parsing, not on running the
//! commands: measured here (bench/results), a client that sent each command in its own write cost
//! Redis 2-4x the CPU of one that batched, for the same commands. The multiplexed connection of
//! redis-rs writes whatever is queued when its driver task runs, but tokio runs a freshly woken
//! task next (its LIFO slot), so under load the driver wakes once per command and batches
//! little. Here, the first command to find the queue empty spawns a flush that first yields, so
//! every other request that is ready to run gets to add its commands; the flush then sends them
//! all as one pipeline and hands each caller its own replies. Batches do not wait for each other:
//! a command arriving while a batch is in flight starts the next batch at once.

use std::sync::{Arc, Mutex, PoisonError};

use redis::aio::ConnectionManager;
use redis::{Cmd, RedisError, RedisResult, Value};
use tokio::sync::oneshot;

type Replies = RedisResult<Vec<RedisResult<Value>>>;

#[derive(Default)]
struct Queue {
    commands: Vec<Cmd>,
    /// Each caller's number of commands, in queue order, and where its replies go.
    callers: Vec<(usize, oneshot::Sender<Replies>)>,
    flush_scheduled: bool,
}

/// One multiplexed connection with a batching queue in front of it.
pub(super) struct Batcher {
    conn: ConnectionManager,
    queue: Mutex<Queue>,
}

impl Batcher {
    pub(super) fn new(conn: ConnectionManager) -> Arc<Self> {
        Arc::new(Self {
            conn,
            queue: Mutex::new(Queue::default()),
        })
    }

    /// Sends `commands` (in order, in the same write as other callers' commands) and returns one
    /// reply per command. A server error of one command is that command's `Err`; a connection
    /// failure is the outer `Err`.
    pub(super) async fn send(self: &Arc<Self>, commands: Vec<Cmd>) -> Replies {
        let (tx, rx) = oneshot::channel();
        let schedule = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.callers.push((commands.len(), tx));
            queue.commands.extend(commands);
            !std::mem::replace(&mut queue.flush_scheduled, true)
        };
        if schedule {
            tokio::spawn(Arc::clone(self).flush());
        }
        rx.await.map_err(|_| {
            RedisError::from((
                redis::ErrorKind::Io,
                "the batch carrying this command was dropped",
            ))
        })?
    }

    async fn flush(self: Arc<Self>) {
        // Let every task that is ready run first and queue its commands.
        tokio::task::yield_now().await;
        let (commands, callers) = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.flush_scheduled = false;
            (
                std::mem::take(&mut queue.commands),
                std::mem::take(&mut queue.callers),
            )
        };
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for command in commands {
            pipe.add_command(command);
        }
        let mut conn = self.conn.clone();
        match pipe.query_async::<Vec<RedisResult<Value>>>(&mut conn).await {
            Ok(replies) => {
                let mut replies = replies.into_iter();
                for (count, tx) in callers {
                    let _ = tx.send(Ok(replies.by_ref().take(count).collect()));
                }
            }
            Err(error) => {
                for (_, tx) in callers {
                    let _ = tx.send(Err(error.clone()));
                }
            }
        }
    }
}
