//! A small pipelining Redis client: one server, a Redis Cluster or a master found through
//! Redis Sentinel, over plain TCP or TLS, with no knowledge of what its callers store.
//!
//! # Why the project owns a client
//!
//! The session library first used the `redis` crate's reconnecting multiplexed connection. On a
//! session read its driver task, channel, per-command response timer and `combine` reply parser
//! cost about 15,000 instructions (callgrind, `bash bench/instructions.sh`), more than all the
//! rest of the library's work on that request. Here commands are encoded in RESP as they are
//! built ([`Command`]), the calls of concurrent tasks are written together on one connection by
//! one writer, and the replies are read by a one-pass RESP2 reader. The `redis` crate is still
//! used for [`Value`](redis::Value), [`RedisError`](redis::RedisError) (with the server's error
//! codes), [`ToRedisArgs`](redis::ToRedisArgs), script hashes and the sentinels' connections.
//!
//! # What it guarantees
//!
//! - **Order per route.** The calls of one [`Route`] on one [`Lane`] go over one connection,
//!   so Redis runs them in the order they were sent, also when a caller gave up waiting (a
//!   reply that comes after its caller's timeout is read and dropped, keeping the order).
//! - **Every call answered in bounded time**: within the timeout on one server, within the
//!   timeout per phase on a Cluster or under Sentinel (reading the slot map, following a
//!   redirect, asking the sentinels): with the replies, or with [`LinkError::Unavailable`]
//!   (whether a write ran is then unknown; it is never re-sent).
//! - **A command is never split across connections**: a caller whose command was partly
//!   written on a connection that failed gets an error, and no byte of it goes anywhere else,
//!   so every reply reaches its own caller.
//! - **A dead flow is replaced**: when a connection's oldest reply is overdue, a probe on a new
//!   connection asks Redis to run a script; answered there while the old flow brings nothing,
//!   the old connection is dropped and the next call opens another, so calls succeed again
//!   within about twice the timeout of a black-holed flow. A paused or busy Redis answers
//!   neither, and keeps its connection and the order of its commands. TCP keepalive closes
//!   flows that die while idle.
//! - **Every write is flushed**, on plain TCP and TLS alike: no call waits for a later one to
//!   push its bytes out.
//! - **Redirects per command** on a Cluster: only the commands Redis answered with `MOVED`,
//!   `ASK` or `TRYAGAIN` follow the redirect; the replies of the others stay.
//!
//! ```no_run
//! # async fn demo() -> Result<(), redis_link::LinkError> {
//! use std::time::Duration;
//! use redis_link::{Client, ClientConfig, Lane, Login, Route, Topology, cmd};
//!
//! let client = Client::new(ClientConfig {
//!     topology: Topology::Single { host: "127.0.0.1".into(), port: 6379 },
//!     login: Login::default(),
//!     timeout: Duration::from_secs(1),
//!     per_server: 4,
//!     lanes: 0,
//! })?;
//! let route = Route::Keyed { tag: "user1", spread: 1 };
//! let replies = client
//!     .exec(route, Lane::Read, &[cmd("GET").arg("{user1}:name").take()])
//!     .await?;
//! # let _ = replies;
//! # Ok(())
//! # }
//! ```

mod batch;
mod cluster;
mod command;
mod connect;
mod link;
mod pool;
mod resp;

pub use cluster::slot_of;
pub use command::{Command, cmd};
pub use connect::{ClientConfig, Topology};
pub use link::Login;
pub use pool::{Client, Lane, Route, Script};
pub use resp::parse_reply;

mod sentinel;

/// Why a call got no replies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Redis is unreachable or did not answer within the timeout (a connection failed, a
    /// Cluster is reconfiguring, no sentinel named the master): worth trying again later.
    #[error("{0}")]
    Unavailable(String),
    /// Redis answered, but not as it should (a protocol error, a script's error reply).
    #[error("{0}")]
    Backend(String),
}

impl From<&redis::RedisError> for LinkError {
    /// A Redis error as a link error: unreachable or slow (I/O, timeout, refused, dropped) is
    /// `Unavailable`, the rest `Backend`.
    fn from(e: &redis::RedisError) -> Self {
        if e.is_io_error()
            || e.is_timeout()
            || e.is_connection_refusal()
            || e.is_connection_dropped()
        {
            Self::Unavailable(e.to_string())
        } else {
            Self::Backend(e.to_string())
        }
    }
}
