//! A property of the link under random network faults: a reply always reaches its own caller.
//!
//! Many sessions share two connections; each writes values tagged with its own name and reads
//! them back, while the fault proxy resets, drips, cuts after N bytes, delays, stalls and
//! black-holes the connections at random (seeded: `LINK_FAULTS_SEED` replays a run). A reply
//! handed to the wrong caller shows as another session's tag in a read, or as a save told that
//! its record is gone: neither may ever happen. Calls may fail while a fault lasts, and must
//! succeed again once the proxy heals. Bounded to about 12 s.

#[path = "common/link.rs"]
mod link;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use link::{create, error_replies, field, half_commands, store, write};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis_sessions::store::{Loaded, SaveOutcome, SessionStore};
use redis_test_support::{FaultMix, FaultProxy, RedisServer};

/// Sessions writing and reading concurrently.
const SESSIONS: usize = 12;
/// How long the faults run.
const RUN: Duration = Duration::from_secs(10);

/// What the sessions saw.
#[derive(Default)]
struct Tally {
    reads: usize,
    saves: usize,
    failed: usize,
    wrong: Vec<String>,
}

/// Writes and reads session `n`'s own values until `stop`, tallying what came back.
async fn session_loop(
    store: Arc<dyn SessionStore>,
    n: usize,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> Tally {
    let owner = format!("s{n}");
    let id = create(&*store, &owner).await;
    let mut rng = StdRng::seed_from_u64(seed ^ (n as u64) << 32);
    let mut tally = Tally::default();
    let mut version = 0u64;
    while !stop.load(Ordering::Relaxed) {
        version += 1;
        // Sizes from a few bytes to beyond a socket's buffer, so that writes are cut anywhere.
        let len = rng.random_range(8..80_000);
        let mut value = format!("{owner}:{version}:").into_bytes();
        value.resize(len.max(value.len()), b'.');
        match store
            .save(&id, &write(&owner, "v", Bytes::from(value)))
            .await
        {
            Ok(SaveOutcome::Saved) => tally.saves += 1,
            Ok(other) => tally
                .wrong
                .push(format!("{owner}: save answered {other:?}")),
            Err(_) => tally.failed += 1,
        }
        match store.load(&id).await {
            Ok(loaded @ Loaded::Found(_)) => {
                tally.reads += 1;
                let tag = field(&loaded, "owner").map(|o| String::from_utf8_lossy(o).into_owned());
                let value = field(&loaded, "v")
                    .map(|v| String::from_utf8_lossy(&v[..v.len().min(24)]).into_owned());
                let mine = format!("{owner}:");
                if tag.as_deref() != Some(owner.as_str())
                    || value.as_ref().is_some_and(|v| !v.starts_with(&mine))
                {
                    tally
                        .wrong
                        .push(format!("{owner} read owner {tag:?}, value {value:?}"));
                }
            }
            Ok(other) => tally
                .wrong
                .push(format!("{owner}: load answered {other:?}")),
            Err(_) => tally.failed += 1,
        }
    }
    // Healed: the session works at once.
    let saved = store
        .save(
            &id,
            &write(&owner, "v", Bytes::from(format!("{owner}:end"))),
        )
        .await;
    if !matches!(saved, Ok(SaveOutcome::Saved)) {
        tally
            .wrong
            .push(format!("{owner}: save after healing: {saved:?}"));
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
    let store: Arc<dyn SessionStore> = Arc::new(store(proxy.port(), &redis, false, 2));
    let stop = Arc::new(AtomicBool::new(false));
    let sessions: Vec<_> = (0..SESSIONS)
        .map(|n| tokio::spawn(session_loop(Arc::clone(&store), n, seed, Arc::clone(&stop))))
        .collect();

    let faults = tokio::task::spawn_blocking({
        let proxy = Arc::clone(&proxy);
        move || proxy.apply_random_faults(seed, RUN, FaultMix::CutsAndHolds)
    });
    let applied = faults.await.expect("the fault thread");
    proxy.heal();
    stop.store(true, Ordering::Relaxed);
    let mut total = Tally::default();
    for session in sessions {
        let tally = session.await.expect("a session");
        total.reads += tally.reads;
        total.saves += tally.saves;
        total.failed += tally.failed;
        total.wrong.extend(tally.wrong);
    }
    eprintln!(
        "{} faults; {} reads and {} saves answered, {} calls failed, {} connections opened",
        applied.len(),
        total.reads,
        total.saves,
        total.failed,
        proxy.connections_opened()
    );
    assert!(
        total.wrong.is_empty(),
        "replies reached the wrong caller (seed {seed}): {:?}",
        total.wrong
    );
    assert!(
        total.reads > 100 && total.saves > 100,
        "too few calls got through"
    );
    assert!(
        total.failed > 0,
        "no fault made a call fail: the test tested nothing"
    );
    // Bytes the proxy held for connections given up meanwhile are forwarded, then closed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let errors = error_replies(&redis);
    assert!(
        errors.is_empty(),
        "Redis answered errors (seed {seed}): {errors:?}"
    );
    let half = half_commands(&redis);
    assert!(half.is_empty(), "Redis holds half a command: {half:?}");
}
