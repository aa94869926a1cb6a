//! The sentinels' `+switch-master` announcements, followed at once: a background task keeps a
//! Pub/Sub subscription on every sentinel (each renewed 0.5 s after a failure) and, when one
//! announces a new master for this pool's name, moves every slot still on another address to
//! it. Why: a master that stalled past `down-after-milliseconds` is failed
//! over while it sleeps and answers stale reads when it wakes (see the module above); a call
//! that fails still moves its own slot as before, this only moves them sooner.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::StreamExt;

use super::{Current, Shared};
use crate::pool::lock;

/// How long the watcher waits before subscribing again after its subscription failed.
const RESUBSCRIBE_AFTER: Duration = Duration::from_millis(500);

/// The background task, started on the pool's first call and aborted when the pool is dropped.
#[derive(Default)]
pub(super) struct Watcher(Mutex<Option<tokio::task::AbortHandle>>);

impl Watcher {
    /// Starts the task (once) on the current tokio runtime.
    pub(super) fn start(&self, shared: &Arc<Shared>) {
        let mut task = lock(&self.0);
        if task.is_none() {
            let shared = Arc::downgrade(shared);
            *task = Some(tokio::spawn(watch(shared)).abort_handle());
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.0).take() {
            task.abort();
        }
    }
}

/// Subscribes to every sentinel at once (an announcement may reach some sentinels' subscribers
/// seconds before others': a sentinel that learns of the failover from its peers' hello
/// messages may not announce it at all), each again after a failure, until the pool is gone.
async fn watch(shared: Weak<Shared>) {
    let Some(pool) = shared.upgrade() else { return };
    let (sentinels, master, timeout) = (pool.sentinels.clone(), pool.master.clone(), pool.timeout);
    drop(pool);
    let each = sentinels.iter().map(|sentinel| {
        let (shared, master) = (shared.clone(), master.clone());
        async move {
            while shared.strong_count() > 0 {
                if let Err(e) = listen(sentinel, &master, timeout, &shared).await {
                    tracing::debug!(
                        "Redis Sentinel {}: announcements of {master} not followed ({e})",
                        sentinel.get_connection_info().addr()
                    );
                }
                tokio::time::sleep(RESUBSCRIBE_AFTER).await;
            }
        }
    });
    futures_util::future::join_all(each).await;
}

/// Follows one sentinel's `+switch-master` messages until its connection fails.
async fn listen(
    sentinel: &redis::Client,
    master: &str,
    timeout: Duration,
    shared: &Weak<Shared>,
) -> Result<(), String> {
    let subscribe = async {
        let mut pubsub = sentinel.get_async_pubsub().await?;
        pubsub.subscribe("+switch-master").await?;
        redis::RedisResult::Ok(pubsub)
    };
    let pubsub = tokio::time::timeout(timeout, subscribe)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
        .map_err(|e| e.to_string())?;
    let mut messages = pubsub.into_on_message();
    while let Some(message) = messages.next().await {
        let Ok(text) = message.get_payload::<String>() else {
            continue;
        };
        // `<name> <old-ip> <old-port> <new-ip> <new-port>`
        let parts: Vec<&str> = text.split(' ').collect();
        let [name, _, _, host, port] = parts[..] else {
            continue;
        };
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        if name != master {
            continue;
        }
        let Some(pool) = shared.upgrade() else {
            return Ok(());
        };
        pool.move_all(&(host.to_owned(), port));
    }
    Err("the subscription ended".into())
}

impl Shared {
    /// Moves every slot not on `addr` to it (a new connection there on its next call).
    fn move_all(&self, addr: &(String, u16)) {
        let mut moved = 0;
        for slot in &self.slots {
            let mut current = lock(&slot.current);
            if current.as_ref().is_some_and(|c| c.addr != *addr) {
                let batcher = self.target.batcher(&addr.0, addr.1);
                *current = Some(Current {
                    addr: addr.clone(),
                    batcher,
                });
                moved += 1;
            }
        }
        if moved > 0 {
            tracing::warn!(
                "Redis master {} moved to {}:{} (announced by the sentinels); {moved} \
                 connection(s) follow",
                self.master,
                addr.0,
                addr.1
            );
        }
    }
}
