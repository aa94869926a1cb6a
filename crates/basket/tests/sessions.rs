//! HTTP-level specification of the demo's "Your sessions": `GET /api/sessions` lists the
//! signed-in user's sessions (this one marked), `POST /api/sessions/logout-others` and `DELETE
//! /api/sessions/{handle}` end them, and both refuse a request without the right CSRF token
//! with `403` and a JSON error.

mod common;

use common::{Body, Reply, Shop};
use serde_json::{Value, json};

/// Signs in as `user` from a new browser (a new session with a basket, then a login); returns
/// the cookie.
async fn sign_in(shop: &Shop, user: &str) -> String {
    let cookie = shop.session_with("mug-enamel", 1).await;
    let login = shop
        .request(
            "POST",
            "/api/login",
            Some(&cookie),
            Body::Json(json!({ "user": user })),
        )
        .await;
    assert_eq!(login.status, 200, "{login:?}");
    login.cookie()
}

fn json_of(reply: &Reply) -> Value {
    assert!(
        reply.content_type.starts_with("application/json"),
        "{reply:?}"
    );
    serde_json::from_str(&reply.body).expect("JSON")
}

async fn token(shop: &Shop, cookie: &str) -> String {
    let reply = shop.get("/api/csrf", Some(cookie)).await;
    json_of(&reply)["token"].as_str().expect("token").to_owned()
}

async fn sessions(shop: &Shop, cookie: &str) -> Vec<Value> {
    let reply = shop.get("/api/sessions", Some(cookie)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    json_of(&reply)["sessions"]
        .as_array()
        .expect("a list")
        .clone()
}

#[tokio::test]
async fn a_user_with_five_sessions_logging_out_the_others_keeps_only_this_one() {
    let shop = Shop::start().await;
    let mut cookies = Vec::new();
    for _ in 0..5 {
        cookies.push(sign_in(&shop, "ada").await);
    }
    let list = sessions(&shop, &cookies[0]).await;
    assert_eq!(list.len(), 5, "{list:?}");
    for entry in &list {
        let keys: Vec<&str> = entry
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 5, "{entry}");
        for key in ["handle", "current", "created", "last_seen", "description"] {
            assert!(keys.contains(&key), "{key} in {entry}");
        }
    }
    assert_eq!(
        list.iter().filter(|e| e["current"] == json!(true)).count(),
        1
    );

    let token = token(&shop, &cookies[0]).await;
    let ended = shop
        .request_with(
            "POST",
            "/api/sessions/logout-others",
            Some(&cookies[0]),
            Some(&token),
            Body::None,
        )
        .await;
    assert_eq!(
        (ended.status, json_of(&ended)),
        (200, json!({ "ended": 4 }))
    );
    for (i, cookie) in cookies.iter().enumerate() {
        let basket = shop.basket(Some(cookie)).await;
        assert_eq!(basket.user.is_some(), i == 0, "session {i}: {basket:?}");
    }
    assert_eq!(sessions(&shop, &cookies[0]).await.len(), 1);
}

#[tokio::test]
async fn ending_sessions_needs_the_csrf_token_and_a_correct_one_passes() {
    let shop = Shop::start().await;
    let mine = sign_in(&shop, "ada").await;
    let other = sign_in(&shop, "ada").await;
    let list = sessions(&shop, &mine).await;
    let handle = list
        .iter()
        .find(|e| e["current"] == json!(false))
        .and_then(|e| e["handle"].as_str())
        .expect("the other session")
        .to_owned();
    let path = format!("/api/sessions/{handle}");
    let good = token(&shop, &mine).await;
    let stolen = token(&shop, &other).await;

    for (csrf, case) in [
        (None, "no token"),
        (Some("x".repeat(43)), "a wrong token"),
        (Some(stolen), "another session's token"),
    ] {
        for (method, path) in [
            ("DELETE", path.as_str()),
            ("POST", "/api/sessions/logout-others"),
        ] {
            let refused = shop
                .request_with(method, path, Some(&mine), csrf.as_deref(), Body::None)
                .await;
            assert_eq!(refused.status, 403, "{case}: {refused:?}");
            assert!(
                json_of(&refused)["error"]
                    .as_str()
                    .is_some_and(|e| !e.is_empty()),
                "{refused:?}"
            );
        }
    }
    assert_eq!(
        sessions(&shop, &mine).await.len(),
        2,
        "nothing ended without the token"
    );

    let ended = shop
        .request_with("DELETE", &path, Some(&mine), Some(&good), Body::None)
        .await;
    assert_eq!(
        (ended.status, json_of(&ended)),
        (200, json!({ "ended": 1 }))
    );
    assert!(
        shop.basket(Some(&other)).await.user.is_none(),
        "the other session is anonymous"
    );
    let again = shop
        .request_with("DELETE", &path, Some(&mine), Some(&good), Body::None)
        .await;
    assert_eq!(again.status, 404, "{again:?}");
}

#[tokio::test]
async fn a_visitor_who_is_not_signed_in_has_no_sessions_to_see() {
    let shop = Shop::start().await;
    let cookie = shop.session_with("mug-enamel", 1).await;
    let reply = shop.get("/api/sessions", Some(&cookie)).await;
    assert_eq!(reply.status, 401, "{reply:?}");
    assert!(json_of(&reply)["error"].is_string());
}
