//! One specification for every store: memory, Redis standalone and Redis Cluster run the same
//! tests (a macro over a store constructor), so code tested on one behaves the same on another.
//! The Cluster has a replica per master that acknowledges every write (`min_replicas_ack`).
//! The cases are in `saving.rs` (load, create, save on both save paths, TTLs, taking fields) and `ending.rs`
//! (end, tombstones, the lock), `indexing.rs` (users' indexes of sessions). `secured.rs` builds the Redis stores behind TLS, mutual TLS and a
//! limited ACL user (single server and Cluster); `sentinel_store.rs` reaches the master through
//! Redis Sentinel.

mod ending;
mod indexing;
mod saving;
mod secured;
mod sentinel_store;

use ending::*;
use indexing::*;
use saving::*;
use secured::{
    acl_cluster_store, acl_store, mtls_acl_cluster_store, mtls_store, tls_cluster_store, tls_store,
};
use sentinel_store::sentinel_store;

use std::time::Duration;

use bytes::Bytes;
use redis_sessions::id::{SessionId, StorageId};
use redis_sessions::store::memory::MemoryStore;
use redis_sessions::store::{ChangeSet, EndRequest, Loaded, Meta, Record, SessionStore};
use redis_sessions::{RedisPoolConfig, RedisStore};
use redis_test_support::{RedisCluster, RedisServer};

pub(crate) const META: Meta = Meta {
    created_ms: 1_000,
    touched_ms: 2_000,
};
pub(crate) const LONG: Duration = Duration::from_secs(60);

pub(crate) fn id() -> StorageId {
    SessionId::generate().storage_id()
}

pub(crate) fn record(fields: &[(&str, &str)]) -> Record {
    Record {
        meta: META,
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Bytes::from(v.to_string())))
            .collect(),
    }
}

pub(crate) fn changes(set: &[(&str, &str)], removed: &[&str]) -> ChangeSet {
    ChangeSet {
        set: set
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Bytes::from(v.to_string())))
            .collect(),
        removed: removed.iter().map(|k| (*k).to_owned()).collect(),
        meta: Meta {
            created_ms: 1_000,
            touched_ms: 3_000,
        },
        ttl: LONG,
        unlock: None,
        within_lifetime: false,
    }
}

/// How long `delete` keeps a tombstone in these tests.
pub(crate) const TOMBSTONE: Duration = Duration::from_secs(60);

/// A new record holding `fields`, with a long TTL; its id.
pub(crate) async fn stored(store: &dyn SessionStore, fields: &[(&str, &str)]) -> StorageId {
    let id = id();
    store
        .create(&id, &record(fields), LONG)
        .await
        .expect("create");
    id
}

/// An `end` of a destroy: no lock, no successor.
pub(crate) fn destroy() -> EndRequest<'static> {
    EndRequest {
        tombstone: TOMBSTONE,
        lock: None,
        require_lock: false,
        successor: "",
    }
}

pub(crate) fn sorted(loaded: Loaded) -> Vec<(String, String)> {
    let mut fields: Vec<_> = loaded
        .record()
        .map(|r| r.fields)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    fields.sort();
    fields
}

pub(crate) fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

macro_rules! conformance {
    ($module:ident, $make:expr) => {
        mod $module {
            use super::*;

            conformance!(@tests $make;
                unknown_id_loads_nothing,
                created_record_loads_back_whole,
                save_writes_only_the_given_fields,
                a_plain_save_writes_only_the_given_fields,
                save_never_recreates_an_ended_record,
                a_plain_save_never_recreates_an_ended_record,
                records_expire_after_their_ttl,
                save_refreshes_the_ttl,
                a_plain_save_refreshes_the_ttl,
                a_plain_save_sets_the_ttl_it_is_given,
                a_save_of_thousands_of_fields_works_on_the_atomic_path,
                take_fields_takes_each_field_once,
                end_returns_the_record_as_it_stood_and_leaves_it_ended,
                a_create_never_revives_an_id_ended_before_it,
                a_tombstone_expires_after_its_time,
                a_retried_rotation_gets_the_first_answer_again,
                a_locked_end_whose_lock_was_lost_changes_nothing,
                a_destroy_releases_only_its_own_lock,
                the_lock_admits_one_holder_and_only_its_owner_releases_it,
                a_save_whose_lock_expired_writes_nothing,
                the_tombstone_outlives_the_lock_of_an_ended_record,
                an_index_lists_its_entries_until_their_time_passes,
                an_index_entry_only_moves_later,
                removed_index_entries_are_gone,
            );
        }
    };
    (@tests $make:expr; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                // `_server` keeps the Redis process(es) alive until the test ends.
                let (store, _server) = $make;
                super::$test(&store).await;
            }
        )*
    };
}

fn redis_store() -> (RedisStore, RedisServer) {
    let server = RedisServer::start();
    let config = RedisPoolConfig {
        port: server.port(),
        pool_size: 2,
        ..RedisPoolConfig::default()
    };
    (RedisStore::new(&config).expect("store"), server)
}

/// A Cluster of 3 masters with a replica each, every write acknowledged by the replica.
fn cluster_store() -> (RedisStore, RedisCluster) {
    let cluster = RedisCluster::start_with_replicas(3, 1);
    let config = RedisPoolConfig {
        cluster_nodes: cluster.nodes(),
        min_replicas_ack: 1,
        timeout: Duration::from_secs(2),
        ..RedisPoolConfig::default()
    };
    (RedisStore::new(&config).expect("store"), cluster)
}

conformance!(memory, (MemoryStore::default(), ()));
conformance!(redis_standalone, redis_store());
conformance!(redis_cluster, cluster_store());
conformance!(redis_sentinel, sentinel_store());
conformance!(redis_tls, tls_store());
conformance!(redis_mtls, mtls_store());
conformance!(redis_acl, acl_store());
conformance!(redis_acl_cluster, acl_cluster_store());
conformance!(redis_tls_cluster, tls_cluster_store());
conformance!(redis_mtls_acl_cluster, mtls_acl_cluster_store());
