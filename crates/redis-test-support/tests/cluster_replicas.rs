//! The Redis Cluster with replicas: after a master is crashed, one of its replicas is promoted
//! and still holds the key that was written (and replicated) before the crash.

use std::time::{Duration, Instant};

use redis::Value;
use redis_test_support::RedisCluster;

fn connect(url: &str) -> redis::Connection {
    let client = redis::Client::open(url).expect("client");
    let con = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("connect");
    con.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    con
}

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
    // SET and WAIT on one connection: WAIT waits for the replicas to acknowledge the
    // writes of its own connection, so after `cmd` (a fresh connection each time) it would
    // return at once without waiting for the SET.
    let mut con = connect(&cluster.servers()[master].url());
    let set: Value = redis::cmd("SET")
        .arg("failover-key")
        .arg("v1")
        .query(&mut con)
        .expect("SET");
    assert_eq!(set, Value::Okay);
    let acked: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(1000)
        .query(&mut con)
        .expect("WAIT");
    assert_eq!(acked, 1, "the replica did not acknowledge the SET");
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
