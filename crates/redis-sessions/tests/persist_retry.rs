//! What a persist leaves behind when it fails: after a store error everything it meant to do is
//! still pending (a retry does all of it); after `Gone` the session is dead (a retry writes
//! nothing and sends no cookie). Driven through the manager over a memory store wrapped in a
//! store that fails chosen calls on purpose.

use std::sync::Mutex;
use std::time::Duration;

use http::Request;
use redis_sessions::id::{StorageId, UserIndexId};
use redis_sessions::store::memory::MemoryStore;
use redis_sessions::store::{
    ChangeSet, EndOutcome, EndRequest, Loaded, LockToken, LockedLoad, Record, SaveOutcome,
    SessionStore, StoreError, StoreFuture,
};
use redis_sessions::{Config, SessionError, SessionId, SessionManager};

/// A memory store whose calls named in `fail` answer `Unavailable` (each name once). Clones
/// share one store.
#[derive(Default, Clone)]
struct FlakyStore(std::sync::Arc<Shared>);

#[derive(Default)]
struct Shared {
    inner: MemoryStore,
    fail: Mutex<Vec<&'static str>>,
    /// Before the next `create`, end every session in alice's index, as a "log out other
    /// sessions" of alice's that listed the index between a login's index write and its create.
    revoke_before_create: Mutex<bool>,
}

impl std::ops::Deref for FlakyStore {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl Shared {
    fn fail_next(&self, call: &'static str) {
        self.fail.lock().expect("lock").push(call);
    }

    fn check(&self, call: &'static str) -> Result<(), StoreError> {
        let mut fail = self.fail.lock().expect("lock");
        match fail.iter().position(|c| *c == call) {
            Some(at) => {
                fail.remove(at);
                Err(StoreError::Unavailable(format!("{call} failed on purpose")))
            }
            None => Ok(()),
        }
    }
}

impl SessionStore for FlakyStore {
    fn load<'a>(&'a self, id: &'a StorageId) -> StoreFuture<'a, Loaded> {
        Box::pin(async move {
            self.check("load")?;
            self.inner.load(id).await
        })
    }
    fn load_locked<'a>(
        &'a self,
        id: &'a StorageId,
        token: &'a LockToken,
        ttl: Duration,
    ) -> StoreFuture<'a, LockedLoad> {
        Box::pin(async move {
            self.check("load_locked")?;
            self.inner.load_locked(id, token, ttl).await
        })
    }
    fn create<'a>(
        &'a self,
        id: &'a StorageId,
        record: &'a Record,
        ttl: Duration,
    ) -> StoreFuture<'a, SaveOutcome> {
        Box::pin(async move {
            self.check("create")?;
            if std::mem::take(&mut *self.revoke_before_create.lock().expect("lock")) {
                let alice = UserIndexId::of_user("alice");
                for listed in self.inner.index_list(&alice).await? {
                    let revoke = EndRequest {
                        tombstone: Duration::from_secs(65),
                        lock: None,
                        require_lock: false,
                        successor: "",
                    };
                    self.inner.end(&listed, revoke).await?;
                }
            }
            self.inner.create(id, record, ttl).await
        })
    }
    fn save<'a>(
        &'a self,
        id: &'a StorageId,
        changes: &'a ChangeSet,
    ) -> StoreFuture<'a, SaveOutcome> {
        Box::pin(async move {
            self.check("save")?;
            self.inner.save(id, changes).await
        })
    }
    fn unlock<'a>(&'a self, id: &'a StorageId, token: &'a LockToken) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.check("unlock")?;
            self.inner.unlock(id, token).await
        })
    }
    fn end<'a>(
        &'a self,
        id: &'a StorageId,
        request: EndRequest<'a>,
    ) -> StoreFuture<'a, EndOutcome> {
        Box::pin(async move {
            self.check("end")?;
            self.inner.end(id, request).await
        })
    }
    fn take_fields<'a>(
        &'a self,
        id: &'a StorageId,
        fields: &'a [String],
    ) -> StoreFuture<'a, Vec<bool>> {
        Box::pin(async move {
            self.check("take_fields")?;
            self.inner.take_fields(id, fields).await
        })
    }
    fn index_add<'a>(
        &'a self,
        user: &'a UserIndexId,
        id: &'a StorageId,
        keep: Duration,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.check("index_add")?;
            self.inner.index_add(user, id, keep).await
        })
    }
    fn index_list<'a>(&'a self, user: &'a UserIndexId) -> StoreFuture<'a, Vec<StorageId>> {
        Box::pin(async move {
            self.check("index_list")?;
            self.inner.index_list(user).await
        })
    }
    fn index_remove<'a>(
        &'a self,
        user: &'a UserIndexId,
        ids: &'a [StorageId],
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.check("index_remove")?;
            self.inner.index_remove(user, ids).await
        })
    }
}

fn setup() -> (SessionManager, FlakyStore) {
    let store = FlakyStore::default();
    let manager = SessionManager::with_store(Config::default(), store.clone()).expect("manager");
    (manager, store)
}

fn request(cookie: Option<&str>) -> Request<()> {
    let mut builder = Request::builder().uri("/");
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", cookie);
    }
    builder.body(()).expect("request")
}

/// A stored session holding `n = 1`; its `dmsession=...` cookie.
async fn stored(manager: &SessionManager) -> String {
    let mut req = request(None);
    let session = manager.start(&mut req).await.expect("start");
    session.put("n", &1).expect("put");
    cookie_pair(&manager.persist_session(&req).await.expect("persist"))
}

/// The `dmsession=...` pair of a persist's `Set-Cookie`.
fn cookie_pair(persisted: &redis_sessions::Persisted) -> String {
    let header = persisted.set_cookie.as_ref().expect("a cookie");
    let text = header.to_str().expect("ascii");
    text.split(';').next().unwrap_or_default().to_owned()
}

/// Persisting `req` fails because the store could not be reached.
async fn persist_fails_with_the_store(manager: &SessionManager, req: &Request<()>) {
    let err = manager
        .persist_session(req)
        .await
        .expect_err("the store failed");
    assert!(matches!(err, SessionError::Store(_)), "{err}");
}

async fn read_n(manager: &SessionManager, cookie: &str) -> Option<i64> {
    let session = manager
        .start(&mut request(Some(cookie)))
        .await
        .expect("start");
    session.get::<i64>("n").expect("get")
}

#[tokio::test]
async fn a_destroy_whose_persist_failed_is_retried_by_the_next_persist() {
    let (manager, store) = setup();
    let cookie = stored(&manager).await;
    let mut req = request(Some(&cookie));
    manager.start(&mut req).await.expect("start").destroy();
    store.fail_next("end");
    persist_fails_with_the_store(&manager, &req).await;
    assert_eq!(
        read_n(&manager, &cookie).await,
        Some(1),
        "not destroyed yet"
    );
    let retried = manager.persist_session(&req).await.expect("retry");
    assert!(
        retried
            .set_cookie
            .as_ref()
            .is_some_and(|c| c.to_str().is_ok_and(|c| c.contains("Max-Age=0"))),
        "the retry removes the cookie: {retried:?}"
    );
    assert_eq!(
        read_n(&manager, &cookie).await,
        None,
        "the retry destroyed it"
    );
}

#[tokio::test]
async fn a_create_whose_persist_failed_is_retried_whole_by_the_next_persist() {
    let (manager, store) = setup();
    let mut req = request(None);
    let session = manager.start(&mut req).await.expect("start");
    session.put("n", &1).expect("put");
    session.put("m", &2).expect("put");
    store.fail_next("create");
    persist_fails_with_the_store(&manager, &req).await;
    assert!(session.is_new(), "nothing was stored");
    assert!(
        session.data().is_modified(),
        "the values are still to be written"
    );
    let retried = manager.persist_session(&req).await.expect("retry");
    let cookie = cookie_pair(&retried);
    let again = manager
        .start(&mut request(Some(&cookie)))
        .await
        .expect("start");
    assert_eq!(again.get::<i64>("n").expect("get"), Some(1));
    assert_eq!(again.get::<i64>("m").expect("get"), Some(2));
    assert!(
        !session.data().is_modified(),
        "the retry wrote everything: {:?}",
        session.data().keys().collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_rotation_whose_persist_failed_is_retried_by_the_next_persist() {
    let (manager, store) = setup();
    let old = stored(&manager).await;
    let mut req = request(Some(&old));
    let session = manager.start(&mut req).await.expect("start");
    session.rotate();
    store.fail_next("end");
    persist_fails_with_the_store(&manager, &req).await;
    let retried = manager.persist_session(&req).await.expect("retry");
    let new = cookie_pair(&retried);
    assert_ne!(new, old);
    assert_eq!(read_n(&manager, &old).await, None, "the old id is dead");
    assert_eq!(
        read_n(&manager, &new).await,
        Some(1),
        "the new id holds the data"
    );
}

#[tokio::test]
async fn a_locked_save_whose_persist_failed_keeps_the_lock_for_the_retry() {
    let (manager, store) = setup();
    let cookie = stored(&manager).await;
    let mut req = request(Some(&cookie));
    let session = manager.start_locked(&mut req).await.expect("start locked");
    session.put("n", &2).expect("put");
    store.fail_next("save");
    persist_fails_with_the_store(&manager, &req).await;
    let _ = manager
        .persist_session(&req)
        .await
        .expect("the retry saves under the lock it still holds");
    assert_eq!(read_n(&manager, &cookie).await, Some(2));
    let next = manager
        .start_locked(&mut request(Some(&cookie)))
        .await
        .expect("the retry released the lock");
    drop(next);
}

#[tokio::test]
async fn a_session_found_gone_stays_dead_for_the_rest_of_the_request() {
    let (manager, _store) = setup();
    let cookie = stored(&manager).await;
    let mut slow = request(Some(&cookie));
    let session = manager.start(&mut slow).await.expect("start");
    // Another request logs out meanwhile.
    let mut logout = request(Some(&cookie));
    manager.start(&mut logout).await.expect("start").destroy();
    let _ = manager.persist_session(&logout).await.expect("logout");

    session.put("n", &5).expect("put");
    let err = manager.persist_session(&slow).await.expect_err("gone");
    assert!(matches!(err, SessionError::Gone), "{err}");
    assert!(session.is_ended());
    let again = manager
        .persist_session(&slow)
        .await
        .expect("nothing left to write");
    assert!(
        again.set_cookie.is_none(),
        "no new session under a new id: {again:?}"
    );
    session.put("n", &6).expect("put");
    let err = manager
        .persist_session(&slow)
        .await
        .expect_err("still dead");
    assert!(matches!(err, SessionError::Gone), "{err}");
    assert_eq!(read_n(&manager, &cookie).await, None);
}

/// The storage ids in alice's index, and whether every live session of the store is among them.
async fn alice_index(store: &FlakyStore) -> Vec<redis_sessions::id::StorageId> {
    store
        .inner
        .index_list(&UserIndexId::of_user("alice"))
        .await
        .expect("list")
}

#[tokio::test]
async fn a_login_whose_index_entry_failed_creates_no_session_and_its_retry_is_indexed() {
    let (manager, store) = setup();
    let cookie = stored(&manager).await;
    let mut req = request(Some(&cookie));
    manager
        .start(&mut req)
        .await
        .expect("start")
        .bind_user("alice")
        .expect("bind");
    store.fail_next("index_add");
    persist_fails_with_the_store(&manager, &req).await;
    assert_eq!(
        store.inner.len(),
        1,
        "no new record without its index entry"
    );
    assert!(alice_index(&store).await.is_empty());
    assert_eq!(
        read_n(&manager, &cookie).await,
        Some(1),
        "the old id still works"
    );

    let login = cookie_pair(&manager.persist_session(&req).await.expect("retry"));
    let new = SessionId::parse(login.split_once('=').expect("pair").1).expect("id");
    assert_eq!(alice_index(&store).await, vec![new.storage_id()]);
    assert_eq!(read_n(&manager, &login).await, Some(1));
    assert_eq!(read_n(&manager, &cookie).await, None, "the old id is dead");
}

#[tokio::test]
async fn a_login_whose_record_failed_leaves_only_a_stale_index_entry() {
    let (manager, store) = setup();
    let mut req = request(None);
    let session = manager.start(&mut req).await.expect("start");
    session.put("n", &1).expect("put");
    session.bind_user("alice").expect("bind");
    store.fail_next("create");
    persist_fails_with_the_store(&manager, &req).await;
    // The entry went first: the index knows an id whose record was never written.
    assert_eq!(alice_index(&store).await.len(), 1);
    assert!(store.inner.is_empty());
    let listed = manager.user_sessions("alice", None).await.expect("list");
    assert!(
        listed.is_empty(),
        "a stale entry lists no session: {listed:?}"
    );
    // The retry (a new session gets a fresh id) enters the index before its record too; the
    // stale entry stays until its time passes.
    let login = cookie_pair(&manager.persist_session(&req).await.expect("retry"));
    let id = SessionId::parse(login.split_once('=').expect("pair").1).expect("id");
    assert!(alice_index(&store).await.contains(&id.storage_id()));
    let listed = manager.user_sessions("alice", None).await.expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].handle, id.storage_id().as_str());
}

#[tokio::test]
async fn a_login_whose_new_id_a_revoke_ended_first_answers_gone_and_keeps_the_old_session() {
    let (manager, store) = setup();
    let cookie = stored(&manager).await;
    let mut req = request(Some(&cookie));
    let session = manager.start_locked(&mut req).await.expect("start");
    session.bind_user("alice").expect("bind");
    *store.revoke_before_create.lock().expect("lock") = true;
    let err = manager
        .persist_session(&req)
        .await
        .expect_err("the new id was ended before its record was written");
    // Before the fix: a memory store wrote the record over the tombstone (a live session the
    // revoke had counted as ended), a Redis store answered 503 (WRONGTYPE as a store error).
    assert!(matches!(err, SessionError::Gone), "{err}");
    assert_eq!(store.inner.len(), 1, "no record for the revoked id");
    assert!(
        manager
            .user_sessions("alice", None)
            .await
            .expect("list")
            .is_empty(),
        "alice has no live session"
    );
    assert_eq!(
        read_n(&manager, &cookie).await,
        Some(1),
        "the old id still works"
    );
    let mut again = request(Some(&cookie));
    manager
        .start_locked(&mut again)
        .await
        .expect("the old session's lock was released");
}
