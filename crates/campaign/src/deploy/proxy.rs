//! One random network fault on a [`FaultProxy`]: drawn, held, healed.
//!
//! Shared by the single server and the Cluster (each node has its proxy), so that both draw
//! their proxy faults the same way from the same seed.

use std::thread;

use rand::Rng;
use rand::rngs::StdRng;
use redis_test_support::{Direction, Fault, FaultProxy};

use super::{draw_ms, secs};

/// Which connections a fault is set on.
#[derive(Debug, Clone, Copy)]
enum Scope {
    /// The live connections only (`set`): reconnecting gets through.
    Live,
    /// Live and new ones (`set_all`): the server looks gone (or slow) for everyone.
    All,
    /// One live connection (`set_on`): the nth (modulo their number) of the open ones.
    One(usize),
}

/// Draws a fault, a scope and a hold time from `rng` (always the same number of draws), sets
/// it on `proxy`, holds it, heals the proxy and returns a description such as
/// "proxy :7003 black-hole (all) 1.2 s".
pub(super) fn inject(proxy: &FaultProxy, rng: &mut StdRng) -> String {
    let fault = draw_fault(rng);
    let scope = match rng.random_range(0..4) {
        0 => Scope::Live,
        1 => Scope::One(rng.random_range(0..64)),
        _ => Scope::All,
    };
    let hold = draw_ms(rng, 300, 2500);
    let scope_text = match scope {
        Scope::Live => "live".to_owned(),
        Scope::All => "all".to_owned(),
        Scope::One(nth) => {
            let live = proxy.live_connection_indexes();
            match live.len() {
                0 => {
                    proxy.set(fault);
                    "live: none open".to_owned()
                }
                n => {
                    let index = live[nth % n];
                    proxy.set_on(index, fault);
                    format!("connection #{index} of {n} open")
                }
            }
        }
    };
    match scope {
        Scope::Live => proxy.set(fault),
        Scope::All => proxy.set_all(fault),
        Scope::One(_) => {}
    }
    thread::sleep(hold);
    proxy.heal();
    format!(
        "proxy :{} {} ({scope_text}) {}",
        proxy.port(),
        describe(fault),
        secs(hold)
    )
}

/// One of the proxy's faults with random parameters; always three draws.
fn draw_fault(rng: &mut StdRng) -> Fault {
    let (which, direction, amount) = (
        rng.random_range(0..6),
        match rng.random_range(0..3) {
            0 => Direction::ToServer,
            1 => Direction::ToClient,
            _ => Direction::Both,
        },
        rng.random_range(0..1000_u64),
    );
    match which {
        0 => Fault::Delay {
            by: std::time::Duration::from_millis(20 + amount * 280 / 1000),
            direction,
        },
        1 => Fault::Stall(direction),
        2 => Fault::BlackHole,
        3 => Fault::Reset,
        4 => Fault::Drip {
            pause: std::time::Duration::from_millis(1 + amount * 4 / 1000),
            direction,
        },
        _ => Fault::CutAfter {
            bytes: amount * 2,
            direction,
        },
    }
}

/// A short name of `fault` for the report.
fn describe(fault: Fault) -> String {
    let dir = |d: Direction| match d {
        Direction::ToServer => "to-server",
        Direction::ToClient => "to-client",
        Direction::Both => "both",
    };
    match fault {
        Fault::Pass => "pass".to_owned(),
        Fault::Delay { by, direction } => format!("delay {} ms {}", by.as_millis(), dir(direction)),
        Fault::Stall(direction) => format!("stall {}", dir(direction)),
        Fault::BlackHole => "black-hole".to_owned(),
        Fault::Reset => "reset".to_owned(),
        Fault::Drip { pause, direction } => {
            format!("drip {} ms/byte {}", pause.as_millis(), dir(direction))
        }
        Fault::CutAfter { bytes, direction } => format!("cut after {bytes} B {}", dir(direction)),
    }
}
