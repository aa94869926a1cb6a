//! HTTP-level specification of `persist`: `before_response` answers after the write has landed,
//! `after_response` answers first and writes in the background.

mod common;

use std::time::{Duration, Instant};

use common::Counter;
use redis_test_support::RedisServer;

#[tokio::test]
async fn after_response_mode_sets_the_cookie_and_writes_in_the_background() {
    let redis = RedisServer::start();
    let app = Counter::start(redis.port(), "persist = after_response", "");
    let cookie = app.new_session().await;
    let started = Instant::now();
    loop {
        if app.get("/read", Some(&cookie)).await.body == "1" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the write never landed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
