//! A property of the link itself, through its public API: under random network faults, a reply
//! always reaches its own caller.
//!
//! Many tasks share two connections of one [`Client`]; each writes values tagged with its own
//! name and reads them back in the same pipeline, while the fault proxy resets, drips, cuts
//! after N bytes, delays, stalls and black-holes the connections at random (seeded:
//! `LINK_FAULTS_SEED` replays a run). A reply handed to the wrong caller shows as another
//! task's tag, or as a reply of the wrong kind: neither may ever happen. Calls may fail while a
//! fault lasts, and must succeed again once the proxy heals. Bounded to about 10 s.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::Value;
use redis_link::{Client, ClientConfig, Lane, Login, Route, Topology, cmd};
use redis_test_support::{FaultMix, FaultProxy, RedisServer};

/// Tasks writing and reading concurrently.
const TASKS: usize = 12;
/// How long the faults run.
const RUN: Duration = Duration::from_secs(8);

/// What the tasks saw.
#[derive(Default)]
struct Tally {
    answered: usize,
    failed: usize,
    wrong: Vec<String>,
}

/// The text of a bulk reply, or a description of what came instead.
fn text(reply: &redis::RedisResult<Value>) -> String {
    match reply {
        Ok(Value::BulkString(bytes)) => {
            String::from_utf8_lossy(&bytes[..bytes.len().min(24)]).into_owned()
        }
        other => format!("{other:?}").chars().take(60).collect(),
    }
}

/// Writes and reads task `n`'s own keys until `stop`, tallying what came back.
async fn task_loop(client: Arc<Client>, n: usize, seed: u64, stop: Arc<AtomicBool>) -> Tally {
    let name = format!("t{n}");
    let route = Route::Keyed {
        tag: &name,
        spread: n,
    };
    let value_key = format!("{{{name}}}:v");
    let owner_key = format!("{{{name}}}:owner");
    let mut rng = StdRng::seed_from_u64(seed ^ (n as u64) << 32);
    let mut tally = Tally::default();
    let mut version = 0u64;
    let mut owner_set = false;
    while !stop.load(Ordering::Relaxed) {
        if !owner_set {
            let set = [cmd("SET").arg(&owner_key).arg(&name).take()];
            owner_set = matches!(
                client.exec(route, Lane::Write, &set).await.as_deref(),
                Ok([Ok(Value::Okay)])
            );
            continue;
        }
        version += 1;
        // Sizes from a few bytes to beyond a socket's buffer, so that writes are cut anywhere.
        let len = rng.random_range(8..80_000);
        let mut value = format!("{name}:{version}:").into_bytes();
        value.resize(len.max(value.len()), b'.');
        let pipeline = [
            cmd("SET").arg(&value_key).arg(value.as_slice()).take(),
            cmd("GET").arg(&owner_key).take(),
            cmd("GET").arg(&value_key).take(),
        ];
        match client.exec(route, Lane::Write, &pipeline).await {
            Ok(replies) => {
                tally.answered += 1;
                let ok = replies.len() == 3
                    && matches!(replies[0], Ok(Value::Okay))
                    && text(&replies[1]) == name
                    && text(&replies[2]).starts_with(&format!("{name}:{version}:"));
                if !ok {
                    let got: Vec<String> = replies.iter().map(text).collect();
                    tally.wrong.push(format!("{name} v{version} got {got:?}"));
                }
            }
            Err(_) => tally.failed += 1,
        }
    }
    // Healed: the task's calls work at once.
    let get = [cmd("GET").arg(&owner_key).take()];
    match client.exec(route, Lane::Read, &get).await {
        Ok(replies) if replies.len() == 1 && text(&replies[0]) == name => {}
        other => tally.wrong.push(format!("{name} after healing: {other:?}")),
    }
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_reach_their_own_caller_under_random_faults() {
    let seed = std::env::var("LINK_FAULTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    eprintln!("LINK_FAULTS_SEED={seed}");
    let redis = RedisServer::start();
    let proxy = Arc::new(FaultProxy::start(redis.port()));
    let client = Arc::new(
        Client::new(ClientConfig {
            topology: Topology::Single {
                host: "127.0.0.1".into(),
                port: proxy.port(),
            },
            login: Login::default(),
            timeout: Duration::from_secs(1),
            per_server: 2,
            lanes: 0,
        })
        .expect("a client"),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..TASKS)
        .map(|n| tokio::spawn(task_loop(Arc::clone(&client), n, seed, Arc::clone(&stop))))
        .collect();

    let faults = tokio::task::spawn_blocking({
        let proxy = Arc::clone(&proxy);
        move || proxy.apply_random_faults(seed, RUN, FaultMix::Cuts)
    });
    let applied = faults.await.expect("the fault thread");
    proxy.heal();
    stop.store(true, Ordering::Relaxed);
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await.expect("a task");
        total.answered += tally.answered;
        total.failed += tally.failed;
        total.wrong.extend(tally.wrong);
    }
    eprintln!(
        "{} faults; {} pipelines answered, {} failed, {} connections opened",
        applied.len(),
        total.answered,
        total.failed,
        proxy.connections_opened()
    );
    assert!(
        total.wrong.is_empty(),
        "replies reached the wrong caller (seed {seed}): {:?}",
        total.wrong
    );
    assert!(total.answered > 100, "too few calls got through");
    assert!(
        total.failed > 0,
        "no fault made a call fail: the test tested nothing"
    );
}
