//! A seeded schedule of random faults, for the property tests that check replies reach their
//! own caller whatever the network does (the link's own test and the session store's): both
//! draw faults the same way and heal between them, so the schedule lives here once.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Direction, Fault, FaultProxy};

/// Which faults a random schedule draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMix {
    /// Faults that end a flow or slow it: reset, drip, cut after N bytes, delay (and pass).
    Cuts,
    /// [`FaultMix::Cuts`] plus faults that hold a flow: a stalled direction and a black hole.
    CutsAndHolds,
}

/// A random fault from `mix`, with how long it lasts.
fn random_fault(rng: &mut StdRng, mix: FaultMix) -> (Fault, Duration) {
    let direction = match rng.random_range(0..3) {
        0 => Direction::ToServer,
        1 => Direction::ToClient,
        _ => Direction::Both,
    };
    let kinds = match mix {
        FaultMix::Cuts => 5,
        FaultMix::CutsAndHolds => 7,
    };
    let fault = match (rng.random_range(0..kinds), mix) {
        (0, _) => Fault::Reset,
        (1, _) => Fault::Drip {
            pause: Duration::from_micros(rng.random_range(10..200)),
            direction,
        },
        (2, _) => Fault::CutAfter {
            bytes: rng.random_range(0..200_000),
            direction,
        },
        (3, _) => Fault::Delay {
            by: Duration::from_millis(rng.random_range(1..400)),
            direction,
        },
        (4, FaultMix::CutsAndHolds) => Fault::Stall(direction),
        (5, FaultMix::CutsAndHolds) => Fault::BlackHole,
        _ => Fault::Pass,
    };
    (fault, Duration::from_millis(rng.random_range(50..700)))
}

impl FaultProxy {
    /// Applies random faults from `mix`, drawn from `seed`, for `run`: each to every live
    /// connection (and in 3 of 10 cases to new ones too) for 50-700 ms, then a healthy moment
    /// of 50-300 ms so that calls get through. Blocks the calling thread (from async code, run
    /// it in `spawn_blocking`); leaves the proxy healed. Returns the faults applied, in order.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use redis_test_support::{FaultMix, FaultProxy, RedisServer};
    ///
    /// let server = RedisServer::start();
    /// let proxy = FaultProxy::start(server.port());
    /// // ... clients connect to proxy.port() and run traffic on other threads ...
    /// let applied = proxy.apply_random_faults(20, Duration::from_secs(8), FaultMix::Cuts);
    /// println!("{} faults", applied.len());
    /// ```
    pub fn apply_random_faults(&self, seed: u64, run: Duration, mix: FaultMix) -> Vec<Fault> {
        let mut rng = StdRng::seed_from_u64(seed);
        let end = Instant::now() + run;
        let mut applied = Vec::new();
        while Instant::now() < end {
            let (fault, lasts) = random_fault(&mut rng, mix);
            self.set(fault);
            if rng.random_bool(0.3) {
                self.set_for_new(fault);
            }
            applied.push(fault);
            std::thread::sleep(lasts);
            self.heal();
            std::thread::sleep(Duration::from_millis(rng.random_range(50..300)));
        }
        self.heal();
        applied
    }
}
