//! Invariant 3: locked increments neither lose an update nor count one twice (no two
//! acknowledged increments of one lineage return the same value), and no two requests hold one
//! session's lock at once within `lock_ttl` (the hold intervals the apps log never overlap,
//! whatever the requests were answered).

use std::collections::HashMap;

use serde_json::Value;

use super::{Anomaly, Checked, Facts, Hold};
use crate::history::Kind;

pub(super) fn check(
    facts: &Facts<'_>,
    holds: &[Hold],
    lock_ttl_us: u64,
    found: &mut Vec<Anomaly>,
    checked: &mut Checked,
) {
    // Lineage root -> value -> the increment that returned it.
    let mut returned: HashMap<&str, HashMap<i64, usize>> = HashMap::new();
    for op in facts
        .ops
        .iter()
        .filter(|op| op.outcome.ok() && op.kind == Kind::Incr)
    {
        let n = facts.body(op.id).get("n").and_then(Value::as_i64);
        let (Some(id), Some(n)) = (facts.landed(op), n) else {
            continue;
        };
        checked.increments += 1;
        let lineage = facts.lineage(id);
        let root = lineage[lineage.len() - 1];
        let seen = returned.entry(root).or_default();
        match seen.get(&n) {
            Some(&twin) => found.push(Anomaly {
                invariant: 3,
                what: format!("two acknowledged increments both returned {n}"),
                ops: vec![twin, op.id],
            }),
            None => {
                seen.insert(n, op.id);
            }
        }
    }
    // Locked id -> (from, to, op) of every hold the apps logged, whatever the answer was.
    let mut by_id: HashMap<&str, Vec<(u64, u64, usize)>> = HashMap::new();
    for hold in holds {
        let Some(op) = facts.writer(&hold.op) else {
            continue;
        };
        if let Some(id) = op.cookie_in.as_deref() {
            checked.holds += 1;
            by_id
                .entry(id)
                .or_default()
                .push((hold.from, hold.to, op.id));
        }
    }
    for list in by_id.values_mut() {
        list.sort_unstable();
        // The hold that reaches furthest so far: (from, to, op).
        let mut open: Option<(u64, u64, usize)> = None;
        for &(from, to, id) in list.iter() {
            if let Some((o_from, o_to, other)) = open {
                // Overlapping, while the earlier lock was younger than lock_ttl.
                if from < o_to && from < o_from + lock_ttl_us {
                    found.push(Anomaly {
                        invariant: 3,
                        what: format!(
                            "two requests held one session's lock at once ({:.1} ms apart)",
                            (from - o_from) as f64 / 1e3
                        ),
                        ops: vec![other, id],
                    });
                }
            }
            if open.is_none_or(|(_, o_to, _)| to > o_to) {
                open = Some((from, to, id));
            }
        }
    }
}
