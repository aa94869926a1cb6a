//! The fault schedule: a thread that, from a seeded generator, picks a fault (one of the
//! deployment's kinds, or an app instance restart), injects it, waits a random pause, and
//! again, until the faults' time is up; then heals everything. The first faults go through
//! every kind once (in a seeded order), so even a short run injects each.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::apps::Apps;
use crate::deploy::{Deployment, FaultKind};

/// A fault of the campaign: one the deployment injects, or an app restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// A fault of Redis or of the network to it.
    Redis(FaultKind),
    /// `kill -9` of an app instance, restarted after a moment on the same port.
    AppRestart,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Redis(kind) => write!(f, "{kind}"),
            Fault::AppRestart => f.write_str("app-restart"),
        }
    }
}

/// One injected fault, for the report.
#[derive(Debug, Clone)]
pub struct Event {
    /// Which.
    pub fault: Fault,
    /// What exactly.
    pub detail: String,
    /// When it began and ended, as `Instant`s.
    pub span: (Instant, Instant),
    /// Why it could not be injected or healed, if so (a harness problem, not an anomaly).
    pub error: Option<String>,
}

/// What the schedule did.
pub struct Done {
    /// The faults, in order.
    pub events: Vec<Event>,
    /// When everything was healed (`None` if healing failed: the error is in `heal_error`).
    pub healed: Option<Instant>,
    /// Why healing failed.
    pub heal_error: Option<String>,
}

/// Runs the schedule on the calling thread until `until`, then heals: the deployment's
/// `recover`. `faults` are the kinds to draw from (empty: none, only the heal at the end);
/// `hot_keys` says which session keys the browsers use now (a reshard's target).
pub fn run(
    deployment: &mut Deployment,
    apps: &mut Apps,
    faults: &[Fault],
    (seed, until): (u64, Instant),
    hot_keys: &dyn Fn() -> Vec<String>,
) -> Done {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x0fa1_7ed5_eed0);
    let mut first: Vec<Fault> = faults.to_vec();
    first.shuffle(&mut rng);
    let mut events = Vec::new();
    loop {
        let pause = Duration::from_millis(rng.random_range(300..2_000));
        if faults.is_empty() || Instant::now() + pause >= until {
            break;
        }
        std::thread::sleep(pause);
        let fault = first
            .pop()
            .unwrap_or_else(|| faults[rng.random_range(0..faults.len())]);
        let event = match fault {
            Fault::Redis(kind) => {
                deployment.set_hot_keys(hot_keys());
                let injected = deployment.inject(kind, &mut rng);
                Event {
                    fault,
                    detail: injected.detail,
                    span: (injected.started, injected.ended),
                    error: injected.error,
                }
            }
            Fault::AppRestart => {
                let i = rng.random_range(0..apps.len());
                let down = Duration::from_millis(rng.random_range(100..1_500));
                let started = Instant::now();
                let result = apps.restart(i, down);
                Event {
                    fault,
                    detail: format!("kill -9 app{i}, down {} ms", down.as_millis()),
                    span: (started, Instant::now()),
                    error: result.err(),
                }
            }
        };
        eprintln!(
            "campaign: fault {} ({:.1} s){}: {}",
            event.fault,
            event.span.1.duration_since(event.span.0).as_secs_f64(),
            event
                .error
                .as_deref()
                .map(|e| format!(" FAILED {e}"))
                .unwrap_or_default(),
            event.detail
        );
        events.push(event);
    }
    let wait = until.saturating_duration_since(Instant::now());
    std::thread::sleep(wait);
    match deployment.recover() {
        Ok(()) => Done {
            events,
            healed: Some(Instant::now()),
            heal_error: None,
        },
        Err(e) => Done {
            events,
            healed: None,
            heal_error: Some(e),
        },
    }
}
