//! Invariant 5: a user's list of sessions never holds another user's session or one ended
//! before the listing started, and, once faults have stopped, holds every session a browser
//! of that user is signed in with.

use serde_json::Value;

use super::{Anomaly, Checked, Facts};
use crate::history::Kind;

pub(super) fn check(
    facts: &Facts<'_>,
    finals: &[usize],
    found: &mut Vec<Anomaly>,
    checked: &mut Checked,
) {
    for op in facts
        .ops
        .iter()
        .filter(|op| op.outcome.ok() && op.kind == Kind::List)
    {
        checked.lists += 1;
        let body = facts.body(op.id);
        let user = body.get("user").and_then(Value::as_str);
        if user != op.arg.as_deref() {
            found.push(Anomaly {
                invariant: 5,
                what: format!("a list for {:?} answered as {user:?}", op.arg),
                ops: vec![op.id],
            });
        }
        for tag in tags(body) {
            let Some(login) = facts.writer(tag).filter(|w| w.kind == Kind::Login) else {
                found.push(Anomaly {
                    invariant: 5,
                    what: format!("listed a session described {tag:?}, which no login made"),
                    ops: vec![op.id],
                });
                continue;
            };
            if login.arg != op.arg {
                found.push(Anomaly {
                    invariant: 5,
                    what: format!("{:?}'s list holds {:?}'s session", op.arg, login.arg),
                    ops: vec![login.id, op.id],
                });
            }
            let ended = facts
                .landed(login)
                .and_then(|id| facts.ended_before(id, op.start));
            if let Some(end) = ended {
                found.push(Anomaly {
                    invariant: 5,
                    what: format!("listed a session ended by #{end} before the listing"),
                    ops: vec![login.id, end, op.id],
                });
            }
        }
    }
    // After the faults: each browser's final read says which login it is signed in with; the
    // final list of its user must hold it.
    for &read in finals.iter().filter(|&&i| facts.ops[i].kind == Kind::Read) {
        let op = &facts.ops[read];
        let Some(tag) = facts.body(read).get("login").and_then(Value::as_str) else {
            continue;
        };
        let user = facts.body(read).get("user").and_then(Value::as_str);
        let list = finals.iter().copied().find(|&i| {
            let l = &facts.ops[i];
            l.kind == Kind::List && l.outcome.ok() && l.arg.as_deref() == user && l.start > op.end
        });
        let Some(list) = list else { continue };
        if !tags(facts.body(list)).any(|t| t == tag) {
            found.push(Anomaly {
                invariant: 5,
                what: format!("a session signed in as {user:?} is missing from its user's list"),
                ops: vec![read, list],
            });
        }
    }
}

/// The descriptions (login tags) of a list's sessions.
fn tags(body: &Value) -> impl Iterator<Item = &str> {
    body.get("sessions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("about").and_then(Value::as_str))
}
