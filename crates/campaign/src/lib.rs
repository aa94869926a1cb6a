//! A randomized fault campaign against the session library (issue 21), in the manner of
//! Jepsen: simulated browsers with several tabs send random session operations to several app
//! instances while Redis and the network to it fail in random ways; every request is recorded
//! and the history is checked against the library's promises.
//!
//! Layers, bottom up: `history` (what is recorded), `deploy` (Redis topologies and their
//! faults) and `apps` (the app processes), `app` (the app itself), `workload` (the browsers),
//! `schedule` (the fault thread), `check` (the invariants), `report`, and `run` on top.

pub mod app;
pub mod apps;
pub mod check;
pub mod deploy;
pub mod history;
pub mod report;
pub mod run;
pub mod schedule;
pub mod workload;
