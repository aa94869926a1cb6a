//! `DataError`: what can go wrong reading or writing one session value, kept apart from the
//! map itself (`mod.rs`).

/// An error from reading or writing one value.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The value could not be encoded as MessagePack.
    #[error("cannot encode the value for session key {key:?}: {message}")]
    Encode {
        /// The session key.
        key: String,
        /// What the encoder said.
        message: String,
    },
    /// The stored bytes do not decode as the requested type (corrupt data, or a type change).
    #[error("stored value for session key {key:?} cannot be decoded as {type_name}: {message}")]
    Decode {
        /// The session key.
        key: String,
        /// The type asked for.
        type_name: &'static str,
        /// What the decoder said.
        message: String,
    },
    /// The encoded value is larger than `max_value_bytes`.
    #[error("value for session key {key:?} is {size} bytes, over max_value_bytes = {limit}")]
    ValueTooLarge {
        /// The session key.
        key: String,
        /// Encoded size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The session would exceed `max_session_bytes`.
    #[error("session would hold {size} bytes, over max_session_bytes = {limit}")]
    SessionTooLarge {
        /// Size the session would have.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Session keys must be non-empty (the empty field name is reserved for metadata).
    #[error("session keys must not be empty")]
    EmptyKey,
    /// Keys that begin with a NUL character hold the library's own values (the CSRF token, the
    /// user a session is bound to); handlers cannot read or write them as data.
    #[error(
        "session key {key:?} begins with a NUL character: such keys are reserved for the library"
    )]
    ReservedKey {
        /// The session key.
        key: String,
    },
}
