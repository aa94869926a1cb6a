//! The single-server topology: one Redis with AOF `appendfsync always` (what it answered
//! survives a `kill -9`) behind a fault proxy, which is the address the apps are given.
//!
//! Kept apart from the other topologies: it has no failover, so its faults are the simplest
//! and its durability comes from the disk, not from replicas.

use std::thread;
use std::time::{Duration, Instant};

use rand::Rng;
use rand::rngs::StdRng;
use redis_test_support::{FaultProxy, PauseMode, RedisServer};

use super::{FaultKind, draw_ms, poll, proxy, secs};

/// A persistent server and the proxy in front of it.
pub(super) struct Single {
    /// The proxy the apps connect to; dropped first (fields drop in order).
    proxy: FaultProxy,
    /// The server.
    server: RedisServer,
}

impl Single {
    /// Starts the server and its proxy. Panics (caught by the caller) if either fails.
    pub(super) fn start() -> Single {
        let server = RedisServer::start_persistent();
        let proxy = FaultProxy::start(server.port());
        Single { proxy, server }
    }

    /// The pool's keys: the proxy's address.
    pub(super) fn redis_lines(&self) -> Vec<(&'static str, String)> {
        vec![
            ("host", "127.0.0.1".to_owned()),
            ("port", self.proxy.port().to_string()),
        ]
    }

    /// One fault of `kind`, held and healed; its description goes to `detail`.
    pub(super) fn inject(
        &mut self,
        kind: FaultKind,
        rng: &mut StdRng,
        detail: &mut Vec<String>,
    ) -> Result<(), String> {
        let port = self.server.port();
        match kind {
            FaultKind::Kill => {
                let down = draw_ms(rng, 300, 2000);
                self.server.kill();
                detail.push(format!("kill -9 :{port}, down {}", secs(down)));
                thread::sleep(down);
                let restart = Instant::now();
                self.server.restart();
                detail.push(format!(
                    "restarted (AOF reloaded) in {}",
                    secs(restart.elapsed())
                ));
            }
            FaultKind::Pause => {
                let (hold, mode, name) = draw_pause(rng);
                self.server.pause(hold, mode);
                detail.push(format!("CLIENT PAUSE {name} :{port} {}", secs(hold)));
                thread::sleep(hold);
            }
            FaultKind::Sleep => {
                let hold = draw_ms(rng, 300, 2000);
                let sleeping = self.server.sleep_in_background(hold);
                detail.push(format!("DEBUG SLEEP :{port} {}", secs(hold)));
                sleeping.join();
            }
            FaultKind::Proxy => detail.push(proxy::inject(&self.proxy, rng)),
            FaultKind::Failover | FaultKind::Reshard => {
                return Err(format!("{kind} is not a fault of a single server"));
            }
        }
        self.answers_through_proxy()
    }

    /// The server runs and answers `PING` through the proxy, which passes everything.
    pub(super) fn recover(&mut self) -> Result<(), String> {
        self.proxy.heal();
        if !self.server.is_running() {
            self.server.restart();
        }
        self.answers_through_proxy()
    }

    /// Waits (at most 10 s) until `PING` through the proxy is answered.
    fn answers_through_proxy(&self) -> Result<(), String> {
        let url = self.proxy.url();
        poll("PING through the proxy", Duration::from_secs(10), || {
            let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
            let mut con = client
                .get_connection_with_timeout(Duration::from_secs(1))
                .map_err(|e| e.to_string())?;
            con.set_read_timeout(Some(Duration::from_secs(1)))
                .map_err(|e| e.to_string())?;
            redis::cmd("PING")
                .query::<String>(&mut con)
                .map(drop)
                .map_err(|e| e.to_string())
        })
    }
}

/// A `CLIENT PAUSE` duration (0.3-2 s) and mode (`ALL` or `WRITE`, also as text).
pub(super) fn draw_pause(rng: &mut StdRng) -> (Duration, PauseMode, &'static str) {
    let hold = draw_ms(rng, 300, 2000);
    match rng.random_bool(0.5) {
        true => (hold, PauseMode::All, "ALL"),
        false => (hold, PauseMode::Write, "WRITE"),
    }
}
