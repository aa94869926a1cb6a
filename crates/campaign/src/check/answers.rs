//! Invariants 6 and 7: every request is answered with `2xx`, `409` or `503` (`401` where a
//! signed-in user is needed) within its bound, the app is reachable except while an instance
//! restarts, and once the faults are healed every request succeeds again within the stated
//! time.

use super::{Anomaly, Facts, Limits};
use crate::history::{Kind, Outcome};

/// Slack around an app restart within which a refused connection is expected (the client may
/// have connected just before the kill, or just after the new process listened).
const RESTART_SLACK_US: u64 = 1_000_000;

pub(super) fn check(facts: &Facts<'_>, limits: &Limits, found: &mut Vec<Anomaly>) {
    for op in facts.ops {
        let bound = if op.kind.locked() {
            limits.locked_us
        } else {
            limits.unlocked_us
        };
        let took = op.end.saturating_sub(op.start);
        let restarting = limits.app_down.iter().any(|&(from, to)| {
            op.end + RESTART_SLACK_US >= from && op.start <= to + RESTART_SLACK_US
        });
        let problem = match &op.outcome {
            Outcome::Status(200 | 409 | 503) => None,
            Outcome::Status(401) if matches!(op.kind, Kind::List | Kind::RevokeOthers) => None,
            Outcome::Status(s) => Some(format!("answered {s}")),
            Outcome::Timeout => Some(format!("no answer within {:.1} s", took as f64 / 1e6)),
            Outcome::Unreachable(_) | Outcome::Cut(_) if restarting => None,
            Outcome::Unreachable(why) | Outcome::Cut(why) => {
                Some(format!("app unreachable, no restart: {why}"))
            }
        };
        if let Some(what) = problem {
            found.push(Anomaly {
                invariant: 6,
                what,
                ops: vec![op.id],
            });
        } else if took > bound && !matches!(op.outcome, Outcome::Unreachable(_) | Outcome::Cut(_)) {
            found.push(Anomaly {
                invariant: 6,
                what: format!(
                    "answered {} after {:.2} s, over the bound of {:.2} s",
                    op.outcome.label(),
                    took as f64 / 1e6,
                    bound as f64 / 1e6
                ),
                ops: vec![op.id],
            });
        }
        let Some(healed) = limits.healed_at else {
            continue;
        };
        let failed = matches!(op.outcome, Outcome::Status(503) | Outcome::Timeout)
            || (matches!(op.outcome, Outcome::Unreachable(_) | Outcome::Cut(_)) && !restarting);
        if failed && op.start > healed + limits.recovery_us {
            found.push(Anomaly {
                invariant: 7,
                what: format!(
                    "{} failed ({}) {:.1} s after the faults were healed",
                    op.kind.name(),
                    op.outcome.label(),
                    (op.start - healed) as f64 / 1e6
                ),
                ops: vec![op.id],
            });
        }
    }
}
