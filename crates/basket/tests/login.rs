//! HTTP-level specification of the demo shop's login and logout: login rotates the session id
//! (the old id is dead for reads and refused for writes), keeps the basket and stores the user;
//! logout destroys the session.

mod common;

use common::{Body, Shop, lines, owned};
use serde_json::json;

#[tokio::test]
async fn login_changes_the_cookie_keeps_the_basket_and_kills_the_old_id() {
    let shop = Shop::start().await;
    let old = shop.session_with("mug-enamel", 2).await;

    let reply = shop
        .request(
            "POST",
            "/api/login",
            Some(&old),
            Body::Json(json!({ "user": "ada" })),
        )
        .await;

    let new = reply.cookie();
    assert_ne!(new, old, "login must rotate the session id");
    let basket = reply.basket();
    assert_eq!(basket.user.as_deref(), Some("ada"));
    assert_eq!(lines(&basket), owned(&[("mug-enamel", 2)]));
    assert_eq!(shop.basket(Some(&new)).await, basket);
    let with_old = shop.get("/api/basket", Some(&old)).await;
    assert_eq!(with_old.basket(), basket::BasketView::default());
    assert_eq!(with_old.set_cookie, None);

    // A write with the rotated-away id is refused, and neither revives nor re-issues that id.
    let add_with_old = shop.add("tea-earl-grey", 1, Some(&old)).await;
    let old_value = old.split_once('=').map_or("", |(_, v)| v);
    assert!(
        !add_with_old
            .set_cookie
            .as_deref()
            .is_some_and(|c| c.contains(old_value)),
        "the old id is never adopted again: {add_with_old:?}"
    );
    assert_eq!(
        add_with_old.status, 409,
        "a write with a rotated-away id is refused: {add_with_old:?}"
    );
    assert_eq!(
        add_with_old.set_cookie, None,
        "no cookie for a refused write: {add_with_old:?}"
    );
    let again = shop.get("/api/basket", Some(&old)).await;
    assert_eq!(again.basket(), basket::BasketView::default());
    assert_eq!(again.set_cookie, None);
    assert_eq!(
        lines(&shop.basket(Some(&new)).await),
        owned(&[("mug-enamel", 2)])
    );
    assert_eq!(
        shop.live_sessions(),
        1,
        "only the rotated session is stored"
    );
}

#[tokio::test]
async fn login_without_a_session_starts_one_for_the_user() {
    let shop = Shop::start().await;

    let reply = shop
        .request(
            "POST",
            "/api/login",
            None,
            Body::Json(json!({ "user": "  grace  " })),
        )
        .await;

    let cookie = reply.cookie();
    assert_eq!(reply.basket().user.as_deref(), Some("grace"));
    assert_eq!(
        shop.basket(Some(&cookie)).await.user.as_deref(),
        Some("grace")
    );
}

#[tokio::test]
async fn login_refuses_empty_and_over_long_names_and_changes_nothing() {
    let shop = Shop::start().await;
    let cookie = shop.session_with("mug-enamel", 1).await;
    let before = shop.basket(Some(&cookie)).await;
    let long = "x".repeat(65);
    // The page's field is labelled "User name"; every refusal names it so.
    let rule = "user name must be text of 1 to 64 characters";
    let cases = [
        (json!({ "user": "" }), rule.to_owned()),
        (json!({ "user": "   " }), rule.to_owned()),
        (json!({ "user": long }), rule.to_owned()),
        (json!({ "user": 42 }), rule.to_owned()),
        (json!({ "user": null }), rule.to_owned()),
        (json!({}), format!("user is missing: {rule}")),
        (
            json!({ "user": "a\u{7}b" }),
            "user name must not contain control characters".to_owned(),
        ),
        (
            json!("Ada"),
            r#"send a JSON object like {"user": "Ada"}"#.to_owned(),
        ),
    ];

    for (body, error) in cases {
        let reply = shop
            .request(
                "POST",
                "/api/login",
                Some(&cookie),
                Body::Json(body.clone()),
            )
            .await;
        assert_eq!((reply.status, reply.error()), (422, error), "{body}");
        assert_eq!(reply.set_cookie, None, "{body}: no rotation");
    }

    assert_eq!(shop.basket(Some(&cookie)).await, before);
    let sixty_four = "é".repeat(64);
    let reply = shop
        .request(
            "POST",
            "/api/login",
            Some(&cookie),
            Body::Json(json!({ "user": sixty_four })),
        )
        .await;
    assert_eq!(
        reply.basket().user,
        Some(sixty_four),
        "64 characters are fine"
    );
}

#[tokio::test]
async fn logout_expires_the_cookie_and_empties_the_basket() {
    let shop = Shop::start().await;
    let cookie = shop.session_with("mug-enamel", 2).await;
    let login = shop
        .request(
            "POST",
            "/api/login",
            Some(&cookie),
            Body::Json(json!({ "user": "ada" })),
        )
        .await;
    let cookie = login.cookie();

    let reply = shop
        .request("POST", "/api/logout", Some(&cookie), Body::None)
        .await;

    assert_eq!(reply.basket(), basket::BasketView::default());
    let removal = reply.set_cookie.clone().expect("a removal cookie");
    assert!(removal.starts_with("dmsession="), "{removal}");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    assert_eq!(
        shop.basket(Some(&cookie)).await,
        basket::BasketView::default()
    );
    assert_eq!(shop.live_sessions(), 0, "the session record is gone");
}

#[tokio::test]
async fn an_add_and_a_login_leave_a_flash_message_shown_once() {
    let shop = Shop::start().await;
    let flashes = |reply: common::Reply| {
        assert_eq!(reply.status, 200, "{reply:?}");
        serde_json::from_str::<serde_json::Value>(&reply.body).expect("JSON")["flashes"].clone()
    };
    assert_eq!(flashes(shop.get("/api/flashes", None).await), json!([]));
    let cookie = shop.session_with("tea-earl-grey", 1).await;
    shop.basket(Some(&cookie)).await; // a request that does not read messages leaves them
    let first = flashes(shop.get("/api/flashes", Some(&cookie)).await);
    assert_eq!(first, json!(["Added Earl Grey tea, 100 g"]));
    assert_eq!(
        flashes(shop.get("/api/flashes", Some(&cookie)).await),
        json!([])
    );

    let login = shop
        .request(
            "POST",
            "/api/login",
            Some(&cookie),
            Body::Json(json!({ "user": "ada" })),
        )
        .await;
    let new = login.cookie();
    assert_eq!(
        flashes(shop.get("/api/flashes", Some(&new)).await),
        json!(["Signed in"])
    );
    assert_eq!(
        flashes(shop.get("/api/flashes", Some(&new)).await),
        json!([])
    );
}
