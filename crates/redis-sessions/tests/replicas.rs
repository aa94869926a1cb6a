//! Durable acknowledgements: with `min_replicas_ack = N` every write (create, save, rotation,
//! destroy) is answered only once N replicas have it (`WAIT`), so a master that dies right after
//! answering loses nothing that was acknowledged; when the replicas do not acknowledge in time,
//! the request fails (`503`) instead of succeeding. Real master and replica `redis-server`s.

mod common;

use std::time::{Duration, Instant};

use common::Counter;
use http::Request;
use redis_sessions::{Config, RedisPoolConfig, SessionError, SessionManager};
use redis_test_support::RedisServer;

/// A master and one replica that has finished its first sync.
fn master_and_replica() -> (RedisServer, RedisServer) {
    let master = RedisServer::start();
    let port = master.port().to_string();
    let replica = RedisServer::start_with_args(&["--replicaof", "127.0.0.1", &port]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = match replica.cmd(&["INFO", "replication"]) {
            redis::Value::BulkString(text) => String::from_utf8_lossy(&text).into_owned(),
            redis::Value::VerbatimString { text, .. } => text,
            other => panic!("INFO answered {other:?}"),
        };
        if info.contains("master_link_status:up") {
            return (master, replica);
        }
        assert!(
            Instant::now() < deadline,
            "the replica never synced: {info}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn manager(port: u16, replicas: usize) -> SessionManager {
    let mut config = Config::default();
    config.pools.insert(
        "default".into(),
        RedisPoolConfig {
            port,
            timeout: Duration::from_millis(600),
            min_replicas_ack: replicas,
            ..RedisPoolConfig::default()
        },
    );
    SessionManager::new(config).expect("manager")
}

fn request(cookie: Option<&str>) -> Request<()> {
    let mut builder = Request::builder().uri("/");
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", cookie);
    }
    builder.body(()).expect("request")
}

fn keys(server: &RedisServer) -> Vec<String> {
    match server.cmd(&["KEYS", "dm:*"]) {
        redis::Value::Array(items) => items
            .into_iter()
            .filter_map(|v| match v {
                redis::Value::BulkString(b) => String::from_utf8(b).ok(),
                _ => None,
            })
            .collect(),
        other => panic!("KEYS answered {other:?}"),
    }
}

#[tokio::test]
async fn every_write_is_on_the_replica_when_it_is_answered() {
    let (master, replica) = master_and_replica();
    let manager = manager(master.port(), 1);
    let mut req = request(None);
    manager
        .start(&mut req)
        .await
        .expect("start")
        .put("n", &1)
        .expect("put");
    let header = manager
        .persist_session(&req)
        .await
        .expect("create")
        .set_cookie;
    let header = header.expect("a cookie");
    let cookie = header
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    let key = keys(&master).pop().expect("the session key");
    assert_eq!(
        replica.cmd(&["TYPE", &key]),
        redis::Value::SimpleString("hash".into()),
        "the create is on the replica when it is answered"
    );
    let mut req = request(Some(&cookie));
    manager
        .start(&mut req)
        .await
        .expect("start")
        .put("m", &2)
        .expect("put");
    let _ = manager.persist_session(&req).await.expect("save");
    assert_eq!(
        replica.cmd(&["HEXISTS", &key, "m"]),
        redis::Value::Int(1),
        "the save is on the replica when it is answered"
    );
    let mut req = request(Some(&cookie));
    manager.start(&mut req).await.expect("start").destroy();
    let _ = manager.persist_session(&req).await.expect("destroy");
    assert_eq!(
        replica.cmd(&["TYPE", &key]),
        redis::Value::SimpleString("string".into()),
        "the tombstone is on the replica when the logout is answered"
    );
}

#[tokio::test]
async fn a_write_no_replica_acknowledges_fails_instead_of_succeeding() {
    let (master, mut replica) = master_and_replica();
    let durable = manager(master.port(), 1);
    replica.stop();
    let mut req = request(None);
    durable
        .start(&mut req)
        .await
        .expect("start")
        .put("n", &1)
        .expect("put");
    let started = Instant::now();
    let err = durable.persist_session(&req).await.expect_err("no replica");
    assert!(matches!(err, SessionError::Store(_)), "{err}");
    assert_eq!(err.status(), 503);
    assert!(err.to_string().contains("min_replicas_ack"), "{err}");
    assert!(
        started.elapsed() < Duration::from_millis(1_600),
        "bounded by the pool's timeout: {:?}",
        started.elapsed()
    );
    let unreplicated = manager(master.port(), 0);
    let mut req = request(None);
    unreplicated
        .start(&mut req)
        .await
        .expect("start")
        .put("n", &1)
        .expect("put");
    let _ = unreplicated
        .persist_session(&req)
        .await
        .expect("without min_replicas_ack the master's answer is enough");
}

#[tokio::test]
async fn no_write_answered_before_the_master_dies_is_missing_on_the_replica() {
    let (mut master, replica) = master_and_replica();
    let app = Counter::start(master.port(), "", "default[min_replicas_ack] = 1");
    let cookie = app.new_session().await;
    let answered = std::sync::Mutex::new(Vec::new());
    let traffic = async {
        let mut i = 0;
        loop {
            let batch = (i..i + 8).map(|k| app.get_tagged(k, &cookie));
            let replies = futures_util::future::join_all(batch).await;
            let mut stop = false;
            for (k, status) in replies {
                if status == 200 {
                    answered.lock().expect("list").push(k);
                } else {
                    stop = true;
                }
            }
            i += 8;
            if stop || i > 4_000 {
                break;
            }
        }
    };
    let kill = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        master.kill();
    };
    tokio::join!(traffic, kill);
    let answered = answered.into_inner().expect("list");
    assert!(
        answered.len() > 8,
        "traffic ran before the kill: {}",
        answered.len()
    );
    let key = keys(&replica)
        .into_iter()
        .find(|k| !k.ends_with(":l"))
        .expect("the session on the replica");
    for k in &answered {
        assert_eq!(
            replica.cmd(&["HEXISTS", &key, &format!("k{k}")]),
            redis::Value::Int(1),
            "k{k} was answered 200 but the replica does not have it"
        );
    }
}

trait Tagged {
    async fn get_tagged(&self, k: usize, cookie: &str) -> (usize, u16);
}

impl Tagged for Counter {
    /// `/incr?key=k<k>`: its tag and status.
    async fn get_tagged(&self, k: usize, cookie: &str) -> (usize, u16) {
        (
            k,
            self.get(&format!("/incr?key=k{k}"), Some(cookie))
                .await
                .status,
        )
    }
}
