//! The Redis Cluster pool against real Clusters: it finds each session's node from the slot map
//! (no `MOVED` in normal operation), follows a slot that moves to another node (`MOVED`) or is
//! being migrated (`ASK`), and sends the commands of concurrent requests to a node together.

use std::time::Duration;

use bytes::Bytes;
use redis::Value;
use redis_sessions::id::{SessionId, StorageId};
use redis_sessions::store::{Loaded, Meta, Record, SessionStore, StoreError};
use redis_sessions::{RedisPoolConfig, RedisStore};
use redis_test_support::{RedisCluster, RedisServer};

const LONG: Duration = Duration::from_secs(60);

fn store(cluster: &RedisCluster) -> RedisStore {
    let config = RedisPoolConfig {
        cluster_nodes: cluster.nodes(),
        prefix: "cl:".into(),
        timeout: Duration::from_secs(2),
        ..RedisPoolConfig::default()
    };
    RedisStore::new(&config).expect("store")
}

fn record(value: &str) -> Record {
    Record {
        meta: Meta {
            created_ms: 1_000,
            touched_ms: 2_000,
        },
        fields: [("basket".to_owned(), Bytes::from(value.to_owned()))].into(),
    }
}

fn text(value: Value) -> String {
    match value {
        Value::BulkString(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Value::SimpleString(s) | Value::VerbatimString { text: s, .. } => s,
        Value::Okay => "OK".to_owned(),
        other => panic!("expected a string reply, got {other:?}"),
    }
}

fn int(value: Value) -> i64 {
    match value {
        Value::Int(i) => i,
        other => panic!("expected an integer reply, got {other:?}"),
    }
}

/// The index of the node serving `key` and that key's slot.
fn owner(cluster: &RedisCluster, key: &str) -> (usize, i64) {
    let slot = int(cluster.servers()[0].cmd(&["CLUSTER", "KEYSLOT", key]));
    let owner = cluster
        .servers()
        .iter()
        .position(|s| int(s.cmd(&["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()])) > 0)
        .expect("a node holds the key");
    (owner, slot)
}

fn node_id(server: &RedisServer) -> String {
    text(server.cmd(&["CLUSTER", "MYID"]))
}

/// Starts moving `slot` from node `from` to node `to` and moves `key` (its only key): the slot
/// is still `from`'s, which answers `ASK` for it now.
fn migrate_key(cluster: &RedisCluster, slot: i64, key: &str, from: usize, to: usize) {
    let nodes = cluster.servers();
    let slot = slot.to_string();
    let (from_id, to_id) = (node_id(&nodes[from]), node_id(&nodes[to]));
    nodes[to].cmd(&["CLUSTER", "SETSLOT", &slot, "IMPORTING", &from_id]);
    nodes[from].cmd(&["CLUSTER", "SETSLOT", &slot, "MIGRATING", &to_id]);
    let port = nodes[to].port().to_string();
    let moved = nodes[from].cmd(&["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS", key]);
    assert_eq!(text(moved), "OK", "MIGRATE of {key}");
}

/// Ends the move of `slot` to node `to` on every node: the others answer `MOVED` for it now.
fn assign_slot(cluster: &RedisCluster, slot: i64, to: usize) {
    let nodes = cluster.servers();
    let to_id = node_id(&nodes[to]);
    let slot = slot.to_string();
    nodes[to].cmd(&["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]);
    for (i, node) in nodes.iter().enumerate() {
        if i != to {
            node.cmd(&["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]);
        }
    }
}

async fn expect_found(store: &RedisStore, id: &StorageId, value: &str) {
    match store.load(id).await.expect("load") {
        Loaded::Found(found) => assert_eq!(found.fields, record(value).fields),
        other => panic!("expected the session, got {other:?}"),
    }
}

/// Sum over the nodes of an `INFO errorstats` counter (`errorstat_MOVED` ...).
fn errors(cluster: &RedisCluster, code: &str) -> u64 {
    let prefix = format!("errorstat_{code}:count=");
    cluster
        .servers()
        .iter()
        .map(|s| {
            text(s.cmd(&["INFO", "errorstats"]))
                .lines()
                .find_map(|l| l.strip_prefix(&prefix)?.split(',').next()?.parse().ok())
                .unwrap_or(0)
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_goes_straight_to_the_node_of_its_slot() {
    let cluster = RedisCluster::start(3);
    let store = store(&cluster);
    let mut ids = Vec::new();
    for i in 0..60 {
        let id = SessionId::generate().storage_id();
        store
            .create(&id, &record(&i.to_string()), LONG)
            .await
            .expect("create");
        ids.push(id);
    }
    for (i, id) in ids.iter().enumerate() {
        expect_found(&store, id, &i.to_string()).await;
    }
    let used: std::collections::HashSet<usize> = ids
        .iter()
        .map(|id| owner(&cluster, &store.session_key(id)).0)
        .collect();
    assert_eq!(
        used.len(),
        3,
        "60 sessions should spread over the 3 masters"
    );
    assert_eq!(
        errors(&cluster, "MOVED"),
        0,
        "a call was sent to the wrong node"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_follows_its_slot_to_another_node() {
    let cluster = RedisCluster::start(3);
    let store = store(&cluster);
    let id = SessionId::generate().storage_id();
    store
        .create(&id, &record("apple"), LONG)
        .await
        .expect("create");
    expect_found(&store, &id, "apple").await;

    let key = store.session_key(&id);
    let (from, slot) = owner(&cluster, &key);
    let to = (from + 1) % 3;
    migrate_key(&cluster, slot, &key, from, to);
    // The slot is still `from`'s, the key is on `to` already: `from` answers ASK.
    expect_found(&store, &id, "apple").await;
    assert!(
        errors(&cluster, "ASK") > 0,
        "the load should have met an ASK"
    );

    assign_slot(&cluster, slot, to);
    // The store's map still names `from`, which answers MOVED now.
    expect_found(&store, &id, "apple").await;
    assert!(
        errors(&cluster, "MOVED") > 0,
        "the load should have met a MOVED"
    );
    let moved_before = errors(&cluster, "MOVED");
    let fresh = redis_sessions::store::ChangeSet {
        set: [("basket".to_owned(), Bytes::from_static(b"pear"))].into(),
        removed: Vec::new(),
        meta: record("").meta,
        ttl: LONG,
        unlock: None,
        within_lifetime: true,
    };
    store.save(&id, &fresh).await.expect("save");
    expect_found(&store, &id, "pear").await;
    assert_eq!(
        owner(&cluster, &key).0,
        to,
        "the session stays on its new node"
    );
    assert_eq!(
        errors(&cluster, "MOVED"),
        moved_before,
        "after one MOVED the store knows the new node"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_replicas_ack_waits_for_the_replica_of_the_sessions_own_master() {
    let mut cluster = RedisCluster::start_with_replicas(3, 1);
    let config = RedisPoolConfig {
        cluster_nodes: cluster.nodes(),
        prefix: "cl:".into(),
        min_replicas_ack: 1,
        timeout: Duration::from_secs(1),
        ..RedisPoolConfig::default()
    };
    let store = RedisStore::new(&config).expect("store");
    let id = SessionId::generate().storage_id();
    store
        .create(&id, &record("apple"), LONG)
        .await
        .expect("acknowledged create");

    // Without the replica of this session's master, no write of it can be acknowledged, while
    // the other masters' replicas still could (a WAIT sent to another node would pass).
    let master = cluster.master_for_key(&store.session_key(&id));
    for replica in cluster.replicas_of(master) {
        cluster.kill_node(replica);
    }
    let changes = redis_sessions::store::ChangeSet {
        set: [("basket".to_owned(), Bytes::from_static(b"pear"))].into(),
        removed: Vec::new(),
        meta: record("").meta,
        ttl: LONG,
        unlock: None,
        within_lifetime: true,
    };
    // Several times: a WAIT sent to the nodes in turn would reach a healthy one at least once.
    for _ in 0..3 {
        let refused = store.save(&id, &changes).await;
        assert!(
            matches!(&refused, Err(StoreError::Unavailable(m)) if m.contains("min_replicas_ack")),
            "a save no replica acknowledged must fail, got {refused:?}"
        );
    }
    let other = loop {
        let other = SessionId::generate().storage_id();
        if cluster.master_for_key(&store.session_key(&other)) != master {
            break other;
        }
    };
    store
        .create(&other, &record("plum"), LONG)
        .await
        .expect("a session on another master");
}
