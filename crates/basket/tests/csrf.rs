//! HTTP-level specification of the demo's `GET /api/csrf`: the session's CSRF token as
//! `{"token": ...}`, made on first use, stable within the session, replaced by a login and gone
//! after a logout; the basket, login and logout routes do not ask for it.

mod common;

use common::{Body, Reply, Shop};
use serde_json::json;

fn token_of(reply: &Reply) -> String {
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(
        reply.content_type.starts_with("application/json"),
        "{reply:?}"
    );
    let value: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
    let token = value["token"].as_str().expect("a token field").to_owned();
    assert_eq!(value, json!({ "token": token }), "only the token");
    assert_eq!(token.len(), 43, "{token}");
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "url-safe: {token}"
    );
    token
}

#[tokio::test]
async fn a_visitor_asking_for_a_token_gets_a_session_and_the_same_token_again() {
    let shop = Shop::start().await;

    let first = shop.get("/api/csrf", None).await;
    let cookie = first.cookie();
    let token = token_of(&first);
    assert!(!cookie.contains(&token), "the token is not the session id");
    assert_eq!(shop.live_sessions(), 1);

    let again = shop.get("/api/csrf", Some(&cookie)).await;
    assert_eq!(token_of(&again), token);
    assert_eq!(again.set_cookie, None);

    let other = shop.get("/api/csrf", None).await;
    assert_ne!(token_of(&other), token, "each session has its own token");
}

#[tokio::test]
async fn login_replaces_the_token_and_the_basket_routes_do_not_need_it() {
    let shop = Shop::start().await;
    let cookie = shop.session_with("mug-enamel", 1).await;
    let before = token_of(&shop.get("/api/csrf", Some(&cookie)).await);

    // No X-CSRF-Token on any of these: their contract is unchanged.
    assert_eq!(
        shop.add("tea-earl-grey", 1, Some(&cookie)).await.status,
        200
    );
    let login = shop
        .request(
            "POST",
            "/api/login",
            Some(&cookie),
            Body::Json(json!({ "user": "ada" })),
        )
        .await;
    assert_eq!(login.status, 200, "{login:?}");
    let new = login.cookie();

    let after = token_of(&shop.get("/api/csrf", Some(&new)).await);
    assert_ne!(
        after, before,
        "a token learned before the login is replaced"
    );

    let logout = shop
        .request("POST", "/api/logout", Some(&new), Body::None)
        .await;
    assert_eq!(logout.status, 200, "{logout:?}");
    let fresh = shop.get("/api/csrf", None).await;
    assert_ne!(token_of(&fresh), after);
}
