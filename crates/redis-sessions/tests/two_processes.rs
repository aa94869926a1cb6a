//! Several app instances behind a load balancer: two `counter` processes over one private
//! `redis-server` share sessions (a cookie issued by one works on the other), a logout or login
//! on one ends the old id on the other at once, and they serialise the locked read-modify-write
//! of one session between them, because the lock is held in Redis, not in either process.
//! Each case runs on a single server and on a Redis Cluster of 3 masters with a replica each,
//! whose writes are acknowledged by the replica (`min_replicas_ack = 1`).

mod common;

use std::time::{Duration, Instant};

use common::backends::Redis;

on_single_and_cluster!(
    the_lock_serialises_requests_split_across_two_processes,
    a_lock_held_by_one_process_makes_the_other_wait,
    a_cookie_issued_by_one_instance_works_on_the_other,
    logout_or_login_on_one_instance_ends_the_old_id_on_the_other_at_once,
);

/// Locked requests per process.
const PER_PROCESS: usize = 30;

async fn the_lock_serialises_requests_split_across_two_processes(cluster: bool) {
    let redis = Redis::start(cluster, 1);
    let session = "lock_wait = 30\nlock_ttl = 30";
    let apps = [redis.app(session), redis.app(session)];
    let cookie = apps[0].new_session().await;
    let requests = (0..2 * PER_PROCESS).map(|i| {
        let (app, cookie) = (&apps[i % 2], &cookie);
        async move {
            app.get("/incr-locked?key=c&delay_ms=10", Some(cookie))
                .await
        }
    });
    let replies = futures_util::future::join_all(requests).await;

    assert!(replies.iter().all(|r| r.status == 200), "{replies:?}");
    let mut seen: Vec<u64> = replies
        .iter()
        .map(|r| r.body.parse().expect("a number"))
        .collect();
    seen.sort_unstable();
    let expected: Vec<u64> = (1..=2 * PER_PROCESS as u64).collect();
    assert_eq!(seen, expected, "each increment must see the one before it");
    for app in &apps {
        assert_eq!(
            app.get("/read?key=c", Some(&cookie)).await.body,
            (2 * PER_PROCESS).to_string()
        );
    }
    assert_eq!(
        redis.lock_keys(),
        Vec::<String>::new(),
        "a lock key is left behind"
    );
}

async fn a_lock_held_by_one_process_makes_the_other_wait(cluster: bool) {
    let redis = Redis::start(cluster, 1);
    let session = "lock_wait = 10\nlock_ttl = 30";
    let first = redis.app(session);
    let second = redis.app(session);
    let cookie = first.new_session().await;
    let hold = Duration::from_millis(1500);

    let holder = first.get("/incr-locked?key=c&delay_ms=1500", Some(&cookie));
    let waiter = async {
        // The lock is a Redis key, visible to every process.
        let deadline = Instant::now() + Duration::from_secs(3);
        while redis.lock_keys().is_empty() {
            assert!(Instant::now() < deadline, "no lock key appeared in Redis");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let started = Instant::now();
        let reply = second.get("/incr-locked?key=c", Some(&cookie)).await;
        (reply, started.elapsed())
    };
    let (held, (waited, took)) = tokio::join!(holder, waiter);

    assert_eq!((held.status, held.body.as_str()), (200, "1"), "{held:?}");
    assert_eq!(
        (waited.status, waited.body.as_str()),
        (200, "2"),
        "the second process must run after the first one's save: {waited:?}"
    );
    assert!(
        took >= hold * 7 / 10,
        "the second process got the lock after {took:?} while the first held it for {hold:?}"
    );
    assert_eq!(
        redis.lock_keys(),
        Vec::<String>::new(),
        "a lock key is left behind"
    );
}

async fn a_cookie_issued_by_one_instance_works_on_the_other(cluster: bool) {
    let redis = Redis::start(cluster, 1);
    let apps = [redis.app(""), redis.app("")];
    let cookie = apps[0].new_session().await;
    let reply = apps[1].get("/incr", Some(&cookie)).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "2"), "{reply:?}");
    assert!(
        reply.set_cookie.is_none(),
        "the same session, no new cookie"
    );
    assert_eq!(apps[0].get("/read", Some(&cookie)).await.body, "2");
}

async fn logout_or_login_on_one_instance_ends_the_old_id_on_the_other_at_once(cluster: bool) {
    let redis = Redis::start(cluster, 1);
    let apps = [redis.app(""), redis.app("")];
    let logged_out = apps[0].new_session().await;
    apps[0].get("/logout", Some(&logged_out)).await;
    let late = apps[1].get("/incr", Some(&logged_out)).await;
    assert_eq!(late.status, 409, "{late:?}");
    assert!(late.set_cookie.is_none());

    let old = apps[1].new_session().await;
    let login = apps[0].get("/login", Some(&old)).await;
    assert_eq!(login.status, 200, "{login:?}");
    assert_eq!(
        apps[1].get("/read", Some(&old)).await.body,
        "0",
        "old id dead"
    );
    assert_eq!(apps[1].get("/read", Some(&login.cookie())).await.body, "1");
    let late = apps[1].get("/incr", Some(&old)).await;
    assert_eq!(late.status, 409, "{late:?}");
}
