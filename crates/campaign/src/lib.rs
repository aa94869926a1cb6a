//! A randomized fault campaign against the session library (issue 21).

pub mod deploy;
