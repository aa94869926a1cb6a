//! The HTTP app: the shop page and its JSON API, over a [`SessionManager`].
//!
//! | route | session |
//! |---|---|
//! | `GET /` (the page), `GET /healthz`, `GET /api/products` | never touched (no session layer) |
//! | `GET /api/basket` | read only: no cookie, no write for a visitor without a session |
//! | `POST /api/basket/items` `{"sku", "qty"}` | locked read-modify-write of the basket |
//! | `DELETE /api/basket/items/{sku}` | locked read-modify-write of the basket |
//! | `POST /api/login` `{"user"}` | locked; binds the session to the user (a new id, in the user's list of sessions), keeps the basket |
//! | `POST /api/logout` | destroys the session; the response expires the cookie |
//! | `GET /api/csrf` | `{"token": ...}`: the session's CSRF token, made (and stored) on first use |
//! | `GET /api/flashes` | `{"flashes": ["Added Enamel mug"]}`: the session's flash messages, each returned once (an add sets `Added <name>`, a login `Signed in`) |
//! | `GET /api/sessions`, `POST /api/sessions/logout-others`, `DELETE /api/sessions/{handle}` | the signed-in user's sessions ([`mod@crate::sessions_api`]); the last two need the CSRF token |
//!
//! The CSRF token is for routes guarded by [`CsrfGuard`](redis_sessions::CsrfGuard): the page
//! fetches it when one needs it and sends it in `X-CSRF-Token`; a login or logout replaces it.
//! The routes above keep their contract and do not ask for it.
//!
//! Routes with a body validate it completely *before* the session is started, so a bad request
//! costs no Redis call, takes no lock, and leaves the basket unchanged. Every error is JSON
//! (`{"error": "..."}`, see [`ApiError`]). Bodies must be sent as `application/json` (`415`
//! otherwise): together with the `SameSite=Lax` cookie this keeps other sites' plain HTML forms
//! from changing a visitor's basket.

use axum::extract::Path;
use axum::extract::rejection::JsonRejection;
use axum::http::HeaderMap;
use axum::http::header::USER_AGENT;
use axum::response::Html;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use redis_sessions::{Flashes, LazySession, Session, SessionError, SessionManager};
use serde::{Deserialize, Serialize};

use crate::basket::{Basket, BasketView, MAX_ADD_QTY, MAX_LINE_QTY};
use crate::catalog::{self, PRODUCTS, Product};
use crate::error::{ApiError, Field};
use crate::sessions_api;

/// The session key holding the whole [`Basket`] (one key: see [`Basket`] for why).
pub const BASKET_KEY: &str = "basket";

/// The session key holding the logged-in user's name.
pub const USER_KEY: &str = "user";

/// The key of the shop's flash messages (shown once by the page, from `GET /api/flashes`).
pub const FLASH_KEY: &str = "info";

/// Longest user name accepted by `POST /api/login`, in characters.
pub const MAX_USER_CHARS: usize = 64;

/// The shop page: plain HTML, CSS and a little JavaScript calling the JSON API.
const INDEX_HTML: &str = include_str!("../static/index.html");

/// The shop over `manager`: the page, `/healthz` and the JSON API (see the module docs).
///
/// Tests serve it in-process:
///
/// ```no_run
/// # async fn serve() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let config = redis_sessions::Config::from_ini_file("config.ini")?;
/// let manager = redis_sessions::SessionManager::new(config)?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// axum::serve(listener, basket::app(manager)).await?;
/// # Ok(()) }
/// ```
pub fn app(manager: SessionManager) -> Router {
    let with_session = Router::new()
        .route("/api/basket", get(show_basket))
        .route("/api/basket/items", post(add_item))
        .route("/api/basket/items/{sku}", delete(remove_item))
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/csrf", get(csrf_token))
        .route("/api/flashes", get(flashes))
        .route("/api/sessions", get(sessions_api::list))
        .route(
            "/api/sessions/logout-others",
            post(sessions_api::logout_others),
        )
        .route("/api/sessions/{handle}", delete(sessions_api::end_one))
        .layer(manager.layer())
        .with_state(manager);
    Router::new()
        .route("/", get(|| async { Html(INDEX_HTML) }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/products", get(products))
        .merge(with_session)
}

/// What `qty` must be, in every error about it.
const QTY_RULE: &str = "qty must be a whole number from 1 to 99";
const _: () = assert!(MAX_ADD_QTY == 99, "QTY_RULE names MAX_ADD_QTY");

/// The fields of [`AddItem`] and what each must hold, for [`ApiError::bad_body`].
const ADD_FIELDS: &[Field] = &[
    Field {
        name: "sku",
        rule: "sku must be the sku of a product, as text (\"mug-enamel\")",
    },
    Field {
        name: "qty",
        rule: QTY_RULE,
    },
];
const ADD_EXAMPLE: &str = r#"{"sku": "mug-enamel", "qty": 1}"#;

/// What the login's `user` must be: the page's "User name" field.
const USER_RULE: &str = "user name must be text of 1 to 64 characters";
const _: () = assert!(MAX_USER_CHARS == 64, "USER_RULE names MAX_USER_CHARS");

/// The field of [`Login`], for [`ApiError::bad_body`].
const LOGIN_FIELDS: &[Field] = &[Field {
    name: "user",
    rule: USER_RULE,
}];
const LOGIN_EXAMPLE: &str = r#"{"user": "Ada"}"#;

/// Body of `POST /api/basket/items`.
#[derive(Deserialize)]
struct AddItem {
    sku: String,
    qty: u32,
}

/// Body of `POST /api/login`.
#[derive(Deserialize)]
struct Login {
    user: String,
}

/// Body of `GET /api/csrf`.
#[derive(Serialize)]
struct CsrfToken {
    token: String,
}

async fn csrf_token(session: Result<Session, SessionError>) -> Result<Json<CsrfToken>, ApiError> {
    let token = session?.csrf_token()?;
    Ok(Json(CsrfToken { token }))
}

/// Body of `GET /api/flashes`.
#[derive(Serialize)]
struct FlashList {
    flashes: Vec<String>,
}

/// The flash messages, taken: the next call answers without them.
async fn flashes(flashes: Result<Flashes, SessionError>) -> Result<Json<FlashList>, ApiError> {
    let Flashes(flashes) = flashes?;
    let flashes = flashes.into_iter().map(|(_, message)| message).collect();
    Ok(Json(FlashList { flashes }))
}

async fn products() -> Json<&'static [Product]> {
    Json(PRODUCTS)
}

async fn show_basket(session: Result<Session, SessionError>) -> Result<Json<BasketView>, ApiError> {
    let session = session?;
    Ok(Json(view(&session, &load_basket(&session)?)?))
}

async fn add_item(
    session: LazySession,
    body: Result<Json<AddItem>, JsonRejection>,
) -> Result<Json<BasketView>, ApiError> {
    let Json(add) = body.map_err(|e| ApiError::bad_body(&e, ADD_FIELDS, ADD_EXAMPLE))?;
    if !(1..=MAX_ADD_QTY).contains(&add.qty) {
        return Err(ApiError::unprocessable(QTY_RULE));
    }
    let product = catalog::find(&add.sku).ok_or_else(|| ApiError::unknown_sku(&add.sku))?;
    // Held until the layer has saved: a concurrent add of this session waits for this one.
    let session = session.start_locked().await?;
    let mut basket = load_basket(&session)?;
    basket.add(product.sku, add.qty).map_err(|full| {
        ApiError::unprocessable(format!(
            "qty is too large: the basket holds at most {MAX_LINE_QTY} of one product and has {} \
             of this one",
            full.qty
        ))
    })?;
    store_basket(&session, &basket)?;
    session.flash(FLASH_KEY, &format!("Added {}", product.name))?;
    Ok(Json(view(&session, &basket)?))
}

async fn remove_item(
    session: LazySession,
    Path(sku): Path<String>,
) -> Result<Json<BasketView>, ApiError> {
    let product = catalog::find(&sku).ok_or_else(|| ApiError::unknown_sku(&sku))?;
    let session = session.start_locked().await?;
    let mut basket = load_basket(&session)?;
    if basket.remove(product.sku) {
        store_basket(&session, &basket)?;
    }
    Ok(Json(view(&session, &basket)?))
}

async fn login(
    session: LazySession,
    headers: HeaderMap,
    body: Result<Json<Login>, JsonRejection>,
) -> Result<Json<BasketView>, ApiError> {
    let Json(login) = body.map_err(|e| ApiError::bad_body(&e, LOGIN_FIELDS, LOGIN_EXAMPLE))?;
    let user = login.user.trim();
    if !(1..=MAX_USER_CHARS).contains(&user.chars().count()) {
        return Err(ApiError::unprocessable(USER_RULE));
    }
    if user.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "user name must not contain control characters",
        ));
    }
    // Locked, so a login never rotates the id away under an add that is still running.
    let session = session.start_locked().await?;
    // A new id now that privileges change (against session fixation), listed among the user's
    // sessions under the browser it came from.
    session.bind_user(user)?;
    let agent = headers.get(USER_AGENT).and_then(|v| v.to_str().ok());
    session.describe(agent.unwrap_or("unknown browser"))?;
    session.put(USER_KEY, user)?;
    session.flash(FLASH_KEY, "Signed in")?;
    Ok(Json(view(&session, &load_basket(&session)?)?))
}

async fn logout(session: Result<Session, SessionError>) -> Result<Json<BasketView>, ApiError> {
    session?.destroy();
    Ok(Json(BasketView::default()))
}

fn load_basket(session: &Session) -> Result<Basket, ApiError> {
    Ok(session.get::<Basket>(BASKET_KEY)?.unwrap_or_default())
}

/// Stores `basket`; an emptied basket removes the key rather than storing an empty value.
fn store_basket(session: &Session, basket: &Basket) -> Result<(), ApiError> {
    if basket.is_empty() {
        session.remove(BASKET_KEY);
    } else {
        session.put(BASKET_KEY, basket)?;
    }
    Ok(())
}

fn view(session: &Session, basket: &Basket) -> Result<BasketView, ApiError> {
    Ok(basket.view(session.get::<String>(USER_KEY)?))
}
