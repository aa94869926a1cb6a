//! The Sentinel harness: the sentinels name the master, and after the master is killed they
//! elect the replica, which keeps the data written before the kill.

use std::time::{Duration, Instant};

use redis::Value;
use redis_test_support::RedisSentinelSet;

#[test]
fn the_sentinels_fail_over_to_the_replica_when_the_master_dies() {
    let mut set = RedisSentinelSet::start();
    assert_eq!(set.sentinel_nodes().len(), 3);
    let first = set.master_port();
    assert_eq!(first, set.servers()[0].port());
    // SET and WAIT on one connection: WAIT only waits for its own connection's writes, and
    // `cmd` opens a new connection per call.
    let client = redis::Client::open(set.master().url()).expect("client");
    let mut con = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("connect");
    let reply: Value = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut con)
        .expect("SET");
    assert_eq!(reply, Value::Okay);
    let acked: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(5000)
        .query(&mut con)
        .expect("WAIT");
    assert_eq!(acked, 1, "the replica did not acknowledge the SET");

    let killed_at = Instant::now();
    assert_eq!(set.kill_master(), first);
    let new = set.wait_for_new_master(first, Duration::from_secs(30));
    eprintln!("new master after {:?}", killed_at.elapsed());
    assert_eq!(new, set.servers()[1].port());
    assert_eq!(set.master().port(), new);
    assert_eq!(
        set.master().cmd(&["GET", "k"]),
        Value::BulkString(b"v".to_vec())
    );
    assert_eq!(set.master().cmd(&["SET", "k", "w"]), Value::Okay);
    let name = set.master_name().to_owned();
    assert!(matches!(
        set.sentinel_cmd(2, &["SENTINEL", "get-master-addr-by-name", &name]),
        Value::Array(_)
    ));
}

#[test]
fn a_forced_failover_demotes_the_master_to_a_replica() {
    let set = RedisSentinelSet::start();
    let first = set.master_port();
    let new = set.failover(Duration::from_secs(30));
    assert_ne!(new, first);
    assert_eq!(set.master_port(), new);
    assert_eq!(set.master().cmd(&["SET", "k", "v"]), Value::Okay);
    assert!(matches!(
        set.servers()[0].cmd(&["SET", "k", "w"]),
        Value::ServerError(e) if e.code() == "READONLY"
    ));
}

#[test]
fn sentinels_with_a_password_refuse_clients_without_it() {
    let set = RedisSentinelSet::start_with_sentinel_password("sentinel-pw");
    assert_eq!(set.master_port(), set.servers()[0].port());
    let node = &set.sentinel_nodes()[0];
    let client = redis::Client::open(format!("redis://{node}/")).expect("client");
    let mut con = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("connect");
    let reply: redis::RedisResult<Value> = redis::cmd("SENTINEL")
        .arg("get-master-addr-by-name")
        .arg(set.master_name())
        .query(&mut con);
    let error = reply.expect_err("NOAUTH");
    assert_eq!(error.code(), Some("NOAUTH"), "{error}");
}
