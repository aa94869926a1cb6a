//! What the Cluster pool does when replies say that some commands of a call did not run where
//! they were sent: each such command, and only it, goes where Redis says, within the pool's
//! timeout; the replies of the commands that ran stay as they are.
//!
//! Why per command: during a slot migration Redis answers per key. A locked load pipelines
//! `SET lock NX` and `HGETALL session`; while the session is still on the source and the lock
//! key absent there, the source runs the `HGETALL` and answers `ASK` for the `SET` only.
//! Re-sending the whole pipeline to the target (as this pool once did) read the session where
//! it is not yet and logged the user out. Here the `SET` alone goes to the target after
//! `ASKING`, and the `HGETALL` reply from the source stays.
//!
//! - `MOVED host:port`: the slot belongs to that node now; the map is read again (from that
//!   node first) and the command is sent there.
//! - `ASK host:port`: this key is being migrated to that node; the command is sent there right
//!   after `ASKING`.
//! - `TRYAGAIN` (a script or multi-key command whose keys a migration has split between two
//!   nodes), `CLUSTERDOWN` (a Cluster still forming, or a failover under way), `MASTERDOWN`,
//!   `LOADING`: the command did not run and may run soon; it is sent again to the same place
//!   after a short pause (5 ms, doubling up to 50 ms), and the map is read again (at most
//!   every 100 ms) in case a failover moved the slot.
//!
//! Commands sent to one place go together, in their original order (a session's `HSET`,
//! `HDEL`, `PEXPIRE` stay in order). A session's later call cannot overtake a follow-up: its
//! caller waits for the follow-up first, and a call given up at the timeout is not followed up
//! at all (a lock request answered `ASK` after its caller left never takes the lock). The whole follow-up is bounded by the timeout: what still
//! has not run then fails the call with [`LinkError::Unavailable`] (a 503), never with a reply
//! read as "no session". A command whose connection failed is never re-sent (whether it ran is
//! unknown), as on the first send.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{RedisResult, Value};

use super::ClusterPool;
use super::map::{SlotMap, Target, unavailable};
use crate::LinkError;
use crate::batch::Batcher;
use crate::command::{Command, cmd};
use crate::pool::lock;

/// Error codes after which the command did not run and may run later where it was sent.
const RETRY_CODES: [&str; 4] = ["TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "LOADING"];
/// The first pause before a command is sent again, doubled each time up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_millis(50);
/// Rounds of redirections at most, whatever the timeout: a Cluster that keeps sending a call
/// around (`MOVED` back and forth) is reconfiguring, and the caller gets a 503 rather than a
/// loop.
const MAX_ROUNDS: usize = 64;
/// The least time a follow-up send is given even when the deadline is (almost) past: a
/// redirected read on loopback takes well under a millisecond.
const MIN_SEND: Duration = Duration::from_millis(50);

/// What a reply says about its command.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// It ran (its reply may still be an error of its own, e.g. `WRONGTYPE`).
    Done,
    /// It did not run: its slot is served by this node now.
    Moved((String, u16)),
    /// It did not run: its key is being migrated to this node.
    Ask((String, u16)),
    /// It did not run, and may run a little later where it was sent.
    Retry,
}

/// The [`Verdict`] of one reply.
pub(super) fn verdict(reply: &RedisResult<Value>) -> Verdict {
    let Err(e) = reply else {
        return Verdict::Done;
    };
    match e.code() {
        Some(code) if RETRY_CODES.contains(&code) => Verdict::Retry,
        Some(code @ ("MOVED" | "ASK")) => {
            let addr = e.redirect_node().and_then(|(to, _)| {
                let (host, port) = to.rsplit_once(':')?;
                Some((host.to_owned(), port.parse().ok()?))
            });
            match (code, addr) {
                ("MOVED", Some(addr)) => Verdict::Moved(addr),
                (_, Some(addr)) => Verdict::Ask(addr),
                // A redirection that names no node cannot be followed: it stays the reply.
                (_, None) => Verdict::Done,
            }
        }
        _ => Verdict::Done,
    }
}

/// Whether some command of a call did not run where it was sent (the only check on the path of
/// a call that needs no follow-up).
pub(super) fn unsettled(replies: &[RedisResult<Value>]) -> bool {
    replies
        .iter()
        .any(|reply| reply.is_err() && verdict(reply) != Verdict::Done)
}

/// Where a command goes next.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Hop {
    /// The master of the call's slot in the current map.
    Owner,
    /// This node (after a `MOVED`).
    Node((String, u16)),
    /// This node, right after `ASKING` (after an `ASK`).
    Asking((String, u16)),
}

impl ClusterPool {
    /// After the first send of `commands` to the master of `target` found replies in need of a
    /// follow-up: sends each command that did not run where its reply says, until every
    /// command has run or the timeout has passed (see the module docs).
    pub(super) async fn follow(
        &self,
        mut map: Arc<SlotMap>,
        n: usize,
        target: Target,
        commands: &[Command],
        mut replies: Vec<RedisResult<Value>>,
    ) -> Result<Vec<RedisResult<Value>>, LinkError> {
        let deadline = Instant::now() + self.timeout;
        let mut hops = vec![Hop::Owner; commands.len()];
        let mut backoff = FIRST_BACKOFF;
        for _ in 0..MAX_ROUNDS {
            let (mut moved_to, mut pause, mut pending) = (None, false, Vec::new());
            for (i, reply) in replies.iter().enumerate() {
                match verdict(reply) {
                    Verdict::Done => continue,
                    Verdict::Moved(to) => {
                        hops[i] = Hop::Node(to.clone());
                        moved_to = Some(to);
                    }
                    Verdict::Ask(to) => hops[i] = Hop::Asking(to),
                    Verdict::Retry => pause = true,
                }
                pending.push(i);
            }
            if pending.is_empty() {
                return Ok(replies);
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if let Some(to) = moved_to {
                map = self.reread(&map, to).await?;
            }
            if pause {
                // A failover may have moved the slot: read the map again (rate-limited).
                self.refresh(&map).await;
                map = lock(&self.map).clone().unwrap_or(map);
                tokio::time::sleep(backoff.min(deadline - now)).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            let mut groups: Vec<(&Hop, Vec<usize>)> = Vec::new();
            for i in pending {
                match groups.iter_mut().find(|(hop, _)| **hop == hops[i]) {
                    Some((_, indices)) => indices.push(i),
                    None => groups.push((&hops[i], vec![i])),
                }
            }
            for (hop, indices) in groups {
                let (conn, addr, asking) = match hop {
                    Hop::Owner => {
                        let (conn, addr) = map.conn(n, target, self.per_node)?;
                        (conn, addr, false)
                    }
                    Hop::Node(to) => (self.conn_to(&map, to, n), to.clone(), false),
                    Hop::Asking(to) => (self.conn_to(&map, to, n), to.clone(), true),
                };
                let batch: Vec<Command> = if asking {
                    (indices.iter())
                        .flat_map(|&i| [cmd("ASKING"), commands[i].clone()])
                        .collect()
                } else {
                    indices.iter().map(|&i| commands[i].clone()).collect()
                };
                let within = deadline.saturating_duration_since(Instant::now());
                let sent =
                    tokio::time::timeout(within.max(MIN_SEND), self.send(&conn, &addr, &batch))
                        .await
                        .map_err(|_| {
                            unavailable(&format!(
                                "node {}:{} did not answer a redirected call within {:?}",
                                addr.0, addr.1, self.timeout
                            ))
                        })??;
                // After `ASKING`, every other reply is `ASKING`'s own `OK`.
                let step = if asking { 2 } else { 1 };
                for (k, reply) in sent.into_iter().skip(step - 1).step_by(step).enumerate() {
                    if let Some(&i) = indices.get(k) {
                        replies[i] = reply;
                    }
                }
            }
        }
        let reason = replies
            .iter()
            .find_map(|r| r.as_ref().err().filter(|_| verdict(r) != Verdict::Done))
            .map_or_else(String::new, ToString::to_string);
        Err(unavailable(&format!(
            "a call still could not run after {:?} of redirections and retries: {reason}",
            self.timeout
        )))
    }

    /// The slot map again after it had no master for a slot (a Cluster still forming, or a
    /// node that answered `CLUSTER SLOTS` before it knew every slot): read anew until it has
    /// one, within the timeout. The reads are rate-limited ([`ClusterPool::refresh`]), so that
    /// calls for a slot that no master serves for good (a Cluster run with
    /// `cluster-require-full-coverage no`) do not flood the nodes with `CLUSTER SLOTS`.
    pub(super) async fn fill_hole(
        &self,
        mut map: Arc<SlotMap>,
        n: usize,
        target: Target,
    ) -> Result<(Arc<SlotMap>, Arc<Batcher>, (String, u16)), LinkError> {
        let deadline = Instant::now() + self.timeout;
        let mut backoff = FIRST_BACKOFF;
        loop {
            let now = Instant::now();
            tokio::time::sleep(backoff.min(deadline.saturating_duration_since(now))).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            self.refresh(&map).await;
            map = lock(&self.map).clone().unwrap_or(map);
            match map.conn(n, target, self.per_node) {
                Ok((conn, addr)) => return Ok((map, conn, addr)),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => {}
            }
        }
    }

    /// Connection `n` of the node at `addr`: one of the map's, or a new one for a node the map
    /// does not name (a master that serves no slot yet, the target of its first migration).
    fn conn_to(&self, map: &SlotMap, addr: &(String, u16), n: usize) -> Arc<Batcher> {
        match map.nodes.iter().find(|node| node.addr == *addr) {
            Some(node) => Arc::clone(&node.conns[n % node.conns.len()]),
            None => self.target.batcher(&addr.0, addr.1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> RedisResult<Value> {
        Err(redis::parse_redis_value(format!("-{text}\r\n").as_bytes())
            .and_then(|v| v.extract_error())
            .expect_err("an error reply"))
    }

    #[test]
    fn each_reply_says_whether_and_where_its_command_must_go_again() {
        assert_eq!(
            verdict(&error("MOVED 3999 127.0.0.1:6381")),
            Verdict::Moved(("127.0.0.1".to_owned(), 6381))
        );
        assert_eq!(
            verdict(&error("ASK 3999 127.0.0.1:6382")),
            Verdict::Ask(("127.0.0.1".to_owned(), 6382))
        );
        for code in RETRY_CODES {
            assert_eq!(verdict(&error(&format!("{code} not now"))), Verdict::Retry);
        }
        assert_eq!(verdict(&error("WRONGTYPE no")), Verdict::Done);
        assert_eq!(verdict(&Ok(Value::Nil)), Verdict::Done);
        // Only the redirected command needs a follow-up; the others' replies stay.
        assert!(unsettled(&[Ok(Value::Okay), error("ASK 1 127.0.0.1:1")]));
        assert!(!unsettled(&[Ok(Value::Okay), error("WRONGTYPE no")]));
    }
}
