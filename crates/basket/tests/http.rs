//! HTTP-level specification of the demo shop's page, catalogue and basket: `basket::app` served
//! in-process, over a private `redis-server`, through the real session layer, with real cookies
//! sent by hand. Login and logout are in `login.rs`.

mod common;

use common::{Body, Shop, lines, owned};
use redis_test_support::{CountingProxy, RedisServer};
use serde_json::json;

#[tokio::test]
async fn healthz_answers_ok_without_touching_the_session() {
    let redis = RedisServer::start();
    let proxy = CountingProxy::start(redis.port());
    let shop = Shop::start_via(redis, proxy.port()).await;
    let cookie = shop.session_with("mug-enamel", 1).await;
    proxy.wait_idle();
    proxy.reset();

    let reply = shop.get("/healthz", Some(&cookie)).await;

    assert_eq!((reply.status, reply.body.as_str()), (200, "ok"));
    assert_eq!(reply.set_cookie, None);
    assert_eq!(proxy.round_trips(), 0, "{:?}", proxy.command_names());
}

#[tokio::test]
async fn the_page_is_html_with_the_test_hooks() {
    let shop = Shop::start().await;

    let reply = shop.get("/", None).await;

    assert_eq!(reply.status, 200);
    assert!(reply.content_type.starts_with("text/html"), "{reply:?}");
    for hook in ["products", "basket-total", "login-name", "logout"] {
        assert!(
            reply.body.contains(&format!("data-testid=\"{hook}\"")),
            "{hook}"
        );
    }
    assert_eq!(reply.set_cookie, None);
    assert_eq!(shop.dbsize(), 0);
}

#[tokio::test]
async fn products_are_listed_with_sku_name_and_price() {
    let shop = Shop::start().await;

    let reply = shop.get("/api/products", None).await;

    assert_eq!(reply.status, 200);
    let products: Vec<serde_json::Value> = serde_json::from_str(&reply.body).expect("JSON array");
    assert!(products.len() >= 3, "{products:?}");
    for product in &products {
        assert!(product["sku"].is_string(), "{product}");
        assert!(product["name"].is_string(), "{product}");
        assert!(
            product["price_cents"].as_u64().is_some_and(|p| p > 0),
            "{product}"
        );
    }
}

#[tokio::test]
async fn a_visitor_without_a_session_sees_an_empty_basket_gets_no_cookie_and_writes_nothing() {
    let shop = Shop::start().await;

    let reply = shop.get("/api/basket", None).await;

    assert_eq!(reply.status, 200);
    assert_eq!(reply.set_cookie, None);
    let body: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
    assert_eq!(body, json!({ "items": [], "total_cents": 0, "user": null }));
    assert_eq!(shop.dbsize(), 0);
}

#[tokio::test]
async fn added_items_show_with_catalogue_names_prices_and_total() {
    let shop = Shop::start().await;
    let cookie = shop.session_with("tea-earl-grey", 2).await;

    let reply = shop.add("mug-enamel", 1, Some(&cookie)).await;
    assert_eq!(
        reply.set_cookie, None,
        "an existing session keeps its cookie"
    );
    let again = shop.add("tea-earl-grey", 3, Some(&cookie)).await;

    let basket = shop.basket(Some(&cookie)).await;
    assert_eq!(
        again.basket(),
        basket,
        "every change answers with the basket"
    );
    let body: serde_json::Value =
        serde_json::from_str(&shop.get("/api/basket", Some(&cookie)).await.body).expect("JSON");
    assert_eq!(
        body,
        json!({
            "items": [
                { "sku": "tea-earl-grey", "name": "Earl Grey tea, 100 g", "qty": 5, "price_cents": 650 },
                { "sku": "mug-enamel", "name": "Enamel mug", "qty": 1, "price_cents": 1200 },
            ],
            "total_cents": 5 * 650 + 1200,
            "user": null,
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_adds_of_one_sku_never_lose_quantity_nor_pass_the_line_cap() {
    let shop = Shop::start().await;
    let cookie = shop.session_with("biscuits-oat", 1).await;

    // 120 adds of 1 at once onto a line of 1: exactly 98 fit under the cap of 99.
    let adds = (0..120).map(|_| shop.add("biscuits-oat", 1, Some(&cookie)));
    let replies = futures_util::future::join_all(adds).await;

    let accepted = replies.iter().filter(|r| r.status == 200).count();
    for reply in replies.iter().filter(|r| r.status != 200) {
        assert_eq!(reply.status, 422, "{reply:?}");
        assert!(reply.error().contains("at most 99"), "{reply:?}");
    }
    assert_eq!(accepted, 98);
    let basket = shop.basket(Some(&cookie)).await;
    assert_eq!(lines(&basket), owned(&[("biscuits-oat", 99)]));
}

#[tokio::test]
async fn an_unknown_sku_is_404_with_a_json_error_and_changes_nothing() {
    let shop = Shop::start().await;
    let cookie = shop.session_with("mug-enamel", 1).await;
    let before = shop.basket(Some(&cookie)).await;

    let reply = shop.add("unicorn", 1, Some(&cookie)).await;

    assert_eq!(reply.status, 404, "{reply:?}");
    assert_eq!(
        reply.error(),
        r#"sku "unicorn" is not a product of this shop"#
    );
    assert_eq!(shop.basket(Some(&cookie)).await, before);
}

#[tokio::test]
async fn a_bad_add_costs_no_redis_call_and_takes_no_lock() {
    let redis = RedisServer::start();
    let proxy = CountingProxy::start(redis.port());
    let shop = Shop::start_via(redis, proxy.port()).await;
    let cookie = shop.session_with("mug-enamel", 1).await;
    proxy.wait_idle();
    proxy.reset();

    let reply = shop
        .request(
            "POST",
            "/api/basket/items",
            Some(&cookie),
            Body::RawJson(r#"{"sku": "mug-enamel", "qty": 0}"#),
        )
        .await;

    assert_eq!(reply.status, 422, "{reply:?}");
    proxy.wait_idle();
    assert_eq!(proxy.round_trips(), 0, "{:?}", proxy.command_names());
}

#[tokio::test]
async fn bad_add_bodies_are_json_errors_and_leave_the_basket_unchanged() {
    let shop = Shop::start().await;
    let cookie = shop.session_with("mug-enamel", 3).await;
    let before = shop.basket(Some(&cookie)).await;
    let cases: [(&str, &str); 9] = [
        ("qty 0", r#"{"sku": "mug-enamel", "qty": 0}"#),
        ("qty 100", r#"{"sku": "mug-enamel", "qty": 100}"#),
        ("qty -1", r#"{"sku": "mug-enamel", "qty": -1}"#),
        ("qty 1.5", r#"{"sku": "mug-enamel", "qty": 1.5}"#),
        ("qty \"2\"", r#"{"sku": "mug-enamel", "qty": "2"}"#),
        ("qty missing", r#"{"sku": "mug-enamel"}"#),
        ("sku missing", r#"{"qty": 1}"#),
        ("malformed JSON", r#"{"sku": "mug-enamel", "qty": "#),
        ("not an object", r#"[1, 2]"#),
    ];

    for (case, body) in cases {
        for cookie in [Some(cookie.as_str()), None] {
            let reply = shop
                .request("POST", "/api/basket/items", cookie, Body::RawJson(body))
                .await;
            assert!(
                [400, 422].contains(&reply.status),
                "{case}: expected 400 or 422, got {reply:?}"
            );
            assert!(!reply.error().is_empty(), "{case}");
            assert_eq!(
                reply.set_cookie, None,
                "{case}: no cookie for a bad request"
            );
        }
    }

    assert_eq!(shop.basket(Some(&cookie)).await, before);
    assert_eq!(
        shop.dbsize(),
        1,
        "only the one session, no key from a bad request"
    );
}

#[tokio::test]
async fn a_body_not_sent_as_json_is_refused() {
    let shop = Shop::start().await;

    let reply = shop
        .request(
            "POST",
            "/api/basket/items",
            None,
            Body::Form("sku=mug-enamel&qty=1"),
        )
        .await;

    assert_eq!(reply.status, 415, "{reply:?}");
    assert!(!reply.error().is_empty());
    assert_eq!(shop.dbsize(), 0);
}

#[tokio::test]
async fn a_line_never_exceeds_99_units_the_limit_of_one_add() {
    let shop = Shop::start().await;
    let cookie = shop.session_with("tea-earl-grey", 98).await;

    let over = shop.add("tea-earl-grey", 2, Some(&cookie)).await;
    assert_eq!(over.status, 422, "{over:?}");
    assert_eq!(
        over.error(),
        "qty is too large: the basket holds at most 99 of one product and has 98 of this one"
    );
    assert_eq!(
        lines(&shop.basket(Some(&cookie)).await),
        owned(&[("tea-earl-grey", 98)]),
        "a refused add leaves the line as it was"
    );

    let last = shop.add("tea-earl-grey", 1, Some(&cookie)).await;
    assert_eq!(lines(&last.basket()), owned(&[("tea-earl-grey", 99)]));
    for qty in [1, 99] {
        let reply = shop.add("tea-earl-grey", qty, Some(&cookie)).await;
        assert_eq!(reply.status, 422, "{reply:?}");
        assert!(reply.error().contains("has 99 of this one"), "{reply:?}");
    }
    // Other lines have their own 99.
    let other = shop.add("mug-enamel", 99, Some(&cookie)).await;
    assert_eq!(
        lines(&other.basket()),
        owned(&[("tea-earl-grey", 99), ("mug-enamel", 99)])
    );
}

#[tokio::test]
async fn every_refused_add_says_in_one_sentence_which_field_is_wrong() {
    let shop = Shop::start().await;
    let qty = "qty must be a whole number from 1 to 99";
    let sku = r#"sku must be the sku of a product, as text ("mug-enamel")"#;
    let object = r#"send a JSON object like {"sku": "mug-enamel", "qty": 1}"#;
    let cases: [(&str, u16, String); 14] = [
        (r#"{"sku": "mug-enamel", "qty": 0}"#, 422, qty.into()),
        (r#"{"sku": "mug-enamel", "qty": 100}"#, 422, qty.into()),
        (r#"{"sku": "mug-enamel", "qty": -1}"#, 422, qty.into()),
        (r#"{"sku": "mug-enamel", "qty": 1.5}"#, 422, qty.into()),
        (r#"{"sku": "mug-enamel", "qty": "2"}"#, 422, qty.into()),
        (r#"{"sku": "mug-enamel", "qty": null}"#, 422, qty.into()),
        (
            r#"{"sku": "mug-enamel", "qty": 4294967296}"#,
            422,
            qty.into(),
        ),
        (
            r#"{"sku": "mug-enamel"}"#,
            422,
            format!("qty is missing: {qty}"),
        ),
        (r#"{"qty": 1}"#, 422, format!("sku is missing: {sku}")),
        (r#"{"sku": 7, "qty": 1}"#, 422, sku.into()),
        (r#"[1, 2]"#, 422, object.into()),
        (r#"null"#, 422, object.into()),
        (
            r#"{"sku": "mug-enamel", "qty": "#,
            400,
            format!("the body is not valid JSON; {object}"),
        ),
        (
            r#"{"sku": "mug-enamel", "qty": 1} trailing"#,
            400,
            format!("the body is not valid JSON; {object}"),
        ),
    ];

    for (body, status, error) in cases {
        let reply = shop
            .request("POST", "/api/basket/items", None, Body::RawJson(body))
            .await;
        assert_eq!((reply.status, reply.error()), (status, error), "{body}");
        assert!(
            !reply.body.contains("line 1") && !reply.body.contains("expected"),
            "{body}: no serde text in {reply:?}"
        );
    }
    let form = shop
        .request(
            "POST",
            "/api/basket/items",
            None,
            Body::Form("sku=mug-enamel&qty=1"),
        )
        .await;
    assert_eq!(
        (form.status, form.error().as_str()),
        (
            415,
            "send the body as JSON, with the header Content-Type: application/json"
        )
    );
    assert_eq!(shop.dbsize(), 0);
}

#[tokio::test]
async fn removing_a_line_keeps_the_other_lines() {
    let shop = Shop::start().await;
    let cookie = shop.session_with("tea-earl-grey", 2).await;
    shop.add("mug-enamel", 1, Some(&cookie)).await;
    shop.add("biscuits-oat", 4, Some(&cookie)).await;

    let reply = shop
        .request(
            "DELETE",
            "/api/basket/items/mug-enamel",
            Some(&cookie),
            Body::None,
        )
        .await;

    let expected = owned(&[("tea-earl-grey", 2), ("biscuits-oat", 4)]);
    assert_eq!(lines(&reply.basket()), expected);
    assert_eq!(lines(&shop.basket(Some(&cookie)).await), expected);
    assert_eq!(
        shop.basket(Some(&cookie)).await.total_cents,
        2 * 650 + 4 * 325
    );
}

#[tokio::test]
async fn removing_an_unknown_sku_is_404_and_removing_an_absent_line_is_harmless() {
    let shop = Shop::start().await;
    let cookie = shop.session_with("tea-earl-grey", 2).await;

    let unknown = shop
        .request(
            "DELETE",
            "/api/basket/items/unicorn",
            Some(&cookie),
            Body::None,
        )
        .await;
    let absent = shop
        .request(
            "DELETE",
            "/api/basket/items/mug-enamel",
            Some(&cookie),
            Body::None,
        )
        .await;
    let anonymous = shop
        .request("DELETE", "/api/basket/items/mug-enamel", None, Body::None)
        .await;

    assert_eq!(unknown.status, 404, "{unknown:?}");
    assert!(!unknown.error().is_empty());
    assert_eq!(lines(&absent.basket()), owned(&[("tea-earl-grey", 2)]));
    assert_eq!(anonymous.set_cookie, None, "nothing to remove: no session");
    assert_eq!(shop.dbsize(), 1);
}
