//! The Redis topologies the campaign runs against, and the faults it injects into them.
//!
//! Exists so that the campaign's driver sees one small interface, whatever the topology: start
//! it ([`Deployment::start`]), hand its `[redis]` section to the apps
//! ([`Deployment::redis_section`]), inject one fault at a time ([`Deployment::inject`], which
//! also heals it) and bring everything back at the end ([`Deployment::recover`]). The
//! topologies and faults are those of the workspace's test harness (`redis-test-support`), so
//! the campaign's faults are the tests' faults. Every harness call that can panic (its waits
//! panic on timeouts) runs under `catch_unwind`: a harness failure is reported in
//! [`Injected::error`], it never stops the campaign.

mod cluster;
mod cluster_faults;
mod cluster_view;
mod proxy;
mod sentinel;
mod single;

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::str::FromStr;
use std::time::{Duration, Instant};

use rand::Rng;
use rand::rngs::StdRng;

/// Which Redis the campaign runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// One server with AOF `appendfsync always`, behind a fault proxy.
    Single,
    /// A master, two replicas and three sentinels.
    Sentinel,
    /// Three masters with two replicas each, a fault proxy in front of every node.
    Cluster,
}

impl FromStr for Topology {
    type Err = String;

    fn from_str(s: &str) -> Result<Topology, String> {
        match s {
            "single" => Ok(Topology::Single),
            "sentinel" => Ok(Topology::Sentinel),
            "cluster" => Ok(Topology::Cluster),
            other => Err(format!(
                "unknown topology {other:?}: single, sentinel or cluster"
            )),
        }
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Topology::Single => "single",
            Topology::Sentinel => "sentinel",
            Topology::Cluster => "cluster",
        })
    }
}

/// A fault the deployment can inject (the app restart is the caller's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// `kill -9` of a Redis node, then its restart.
    Kill,
    /// `CLIENT PAUSE <ms> ALL|WRITE` on a master.
    Pause,
    /// `DEBUG SLEEP` on a master: the whole server stalls.
    Sleep,
    /// A network fault on the proxy in front of a master (delay, stall, black hole, reset,
    /// drip, cut).
    Proxy,
    /// A Sentinel failover (`SENTINEL FAILOVER`) or a Cluster manual failover
    /// (`CLUSTER FAILOVER` on a replica).
    Failover,
    /// A Cluster slot moved to another master under traffic (`MIGRATE`, `ASK`, `MOVED`).
    Reshard,
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultKind::Kill => "kill-9",
            FaultKind::Pause => "client-pause",
            FaultKind::Sleep => "debug-sleep",
            FaultKind::Proxy => "proxy",
            FaultKind::Failover => "failover",
            FaultKind::Reshard => "reshard",
        })
    }
}

/// One fault as injected.
#[derive(Debug, Clone)]
pub struct Injected {
    /// Which kind of fault.
    pub kind: FaultKind,
    /// What exactly, for the report: e.g. "kill -9 master :7001, failover to :7004 in 2.1 s,
    /// restarted as replica" or "proxy :7003 black-hole 1.2 s".
    pub detail: String,
    /// When the injection began.
    pub started: std::time::Instant,
    /// When the fault was healed (or the attempt given up).
    pub ended: std::time::Instant,
    /// Set when the harness failed to inject or heal (a harness panic caught with
    /// catch_unwind, or a wait that timed out): the campaign reports it, it is not an anomaly
    /// of the library.
    pub error: Option<String>,
}

/// The topology itself, by kind.
enum Inner {
    /// See [`single::Single`].
    Single(single::Single),
    /// See [`sentinel::Sentinel`].
    Sentinel(sentinel::Sentinel),
    /// See [`cluster::Cluster`].
    Cluster(cluster::Cluster),
}

/// A running Redis topology (its processes are killed on drop) with the means to inject
/// faults into it.
pub struct Deployment {
    /// The topology.
    inner: Inner,
}

impl fmt::Debug for Deployment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deployment")
            .field("topology", &self.topology())
            .finish_non_exhaustive()
    }
}

impl Deployment {
    /// Starts the topology (blocking; may take ~10-30 s for Sentinel/Cluster).
    pub fn start(topology: Topology) -> Result<Deployment, String> {
        let inner = match topology {
            Topology::Single => Inner::Single(guarded(single::Single::start)?),
            Topology::Sentinel => Inner::Sentinel(guarded(sentinel::Sentinel::start)?),
            Topology::Cluster => Inner::Cluster(guarded(cluster::Cluster::start)??),
        };
        Ok(Deployment { inner })
    }

    /// Which topology this is.
    pub fn topology(&self) -> Topology {
        match self.inner {
            Inner::Single(_) => Topology::Single,
            Inner::Sentinel(_) => Topology::Sentinel,
            Inner::Cluster(_) => Topology::Cluster,
        }
    }

    /// The `[redis]` section of the apps' config.ini for pool `default` (the caller writes
    /// `[session]` with `redis_connection_pool = default`): the proxy of a single server, the
    /// sentinels, or the proxies of every Cluster node.
    pub fn redis_section(&self) -> String {
        let (lines, min_replicas_ack) = match &self.inner {
            Inner::Single(s) => (s.redis_lines(), 0),
            Inner::Sentinel(s) => (s.redis_lines(), 1),
            Inner::Cluster(c) => (c.redis_lines(), 1),
        };
        let mut text = String::from("[redis]\n");
        for (key, value) in lines {
            text += &format!("default[{key}] = {value}\n");
        }
        text += "default[timeout] = 1\ndefault[pool_size] = 2\ndefault[prefix] = camp:\n";
        text += &format!("default[min_replicas_ack] = {min_replicas_ack}\n");
        text
    }

    /// The keys of the sessions the browsers use now (their hashes): a Cluster reshard moves the
    /// slot of one of them, so that traffic meets the migration (a random key is mostly a
    /// tombstone's or an abandoned session's). Ignored by the other topologies.
    pub fn set_hot_keys(&mut self, keys: Vec<String>) {
        if let Inner::Cluster(c) = &mut self.inner {
            c.hot_keys = keys;
        }
    }

    /// The fault kinds this topology supports, in a fixed order.
    pub fn kinds(&self) -> Vec<FaultKind> {
        use FaultKind::*;
        match self.topology() {
            Topology::Single => vec![Kill, Pause, Sleep, Proxy],
            Topology::Sentinel => vec![Kill, Pause, Sleep, Failover],
            Topology::Cluster => vec![Kill, Pause, Sleep, Proxy, Failover, Reshard],
        }
    }

    /// Injects one fault of `kind` with parameters drawn from `rng` (the same seed gives the
    /// same draws), holds it for its duration, heals it, and returns (blocking the calling
    /// thread). Never panics: a harness failure, or a kind this topology does not support, is
    /// in [`Injected::error`].
    pub fn inject(&mut self, kind: FaultKind, rng: &mut StdRng) -> Injected {
        let started = Instant::now();
        let mut detail = Vec::new();
        let result = if self.kinds().contains(&kind) {
            let detail = &mut detail;
            match &mut self.inner {
                Inner::Single(s) => guarded(|| s.inject(kind, rng, detail)),
                Inner::Sentinel(s) => guarded(|| s.inject(kind, rng, detail)),
                Inner::Cluster(c) => guarded(|| c.inject(kind, rng, detail)),
            }
            .and_then(|r| r)
        } else {
            Err(format!(
                "{kind} is not a fault of the {} topology",
                self.topology()
            ))
        };
        Injected {
            kind,
            detail: detail.join(", "),
            started,
            ended: Instant::now(),
            error: result.err(),
        }
    }

    /// After the campaign: every node running again, proxies passing, Cluster settled /
    /// Sentinel agreed on a master with its replicas attached. Blocking, bounded (~60 s).
    pub fn recover(&mut self) -> Result<(), String> {
        match &mut self.inner {
            Inner::Single(s) => guarded(|| s.recover())?,
            Inner::Sentinel(s) => guarded(|| s.recover())?,
            Inner::Cluster(c) => guarded(|| c.recover())?,
        }
    }
}

/// The campaign moves the deployment into its fault thread.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<Deployment>();
};

/// Runs `f`, turning a panic (the harness's way to report a timeout or a failed command) into
/// an `Err` with its message.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "a panic without a message".to_owned());
        format!("harness panic: {message}")
    })
}

/// A duration of `min_ms..=max_ms` milliseconds drawn from `rng`.
fn draw_ms(rng: &mut StdRng, min_ms: u64, max_ms: u64) -> Duration {
    Duration::from_millis(rng.random_range(min_ms..=max_ms))
}

/// Seconds with one decimal, for details: "2.1 s".
fn secs(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

/// Polls `check` every 100 ms until it returns `Ok`, for at most `timeout`; then the last
/// reason it gave, prefixed with `what`. Panics inside `check` (a node that does not answer
/// yet) count as a failed check.
fn poll<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let reason = match guarded(&mut check) {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(reason)) | Err(reason) => reason,
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "timed out after {} waiting for {what}: {reason}",
                secs(timeout)
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The text of a string or integer reply (`Debug` of anything else).
fn text(value: &redis::Value) -> String {
    match value {
        redis::Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        redis::Value::SimpleString(s) | redis::Value::VerbatimString { text: s, .. } => s.clone(),
        redis::Value::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}
