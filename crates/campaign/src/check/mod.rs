//! The history checker: reads the recorded operations and reports every place where they
//! contradict a promise of the library (the seven invariants of issue 21). It only flags what
//! is certainly wrong: where an unanswered request (a `503`, a timeout) could explain what was
//! seen, the request is taken as having happened or not, whichever makes the history legal.

mod answers;
mod counter;
mod data;
mod facts;
mod users;

pub use facts::Facts;

use crate::history::Op;

/// One broken promise, with the operations that show it (the shortest history found).
#[derive(Debug, Clone)]
pub struct Anomaly {
    /// The invariant's number in issue 21 (1 to 7).
    pub invariant: u8,
    /// What is wrong, in words.
    pub what: String,
    /// The operations that show it, by index into the history.
    pub ops: Vec<usize>,
}

/// How much the checker compared (so that a clean run is seen to have checked something).
#[derive(Debug, Clone, Copy, Default)]
pub struct Checked {
    /// Reads whose every key was compared with the acknowledged writes before them.
    pub reads: usize,
    /// Keys compared in those reads (values and the login tag) that had an acknowledged write.
    pub values: usize,
    /// Lock holds compared with the other holds of their session.
    pub holds: usize,
    /// Acknowledged increments whose value was checked for a twin.
    pub increments: usize,
    /// Users' lists whose every entry was checked.
    pub lists: usize,
}

/// The invariants' short names, by number (index 0 unused).
pub const INVARIANTS: [&str; 8] = [
    "",
    "1 acknowledged writes visible",
    "2 ended ids stay ended",
    "3 locked increments exact, lock exclusive",
    "4 no value of another session",
    "5 users' lists exact",
    "6 every request answered in time",
    "7 recovery after faults stop",
];

/// One hold of a session's lock, as the app logged it: the request's token (the `value` of its
/// operation) and the wall-clock microseconds its handler started and ended under the lock.
#[derive(Debug, Clone)]
pub struct Hold {
    /// The request's token.
    pub op: String,
    /// When its handler started (the lock was taken before).
    pub from: u64,
    /// When its handler ended (the lock is released after).
    pub to: u64,
}

impl Hold {
    /// Parses the lines of an app's holds file (`<op> <from> <to>`); skips malformed ones (a
    /// line cut by a kill).
    pub fn parse(text: &str) -> Vec<Hold> {
        text.lines()
            .filter_map(|line| {
                let mut parts = line.split(' ');
                let op = parts.next()?.to_owned();
                let from = parts.next()?.parse().ok()?;
                let to = parts.next()?.parse().ok()?;
                Some(Hold { op, from, to })
            })
            .collect()
    }
}

/// The limits the answers are checked against.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest answer of a request without the lock, microseconds (`timeout` + 1 s).
    pub unlocked_us: u64,
    /// Longest answer of a locked request, microseconds (`lock_wait` + `timeout` + 1 s).
    pub locked_us: u64,
    /// When the last fault was healed (microseconds), if the run got that far.
    pub healed_at: Option<u64>,
    /// How long after `healed_at` every request must succeed again, microseconds.
    pub recovery_us: u64,
    /// The session's `lock_ttl`, microseconds: within it, a lock is its holder's alone.
    pub lock_ttl_us: u64,
    /// App restarts, as (down from, up at) in microseconds: requests refused then are expected.
    pub app_down: Vec<(u64, u64)>,
}

/// Checks `ops` (every request of the run, the final reads and lists included, with the ids of
/// those final ones in `finals`) and the apps' log of lock holds, and returns the anomalies
/// found.
pub fn check(
    ops: &[Op],
    finals: &[usize],
    holds: &[Hold],
    limits: &Limits,
) -> (Vec<Anomaly>, Checked) {
    let facts = Facts::new(ops);
    let (mut found, mut checked) = (Vec::new(), Checked::default());
    data::check(&facts, &mut found, &mut checked);
    counter::check(&facts, holds, limits.lock_ttl_us, &mut found, &mut checked);
    users::check(&facts, finals, &mut found, &mut checked);
    answers::check(&facts, limits, &mut found);
    (found, checked)
}

#[cfg(test)]
mod tests;
