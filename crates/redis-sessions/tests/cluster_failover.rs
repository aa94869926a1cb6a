//! Redis Cluster with replicas: when the master holding a session dies, the app answers `503`
//! for it until a replica has taken over (other masters' sessions too, while the Cluster says
//! `CLUSTERDOWN`), then serves it again without a restart; with `min_replicas_ack = 1` no write answered before the kill is missing after it.
//! Real Cluster (3 masters, 2 replicas each, so that after a failover one replica is left to
//! acknowledge writes); the counter example as the app.

mod common;

use std::time::Duration;

use common::{Counter, failover};
use redis_sessions::id::SessionId;
use redis_test_support::RedisCluster;

/// The counter over `cluster`, every write acknowledged by a replica.
fn app(cluster: &RedisCluster) -> Counter {
    let pool = format!(
        "default[cluster_nodes] = {}\ndefault[min_replicas_ack] = 1\n\
         default[timeout] = 0.5\ndefault[pool_size] = 2",
        cluster.nodes().join(",")
    );
    // The port is unused: the pool reads the slot map from the nodes.
    Counter::start(1, "", &pool)
}

/// The Redis key of the session a `dmsession=VALUE` cookie names.
fn session_key(cookie: &str) -> String {
    let value = cookie.split_once('=').map_or(cookie, |(_, v)| v);
    let id = SessionId::parse(value).expect("a session id");
    format!("dm:{{{}}}", id.storage_id().as_str())
}

/// Kills the master of a session under traffic to it; returns the time from the kill to the
/// first request sent after it that succeeded, after checking that every write answered 200
/// reads back.
async fn one_failover() -> Duration {
    let cluster = RedisCluster::start_with_replicas(3, 2);
    let app = app(&cluster);
    // The Cluster has just formed and the pool's timeout is short (0.5 s, so that the failover
    // window is measured finely): on a loaded machine the very first request (the slot map, a
    // connection, the write and its `WAIT` for a replica) can miss it, which is not what this
    // test is about (a fresh CI run once failed here with a 503), so the set-up tries for up to
    // 5 s. Everything after it is held to the short timeout.
    let cookie = app.new_session_within(Duration::from_secs(5)).await;
    let master = cluster.master_for_key(&session_key(&cookie));
    let (cluster, run) = failover::incr_through_a_kill(&app, &cookie, move || {
        let mut cluster = cluster;
        cluster.kill_node(master);
        cluster
    })
    .await;
    let window = run.window();
    let now = cluster.master_for_key(&session_key(&cookie));
    assert_ne!(now, master, "a replica took over the session's slot");
    run.check_acknowledged_writes(&app, &cookie).await;
    window
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_follows_a_cluster_failover_and_loses_no_acknowledged_write() {
    let mut windows = Vec::new();
    for run in 1..=3 {
        let window = one_failover().await;
        eprintln!("Cluster failover run {run}: requests failed for {window:?} after the kill");
        windows.push(window);
    }
    failover::median(windows);
}
