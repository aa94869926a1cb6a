//! The Redis Cluster with replicas: after a master is crashed, one of its replicas is promoted
//! and still holds the key that was written (and replicated) before the crash.

use std::time::Instant;

use redis::Value;
use redis_test_support::RedisCluster;

#[test]
fn a_replica_takes_over_when_its_master_is_killed() {
    let started = Instant::now();
    let mut cluster = RedisCluster::start_with_replicas(3, 1);
    eprintln!(
        "cluster of 3 masters + 3 replicas healthy after {:?}",
        started.elapsed()
    );
    assert_eq!(cluster.servers().len(), 6);

    let master = cluster.master_for_key("failover-key");
    let replicas = cluster.replicas_of(master);
    assert_eq!(replicas.len(), 1, "replicas of node {master}: {replicas:?}");
    let server = &cluster.servers()[master];
    assert_eq!(server.cmd(&["SET", "failover-key", "v1"]), Value::Okay);
    assert_eq!(server.cmd(&["WAIT", "1", "1000"]), Value::Int(1));
    // Every master has one replica, and no node is both.
    let masters: Vec<usize> = (0..6)
        .filter(|&i| cluster.replicas_of(i).len() == 1)
        .collect();
    assert_eq!(masters.len(), 3, "masters: {masters:?}");

    let killed_at = Instant::now();
    cluster.kill_node(master);
    let new_master = cluster.wait_for_failover(master);
    eprintln!("failover done {:?} after the kill", killed_at.elapsed());

    assert_eq!(new_master, replicas[0]);
    assert_eq!(cluster.master_for_key("failover-key"), new_master);
    let server = &cluster.servers()[new_master];
    assert_eq!(
        server.cmd(&["GET", "failover-key"]),
        Value::BulkString(b"v1".to_vec())
    );
    assert_eq!(server.cmd(&["SET", "failover-key", "v2"]), Value::Okay);
    // The other masters still serve their slots.
    assert!(
        masters
            .iter()
            .all(|&m| m == master || cluster.servers()[m].is_running())
    );
}

#[test]
#[should_panic(expected = "was not killed with RedisCluster::kill_node")]
fn waiting_for_a_failover_needs_a_killed_master() {
    let cluster = RedisCluster::start(3);
    let _ = cluster.wait_for_failover(0);
}
