//! Invariant 3: locked increments neither lose an update nor count one twice (no two
//! acknowledged increments of one lineage return the same value), and no two requests hold one
//! session's lock at once (the hold intervals the app reports never overlap).

use std::collections::HashMap;

use serde_json::Value;

use super::{Anomaly, Facts};
use crate::history::Kind;

pub(super) fn check(facts: &Facts<'_>, found: &mut Vec<Anomaly>) {
    // Lineage root -> value -> the increment that returned it.
    let mut returned: HashMap<&str, HashMap<i64, usize>> = HashMap::new();
    // Locked id -> (from, to, op) of each acknowledged locked request.
    let mut holds: HashMap<&str, Vec<(u64, u64, usize)>> = HashMap::new();
    for op in facts.ops.iter().filter(|op| op.outcome.ok()) {
        let body = facts.body(op.id);
        if op.kind == Kind::Incr {
            if let (Some(id), Some(n)) = (facts.landed(op), body.get("n").and_then(Value::as_i64)) {
                let lineage = facts.lineage(id);
                let root = lineage[lineage.len() - 1];
                if let Some(&twin) = returned.entry(root).or_default().get(&n) {
                    found.push(Anomaly {
                        invariant: 3,
                        what: format!("two acknowledged increments both returned {n}"),
                        ops: vec![twin, op.id],
                    });
                } else {
                    returned.entry(root).or_default().insert(n, op.id);
                }
            }
        }
        let hold = (
            body.get("from").and_then(Value::as_u64),
            body.get("to").and_then(Value::as_u64),
        );
        if let (true, Some(id), (Some(from), Some(to))) = (op.kind.locked(), &op.cookie_in, hold) {
            holds.entry(id).or_default().push((from, to, op.id));
        }
    }
    for list in holds.values_mut() {
        list.sort_unstable();
        let mut open: Option<(u64, usize)> = None;
        for &(from, to, id) in list.iter() {
            match open {
                Some((until, other)) if from < until => {
                    found.push(Anomaly {
                        invariant: 3,
                        what: "two requests held one session's lock at once".into(),
                        ops: vec![other, id],
                    });
                }
                _ => {}
            }
            if open.is_none_or(|(until, _)| to > until) {
                open = Some((to, id));
            }
        }
    }
}
