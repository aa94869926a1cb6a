//! The Redis topologies the campaign runs against, and the faults it injects into them.
//! (Temporary stand-in: single server, pause only.)

use std::time::{Duration, Instant};

use rand::Rng;
use rand::rngs::StdRng;
use redis_test_support::{FaultProxy, PauseMode, RedisServer};

/// Which Redis the campaign runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// One server.
    Single,
    /// Sentinel.
    Sentinel,
    /// Cluster.
    Cluster,
}

impl std::str::FromStr for Topology {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "single" => Ok(Topology::Single),
            "sentinel" => Ok(Topology::Sentinel),
            "cluster" => Ok(Topology::Cluster),
            other => Err(format!("unknown topology {other:?}")),
        }
    }
}

impl std::fmt::Display for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Topology::Single => "single",
            Topology::Sentinel => "sentinel",
            Topology::Cluster => "cluster",
        })
    }
}

/// A fault kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// Kill.
    Kill,
    /// Pause.
    Pause,
    /// Sleep.
    Sleep,
    /// Proxy.
    Proxy,
    /// Failover.
    Failover,
    /// Reshard.
    Reshard,
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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
    /// Kind.
    pub kind: FaultKind,
    /// Detail.
    pub detail: String,
    /// Start.
    pub started: Instant,
    /// End.
    pub ended: Instant,
    /// Error.
    pub error: Option<String>,
}

/// The deployment.
pub struct Deployment {
    server: RedisServer,
    proxy: FaultProxy,
}

impl Deployment {
    /// Starts.
    pub fn start(_topology: Topology) -> Result<Deployment, String> {
        let server = RedisServer::start_persistent();
        let proxy = FaultProxy::start(server.port());
        Ok(Deployment { server, proxy })
    }
    /// The redis section.
    pub fn redis_section(&self) -> String {
        format!(
            "[redis]\ndefault[host] = 127.0.0.1\ndefault[port] = {}\ndefault[timeout] = 1\ndefault[pool_size] = 2\ndefault[prefix] = camp:\n",
            self.proxy.port()
        )
    }
    /// Kinds.
    pub fn kinds(&self) -> Vec<FaultKind> {
        vec![FaultKind::Pause, FaultKind::Kill]
    }
    /// Inject.
    pub fn inject(&mut self, kind: FaultKind, rng: &mut StdRng) -> Injected {
        let started = Instant::now();
        let ms = rng.random_range(300..2000);
        match kind {
            FaultKind::Kill => {
                self.server.kill();
                std::thread::sleep(Duration::from_millis(ms));
                self.server.restart();
            }
            _ => {
                self.server.pause(Duration::from_millis(ms), PauseMode::All);
                std::thread::sleep(Duration::from_millis(ms));
            }
        }
        Injected {
            kind,
            detail: format!("{ms} ms"),
            started,
            ended: Instant::now(),
            error: None,
        }
    }
    /// Recover.
    pub fn recover(&mut self) -> Result<(), String> {
        self.proxy.heal();
        Ok(())
    }
}
