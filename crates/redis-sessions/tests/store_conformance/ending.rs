//! Ending records (destroy, rotation) and the session lock: tombstones, what `end` returns, and
//! whose lock may be released.

use std::time::Duration;

use redis_sessions::store::{
    EndOutcome, EndRequest, Loaded, LockToken, LockedLoad, SaveOutcome, SessionStore,
};

use super::{LONG, TOMBSTONE, changes, destroy, id, pairs, record, sorted, stored};

pub(crate) async fn end_returns_the_record_as_it_stood_and_leaves_it_ended(
    store: &dyn SessionStore,
) {
    let id = stored(store, &[("a", "1")]).await;
    let mut save = changes(&[("b", "2")], &[]);
    save.within_lifetime = true;
    store.save(&id, &save).await.expect("save");
    let ended = store.end(&id, destroy()).await.expect("end");
    let EndOutcome::Ended(record) = ended else {
        panic!("expected the record back, got {ended:?}");
    };
    assert_eq!(
        sorted(Loaded::Found(record)),
        pairs(&[("a", "1"), ("b", "2")]),
        "the write that landed before the end is in what end returns"
    );
    assert_eq!(store.load(&id).await.ok(), Some(Loaded::Ended));
    assert_eq!(
        store.end(&id, destroy()).await.ok(),
        Some(EndOutcome::NotLive),
        "a second end finds nothing live"
    );
}

pub(crate) async fn a_tombstone_expires_after_its_time(store: &dyn SessionStore) {
    let id = stored(store, &[("a", "1")]).await;
    let short = EndRequest {
        tombstone: Duration::from_millis(200),
        ..destroy()
    };
    store.end(&id, short).await.expect("end");
    assert_eq!(store.load(&id).await.ok(), Some(Loaded::Ended));
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(store.load(&id).await.ok(), Some(Loaded::Missing));
}

pub(crate) async fn a_retried_rotation_gets_the_first_answer_again(store: &dyn SessionStore) {
    let id = stored(store, &[("a", "1")]).await;
    let rotation = EndRequest {
        successor: "successor-storage-id",
        ..destroy()
    };
    let first = store.end(&id, rotation).await.expect("end");
    assert!(matches!(first, EndOutcome::Ended(_)), "{first:?}");
    assert_eq!(
        store.end(&id, rotation).await.ok(),
        Some(first),
        "a retry (its first reply lost) gets the record the first end read, to carry it over"
    );
    assert_eq!(store.load(&id).await.ok(), Some(Loaded::Ended));
    let other = EndRequest {
        successor: "another-successor",
        ..destroy()
    };
    assert_eq!(store.end(&id, other).await.ok(), Some(EndOutcome::NotLive));

    // A rotation that found nothing live finds nothing on its retry either.
    let gone = stored(store, &[("a", "1")]).await;
    store.end(&gone, destroy()).await.expect("destroy");
    assert_eq!(
        store.end(&gone, rotation).await.ok(),
        Some(EndOutcome::NotLive)
    );
    assert_eq!(
        store.end(&gone, rotation).await.ok(),
        Some(EndOutcome::NotLive),
        "a retry does not find a record the first end did not"
    );
}

pub(crate) async fn a_locked_end_whose_lock_was_lost_changes_nothing(store: &dyn SessionStore) {
    let id = stored(store, &[("a", "1")]).await;
    let (mine, theirs) = (LockToken("mine".into()), LockToken("theirs".into()));
    store.load_locked(&id, &theirs, LONG).await.expect("lock");
    let locked = EndRequest {
        lock: Some(&mine),
        require_lock: true,
        successor: "next",
        ..destroy()
    };
    assert_eq!(
        store.end(&id, locked).await.ok(),
        Some(EndOutcome::LockLost)
    );
    assert_eq!(
        sorted(store.load(&id).await.expect("load")),
        pairs(&[("a", "1")]),
        "the record is untouched"
    );
    assert_eq!(
        store.load_locked(&id, &mine, LONG).await.ok(),
        Some(LockedLoad::Busy),
        "their lock is untouched"
    );
}

pub(crate) async fn a_destroy_releases_only_its_own_lock(store: &dyn SessionStore) {
    let (a, b) = (id(), id());
    for id in [&a, &b] {
        store
            .create(id, &record(&[("a", "1")]), LONG)
            .await
            .expect("create");
    }
    let (mine, theirs) = (LockToken("mine".into()), LockToken("theirs".into()));
    store.load_locked(&a, &mine, LONG).await.expect("lock");
    let own = EndRequest {
        lock: Some(&mine),
        ..destroy()
    };
    assert!(matches!(store.end(&a, own).await, Ok(EndOutcome::Ended(_))));
    assert_eq!(
        store.load_locked(&a, &theirs, LONG).await.ok(),
        Some(LockedLoad::Acquired(Loaded::Ended)),
        "its own lock went with the record"
    );
    store.load_locked(&b, &theirs, LONG).await.expect("lock");
    assert!(matches!(
        store.end(&b, destroy()).await,
        Ok(EndOutcome::Ended(_))
    ));
    assert_eq!(
        store.load_locked(&b, &mine, LONG).await.ok(),
        Some(LockedLoad::Busy),
        "a destroy without the lock leaves the holder's lock alone"
    );
}

pub(crate) async fn the_lock_admits_one_holder_and_only_its_owner_releases_it(
    store: &dyn SessionStore,
) {
    let id = stored(store, &[("a", "1")]).await;
    let (mine, theirs) = (LockToken("mine".into()), LockToken("theirs".into()));
    let got = store.load_locked(&id, &mine, LONG).await.expect("lock");
    assert!(matches!(got, LockedLoad::Acquired(Loaded::Found(_))));
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
        matches!(got, LockedLoad::Acquired(Loaded::Found(_))),
        "the save released the lock"
    );
}

pub(crate) async fn a_save_whose_lock_expired_writes_nothing(store: &dyn SessionStore) {
    let id = stored(store, &[("a", "1")]).await;
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

pub(crate) async fn the_tombstone_outlives_the_lock_of_an_ended_record(store: &dyn SessionStore) {
    let id = stored(store, &[("a", "1")]).await;
    let ended = EndRequest {
        tombstone: TOMBSTONE,
        ..destroy()
    };
    store.end(&id, ended).await.expect("end");
    let got = store
        .load_locked(&id, &LockToken("u".into()), LONG)
        .await
        .expect("lock");
    assert_eq!(got, LockedLoad::Acquired(Loaded::Ended));
}

/// A login writes its new id's index entry before the record; a revoke that listed it ends the
/// id first: the create then writes nothing and says so.
pub(crate) async fn a_create_never_revives_an_id_ended_before_it(store: &dyn SessionStore) {
    let id = id();
    let ended = store.end(&id, destroy()).await.expect("end");
    assert_eq!(ended, EndOutcome::NotLive);
    let created = store.create(&id, &record(&[("a", "1")]), LONG).await;
    assert_eq!(created.ok(), Some(SaveOutcome::Gone));
    assert_eq!(store.load(&id).await.ok(), Some(Loaded::Ended));
}
