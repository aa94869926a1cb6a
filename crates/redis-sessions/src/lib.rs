#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod config;
pub mod cookie;
pub mod csrf;
pub mod data;
pub mod error;
pub mod flash;
pub mod id;
pub mod layer;
pub mod manager;
pub mod observe;
pub mod session;
pub mod store;

#[cfg(feature = "axum")]
pub mod axum;

#[cfg(feature = "axum")]
pub use crate::axum::{CsrfGuard, CsrfRejection, LazySession, LockedSession};
pub use crate::config::{
    Config, ConfigError, PersistMode, RedisPoolConfig, SameSite, SessionConfig, SessionFormat,
};
pub use crate::data::{DataError, SessionData};
pub use crate::error::SessionError;
#[cfg(feature = "axum")]
pub use crate::flash::Flashes;
pub use crate::id::SessionId;
pub use crate::layer::SessionLayer;
pub use crate::manager::{Persisted, SessionManager, UserSession};
pub use crate::session::Session;
pub use crate::store::redis::RedisStore;
pub use crate::store::{SessionStore, StoreError};

/// The examples of the repository's README compile (checked by `cargo test --doc`).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
