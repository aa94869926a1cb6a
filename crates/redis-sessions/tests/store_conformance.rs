//! One specification for every store: memory, Redis standalone and Redis Cluster run the same
//! tests (a macro over a store constructor), so code tested on one behaves the same on another.

use std::time::Duration;

use bytes::Bytes;
use redis_sessions::id::{SessionId, StorageId};
use redis_sessions::store::memory::MemoryStore;
use redis_sessions::store::{
    ChangeSet, LockToken, LockedLoad, Meta, Record, SaveOutcome, SessionStore,
};
use redis_sessions::{RedisPoolConfig, RedisStore};
use redis_test_support::{RedisCluster, RedisServer};

const META: Meta = Meta {
    created_ms: 1_000,
    touched_ms: 2_000,
};
const LONG: Duration = Duration::from_secs(60);

fn id() -> StorageId {
    SessionId::generate().storage_id()
}

fn record(fields: &[(&str, &str)]) -> Record {
    Record {
        meta: META,
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Bytes::from(v.to_string())))
            .collect(),
    }
}

fn changes(set: &[(&str, &str)], removed: &[&str]) -> ChangeSet {
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
const TOMBSTONE: Duration = Duration::from_secs(60);

fn sorted(record: Option<Record>) -> Vec<(String, String)> {
    let mut fields: Vec<_> = record
        .map(|r| r.fields)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    fields.sort();
    fields
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn unknown_id_loads_nothing(store: &dyn SessionStore) {
    assert_eq!(store.load(&id()).await.ok(), Some(None));
}

async fn created_record_loads_back_whole(store: &dyn SessionStore) {
    let id = id();
    store
        .create(&id, &record(&[("a", "1"), ("b", "2")]), LONG)
        .await
        .expect("create");
    let loaded = store.load(&id).await.expect("load");
    assert_eq!(loaded.as_ref().map(|r| r.meta), Some(META));
    assert_eq!(sorted(loaded), pairs(&[("a", "1"), ("b", "2")]));
}

async fn save_writes_only_the_given_fields(store: &dyn SessionStore) {
    let id = id();
    store
        .create(&id, &record(&[("a", "1"), ("b", "2"), ("c", "3")]), LONG)
        .await
        .expect("create");
    // Two saves from two requests that each loaded the original record.
    let first = store
        .save(&id, &changes(&[("a", "10")], &[]))
        .await
        .expect("save");
    let second = store
        .save(&id, &changes(&[("b", "20")], &["c"]))
        .await
        .expect("save");
    assert_eq!((first, second), (SaveOutcome::Saved, SaveOutcome::Saved));
    let loaded = store.load(&id).await.expect("load");
    assert_eq!(loaded.as_ref().map(|r| r.meta.touched_ms), Some(3_000));
    assert_eq!(sorted(loaded), pairs(&[("a", "10"), ("b", "20")]));
}

async fn save_never_recreates_a_deleted_record(store: &dyn SessionStore) {
    let id = id();
    store
        .create(&id, &record(&[("a", "1")]), LONG)
        .await
        .expect("create");
    assert!(store.delete(&id, TOMBSTONE).await.expect("delete"));
    assert!(
        !store.delete(&id, TOMBSTONE).await.expect("delete again"),
        "second delete finds nothing"
    );
    let outcome = store
        .save(&id, &changes(&[("a", "2")], &[]))
        .await
        .expect("save");
    assert_eq!(outcome, SaveOutcome::Gone);
    assert_eq!(store.load(&id).await.ok(), Some(None));
}

async fn a_save_trusting_the_lifetime_still_never_recreates_a_deleted_record(
    store: &dyn SessionStore,
) {
    let id = id();
    store
        .create(&id, &record(&[("a", "1")]), LONG)
        .await
        .expect("create");
    assert!(store.delete(&id, TOMBSTONE).await.expect("delete"));
    let mut save = changes(&[("a", "2")], &["b"]);
    save.within_lifetime = true;
    assert_eq!(store.save(&id, &save).await.ok(), Some(SaveOutcome::Gone));
    assert_eq!(store.load(&id).await.ok(), Some(None));
    assert!(!store.delete(&id, TOMBSTONE).await.expect("delete again"));
}

async fn a_save_trusting_the_lifetime_writes_only_the_given_fields(store: &dyn SessionStore) {
    let id = id();
    store
        .create(&id, &record(&[("a", "1"), ("b", "2"), ("c", "3")]), LONG)
        .await
        .expect("create");
    let mut save = changes(&[("a", "10")], &["c"]);
    save.within_lifetime = true;
    assert_eq!(store.save(&id, &save).await.ok(), Some(SaveOutcome::Saved));
    assert_eq!(
        sorted(store.load(&id).await.expect("load")),
        pairs(&[("a", "10"), ("b", "2")])
    );
}

async fn records_expire_after_their_ttl(store: &dyn SessionStore) {
    let id = id();
    store
        .create(&id, &record(&[("a", "1")]), Duration::from_millis(300))
        .await
        .expect("create");
    assert!(store.load(&id).await.expect("load").is_some());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(store.load(&id).await.ok(), Some(None));
    let outcome = store
        .save(&id, &changes(&[("a", "2")], &[]))
        .await
        .expect("save");
    assert_eq!(
        outcome,
        SaveOutcome::Gone,
        "an expired record is not brought back"
    );
}

async fn save_refreshes_the_ttl(store: &dyn SessionStore) {
    let id = id();
    store
        .create(&id, &record(&[("a", "1")]), Duration::from_millis(400))
        .await
        .expect("create");
    tokio::time::sleep(Duration::from_millis(250)).await;
    store.save(&id, &changes(&[], &[])).await.expect("touch");
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(
        store.load(&id).await.expect("load").is_some(),
        "touch extended the TTL"
    );
}

async fn the_lock_admits_one_holder_and_only_its_owner_releases_it(store: &dyn SessionStore) {
    let id = id();
    store
        .create(&id, &record(&[("a", "1")]), LONG)
        .await
        .expect("create");
    let (mine, theirs) = (LockToken("mine".into()), LockToken("theirs".into()));
    let got = store.load_locked(&id, &mine, LONG).await.expect("lock");
    assert!(matches!(got, LockedLoad::Acquired(Some(_))));
    assert_eq!(
        store.load_locked(&id, &theirs, LONG).await.ok(),
        Some(LockedLoad::Busy)
    );
    store.unlock(&id, &theirs).await.expect("foreign unlock");
    assert_eq!(
        store.load_locked(&id, &theirs, LONG).await.ok(),
        Some(LockedLoad::Busy)
    );
    let mut save = changes(&[("a", "2")], &[]);
    save.unlock = Some(mine);
    assert_eq!(store.save(&id, &save).await.ok(), Some(SaveOutcome::Saved));
    let got = store
        .load_locked(&id, &theirs, LONG)
        .await
        .expect("lock after release");
    assert!(
        matches!(got, LockedLoad::Acquired(Some(_))),
        "the save released the lock"
    );
}

async fn a_save_whose_lock_expired_writes_nothing(store: &dyn SessionStore) {
    let id = id();
    store
        .create(&id, &record(&[("a", "1")]), LONG)
        .await
        .expect("create");
    let mine = LockToken("mine".into());
    store
        .load_locked(&id, &mine, Duration::from_millis(100))
        .await
        .expect("lock");
    tokio::time::sleep(Duration::from_millis(250)).await;
    let other = LockToken("other".into());
    store
        .load_locked(&id, &other, LONG)
        .await
        .expect("lock by other");
    let mut save = changes(&[("a", "2")], &[]);
    save.unlock = Some(mine);
    assert_eq!(
        store.save(&id, &save).await.ok(),
        Some(SaveOutcome::LockLost)
    );
    assert_eq!(
        sorted(store.load(&id).await.expect("load")),
        pairs(&[("a", "1")])
    );
}

async fn delete_removes_the_lock_too(store: &dyn SessionStore) {
    let id = id();
    store
        .create(&id, &record(&[("a", "1")]), LONG)
        .await
        .expect("create");
    store
        .load_locked(&id, &LockToken("t".into()), LONG)
        .await
        .expect("lock");
    assert!(store.delete(&id, TOMBSTONE).await.expect("delete"));
    let got = store
        .load_locked(&id, &LockToken("u".into()), LONG)
        .await
        .expect("lock");
    assert_eq!(got, LockedLoad::Acquired(None));
}

macro_rules! conformance {
    ($module:ident, $make:expr) => {
        mod $module {
            use super::*;

            conformance!(@tests $make;
                unknown_id_loads_nothing,
                created_record_loads_back_whole,
                save_writes_only_the_given_fields,
                save_never_recreates_a_deleted_record,
                a_save_trusting_the_lifetime_still_never_recreates_a_deleted_record,
                a_save_trusting_the_lifetime_writes_only_the_given_fields,
                records_expire_after_their_ttl,
                save_refreshes_the_ttl,
                the_lock_admits_one_holder_and_only_its_owner_releases_it,
                a_save_whose_lock_expired_writes_nothing,
                delete_removes_the_lock_too,
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

fn cluster_store() -> (RedisStore, RedisCluster) {
    let cluster = RedisCluster::start(3);
    let config = RedisPoolConfig {
        cluster_nodes: cluster.nodes(),
        timeout: Duration::from_secs(2),
        ..RedisPoolConfig::default()
    };
    (RedisStore::new(&config).expect("store"), cluster)
}

conformance!(memory, (MemoryStore::default(), ()));
conformance!(redis_standalone, redis_store());
conformance!(redis_cluster, cluster_store());
