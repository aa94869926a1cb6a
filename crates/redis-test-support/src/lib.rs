//! Test harness for the workspace's integration tests; never a runtime
//! dependency.
//!
//! This crate exists so that the tests of the session library and of the demo
//! can talk to **real** Redis servers without depending on, or disturbing, the
//! shared Redis that may already be running on `127.0.0.1:6379`. Every test
//! gets its own `redis-server` process (Debian's `/usr/bin/redis-server`,
//! Redis 7.0), started on a free loopback port inside its own temporary
//! directory and killed again when the handle is dropped, also when the test
//! panics. It provides:
//!
//! - [`RedisServer`]: one private server, with [`RedisServer::stop`] /
//!   [`RedisServer::restart`] on the same port to test reconnection, and
//!   [`RedisServer::cmd`] for assertions on what was stored;
//! - fault injection on a server: [`RedisServer::start_persistent`]
//!   (`--appendonly yes --appendfsync always`, so what Redis answered
//!   survives) with [`RedisServer::kill`] (SIGKILL, a crash) and
//!   [`RedisServer::restart`] on the same port and directory;
//!   [`RedisServer::pause`] (`CLIENT PAUSE <ms> ALL|WRITE`);
//!   [`RedisServer::sleep_in_background`] (`DEBUG SLEEP`, the whole server
//!   stalls) and [`RedisServer::cmd_in_background`], which return without
//!   waiting for the reply ([`BackgroundCommand::join`] waits for it);
//! - [`rss_bytes`]: the resident memory (`VmRSS`) of a process, e.g. of an
//!   app server under load;
//! - [`RedisCluster`]: a Redis Cluster of N ≥ 3 masters built with
//!   `redis-cli --cluster create`; [`RedisCluster::start_with_replicas`] adds R replicas per
//!   master (`--cluster-replicas R`, each replica synced before it returns) for failover
//!   tests: [`RedisCluster::master_for_key`] and [`RedisCluster::replicas_of`] say who serves
//!   a key and who would take over, [`RedisCluster::kill_node`] crashes a node (SIGKILL) and
//!   [`RedisCluster::wait_for_failover`] polls the surviving nodes until a replica of the
//!   killed master has been promoted and all of them agree on it;
//! - TLS and ACL: [`RedisServer::start_tls`] starts a server that also listens for TLS on
//!   [`RedisServer::tls_port`] (`--tls-port`, with `--tls-auth-clients yes` for mutual TLS),
//!   with a fresh CA, a server certificate for `127.0.0.1`/`localhost` and a client
//!   certificate made by the `openssl` CLI in its directory ([`TestCertificates`],
//!   [`RedisServer::tls_certificates`]); the plain port stays open for the harness.
//!   [`RedisServer::add_acl_user`] creates a limited ACL user after start (with
//!   `ACL SETUSER name reset on >password rules...`), since `redis-server` has no `--user`
//!   option; [`RedisCluster::start_tls`] makes a Cluster whose nodes share one test CA and talk
//!   TLS to clients and on the cluster bus (`--tls-cluster yes`);
//! - [`RedisSentinelSet`]: a master, one replica and three `redis-server --sentinel` processes
//!   (quorum 2, `down-after-milliseconds 1000`, `failover-timeout 2000`) for failover tests:
//!   [`RedisSentinelSet::kill_master`] crashes the current master and
//!   [`RedisSentinelSet::wait_for_new_master`] polls the sentinels until they agree on a new
//!   one that says it is a master; [`RedisSentinelSet::failover`] forces one (`SENTINEL
//!   FAILOVER`) that demotes the old master to a replica;
//!   [`RedisSentinelSet::start_with_replicas`] adds replicas (one is left to acknowledge writes
//!   after a failover) and [`RedisSentinelSet::start_with_sentinel_password`] makes the
//!   sentinels require a password;
//! - [`CountingProxy`]: a TCP proxy that counts Redis round trips and records
//!   the commands that pass, to assert how many round trips an operation
//!   costs;
//! - [`FaultProxy`]: a TCP proxy that injects network faults on command, per
//!   connection or for all, while traffic runs ([`Fault`]: delay, a stalled
//!   direction, a black hole, a reset, bytes dripped one at a time, a cut
//!   after N bytes); it forwards bytes, so it works for TLS too.
//!
//! Everything is synchronous (std threads and processes) so it works from any
//! test, including `#[tokio::test]` ones, without needing a Tokio runtime. No
//! call blocks forever: every wait is bounded by a few seconds and panics with
//! a message that says what was awaited (and, for servers, the tail of the
//! server's log).
//!
//! A missing `redis-server` (or `redis-cli`) binary is a loud panic telling to
//! run `apt-get install -y redis-server`; tests are never skipped.
//!
//! All network traffic goes to `127.0.0.1` only.

mod cluster;
mod fault_proxy;
mod faults;
mod process;
mod proxy;
mod resp;
mod sentinel;
mod server;
mod tls;

pub use cluster::RedisCluster;
pub use fault_proxy::{
    Direction, Fault, FaultMix, FaultProxy, SEGMENT_BYTES, SOCKET_BUFFER_BYTES, Traffic,
};
pub use faults::{BackgroundCommand, PauseMode, rss_bytes};
pub use proxy::CountingProxy;
pub use sentinel::RedisSentinelSet;
pub use server::RedisServer;
pub use tls::TestCertificates;
