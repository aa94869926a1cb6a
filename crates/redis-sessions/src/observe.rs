//! Metrics and tracing of session operations.
//!
//! **Metrics** go through the [`metrics`] facade: install any recorder (e.g.
//! `metrics-exporter-prometheus`) and the manager reports to it; without one, each operation
//! costs the facade's check and nothing else (no clock read, no allocation, no formatting). Every
//! metric carries the label `pool` (the `redis_connection_pool` the manager stores in); the
//! per-operation ones also `op`. No label ever holds a session id, a storage id or a user id.
//!
//! | name | type | labels | counts |
//! |---|---|---|---|
//! | `redis_sessions_loads_total` | counter | `pool` | sessions loaded from the store (locked or not; a request without a well-formed cookie loads nothing) |
//! | `redis_sessions_creates_total` | counter | `pool` | new sessions written |
//! | `redis_sessions_saves_total` | counter | `pool` | saves of changed data |
//! | `redis_sessions_touches_total` | counter | `pool` | TTL refreshes of sessions that were only read |
//! | `redis_sessions_destroys_total` | counter | `pool` | sessions ended by `destroy` |
//! | `redis_sessions_rotations_total` | counter | `pool` | id rotations (logins) |
//! | `redis_sessions_conflicts_total` | counter | `pool`, `kind` | `409`s: `kind="gone"` (the session ended meanwhile), `kind="lock_lost"` |
//! | `redis_sessions_lock_waits_total` | counter | `pool` | locked loads that found the lock taken and waited |
//! | `redis_sessions_lock_timeouts_total` | counter | `pool` | locked loads that gave up after `lock_wait` |
//! | `redis_sessions_store_errors_total` | counter | `pool`, `op` | operations that failed because the store failed |
//! | `redis_sessions_operation_duration_seconds` | histogram | `pool`, `op` | latency of each operation, successful or not |
//! | `redis_sessions_operations_in_flight` | gauge | `pool`, `op` | operations running now |
//!
//! `op` is one of `load`, `lock` (a locked load, its wait included), `create`, `save`, `touch`,
//! `destroy`, `rotate`, `unlock` (releasing the lock of a request that wrote nothing).
//!
//! **Tracing**: each operation runs in a `DEBUG` span named `session.<op>` (target
//! `redis_sessions::observe`) with the fields `pool`, `id` (the first 6 characters of the
//! storage id, as [`SessionId`]'s `Display` shows them: enough to correlate, useless as a
//! cookie; for a rotation the old id, and `new_id` the new one), `round_trips` (the store calls
//! the operation made, each one pipelined round trip; a `WAIT` for `min_replicas_ack` and
//! Cluster redirections are not counted) and, when it fails, `error`.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use futures_util::future::Either;
use metrics::{IntoF64, Key, Label, Level, Metadata, Recorder, SharedString};
use tracing::field::{Empty, display};
use tracing::instrument::Instrumented;
use tracing::{Instrument as _, Span};

use crate::error::SessionError;
use crate::id::SessionId;
use crate::store::StoreError;

/// Sessions loaded from the store.
pub const LOADS: &str = "redis_sessions_loads_total";
/// New sessions written.
pub const CREATES: &str = "redis_sessions_creates_total";
/// Saves of changed data.
pub const SAVES: &str = "redis_sessions_saves_total";
/// TTL refreshes of sessions that were only read.
pub const TOUCHES: &str = "redis_sessions_touches_total";
/// Sessions ended by `destroy`.
pub const DESTROYS: &str = "redis_sessions_destroys_total";
/// Id rotations.
pub const ROTATIONS: &str = "redis_sessions_rotations_total";
/// Persists refused because the session ended (`kind="gone"`) or its lock was lost
/// (`kind="lock_lost"`).
pub const CONFLICTS: &str = "redis_sessions_conflicts_total";
/// Locked loads that waited for the lock.
pub const LOCK_WAITS: &str = "redis_sessions_lock_waits_total";
/// Locked loads that gave up after `lock_wait`.
pub const LOCK_TIMEOUTS: &str = "redis_sessions_lock_timeouts_total";
/// Operations failed by the store, by `op`.
pub const STORE_ERRORS: &str = "redis_sessions_store_errors_total";
/// Latency of each operation in seconds, by `op`.
pub const DURATION: &str = "redis_sessions_operation_duration_seconds";
/// Operations running now, by `op`.
pub const IN_FLIGHT: &str = "redis_sessions_operations_in_flight";

static META: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// A session operation: one span, one latency sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Load,
    Lock,
    Create,
    Save,
    Touch,
    Destroy,
    Rotate,
    Unlock,
}

const OPS: [Op; 8] = [
    Op::Load,
    Op::Lock,
    Op::Create,
    Op::Save,
    Op::Touch,
    Op::Destroy,
    Op::Rotate,
    Op::Unlock,
];

impl Op {
    fn name(self) -> &'static str {
        match self {
            Self::Load => "load",
            Self::Lock => "lock",
            Self::Create => "create",
            Self::Save => "save",
            Self::Touch => "touch",
            Self::Destroy => "destroy",
            Self::Rotate => "rotate",
            Self::Unlock => "unlock",
        }
    }

    /// The counter of completed operations of this kind, if it has one.
    fn counter(self) -> Option<&'static str> {
        match self {
            Self::Load | Self::Lock => Some(LOADS),
            Self::Create => Some(CREATES),
            Self::Save => Some(SAVES),
            Self::Touch => Some(TOUCHES),
            Self::Destroy => Some(DESTROYS),
            Self::Rotate => Some(ROTATIONS),
            Self::Unlock => None,
        }
    }

    fn span(self, pool: &str) -> Span {
        macro_rules! span {
            ($name:literal) => {
                tracing::debug_span!(
                    $name,
                    pool,
                    id = Empty,
                    new_id = Empty,
                    round_trips = Empty,
                    error = Empty
                )
            };
        }
        match self {
            Self::Load => span!("session.load"),
            Self::Lock => span!("session.lock"),
            Self::Create => span!("session.create"),
            Self::Save => span!("session.save"),
            Self::Touch => span!("session.touch"),
            Self::Destroy => span!("session.destroy"),
            Self::Rotate => span!("session.rotate"),
            Self::Unlock => span!("session.unlock"),
        }
    }
}

/// The metric keys of one operation kind, labelled with the pool.
struct OpKeys {
    done: Option<Key>,
    duration: Key,
    in_flight: Key,
    store_errors: Key,
}

/// A manager's metric keys, built once (so recording allocates nothing), and its pool's name.
pub(crate) struct Observer {
    pool: SharedString,
    ops: Vec<OpKeys>,
    gone: Key,
    lock_lost: Key,
    lock_waits: Key,
    lock_timeouts: Key,
}

impl Observer {
    /// The keys of the manager storing in `pool`.
    pub(crate) fn new(pool: &str) -> Self {
        let pool = SharedString::from(pool.to_owned());
        let key = |name: &'static str, extra: Option<(&'static str, &'static str)>| {
            let mut labels = vec![Label::new("pool", pool.clone())];
            labels.extend(extra.map(|(k, v)| Label::new(k, v)));
            Key::from_parts(name, labels)
        };
        let ops = OPS
            .iter()
            .map(|op| {
                let label = Some(("op", op.name()));
                OpKeys {
                    done: op.counter().map(|name| key(name, None)),
                    duration: key(DURATION, label),
                    in_flight: key(IN_FLIGHT, label),
                    store_errors: key(STORE_ERRORS, label),
                }
            })
            .collect();
        Self {
            ops,
            gone: key(CONFLICTS, Some(("kind", "gone"))),
            lock_lost: key(CONFLICTS, Some(("kind", "lock_lost"))),
            lock_waits: key(LOCK_WAITS, None),
            lock_timeouts: key(LOCK_TIMEOUTS, None),
            pool,
        }
    }

    fn keys(&self, op: Op) -> &OpKeys {
        &self.ops[op as usize]
    }

    /// Starts observing one `op` on `id` (when known already).
    pub(crate) fn start(&self, op: Op, id: Option<&SessionId>) -> Observed<'_> {
        let mut live = false;
        metrics::with_recorder(|recorder| {
            recorder
                .register_gauge(&self.keys(op).in_flight, &META)
                .increment(Probe(&mut live));
        });
        let span = op.span(&self.pool);
        if let Some(id) = id {
            span.record("id", display(id));
        }
        Observed {
            observer: self,
            op,
            span,
            // Only a recorder that takes samples is worth a clock read.
            start: live.then(Instant::now),
            round_trips: AtomicU32::new(0),
        }
    }

    /// Counts a persist refused without writing (its session had ended, or lost its lock).
    pub(crate) fn refused(&self, error: &SessionError) {
        metrics::with_recorder(|recorder| self.count_error(recorder, None, error));
    }

    /// Counts a locked load that had to wait for the lock.
    pub(crate) fn lock_waited(&self) {
        metrics::with_recorder(|r| r.register_counter(&self.lock_waits, &META).increment(1));
    }

    fn count_error(&self, recorder: &dyn Recorder, op: Option<Op>, error: &SessionError) {
        let key = match error {
            SessionError::Gone => &self.gone,
            SessionError::LockLost => &self.lock_lost,
            SessionError::LockTimeout { .. } => &self.lock_timeouts,
            SessionError::Store(_) => match op {
                Some(op) => &self.keys(op).store_errors,
                None => return,
            },
            _ => return,
        };
        recorder.register_counter(key, &META).increment(1);
    }
}

/// Converts to 1.0 for the gauge, noting that the recorder wanted the value: the facade converts
/// values only for a recorder that takes them, so without one the flag stays down.
struct Probe<'a>(&'a mut bool);

impl IntoF64 for Probe<'_> {
    fn into_f64(self) -> f64 {
        *self.0 = true;
        1.0
    }
}

/// One operation being observed: its span, its start time (only when a recorder samples), and
/// the store calls it made.
pub(crate) struct Observed<'a> {
    observer: &'a Observer,
    op: Op,
    span: Span,
    start: Option<Instant>,
    round_trips: AtomicU32,
}

impl Observed<'_> {
    /// Runs `body` inside the operation's span, if a subscriber records it (entering a span
    /// nobody records on every poll cost a session read about 180 instructions). Not an `async
    /// fn`: its future would hold `body` twice (the argument, and the future it awaits), and
    /// `body` is most of a persist's future.
    pub(crate) fn run<F: Future>(&self, body: F) -> Either<F, Instrumented<F>> {
        if self.span.is_disabled() {
            Either::Left(body)
        } else {
            Either::Right(body.instrument(self.span.clone()))
        }
    }

    /// Awaits one store call of the operation, counting it.
    pub(crate) async fn call<T>(
        &self,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        // One task at a time: a plain load and store, no read-modify-write needed.
        let calls = self.round_trips.load(Ordering::Relaxed);
        self.round_trips.store(calls + 1, Ordering::Relaxed);
        call.await
    }

    /// Names the session the operation works on, once it is known.
    pub(crate) fn id(&self, id: &SessionId) {
        self.span.record("id", display(id));
    }

    /// Names the new id of a rotation.
    pub(crate) fn new_id(&self, id: &SessionId) {
        self.span.record("new_id", display(id));
    }

    /// Records how the operation ended (counters, latency, span fields) and returns `result`.
    pub(crate) fn finish<T>(self, result: Result<T, SessionError>) -> Result<T, SessionError> {
        let (observer, keys) = (self.observer, self.observer.keys(self.op));
        metrics::with_recorder(|recorder| {
            match &result {
                Ok(_) => {
                    if let Some(done) = &keys.done {
                        recorder.register_counter(done, &META).increment(1);
                    }
                }
                Err(error) => observer.count_error(recorder, Some(self.op), error),
            }
            if let Some(start) = self.start {
                let histogram = recorder.register_histogram(&keys.duration, &META);
                histogram.record(start.elapsed());
            }
        });
        self.span
            .record("round_trips", self.round_trips.load(Ordering::Relaxed));
        if let Err(error) = &result {
            self.span.record("error", display(error));
        }
        result
    }
}

impl Drop for Observed<'_> {
    /// The operation is over (finished, or cancelled with its request).
    fn drop(&mut self) {
        if self.start.is_some() {
            let key = &self.observer.keys(self.op).in_flight;
            metrics::with_recorder(|r| r.register_gauge(key, &META).decrement(1.0));
        }
    }
}
