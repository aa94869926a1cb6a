//! Invariants 1, 2 and 4 on the session data: an acknowledged write is seen by every later read
//! of its session (or of the session a login rotated it into); an ended id takes no write and
//! reads nothing; a read never shows a value written to another session.

use serde_json::Value;

use super::{Anomaly, Checked, Facts};
use crate::app::KEYS;
use crate::history::{CookieOut, Kind, Op};

/// The values a read returned: (key, value), the login tag under the key `login`.
fn values(body: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(keys) = body.get("keys").and_then(Value::as_object) {
        for (k, v) in keys {
            if let Some(v) = v.as_str() {
                out.push((k.clone(), v.to_owned()));
            }
        }
    }
    if let Some(tag) = body.get("login").and_then(Value::as_str) {
        out.push(("login".into(), tag.to_owned()));
    }
    out
}

/// Whether a read returned anything at all (a value, the counter, a login, a user).
fn holds_data(body: &Value) -> bool {
    !values(body).is_empty()
        || body.get("n").is_some_and(|n| !n.is_null())
        || body.get("user").is_some_and(|u| !u.is_null())
}

pub(super) fn check(facts: &Facts<'_>, found: &mut Vec<Anomaly>, checked: &mut Checked) {
    for op in facts.ops {
        if !op.outcome.ok() {
            continue;
        }
        match op.kind {
            Kind::Read => {
                ended_reads_nothing(facts, op, found);
                no_foreign_values(facts, op, found);
                writes_visible(facts, op, found, checked);
            }
            Kind::Put | Kind::Incr | Kind::Login => {
                ended_takes_no_write(facts, op, found);
                no_silent_new_session(facts, op, found);
            }
            _ => {}
        }
    }
}

/// Invariant 2, writes: nothing is answered `2xx` on an id ended before the request started.
fn ended_takes_no_write(facts: &Facts<'_>, op: &Op, found: &mut Vec<Anomaly>) {
    let Some(id) = op.cookie_in.as_deref() else {
        return;
    };
    if op.kind != Kind::Login && facts.landed(op) != Some(id) {
        return; // a new session, not a write to the ended one
    }
    if let Some(end) = facts.ended_before(id, op.start) {
        found.push(Anomaly {
            invariant: 2,
            what: format!(
                "{} answered 2xx on an id ended by #{end} before it started",
                op.kind.name()
            ),
            ops: vec![end, op.id],
        });
    }
}

/// Invariant 1, the session itself: a write sent with a live id is answered in that session, not
/// in a new one (only a login gives a new id to a live session): a browser given a new, empty
/// session has lost every write of the old one (a user logged out by the library).
fn no_silent_new_session(facts: &Facts<'_>, op: &Op, found: &mut Vec<Anomaly>) {
    let (Some(id), CookieOut::Set(new)) = (op.cookie_in.as_deref(), &op.cookie_out) else {
        return;
    };
    if op.kind == Kind::Login || new == id || facts.maybe_ended_before(id, op.end).is_some() {
        return;
    }
    let mut ops: Vec<usize> = facts.made(id).into_iter().collect();
    ops.push(op.id);
    found.push(Anomaly {
        invariant: 1,
        what: format!(
            "{} sent with a live id was answered in a new session: the old one's writes are \
             lost to the browser",
            op.kind.name()
        ),
        ops,
    });
}

/// Invariant 2, reads: an ended id never reads data again.
fn ended_reads_nothing(facts: &Facts<'_>, op: &Op, found: &mut Vec<Anomaly>) {
    let Some(id) = op.cookie_in.as_deref() else {
        return;
    };
    let Some(end) = facts.ended_before(id, op.start) else {
        return;
    };
    if holds_data(facts.body(op.id)) {
        found.push(Anomaly {
            invariant: 2,
            what: format!("a read of an id ended by #{end} returned data"),
            ops: vec![end, op.id],
        });
    }
}

/// Invariant 4: every value read was written to this session (or to one it was rotated from),
/// by this browser.
fn no_foreign_values(facts: &Facts<'_>, op: &Op, found: &mut Vec<Anomaly>) {
    let lineage = op.session().map(|id| facts.lineage(id)).unwrap_or_default();
    for (key, value) in values(facts.body(op.id)) {
        let Some(writer) = facts.writer(&value) else {
            found.push(Anomaly {
                invariant: 4,
                what: format!("read {key}={value}, which no request wrote"),
                ops: vec![op.id],
            });
            continue;
        };
        let landed = facts.landed(writer);
        let ours = writer.browser == op.browser && landed.is_some_and(|s| lineage.contains(&s));
        if !ours {
            found.push(Anomaly {
                invariant: 4,
                what: format!(
                    "read {key}={value}, written by #{} to another session",
                    writer.id
                ),
                ops: vec![writer.id, op.id],
            });
        }
    }
}

/// Invariant 1 (and 3's reads): for each key, the value read is the last acknowledged write
/// that ended before the read started, or one that may have come after it; the counter read is
/// at least the acknowledged increments that ended before and at most all that started before
/// the read ended. Skipped when the id may have been ended before the read ended.
fn writes_visible(facts: &Facts<'_>, op: &Op, found: &mut Vec<Anomaly>, checked: &mut Checked) {
    let Some(id) = op.cookie_in.as_deref() else {
        return;
    };
    if facts.maybe_ended_before(id, op.end).is_some() {
        return;
    }
    checked.reads += 1;
    let lineage = facts.lineage(id);
    let body = facts.body(op.id);
    let read = values(body);
    for key in KEYS.iter().copied().chain(["login"]) {
        // The acknowledged write of `key` that started last among those done before the read.
        let last = facts
            .writes_in(&lineage)
            .filter(|w| w.outcome.ok() && w.end < op.start)
            .filter(|w| match w.kind {
                Kind::Put => w.arg.as_deref() == Some(key),
                Kind::Login => key == "login",
                _ => false,
            })
            .max_by_key(|w| w.start);
        let Some(last) = last else { continue };
        checked.values += 1;
        match read.iter().find(|(k, _)| k == key) {
            None => found.push(Anomaly {
                invariant: 1,
                what: format!(
                    "{key} missing, acknowledged by #{} before the read",
                    last.id
                ),
                ops: vec![last.id, op.id],
            }),
            Some((_, value)) => {
                if let Some(seen) = facts.writer(value).filter(|w| w.end < last.start) {
                    found.push(Anomaly {
                        invariant: 1,
                        what: format!(
                            "{key} read as #{}'s value, overwritten by #{} before the read",
                            seen.id, last.id
                        ),
                        ops: vec![seen.id, last.id, op.id],
                    });
                }
            }
        }
    }
    let n = body.get("n").and_then(Value::as_i64).unwrap_or(0);
    let incrs = || facts.writes_in(&lineage).filter(|w| w.kind == Kind::Incr);
    let done: Vec<&Op> = incrs()
        .filter(|w| w.outcome.ok() && w.end < op.start)
        .collect();
    let begun = incrs()
        .filter(|w| !w.outcome.refused() && w.start < op.end)
        .count();
    let done_n = i64::try_from(done.len()).unwrap_or(i64::MAX);
    if n < done_n {
        let mut ops: Vec<usize> = done.iter().map(|w| w.id).collect();
        ops.push(op.id);
        found.push(Anomaly {
            invariant: 3,
            what: format!("counter read {n}, but {done_n} increments were acknowledged before"),
            ops,
        });
    } else if n > i64::try_from(begun).unwrap_or(i64::MAX) {
        found.push(Anomaly {
            invariant: 3,
            what: format!("counter read {n}, but only {begun} increments had started"),
            ops: vec![op.id],
        });
    }
}
