//! The demo shop of `redis-sessions`: a basket kept in a Redis-backed session.
//!
//! Run it from the workspace root with `cargo run --release --bin basket` (options:
//! `--config PATH`, default `config.ini`; `--listen ADDR`, default `127.0.0.1:8080`) and open
//! the address it prints. When the configured Redis does not answer, the demo starts a private
//! `redis-server` itself ([`redis_setup`]).
//!
//! The crate uses the library exactly as an application would: a [`SessionManager`] built from
//! `config.ini`, its layer on the routes that use the session, and the [`Session`] and
//! [`LockedSession`] extractors in the handlers ([`mod@app`]). What it shows:
//!
//! - **Anonymous visitors cost nothing.** Showing an empty basket starts the session but never
//!   writes it, so a visitor without a cookie gets no cookie and Redis gets no key.
//! - **No lost adds.** "Add to basket" is a read-modify-write of one session key, run under the
//!   session lock: two tabs or a double click add up, they never overwrite each other.
//! - **Login rotates the id** (against session fixation) and keeps the basket; **logout destroys**
//!   the session and expires the cookie.
//! - **A CSRF token on demand**: `GET /api/csrf` gives the session's token for routes that check
//!   `X-CSRF-Token` ([`CsrfGuard`](redis_sessions::CsrfGuard)); a login replaces it.
//! - **Bad input never touches the session**: bodies are validated before the session is started,
//!   and every error is JSON, `{"error": "..."}`.
//!
//! [`SessionManager`]: redis_sessions::SessionManager
//! [`Session`]: redis_sessions::Session
//! [`LockedSession`]: redis_sessions::LockedSession
#![forbid(unsafe_code)]

pub mod app;
pub mod basket;
pub mod catalog;
pub mod error;
pub mod metrics;
pub mod redis_setup;
pub mod sessions_api;

pub use crate::app::app;
pub use crate::basket::{Basket, BasketView, ItemView};
pub use crate::error::ApiError;
