//! Metrics and tracing of session operations (`redis_sessions::observe`): each operation moves
//! the right counters by the right amounts, labelled by pool only; each runs in one span with
//! the storage id's prefix and its round trips, never a session id.
//!
//! The manager runs over the memory store (and, for store errors, a Redis pool on a closed
//! port). Metrics are counted by a `DebuggingRecorder` installed as this thread's local recorder,
//! spans by a capturing layer installed as this thread's default subscriber, so the tests
//! (current-thread runtimes) see only their own operations. They run one at a time: tracing
//! caches whether a span's call site is wanted, and a test without a subscriber reaching a call
//! site first, while the other installs its own, races that cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Request;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use redis_sessions::observe::*;
use redis_sessions::store::memory::MemoryStore;
use redis_sessions::{Config, RedisPoolConfig, SessionError, SessionId, SessionManager};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};

/// Taken by each test for its whole run.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn manager() -> SessionManager {
    let mut config = Config::default();
    config.session.redis_connection_pool = "shop".into();
    config.session.lock_wait = Duration::from_millis(30);
    config.session.touch_interval = Duration::from_millis(50);
    SessionManager::with_store(config, MemoryStore::default()).expect("valid config")
}

fn request(cookie: Option<&str>) -> Request<()> {
    let mut builder = Request::builder().uri("/");
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", format!("dmsession={cookie}"));
    }
    builder.body(()).expect("request")
}

/// One request: starts the session (locked or not), applies `change`, persists; returns the new
/// cookie value, if one was set, and the persist's result.
async fn exchange(
    manager: &SessionManager,
    cookie: Option<&str>,
    locked: bool,
    change: impl FnOnce(&redis_sessions::Session),
) -> Result<Option<String>, SessionError> {
    let mut req = request(cookie);
    let session = if locked {
        manager.start_locked(&mut req).await?
    } else {
        manager.start(&mut req).await?
    };
    change(&session);
    let persisted = manager.persist_session(&req).await?;
    Ok(persisted.set_cookie.map(|h| {
        let text = h.to_str().expect("ascii").to_owned();
        let pair = text.split(';').next().unwrap_or_default();
        pair.split_once('=')
            .map(|(_, v)| v.to_owned())
            .unwrap_or_default()
    }))
}

/// What was recorded since the last snapshot: `name{label=value,...}` to counter value,
/// histogram sample count or gauge value.
fn delta(snapshotter: &Snapshotter) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let value = match value {
            DebugValue::Counter(n) => n as f64,
            DebugValue::Gauge(g) => g.into_inner(),
            DebugValue::Histogram(samples) => samples.len() as f64,
        };
        if value != 0.0 {
            out.insert(format!("{}{{{}}}", key.name(), labels.join(",")), value);
        }
    }
    out
}

fn expect(got: HashMap<String, f64>, want: &[(&str, &str, f64)]) {
    let want: HashMap<String, f64> = want
        .iter()
        .map(|(name, labels, n)| (format!("{name}{{{labels}}}"), *n))
        .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn each_operation_moves_its_counters_by_the_right_amount() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let manager = manager();
    let pool = "pool=shop";
    let (load, save) = ("pool=shop,op=load", "pool=shop,op=save");

    let cookie = exchange(&manager, None, false, |s| s.put("n", &0).expect("put")).await;
    let cookie = cookie.expect("created").expect("a cookie");
    expect(
        delta(&snapshotter),
        &[(CREATES, pool, 1.0), (DURATION, "pool=shop,op=create", 1.0)],
    );

    for n in 1..=3 {
        let put = |s: &redis_sessions::Session| s.put("n", &n).expect("put");
        exchange(&manager, Some(&cookie), false, put)
            .await
            .expect("saved");
    }
    let (three_loads, three_saves) = ((DURATION, load, 3.0), (DURATION, save, 3.0));
    let counted = [(LOADS, pool, 3.0), (SAVES, pool, 3.0)];
    expect(
        delta(&snapshotter),
        &[&counted[..], &[three_loads, three_saves]].concat(),
    );

    // Only read, after the touch interval: a touch.
    tokio::time::sleep(Duration::from_millis(60)).await;
    exchange(&manager, Some(&cookie), false, |_| {})
        .await
        .expect("touched");
    let touch = [(LOADS, pool, 1.0), (TOUCHES, pool, 1.0)];
    let timed = [(DURATION, load, 1.0), (DURATION, "pool=shop,op=touch", 1.0)];
    expect(delta(&snapshotter), &[&touch[..], &timed].concat());

    // A locked request holds the lock; a second one waits for it, then gives up.
    let mut holder = request(Some(&cookie));
    manager.start_locked(&mut holder).await.expect("locked");
    let waiter = exchange(&manager, Some(&cookie), true, |_| {}).await;
    assert!(
        matches!(waiter, Err(SessionError::LockTimeout { .. })),
        "{waiter:?}"
    );
    let _ = manager.persist_session(&holder).await.expect("unlocked");
    let lock = "pool=shop,op=lock";
    expect(
        delta(&snapshotter),
        &[
            (LOADS, pool, 1.0),
            (LOCK_WAITS, pool, 1.0),
            (LOCK_TIMEOUTS, pool, 1.0),
            (DURATION, lock, 2.0),
            (DURATION, "pool=shop,op=unlock", 1.0),
        ],
    );

    // A login, then a request that loaded before it saves late: a conflict.
    let mut late = request(Some(&cookie));
    manager
        .start(&mut late)
        .await
        .expect("loaded")
        .put("n", &9)
        .expect("put");
    let rotated = exchange(&manager, Some(&cookie), false, |s| s.rotate()).await;
    let new_cookie = rotated.expect("rotated").expect("new cookie");
    let conflict = manager.persist_session(&late).await;
    assert!(matches!(conflict, Err(SessionError::Gone)), "{conflict:?}");
    exchange(&manager, Some(&new_cookie), false, |s| s.destroy())
        .await
        .expect("destroyed");
    expect(
        delta(&snapshotter),
        &[
            (LOADS, pool, 3.0),
            (ROTATIONS, pool, 1.0),
            (DESTROYS, pool, 1.0),
            (CONFLICTS, "pool=shop,kind=gone", 1.0),
            (DURATION, load, 3.0),
            (DURATION, "pool=shop,op=rotate", 1.0),
            (DURATION, save, 1.0),
            (DURATION, "pool=shop,op=destroy", 1.0),
        ],
    );

    // Redis unreachable: a store error, labelled with that manager's pool.
    let mut config = Config::default();
    config.pools.insert(
        "default".into(),
        RedisPoolConfig {
            port: closed_port(),
            timeout: Duration::from_millis(300),
            ..RedisPoolConfig::default()
        },
    );
    let down = SessionManager::new(config).expect("valid config");
    let failed = exchange(&down, Some(&SessionId::generate().expose()), false, |_| {}).await;
    assert!(matches!(failed, Err(SessionError::Store(_))), "{failed:?}");
    expect(
        delta(&snapshotter),
        &[
            (STORE_ERRORS, "pool=default,op=load", 1.0),
            (DURATION, "pool=default,op=load", 1.0),
        ],
    );
}

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("address").port()
}

/// Every span opened, in order, with its fields as recorded (at creation or later), and where
/// each live span id is in that list.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Seen>>);

/// The spans in order, and where each live span id is among them.
type Seen = (Vec<Opened>, HashMap<u64, usize>);

/// A span's name and fields.
type Opened = (String, HashMap<String, String>);

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        let (spans, index) = &mut *self.0.lock().expect("spans");
        index.insert(id.into_u64(), spans.len());
        spans.push((attrs.metadata().name().to_owned(), fields));
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let (spans, index) = &mut *self.0.lock().expect("spans");
        values.record(&mut Fields(&mut spans[index[&id.into_u64()]].1));
    }
}

#[tokio::test]
async fn each_operation_has_a_span_with_the_id_prefix_and_round_trips_never_the_id() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    let _default = tracing::subscriber::set_default(subscriber);
    let manager = manager();
    let mut cookies = Vec::new();

    let first = exchange(&manager, None, false, |s| s.put("n", &1).expect("put")).await;
    cookies.push(first.expect("created").expect("cookie"));
    exchange(&manager, Some(&cookies[0]), false, |s| {
        s.put("n", &2).expect("put")
    })
    .await
    .expect("saved");
    exchange(&manager, Some(&cookies[0]), true, |_| {})
        .await
        .expect("locked, unlocked");
    let mut late = request(Some(&cookies[0]));
    manager
        .start(&mut late)
        .await
        .expect("loaded")
        .put("n", &9)
        .expect("put");
    let rotated = exchange(&manager, Some(&cookies[0]), false, |s| s.rotate()).await;
    cookies.push(rotated.expect("rotated").expect("new cookie"));
    assert!(
        manager.persist_session(&late).await.is_err(),
        "a late save conflicts"
    );
    exchange(&manager, Some(&cookies[1]), false, |s| s.destroy())
        .await
        .expect("destroyed");

    let spans = spans.0.lock().expect("spans").0.clone();
    let names: Vec<&str> = spans.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "session.create",
            "session.load",
            "session.save",
            "session.lock",
            "session.unlock",
            "session.load",
            "session.load",
            "session.rotate",
            "session.save",
            "session.load",
            "session.destroy",
        ]
    );
    let ids: Vec<SessionId> = cookies
        .iter()
        .map(|c| SessionId::parse(c).expect("id"))
        .collect();
    let prefix = |id: &SessionId| id.storage_id().as_str()[..6].to_owned();
    for (name, fields) in &spans {
        assert_eq!(
            fields.get("pool").map(String::as_str),
            Some("shop"),
            "{name}"
        );
        let shown = fields
            .get("id")
            .unwrap_or_else(|| panic!("{name} has no id: {fields:?}"));
        assert_eq!(shown.chars().count(), 8, "#, 6 characters, …: {shown}");
        let trips = fields.get("round_trips").map(String::as_str);
        let want = if name == "session.rotate" { "2" } else { "1" };
        assert_eq!(trips, Some(want), "{name}: {fields:?}");
        for value in fields.values() {
            for id in &ids {
                assert!(
                    !value.contains(&id.expose()),
                    "{name} shows a session id: {value}"
                );
                let storage = id.storage_id();
                assert!(
                    !value.contains(storage.as_str()),
                    "{name} shows a storage id: {value}"
                );
            }
        }
    }
    let (first, second) = (prefix(&ids[0]), prefix(&ids[1]));
    let rotate = &spans[7].1;
    assert_eq!(rotate["id"], format!("#{first}…"));
    assert_eq!(rotate["new_id"], format!("#{second}…"));
    assert_eq!(spans[10].1["id"], format!("#{second}…"), "the destroy");
    let conflict = &spans[8].1;
    assert!(
        conflict["error"].contains("ended"),
        "the error is on the span: {conflict:?}"
    );
    assert!(
        spans
            .iter()
            .filter(|(_, f)| f.contains_key("error"))
            .count()
            == 1
    );
}
