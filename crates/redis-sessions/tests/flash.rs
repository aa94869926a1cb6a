//! Flash messages against the real `counter` over HTTP and a private Redis: shown once, left
//! alone by requests that do not read them, and neither lost nor shown twice when adds, reads
//! and a login (rotation) run concurrently. In-process cases (same request, other types, the
//! memory store) at the end.

mod common;

use std::time::Duration;

use common::Counter;
use redis_sessions::store::memory::MemoryStore;
use redis_sessions::{Config, SessionManager};
use redis_test_support::RedisServer;

/// The messages of a `/flashes` body, sorted (concurrent adds have no defined order).
fn sorted(body: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = body.lines().collect();
    lines.sort_unstable();
    lines
}

async fn flash(app: &Counter, cookie: &str, msg: &str) {
    let reply = app.get(&format!("/flash?msg={msg}"), Some(cookie)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

async fn read(app: &Counter, cookie: &str) -> String {
    let reply = app.get("/flashes", Some(cookie)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body
}

#[tokio::test]
async fn a_message_is_shown_once_in_order_by_either_reader() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "", "");
    let cookie = app.new_session().await;
    flash(&app, &cookie, "first").await;
    flash(&app, &cookie, "second").await;
    assert_eq!(read(&app, &cookie).await, "first\nsecond\n");
    assert_eq!(read(&app, &cookie).await, "", "shown once");
    flash(&app, &cookie, "third").await;
    let extracted = app.get("/flashes-extracted", Some(&cookie)).await;
    assert_eq!(extracted.body, "third\n");
    assert_eq!(read(&app, &cookie).await, "");
    assert_eq!(
        app.get("/read", Some(&cookie)).await.body,
        "1",
        "data untouched"
    );
}

#[tokio::test]
async fn requests_that_do_not_read_flashes_leave_them() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "", "");
    let cookie = app.new_session().await;
    flash(&app, &cookie, "kept").await;
    for side in ["/", "/read", "/incr", "/incr?key=other", "/incr-locked"] {
        let reply = app.get(side, Some(&cookie)).await;
        assert_eq!(reply.status, 200, "{side}: {reply:?}");
    }
    assert_eq!(read(&app, &cookie).await, "kept\n");
}

#[tokio::test]
async fn two_concurrent_adds_both_survive() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "", "");
    let cookie = app.new_session().await;
    // Both load the session, then both save: each writes only its own message's field.
    let (a, b) = tokio::join!(
        app.get("/flash?msg=one&delay_ms=300", Some(&cookie)),
        app.get("/flash?msg=two&delay_ms=300", Some(&cookie)),
    );
    assert_eq!((a.status, b.status), (200, 200));
    assert_eq!(sorted(&read(&app, &cookie).await), ["one", "two"]);
}

#[tokio::test]
async fn a_message_added_during_a_read_is_shown_by_the_next_read() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "", "");
    let cookie = app.new_session().await;
    flash(&app, &cookie, "old").await;
    let reader = async { app.get("/flashes?delay_ms=400", Some(&cookie)).await };
    let adder = async {
        // Lands after the reader loaded, before it takes.
        tokio::time::sleep(Duration::from_millis(150)).await;
        app.get("/flash?msg=new", Some(&cookie)).await
    };
    let (reader, adder) = tokio::join!(reader, adder);
    assert_eq!(adder.status, 200);
    assert_eq!(reader.body, "old\n", "the reader takes what it loaded");
    assert_eq!(
        read(&app, &cookie).await,
        "new\n",
        "not lost: the next read shows it"
    );
    assert_eq!(read(&app, &cookie).await, "");
}

#[tokio::test]
async fn two_concurrent_readers_show_each_message_once() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "", "");
    let cookie = app.new_session().await;
    for _ in 0..3 {
        for msg in ["x", "y", "z"] {
            flash(&app, &cookie, msg).await;
        }
        // Both load all three messages before either takes them.
        let (a, b) = tokio::join!(
            app.get("/flashes?delay_ms=200", Some(&cookie)),
            app.get("/flashes?delay_ms=200", Some(&cookie)),
        );
        assert_eq!((a.status, b.status), (200, 200));
        let both = format!("{}{}", a.body, b.body);
        assert_eq!(sorted(&both), ["x", "y", "z"], "{a:?} {b:?}");
    }
    assert_eq!(read(&app, &cookie).await, "");
}

#[tokio::test]
async fn a_message_follows_a_login_and_a_read_racing_it_shows_it_once() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "", "");

    // Added before the login: the new session shows it.
    let cookie = app.new_session().await;
    flash(&app, &cookie, "before").await;
    let login = app.get("/login", Some(&cookie)).await;
    assert_eq!(login.status, 200, "{login:?}");
    let new = login.cookie();
    assert_eq!(read(&app, &new).await, "before\n");
    assert_eq!(read(&app, &new).await, "");

    // A read with the old id that takes the message while the login runs: the login's new
    // session does not bring it back.
    let cookie = app.new_session().await;
    flash(&app, &cookie, "raced").await;
    let login = async { app.get("/login?delay_ms=400", Some(&cookie)).await };
    let reader = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        app.get("/flashes", Some(&cookie)).await
    };
    let (login, reader) = tokio::join!(login, reader);
    assert_eq!(reader.body, "raced\n");
    assert_eq!(read(&app, &login.cookie()).await, "", "not shown twice");

    // A read with the old id after the login ended it takes nothing: the new session shows it.
    let cookie = app.new_session().await;
    flash(&app, &cookie, "moved").await;
    let reader = async { app.get("/flashes?delay_ms=400", Some(&cookie)).await };
    let login = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        app.get("/login", Some(&cookie)).await
    };
    let (reader, login) = tokio::join!(reader, login);
    assert_eq!(reader.body, "", "{reader:?}");
    assert_eq!(read(&app, &login.cookie()).await, "moved\n", "not lost");
}

#[tokio::test]
async fn in_process_same_request_other_types_and_destroy() {
    let manager =
        SessionManager::with_store(Config::default(), MemoryStore::default()).expect("manager");
    let mut request = http::Request::new(());
    let session = manager.start(&mut request).await.expect("start");
    session.flash("count", &3u32).expect("flash");
    session.flash("info", "hello").expect("flash");
    assert_eq!(session.flash_count(), 2);
    assert!(session.data().is_empty(), "messages are not data keys");
    // Taken in the same request: never written.
    let strings = manager
        .take_flashes::<String>(&session)
        .await
        .expect("take");
    assert_eq!(strings, [("info".to_owned(), "hello".to_owned())]);
    let numbers = manager.take_flashes::<u32>(&session).await.expect("take");
    assert_eq!(numbers, [("count".to_owned(), 3)]);
    assert_eq!(session.flash_count(), 0);
    assert!(
        manager
            .persist(&session)
            .await
            .expect("persist")
            .set_cookie
            .is_none()
    );

    session.flash("info", "bye").expect("flash");
    session.destroy();
    assert_eq!(session.flash_count(), 0, "destroy drops messages");
}
