//! A live resharding: while two `counter` instances (one config, like two app servers behind a
//! load balancer) serve locked and unlocked increments and unlocked reads of a few sessions,
//! the slots of those sessions move between the masters of a real Redis Cluster, one key per
//! `MIGRATE`, around the three masters and back, as `redis-cli --cluster reshard` would move
//! them. Counted, and all required to be 0: sessions lost (a new `Set-Cookie`, or a read below
//! what was acknowledged), acknowledged writes lost (the final values against the 200s), locks
//! held by two (two locked increments that saw the same value), and answers other than 200 or
//! a 503 within the timeout + 1 s.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis_test_support::RedisCluster;

use common::{Counter, key_of, lock_keys};

/// Sessions under traffic (each with its own slot, almost surely).
const SESSIONS: usize = 4;
/// Times each slot moves on to the next master (3: around the ring and home again).
const MOVES_PER_SLOT: usize = 3;
/// The pool's timeout (s); a 503 must come within it + 1 s.
const TIMEOUT_S: u64 = 1;

/// One answer as the traffic saw it.
#[derive(Debug)]
struct Outcome {
    /// 0: no HTTP answer at all.
    status: u16,
    body: String,
    new_cookie: bool,
    took: Duration,
}

/// What one session's traffic saw.
#[derive(Default)]
struct Seen {
    locked: Vec<Outcome>,
    unlocked: Vec<Outcome>,
    reads: Vec<(Outcome, u64)>,
}

/// Sends `path` with `cookie` to the apps in turn (starting at `first`) until `stop`.
async fn traffic(
    apps: Arc<[Counter; 2]>,
    first: usize,
    cookie: String,
    path: &'static str,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
) -> Vec<(Outcome, u64)> {
    let mut seen = Vec::new();
    let mut i = first;
    while !stop.load(Ordering::SeqCst) {
        // What had been acknowledged before this request left (for reads).
        let before = acked.load(Ordering::SeqCst);
        let started = Instant::now();
        let reply = apps[i % 2]
            .try_get(path, Some(&cookie), Duration::from_secs(10))
            .await;
        let outcome = match reply {
            Ok(r) => Outcome {
                status: r.status,
                new_cookie: r.set_cookie.is_some(),
                body: r.body,
                took: started.elapsed(),
            },
            Err(e) => Outcome {
                status: 0,
                body: e,
                new_cookie: false,
                took: started.elapsed(),
            },
        };
        if outcome.status == 200 && path.starts_with("/incr-locked") {
            acked.fetch_add(1, Ordering::SeqCst);
        }
        seen.push((outcome, before));
        i += 1;
    }
    seen
}

/// `errorstat_<code>` summed over the nodes (`INFO errorstats`).
fn error_count(cluster: &RedisCluster, code: &str) -> u64 {
    let prefix = format!("errorstat_{code}:count=");
    let count = |node: &redis_test_support::RedisServer| match node.cmd(&["INFO", "errorstats"]) {
        redis::Value::BulkString(b) => String::from_utf8_lossy(&b)
            .lines()
            .find_map(|l| l.strip_prefix(&prefix)?.split(',').next()?.parse().ok())
            .unwrap_or(0),
        other => panic!("INFO answered {other:?}"),
    };
    cluster.servers().iter().map(count).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_resharding_loses_no_session_no_acknowledged_write_and_no_lock() {
    let cluster = Arc::new(RedisCluster::start(3));
    let pool = format!(
        "default[cluster_nodes] = {}\ndefault[timeout] = {TIMEOUT_S}\ndefault[pool_size] = 2",
        cluster.nodes().join(",")
    );
    let session = "lock_wait = 5\nlock_ttl = 5";
    let apps = Arc::new([
        Counter::start(1, session, &pool),
        Counter::start(1, session, &pool),
    ]);
    let mut cookies = Vec::new();
    for i in 0..SESSIONS {
        cookies.push(apps[i % 2].new_session_within(Duration::from_secs(5)).await);
    }
    let slots: Vec<u16> = cookies
        .iter()
        .map(|c| cluster.slot_of_key(&key_of(c)))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();

    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for cookie in &cookies {
        let acked = Arc::new(AtomicU64::new(0));
        // Two locked writers (one per app, so the lock is contended across processes), one
        // unlocked writer of its own key, one reader of the locked key.
        for (first, path) in [
            (0, "/incr-locked?key=c&delay_ms=5"),
            (1, "/incr-locked?key=c&delay_ms=5"),
            (0, "/incr?key=u"),
            (1, "/read?key=c"),
        ] {
            tasks.push(tokio::spawn(traffic(
                Arc::clone(&apps),
                first,
                cookie.clone(),
                path,
                Arc::clone(&stop),
                Arc::clone(&acked),
            )));
        }
    }
    let resharder = {
        let cluster = Arc::clone(&cluster);
        tokio::task::spawn_blocking(move || {
            let mut moves = 0;
            for _ in 0..MOVES_PER_SLOT {
                for &slot in &slots {
                    let from = cluster.owner_of_slot(slot, 0);
                    let to = (from + 1) % 3;
                    cluster.begin_slot_move(slot, from, to);
                    // Requests meet the open slot with every key still on the source...
                    std::thread::sleep(Duration::from_millis(100));
                    // ... then with the keys split (one key per MIGRATE)...
                    cluster.migrate_slot_keys(slot, from, to, 1);
                    // ... then with every key on the target, the slot still the source's.
                    std::thread::sleep(Duration::from_millis(50));
                    cluster.end_slot_move(slot, to);
                    cluster.wait_settled();
                    moves += 1;
                }
            }
            moves
        })
    };
    let moves = resharder.await.expect("the resharding");
    // Some traffic on the settled Cluster too, then stop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let mut seen: Vec<Seen> = Vec::new();
    for chunk in tasks.chunks_mut(4) {
        let mut session = Seen::default();
        for (k, task) in chunk.iter_mut().enumerate() {
            let outcomes = task.await.expect("traffic");
            match k {
                0 | 1 => session.locked.extend(outcomes.into_iter().map(|(o, _)| o)),
                2 => session
                    .unlocked
                    .extend(outcomes.into_iter().map(|(o, _)| o)),
                _ => session.reads = outcomes,
            }
        }
        seen.push(session);
    }
    let elapsed = started.elapsed();

    let (mut lost_sessions, mut lost_writes, mut double_locks, mut unbounded) = (0, 0, 0, 0);
    let (mut ok, mut unavailable, mut slowest_503) = (0, 0, Duration::ZERO);
    let mut problems = Vec::new();
    for (session, cookie) in seen.iter().zip(&cookies) {
        let all = (session.locked.iter())
            .chain(&session.unlocked)
            .chain(session.reads.iter().map(|(o, _)| o));
        for outcome in all {
            match outcome.status {
                200 => ok += 1,
                503 if outcome.took <= Duration::from_secs(TIMEOUT_S + 1) => {
                    unavailable += 1;
                    slowest_503 = slowest_503.max(outcome.took);
                }
                _ => {
                    unbounded += 1;
                    problems.push(format!("{outcome:?}"));
                }
            }
            if outcome.new_cookie {
                lost_sessions += 1;
                problems.push(format!("new cookie: {outcome:?}"));
            }
        }
        for (read, acked) in &session.reads {
            if read.status == 200 && read.body.parse::<u64>().is_ok_and(|v| v < *acked) {
                lost_sessions += 1;
                problems.push(format!("read {} after {acked} acknowledged", read.body));
            }
        }
        // Locked increments: each 200 saw a different value, and the final value counts them.
        let values: Vec<u64> = (session.locked.iter())
            .filter(|o| o.status == 200)
            .filter_map(|o| o.body.parse().ok())
            .collect();
        let distinct: HashSet<u64> = values.iter().copied().collect();
        double_locks += values.len() - distinct.len();
        let read = |key: &str| {
            let app = &apps[0];
            let cookie = cookie.clone();
            let path = format!("/read?key={key}");
            async move { app.get(&path, Some(&cookie)).await.body.parse::<u64>() }
        };
        let final_c = read("c").await.expect("a number");
        let final_u = read("u").await.expect("a number");
        let acked_u = session.unlocked.iter().filter(|o| o.status == 200).count() as u64;
        lost_writes += (values.len() as u64).saturating_sub(final_c);
        lost_writes += acked_u.saturating_sub(final_u);
        if final_c != values.len() as u64 || final_u != acked_u {
            problems.push(format!(
                "c = {final_c} after {} acknowledged, u = {final_u} after {acked_u}",
                values.len()
            ));
        }
    }
    let locks_left: usize = cluster.servers().iter().map(|s| lock_keys(s).len()).sum();
    let met = ["ASK", "TRYAGAIN", "MOVED"].map(|code| (code, error_count(&cluster, code)));
    eprintln!(
        "live resharding: {moves} slot moves in {elapsed:?}; {ok} x 200, {unavailable} x 503 \
         (slowest {slowest_503:?}); lost sessions {lost_sessions}, lost acknowledged writes \
         {lost_writes}, double locks {double_locks}, other answers {unbounded}, locks left \
         {locks_left}; Redis answered {met:?}"
    );
    let problems = problems.join("\n");
    assert_eq!(lost_sessions, 0, "{problems}");
    assert_eq!(lost_writes, 0, "{problems}");
    assert_eq!(double_locks, 0, "{problems}");
    assert_eq!(unbounded, 0, "{problems}");
    assert_eq!(locks_left, 0, "a lock key is left behind");
    assert!(
        ok > unavailable,
        "mostly 200s: {ok} x 200, {unavailable} x 503"
    );
    assert!(
        met.iter().all(|&(_, count)| count > 0),
        "the traffic met every state of a migration: {met:?}"
    );
}
