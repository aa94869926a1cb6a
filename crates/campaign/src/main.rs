//! The campaign's command line.

fn main() {}
