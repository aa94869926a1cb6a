//! Users' sessions: a session bound to a user at login is listed among the user's sessions and
//! can be revoked one by one, all but the current one, or all; a revoked session is dead at once
//! (its in-flight write cannot bring it back). Over HTTP through the counter example, on a single
//! server and on a 3-master Redis Cluster (where the user's index and the sessions live in
//! different slots); the index's bound and the order of its steps against the store directly.

mod common;

use std::time::Duration;

use common::Counter;
use common::backends::Redis;

/// Signs in as `user` from a new browser: returns the session cookie.
async fn sign_in(app: &Counter, user: &str, about: &str) -> String {
    let anonymous = app.new_session().await;
    let login = app
        .get(
            &format!("/login?user={user}&about={about}"),
            Some(&anonymous),
        )
        .await;
    assert_eq!(login.status, 200, "{login:?}");
    login.cookie()
}

/// The lines of `/sessions`: (handle, current, about).
async fn listed(app: &Counter, cookie: &str) -> Vec<(String, bool, String)> {
    let reply = app.get("/sessions", Some(cookie)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply
        .body
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            (f[0].to_owned(), f[1] == "true", f[4].to_owned())
        })
        .collect()
}

/// Whether `cookie` still opens a session: its counter reads back and a write is accepted.
async fn works(app: &Counter, cookie: &str) -> bool {
    let write = app.get("/incr", Some(cookie)).await;
    write.status == 200 && write.set_cookie.is_none()
}

on_single_and_cluster!(
    a_user_with_five_sessions_logging_out_the_others_keeps_only_that_one,
    one_session_is_revoked_by_its_handle_and_only_by_its_user,
    revoking_all_of_a_users_sessions_ends_every_one,
    a_revoked_sessions_in_flight_write_does_not_bring_it_back,
);

async fn a_user_with_five_sessions_logging_out_the_others_keeps_only_that_one(cluster: bool) {
    let redis = Redis::start(cluster, 0);
    let app = redis.app("");
    let mut cookies = Vec::new();
    for device in 0..5 {
        cookies.push(sign_in(&app, "alice", &format!("device{device}")).await);
    }
    let bob = sign_in(&app, "bob", "phone").await;
    let list = listed(&app, &cookies[2]).await;
    assert_eq!(list.len(), 5, "{list:?}");
    assert_eq!(
        list.iter().filter(|(_, current, _)| *current).count(),
        1,
        "exactly the asking session is current: {list:?}"
    );
    let current = list
        .iter()
        .find(|(_, current, _)| *current)
        .expect("current");
    assert_eq!(current.2, "device2");
    assert!(
        list.iter()
            .all(|(handle, _, _)| !cookies.iter().any(|c| c.contains(handle.as_str()))),
        "a handle is not a session id"
    );

    let ended = app.get("/logout-others", Some(&cookies[2])).await;
    assert_eq!((ended.status, ended.body.as_str()), (200, "4"), "{ended:?}");
    for (i, cookie) in cookies.iter().enumerate() {
        assert_eq!(
            works(&app, cookie).await,
            i == 2,
            "device{i} after logout-others"
        );
    }
    assert!(
        works(&app, &bob).await,
        "another user's session is untouched"
    );
    let list = listed(&app, &cookies[2]).await;
    assert_eq!(list.len(), 1, "{list:?}");
    // Alice's kept session and Bob's: the revoked ones left only tombstones.
    assert_eq!(redis.session_count(), 2);
}

async fn one_session_is_revoked_by_its_handle_and_only_by_its_user(cluster: bool) {
    let redis = Redis::start(cluster, 0);
    let app = redis.app("");
    let laptop = sign_in(&app, "alice", "laptop").await;
    let phone = sign_in(&app, "alice", "phone").await;
    let mallory = sign_in(&app, "mallory", "x").await;
    let list = listed(&app, &laptop).await;
    let (phone_handle, _, _) = list
        .iter()
        .find(|(_, _, about)| about == "phone")
        .expect("phone");

    let foreign = app
        .get(&format!("/revoke?handle={phone_handle}"), Some(&mallory))
        .await;
    assert_eq!(
        foreign.body, "false",
        "another user cannot revoke it: {foreign:?}"
    );
    assert!(works(&app, &phone).await);
    let unknown = app
        .get("/revoke?handle=AAAAAAAAAAAAAAAAAAAAAA", Some(&laptop))
        .await;
    assert_eq!(unknown.body, "false");

    let revoked = app
        .get(&format!("/revoke?handle={phone_handle}"), Some(&laptop))
        .await;
    assert_eq!(
        (revoked.status, revoked.body.as_str()),
        (200, "true"),
        "{revoked:?}"
    );
    assert!(!works(&app, &phone).await, "the revoked session is dead");
    assert!(works(&app, &laptop).await);
    let left: Vec<String> = listed(&app, &laptop)
        .await
        .into_iter()
        .map(|l| l.2)
        .collect();
    assert_eq!(left, ["laptop"]);
}

async fn revoking_all_of_a_users_sessions_ends_every_one(cluster: bool) {
    let redis = Redis::start(cluster, 0);
    let app = redis.app("");
    let cookies = [
        sign_in(&app, "alice", "a").await,
        sign_in(&app, "alice", "b").await,
        sign_in(&app, "alice", "c").await,
    ];
    let other = sign_in(&app, "bob", "d").await;
    // As after a password change: no session of hers is asking.
    let ended = app.get("/revoke-all?user=alice", None).await;
    assert_eq!((ended.status, ended.body.as_str()), (200, "3"), "{ended:?}");
    for cookie in &cookies {
        assert!(!works(&app, cookie).await);
        assert_eq!(
            app.get("/read", Some(cookie)).await.body,
            "0",
            "reads empty"
        );
    }
    assert!(works(&app, &other).await);
    let again = app.get("/revoke-all?user=alice", None).await;
    assert_eq!(again.body, "0", "nothing left to end");
}

async fn a_revoked_sessions_in_flight_write_does_not_bring_it_back(cluster: bool) {
    let redis = Redis::start(cluster, 0);
    let app = redis.app("");
    let kept = sign_in(&app, "alice", "kept").await;
    let revoked = sign_in(&app, "alice", "revoked").await;
    // The write loads the session, then waits while the other device logs it out.
    let slow = app.get("/incr?key=late&delay_ms=800", Some(&revoked));
    let logout_others = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.get("/logout-others", Some(&kept)).await
    };
    let (slow, ended) = tokio::join!(slow, logout_others);
    assert_eq!(ended.body, "1", "{ended:?}");
    assert_eq!(
        slow.status, 409,
        "the in-flight write must not land: {slow:?}"
    );
    assert!(slow.set_cookie.is_none(), "no cookie for a revoked session");
    assert_eq!(app.get("/read?key=late", Some(&revoked)).await.body, "0");
    assert_eq!(redis.session_count(), 1, "only the kept session is stored");
}
