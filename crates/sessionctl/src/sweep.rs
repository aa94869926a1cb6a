//! `count` and `purge`: the commands that walk the whole keyspace of a pool, master by master.
//!
//! `count` asks Redis for hashes only (`SCAN ... TYPE hash`): tombstones and locks are strings
//! and are not sessions. `purge` takes every key of the session layout (hashes, tombstones,
//! locks), asks each one's type and `UNLINK`s it in the same pipeline, one batch per `SCAN`
//! page; `UNLINK` frees the memory in the background, so Redis stays responsive. On a Cluster,
//! each key is deleted on the master the scan found it on, one key per command (a multi-key
//! `UNLINK` would span slots).

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use redis::Value;
use serde_json::json;

use crate::error::{CtlError, CtlResult, code};
use crate::nodes::{Node, Nodes};
use crate::scan::{Progress, Scanner, Seen, purge_pattern, session_pattern};
use crate::{Context, Outcome};

/// `count`: live sessions on every master of the pool.
pub(crate) async fn count(ctx: &Context) -> CtlResult<Outcome> {
    let mut nodes = Nodes::connect(&ctx.pool).await?;
    let mut progress = Progress::new();
    let masters = nodes.masters.len();
    let mut seen = Seen::default();
    let (mut total, mut per_master) = (0u64, Vec::new());
    for (i, node) in nodes.masters.iter_mut().enumerate() {
        let mut scanner = Scanner::new(session_pattern(&ctx.pool.prefix), Some("hash"));
        let mut here = 0u64;
        while let Some(keys) = scanner.next(&mut node.conn, &node.addr).await? {
            here += keys.iter().filter(|k| seen.insert(k)).count() as u64;
            progress.update(|| {
                let so_far = total + here;
                format!("{so_far} sessions so far (master {}/{masters})", i + 1)
            });
        }
        total += here;
        per_master.push((node.addr.clone(), here));
    }
    progress.finish();
    let elapsed_ms = progress.elapsed().as_millis();
    let mut text = String::new();
    if nodes.is_cluster() {
        for (addr, n) in &per_master {
            text.push_str(&format!("{addr}\t{n}\n"));
        }
    }
    text.push_str(&format!(
        "pool {} (prefix {:?}): {total} live session{} on {} master{}, scanned in {:.2} s",
        ctx.pool_name,
        ctx.pool.prefix,
        plural(total),
        masters,
        plural(masters as u64),
        progress.elapsed().as_secs_f64()
    ));
    let json = json!({
        "command": "count",
        "pool": ctx.pool_name,
        "prefix": ctx.pool.prefix,
        "sessions": total,
        "masters": per_master.iter()
            .map(|(node, n)| json!({"node": node, "sessions": n}))
            .collect::<Vec<_>>(),
        "elapsed_ms": elapsed_ms,
    });
    Ok(Outcome {
        code: code::OK,
        text,
        json,
    })
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// What a purge found or deleted, by kind of key.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    sessions: u64,
    tombstones: u64,
    locks: u64,
    other: u64,
}

impl Tally {
    fn keys(&self) -> u64 {
        self.sessions + self.tombstones + self.locks + self.other
    }

    fn add(&mut self, key: &[u8], kind: &str) {
        match kind {
            "hash" => self.sessions += 1,
            "string" if key.ends_with(b"}:l") => self.locks += 1,
            "string" => self.tombstones += 1,
            _ => self.other += 1,
        }
    }

    fn describe(&self) -> String {
        let mut text = format!(
            "{} key{} ({} session{}, {} tombstone{}, {} lock{}",
            self.keys(),
            plural(self.keys()),
            self.sessions,
            plural(self.sessions),
            self.tombstones,
            plural(self.tombstones),
            self.locks,
            plural(self.locks)
        );
        if self.other > 0 {
            text.push_str(&format!(", {} other", self.other));
        }
        text.push(')');
        text
    }
}

/// `purge`: every key of the session layout under the pool's prefix.
pub(crate) async fn purge(ctx: &Context, dry_run: bool, yes: bool) -> CtlResult<Outcome> {
    let interactive = std::io::stdin().is_terminal();
    if !dry_run && !yes && !interactive {
        return Err(CtlError::NotConfirmed(
            "stdin is not a terminal: purge deletes nothing without --yes \
             (--dry-run counts what it would delete)"
                .into(),
        ));
    }
    let mut nodes = Nodes::connect(&ctx.pool).await?;
    let addrs: Vec<&str> = nodes.masters.iter().map(|n| n.addr.as_str()).collect();
    let place = format!(
        "prefix {:?} of pool {} ({})",
        ctx.pool.prefix,
        ctx.pool_name,
        addrs.join(", ")
    );
    if dry_run || !yes {
        let found = sweep(&mut nodes, &ctx.pool.prefix, false).await?;
        if dry_run || found.keys() == 0 {
            let text = if dry_run {
                format!(
                    "dry run: would delete {} under {place}; nothing deleted",
                    found.describe()
                )
            } else {
                format!("nothing to delete under {place}")
            };
            return Ok(report(ctx, dry_run, found, text));
        }
        // On a terminal (checked above): ask, showing what would go.
        eprint!(
            "Delete {} under {place}? Type yes to delete: ",
            found.describe()
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if answer.trim() != "yes" {
            return Err(CtlError::NotConfirmed(
                "purge cancelled: nothing was deleted".into(),
            ));
        }
    }
    let deleted = sweep(&mut nodes, &ctx.pool.prefix, true).await?;
    let text = format!("deleted {} under {place}", deleted.describe());
    Ok(report(ctx, false, deleted, text))
}

fn report(ctx: &Context, dry_run: bool, tally: Tally, text: String) -> Outcome {
    let json = json!({
        "command": "purge",
        "dry_run": dry_run,
        "pool": ctx.pool_name,
        "prefix": ctx.pool.prefix,
        "keys": tally.keys(),
        "sessions": tally.sessions,
        "tombstones": tally.tombstones,
        "locks": tally.locks,
        "other": tally.other,
    });
    Outcome {
        code: code::OK,
        text,
        json,
    }
}

/// Walks every master; with `delete`, unlinks each key found. Counts what was found (or
/// deleted: a key that vanished meanwhile, or was returned twice by `SCAN`, counts once).
async fn sweep(nodes: &mut Nodes, prefix: &str, delete: bool) -> CtlResult<Tally> {
    let mut progress = Progress::new();
    let mut tally = Tally::default();
    let mut seen = Seen::default();
    let verb = if delete { "deleted" } else { "found" };
    for node in &mut nodes.masters {
        let mut scanner = Scanner::new(purge_pattern(prefix), None);
        while let Some(keys) = scanner.next(&mut node.conn, &node.addr).await? {
            if keys.is_empty() {
                continue;
            }
            batch(node, &keys, delete, &mut tally, &mut seen).await?;
            progress.update(|| format!("{verb} {} keys on {}", tally.keys(), node.addr));
        }
    }
    progress.finish();
    Ok(tally)
}

/// One pipeline over a page of keys: `TYPE` of each, and `UNLINK` of each with `delete`.
async fn batch(
    node: &mut Node,
    keys: &[Vec<u8>],
    delete: bool,
    tally: &mut Tally,
    seen: &mut Seen,
) -> CtlResult<()> {
    let mut pipe = redis::pipe();
    for key in keys {
        pipe.cmd("TYPE").arg(key);
        if delete {
            pipe.cmd("UNLINK").arg(key);
        }
    }
    let what = if delete { "UNLINK" } else { "TYPE" };
    let replies: Vec<Value> = pipe
        .query_async(&mut node.conn)
        .await
        .map_err(|e| CtlError::redis(&format!("{what} on {}", node.addr), &e))?;
    let step = if delete { 2 } else { 1 };
    for (key, replies) in keys.iter().zip(replies.chunks(step)) {
        let kind = match replies.first() {
            Some(Value::SimpleString(s)) => s.as_str(),
            Some(Value::BulkString(b)) => std::str::from_utf8(b).unwrap_or("unknown"),
            _ => "unknown",
        };
        let counted = match (delete, replies.get(1)) {
            (true, Some(Value::Int(n))) => *n > 0,
            (true, _) => false,
            (false, _) => kind != "none" && seen.insert(key),
        };
        if counted {
            tally.add(key, kind);
        }
    }
    Ok(())
}
