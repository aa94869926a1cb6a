//! A rotation (login) retried after a store call that *ran* but whose reply was lost (a timeout
//! after Redis did the work) ends exactly as a first-time rotation would have: the writes that
//! other requests were answered `200` for before the old id ended are carried over to the new
//! id, and a session that was logged out meanwhile does not come back under the new id.
//!
//! The lost reply is written on purpose: a store wrapper whose chosen call runs on the real store
//! and then answers `Unavailable`, as the Redis store does when its timeout fires after Redis
//! ran the command. Every case runs on the memory store, on a real Redis server in the native
//! layout and in the PHP framework's layout (`format = resonance`), since each keeps what a
//! rotation's `end` read in its own way.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Request;
use redis_sessions::id::{StorageId, UserIndexId};
use redis_sessions::store::memory::MemoryStore;
use redis_sessions::store::{
    ChangeSet, EndOutcome, EndRequest, Loaded, LockToken, LockedLoad, Record, SaveOutcome,
    SessionStore, StoreError, StoreFuture, redis::ResonanceStore,
};
use redis_sessions::{
    Config, RedisPoolConfig, RedisStore, SessionError, SessionFormat, SessionManager,
};
use redis_test_support::RedisServer;

/// A store whose calls named in `lose` run and then answer `Unavailable` (each name once), as
/// if the reply had been lost on its way back. Clones share one store.
#[derive(Clone)]
struct LostReplies {
    inner: Arc<dyn SessionStore>,
    lose: Arc<Mutex<Vec<&'static str>>>,
    /// Every id a record was created under, in order.
    created: Arc<Mutex<Vec<StorageId>>>,
}

impl LostReplies {
    fn new(inner: impl SessionStore) -> Self {
        Self {
            inner: Arc::new(inner),
            lose: Arc::default(),
            created: Arc::default(),
        }
    }

    /// The next `call` runs on the store, and its caller gets a timeout instead of the reply.
    fn lose_next_reply(&self, call: &'static str) {
        self.lose.lock().expect("lock").push(call);
    }

    /// `result`, or a timeout if `call`'s reply is to be lost.
    fn answer<T>(
        &self,
        call: &'static str,
        result: Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut lose = self.lose.lock().expect("lock");
        match lose.iter().position(|c| *c == call) {
            Some(at) => {
                lose.remove(at);
                Err(StoreError::Unavailable(format!(
                    "{call} ran, but its reply was lost (on purpose)"
                )))
            }
            None => result,
        }
    }
}

impl SessionStore for LostReplies {
    fn load<'a>(&'a self, id: &'a StorageId) -> StoreFuture<'a, Loaded> {
        Box::pin(async move { self.answer("load", self.inner.load(id).await) })
    }
    fn load_locked<'a>(
        &'a self,
        id: &'a StorageId,
        token: &'a LockToken,
        ttl: Duration,
    ) -> StoreFuture<'a, LockedLoad> {
        Box::pin(async move {
            let result = self.inner.load_locked(id, token, ttl).await;
            self.answer("load_locked", result)
        })
    }
    fn create<'a>(
        &'a self,
        id: &'a StorageId,
        record: &'a Record,
        ttl: Duration,
    ) -> StoreFuture<'a, SaveOutcome> {
        self.created.lock().expect("lock").push(id.clone());
        Box::pin(async move { self.answer("create", self.inner.create(id, record, ttl).await) })
    }
    fn save<'a>(
        &'a self,
        id: &'a StorageId,
        changes: &'a ChangeSet,
    ) -> StoreFuture<'a, SaveOutcome> {
        Box::pin(async move { self.answer("save", self.inner.save(id, changes).await) })
    }
    fn unlock<'a>(&'a self, id: &'a StorageId, token: &'a LockToken) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.answer("unlock", self.inner.unlock(id, token).await) })
    }
    fn end<'a>(
        &'a self,
        id: &'a StorageId,
        request: EndRequest<'a>,
    ) -> StoreFuture<'a, EndOutcome> {
        Box::pin(async move { self.answer("end", self.inner.end(id, request).await) })
    }
    fn take_fields<'a>(
        &'a self,
        id: &'a StorageId,
        fields: &'a [String],
    ) -> StoreFuture<'a, Vec<bool>> {
        Box::pin(
            async move { self.answer("take_fields", self.inner.take_fields(id, fields).await) },
        )
    }
    fn index_add<'a>(
        &'a self,
        user: &'a UserIndexId,
        id: &'a StorageId,
        keep: Duration,
    ) -> StoreFuture<'a, ()> {
        Box::pin(
            async move { self.answer("index_add", self.inner.index_add(user, id, keep).await) },
        )
    }
    fn index_list<'a>(&'a self, user: &'a UserIndexId) -> StoreFuture<'a, Vec<StorageId>> {
        Box::pin(async move { self.answer("index_list", self.inner.index_list(user).await) })
    }
    fn index_remove<'a>(
        &'a self,
        user: &'a UserIndexId,
        ids: &'a [StorageId],
    ) -> StoreFuture<'a, ()> {
        Box::pin(
            async move { self.answer("index_remove", self.inner.index_remove(user, ids).await) },
        )
    }
}

/// Which store a case runs on.
#[derive(Clone, Copy, Debug)]
enum Backend {
    Memory,
    Redis,
    Resonance,
}

/// A manager over `backend` wrapped in [`LostReplies`]; `_server` keeps Redis running.
struct Setup {
    manager: SessionManager,
    store: LostReplies,
    _server: Option<RedisServer>,
}

fn setup(backend: Backend) -> Setup {
    let mut config = Config::default();
    let (store, server) = match backend {
        Backend::Memory => (LostReplies::new(MemoryStore::default()), None),
        Backend::Redis | Backend::Resonance => {
            let server = RedisServer::start();
            let pool = RedisPoolConfig {
                port: server.port(),
                timeout: Duration::from_secs(1),
                ..RedisPoolConfig::default()
            };
            let store = if matches!(backend, Backend::Resonance) {
                config.session.format = SessionFormat::Resonance;
                LostReplies::new(ResonanceStore::new(&pool).expect("store"))
            } else {
                LostReplies::new(RedisStore::new(&pool).expect("store"))
            };
            (store, Some(server))
        }
    };
    let manager = SessionManager::with_store(config, store.clone()).expect("manager");
    Setup {
        manager,
        store,
        _server: server,
    }
}

fn request(cookie: Option<&str>) -> Request<()> {
    let mut builder = Request::builder().uri("/");
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", cookie);
    }
    builder.body(()).expect("request")
}

/// The `name=value` pair of a persist's `Set-Cookie`.
fn cookie_pair(persisted: &redis_sessions::Persisted) -> String {
    let header = persisted.set_cookie.as_ref().expect("a cookie");
    let text = header.to_str().expect("ascii");
    text.split(';').next().unwrap_or_default().to_owned()
}

/// A stored session holding `n = 1`; its cookie.
async fn stored(manager: &SessionManager) -> String {
    let mut req = request(None);
    let session = manager.start(&mut req).await.expect("start");
    session.put("n", &1).expect("put");
    cookie_pair(&manager.persist_session(&req).await.expect("persist"))
}

/// Another tab writes `n = 5` and `cart = "book"` to the session and is answered (persisted).
async fn other_tab_writes(manager: &SessionManager, cookie: &str) {
    let mut req = request(Some(cookie));
    let session = manager.start(&mut req).await.expect("start");
    session.put("n", &5).expect("put");
    session.put("cart", &"book").expect("put");
    let _ = manager
        .persist_session(&req)
        .await
        .expect("the other tab's write is acknowledged");
}

/// What the session under `cookie` holds: `n`, `cart`, `login` (`None` for a dead session).
async fn contents(
    manager: &SessionManager,
    cookie: &str,
) -> Option<(Option<i64>, Option<String>, Option<String>)> {
    let session = manager
        .start(&mut request(Some(cookie)))
        .await
        .expect("start");
    if session.is_new() {
        return None;
    }
    Some((
        session.get("n").expect("n"),
        session.get("cart").expect("cart"),
        session.get("login").expect("login"),
    ))
}

/// Logs in on `cookie` (puts `login`, rotates), locked or not, while another tab writes after
/// this request loaded the session; the persist loses the reply of `lost`'s first call, then is
/// retried. Returns the new cookie.
async fn login_with_a_lost_reply(
    setup: &Setup,
    cookie: &str,
    locked: bool,
    lost: &'static str,
) -> String {
    let Setup { manager, store, .. } = setup;
    let mut req = request(Some(cookie));
    let session = if locked {
        manager.start_locked(&mut req).await.expect("start locked")
    } else {
        manager.start(&mut req).await.expect("start")
    };
    // The other tab's write lands after this request loaded the session (an unlocked write
    // does not wait for the lock).
    other_tab_writes(manager, cookie).await;
    session.put("login", &"alice").expect("put");
    session.rotate();
    store.lose_next_reply(lost);
    let err = manager
        .persist_session(&req)
        .await
        .expect_err("the lost reply fails the first persist");
    assert!(matches!(err, SessionError::Store(_)), "{err}");
    let retried = manager.persist_session(&req).await.expect("the retry");
    let new = cookie_pair(&retried);
    assert_ne!(new, cookie, "the retry rotated");
    new
}

async fn a_retried_rotation_keeps_the_write_its_first_end_read(backend: Backend, locked: bool) {
    let setup = setup(backend);
    let old = stored(&setup.manager).await;
    let new = login_with_a_lost_reply(&setup, &old, locked, "end").await;
    assert_eq!(
        contents(&setup.manager, &new).await,
        Some((Some(5), Some("book".into()), Some("alice".into()))),
        "{backend:?}, locked: {locked}: the new id holds the other tab's acknowledged write \
         (n = 5, cart) and the login"
    );
    assert_eq!(
        contents(&setup.manager, &old).await,
        None,
        "the old id is dead"
    );
}

async fn a_retried_rotation_keeps_a_carry_over_whose_save_reply_was_lost(backend: Backend) {
    let setup = setup(backend);
    let old = stored(&setup.manager).await;
    let new = login_with_a_lost_reply(&setup, &old, false, "save").await;
    assert_eq!(
        contents(&setup.manager, &new).await,
        Some((Some(5), Some("book".into()), Some("alice".into()))),
        "{backend:?}: re-creating the new record on the retry did not undo the carry-over"
    );
}

async fn a_retried_rotation_of_a_session_logged_out_meanwhile_brings_nothing_back(
    backend: Backend,
) {
    let Setup { manager, store, .. } = &setup(backend);
    let old = stored(manager).await;
    let mut login = request(Some(&old));
    let session = manager.start(&mut login).await.expect("start");
    // Another tab logs out before the login's end.
    let mut logout = request(Some(&old));
    manager.start(&mut logout).await.expect("start").destroy();
    let _ = manager.persist_session(&logout).await.expect("logout");
    session.put("login", &"alice").expect("put");
    session.rotate();
    store.lose_next_reply("end");
    let err = manager
        .persist_session(&login)
        .await
        .expect_err("lost reply");
    assert!(matches!(err, SessionError::Store(_)), "{err}");
    let retried = manager.persist_session(&login).await;
    assert!(
        matches!(retried, Err(SessionError::Gone)),
        "{backend:?}: the retry ends as the first try would have, on a session that ended: \
         {retried:?}"
    );
    let new = store
        .created
        .lock()
        .expect("lock")
        .last()
        .cloned()
        .expect("a new record");
    let found = store.inner.load(&new).await.expect("load");
    assert!(
        !matches!(found, Loaded::Found(_)),
        "{backend:?}: the logged-out session is not alive under the new id: {found:?}"
    );
}

/// The sibling on the destroy path: a logout whose `end` ran but whose reply was lost ends the
/// session on its retry and removes the cookie.
async fn a_retried_destroy_whose_reply_was_lost_ends_the_session(backend: Backend) {
    let Setup { manager, store, .. } = &setup(backend);
    let cookie = stored(manager).await;
    let mut req = request(Some(&cookie));
    manager.start(&mut req).await.expect("start").destroy();
    store.lose_next_reply("end");
    let err = manager.persist_session(&req).await.expect_err("lost reply");
    assert!(matches!(err, SessionError::Store(_)), "{err}");
    let retried = manager.persist_session(&req).await.expect("the retry");
    let header = retried.set_cookie.expect("the removal cookie");
    assert!(header.to_str().unwrap_or_default().contains("Max-Age=0"));
    assert_eq!(contents(manager, &cookie).await, None, "{backend:?}");
}

macro_rules! on_every_backend {
    ($($backend:ident),*) => {
        $(
            #[allow(non_snake_case)]
            mod $backend {
                use super::*;

                #[tokio::test]
                async fn a_retried_rotation_keeps_a_write_acknowledged_before_its_lost_end() {
                    a_retried_rotation_keeps_the_write_its_first_end_read(Backend::$backend, false)
                        .await;
                }

                #[tokio::test]
                async fn a_retried_locked_rotation_keeps_a_write_acknowledged_before_its_lost_end() {
                    a_retried_rotation_keeps_the_write_its_first_end_read(Backend::$backend, true)
                        .await;
                }

                #[tokio::test]
                async fn a_retried_rotation_keeps_a_carry_over_whose_save_reply_was_lost() {
                    super::a_retried_rotation_keeps_a_carry_over_whose_save_reply_was_lost(
                        Backend::$backend,
                    )
                    .await;
                }

                #[tokio::test]
                async fn a_retried_rotation_of_a_session_logged_out_meanwhile_brings_nothing_back() {
                    super::a_retried_rotation_of_a_session_logged_out_meanwhile_brings_nothing_back(
                        Backend::$backend,
                    )
                    .await;
                }

                #[tokio::test]
                async fn a_retried_destroy_whose_reply_was_lost_ends_the_session() {
                    super::a_retried_destroy_whose_reply_was_lost_ends_the_session(
                        Backend::$backend,
                    )
                    .await;
                }
            }
        )*
    };
}

on_every_backend!(Memory, Redis, Resonance);
