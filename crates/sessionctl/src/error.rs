//! The tool's failures and the exit code each one gives, so that scripts can tell "no such
//! session" from "Redis is down" from "you typed it wrong" without reading messages.

use std::fmt;
use std::process::ExitCode;

/// Exit codes, as documented in `--help` and the README.
pub(crate) mod code {
    /// Success.
    pub(crate) const OK: u8 = 0;
    /// `show`/`destroy`: no live session with that id; `user list`: the user has no live
    /// session; `user revoke`: nothing was ended.
    pub(crate) const NOT_FOUND: u8 = 1;
    /// Bad arguments, a malformed id, a missing or invalid `config.ini`, an unknown pool.
    pub(crate) const USAGE: u8 = 2;
    /// Redis could not be reached or did not answer in time.
    pub(crate) const UNREACHABLE: u8 = 3;
    /// Redis answered with an error (wrong password, missing ACL right, Cluster down...).
    pub(crate) const REDIS: u8 = 4;
    /// `purge` deleted nothing: declined at the prompt, or no terminal and no `--yes`.
    pub(crate) const NOT_CONFIRMED: u8 = 5;
}

/// Why a command failed; each kind maps to one exit code.
#[derive(Debug)]
pub(crate) enum CtlError {
    /// Arguments or configuration (exit 2).
    Usage(String),
    /// Redis unreachable or too slow (exit 3).
    Unreachable(String),
    /// Redis said no (exit 4).
    Redis(String),
    /// `purge` was not confirmed (exit 5).
    NotConfirmed(String),
}

impl CtlError {
    /// The process exit code of this failure.
    pub(crate) fn code(&self) -> u8 {
        match self {
            Self::Usage(_) => code::USAGE,
            Self::Unreachable(_) => code::UNREACHABLE,
            Self::Redis(_) => code::REDIS,
            Self::NotConfirmed(_) => code::NOT_CONFIRMED,
        }
    }

    /// A short machine name of the kind, for `--json`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Usage(_) => "usage",
            Self::Unreachable(_) => "unreachable",
            Self::Redis(_) => "redis_error",
            Self::NotConfirmed(_) => "not_confirmed",
        }
    }

    /// The exit code as the process returns it.
    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code())
    }

    /// A Redis failure at `what` (e.g. "connecting to 127.0.0.1:6379"), sorted into
    /// unreachable (no answer) or refused (an error reply).
    pub(crate) fn redis(what: &str, e: &redis::RedisError) -> Self {
        let message = format!("{what}: {e}");
        if e.is_io_error()
            || e.is_timeout()
            || e.is_connection_refusal()
            || e.is_connection_dropped()
        {
            Self::Unreachable(format!("Redis is unreachable ({message})"))
        } else {
            Self::Redis(format!("Redis refused ({message})"))
        }
    }

    /// A failure of the library's store (used by `destroy`) at `place` (the pool's address).
    pub(crate) fn store(place: &str, e: &redis_sessions::StoreError) -> Self {
        match e {
            redis_sessions::StoreError::Unavailable(m) => {
                Self::Unreachable(format!("Redis is unreachable ({place}: {m})"))
            }
            redis_sessions::StoreError::Backend(m) => {
                Self::Redis(format!("Redis refused ({place}: {m})"))
            }
        }
    }

    /// A failure of the library's manager (used by `user`) at `place`: a store failure is
    /// sorted as by [`CtlError::store`]; anything else is the Redis data not being what the
    /// library wrote (exit 4).
    pub(crate) fn session(place: &str, e: &redis_sessions::SessionError) -> Self {
        match e {
            redis_sessions::SessionError::Store(e) => Self::store(place, e),
            other => Self::Redis(format!("unexpected session data ({place}: {other})")),
        }
    }
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(m) | Self::Unreachable(m) | Self::Redis(m) | Self::NotConfirmed(m) => {
                f.write_str(m)
            }
        }
    }
}

/// Results of the tool's steps.
pub(crate) type CtlResult<T> = Result<T, CtlError>;
