//! Criterion micro-benchmarks of redis-sessions' per-request hot path live in `benches/`.
//! Run them with `cargo bench -p micro` from `bench/`.
