//! The first calls to a Redis Cluster must not fail because of which node the pool asked for
//! the slot map: a node that does not know every slot yet (being added, just restarted, or
//! asked while the Cluster forms) answers `CLUSTER SLOTS` with holes, and a map taken from it
//! would send every call for the missing slots to no one. The pool asks the other nodes
//! instead, and a slot without a master in its map makes it read the map again.

use std::time::Duration;

use bytes::Bytes;
use redis_sessions::id::SessionId;
use redis_sessions::store::{Loaded, Meta, Record, SessionStore, StoreError};
use redis_sessions::{RedisPoolConfig, RedisStore};
use redis_test_support::RedisCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_node_that_knows_no_slot_yet_does_not_fail_the_first_calls() {
    let cluster = RedisCluster::start(3);
    let newcomer = RedisCluster::unjoined_node();
    // The newcomer first, as a node list that names it before the others would.
    let mut nodes = vec![format!("127.0.0.1:{}", newcomer.port())];
    nodes.extend(cluster.nodes());
    let store = RedisStore::new(&RedisPoolConfig {
        cluster_nodes: nodes,
        prefix: "cl:".into(),
        timeout: Duration::from_secs(1),
        ..RedisPoolConfig::default()
    })
    .expect("store");
    let record = Record {
        meta: Meta {
            created_ms: 1_000,
            touched_ms: 2_000,
        },
        fields: [("basket".to_owned(), Bytes::from_static(b"apple"))].into(),
    };
    let mut failed = Vec::new();
    for _ in 0..20 {
        let id = SessionId::generate().storage_id();
        let created = store.create(&id, &record, Duration::from_secs(60)).await;
        let loaded = store.load(&id).await;
        if created.is_err() || !matches!(loaded, Ok(Loaded::Found(_))) {
            failed.push(format!("{created:?} / {loaded:?}"));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of 20 sessions failed: {}",
        failed.len(),
        failed.join("; ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_map_with_holes_is_read_again_until_every_slot_has_a_master() {
    let cluster = RedisCluster::start(3);
    let newcomer = RedisCluster::unjoined_node();
    // The newcomer is the only node the pool knows: its map has no master for any slot.
    let store = RedisStore::new(&RedisPoolConfig {
        cluster_nodes: vec![format!("127.0.0.1:{}", newcomer.port())],
        prefix: "cl:".into(),
        timeout: Duration::from_secs(1),
        ..RedisPoolConfig::default()
    })
    .expect("store");
    let record = Record {
        meta: Meta {
            created_ms: 1_000,
            touched_ms: 2_000,
        },
        fields: Vec::new(),
    };
    let id = SessionId::generate().storage_id();
    let started = std::time::Instant::now();
    let refused = store.create(&id, &record, Duration::from_secs(60)).await;
    assert!(
        matches!(&refused, Err(StoreError::Unavailable(m)) if m.contains("no master serves")),
        "{refused:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a bounded 503: {:?}",
        started.elapsed()
    );
    // Once it has joined and learnt the slots, the same pool serves every slot.
    cluster.join(&newcomer);
    for _ in 0..10 {
        let id = SessionId::generate().storage_id();
        store
            .create(&id, &record, Duration::from_secs(60))
            .await
            .expect("a create once the node knows every slot");
        assert!(matches!(store.load(&id).await, Ok(Loaded::Found(_))));
    }
}
