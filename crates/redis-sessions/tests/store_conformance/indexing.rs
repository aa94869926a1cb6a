//! Users' indexes in every store: entries are listed until their time passes, an entry only
//! moves later, removal removes, and indexes of different users are apart.

use std::time::Duration;

use redis_sessions::id::UserIndexId;
use redis_sessions::store::SessionStore;

use super::id;

pub(crate) async fn an_index_lists_its_entries_until_their_time_passes(store: &dyn SessionStore) {
    let alice = UserIndexId::of_user("alice");
    let bob = UserIndexId::of_user("bob");
    assert!(store.index_list(&alice).await.expect("list").is_empty());
    let (long, short) = (id(), id());
    store
        .index_add(&alice, &long, Duration::from_secs(60))
        .await
        .expect("add");
    store
        // Long enough that the listing below comes first even on a loaded machine.
        .index_add(&alice, &short, Duration::from_millis(1500))
        .await
        .expect("add");
    let mut listed = store.index_list(&alice).await.expect("list");
    listed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    let mut expected = vec![long, short];
    expected.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(listed, expected);
    assert!(
        store.index_list(&bob).await.expect("list").is_empty(),
        "users are apart"
    );
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(store.index_list(&alice).await.expect("list"), vec![long]);
}

pub(crate) async fn an_index_entry_only_moves_later(store: &dyn SessionStore) {
    let alice = UserIndexId::of_user("alice");
    let session = id();
    store
        .index_add(&alice, &session, Duration::from_secs(10))
        .await
        .expect("add");
    // A shorter keep (e.g. from a server whose TTL is cut by the absolute lifetime) must not
    // shorten an entry another write made longer.
    store
        .index_add(&alice, &session, Duration::from_millis(100))
        .await
        .expect("add");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(store.index_list(&alice).await.expect("list"), vec![session]);
}

pub(crate) async fn removed_index_entries_are_gone(store: &dyn SessionStore) {
    let alice = UserIndexId::of_user("alice");
    let (a, b) = (id(), id());
    for session in [&a, &b] {
        store
            .index_add(&alice, session, Duration::from_secs(60))
            .await
            .expect("add");
    }
    store
        .index_remove(&alice, std::slice::from_ref(&a))
        .await
        .expect("remove");
    assert_eq!(store.index_list(&alice).await.expect("list"), vec![b]);
    store.index_remove(&alice, &[b]).await.expect("remove");
    assert!(store.index_list(&alice).await.expect("list").is_empty());
}
