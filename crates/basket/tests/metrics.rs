//! `GET /metrics`: after a few shop requests, the session counters scraped in the Prometheus
//! text format have moved by exactly what those requests did, and no label or value shows a
//! session id.
//!
//! The Prometheus recorder is the process's global `metrics` recorder, which can be installed
//! only once: this file is its own test binary and holds this one test.

mod common;

use common::{Body, Shop};
use redis_sessions::SessionId;
use redis_test_support::RedisServer;

/// The value of `name` with exactly `labels` in a Prometheus text page; 0 when absent (a counter
/// not touched yet is not rendered).
fn value(page: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    want.sort();
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, number) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
            let mut got: Vec<String> = rest
                .trim_end_matches('}')
                .split(',')
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
            got.sort();
            (metric == name && got == want).then(|| number.parse().ok())?
        })
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_the_shops_session_operations() {
    let handle = basket::metrics::install().expect("the first recorder of this process");
    let redis = RedisServer::start();
    let port = redis.port();
    let shop = Shop::start_app(redis, port, move |manager| {
        basket::app(manager).merge(basket::metrics::routes(handle))
    })
    .await;
    let scrape = || async {
        let reply = shop.get("/metrics", None).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert!(reply.content_type.starts_with("text/plain"), "{reply:?}");
        reply.body
    };
    let before = scrape().await;

    // A new basket (a create), 3 more adds (3 locked loads, 3 saves), a read, a login (a
    // rotation), a logout (a destroy), and an add with the cookie of before the login (a
    // conflict: that id ended).
    let old = shop.session_with("tea-earl-grey", 1).await;
    for _ in 0..3 {
        assert_eq!(shop.add("mug-enamel", 1, Some(&old)).await.status, 200);
    }
    shop.basket(Some(&old)).await;
    let login = serde_json::json!({ "user": "ann" });
    let reply = shop
        .request("POST", "/api/login", Some(&old), Body::Json(login))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let new = reply.cookie();
    let reply = shop
        .request("POST", "/api/logout", Some(&new), Body::None)
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(shop.add("biscuits-oat", 1, Some(&old)).await.status, 409);

    let after = scrape().await;
    let pool = [("pool", "default")];
    let moved = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    use redis_sessions::observe::*;
    assert_eq!(moved(CREATES, &pool), 1.0, "{after}");
    assert_eq!(moved(SAVES, &pool), 3.0, "{after}");
    // 3 adds, the read, the login, the logout, the late add.
    assert_eq!(moved(LOADS, &pool), 7.0, "{after}");
    assert_eq!(moved(ROTATIONS, &pool), 1.0, "{after}");
    assert_eq!(moved(DESTROYS, &pool), 1.0, "{after}");
    assert_eq!(
        moved(CONFLICTS, &[("pool", "default"), ("kind", "gone")]),
        1.0
    );
    assert_eq!(moved(TOUCHES, &pool), 0.0);
    assert_eq!(moved(LOCK_TIMEOUTS, &pool), 0.0);
    let saves = [("pool", "default"), ("op", "save")];
    let count = format!("{DURATION}_count");
    assert_eq!(moved(&count, &saves), 3.0, "{after}");
    let in_flight = [("pool", "default"), ("op", "lock")];
    assert_eq!(value(&after, IN_FLIGHT, &in_flight), 0.0, "{after}");
    assert!(after.contains("# TYPE redis_sessions_operation_duration_seconds histogram"));

    for pair in [&old, &new] {
        let id = SessionId::parse(common_value(pair)).expect("a session id");
        assert!(!after.contains(&id.expose()), "a session id in the metrics");
        assert!(
            !after.contains(id.storage_id().as_str()),
            "a storage id in the metrics"
        );
    }
}

/// The value of a `name=value` cookie pair.
fn common_value(pair: &str) -> &str {
    pair.split_once('=').map_or(pair, |(_, v)| v)
}
