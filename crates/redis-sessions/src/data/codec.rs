//! How one value is turned into stored bytes and back: MessagePack in this library's own layout,
//! igbinary (PHP's format) under `format = resonance`, so a PHP application reads what Rust
//! wrote. Kept apart from `SessionData` so the map's bookkeeping does not depend on the format.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::depth;
use super::redact::scrub;
use crate::config::SessionFormat;

/// The encoding of a session's values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Codec {
    /// MessagePack with struct fields by name (rmp-serde).
    #[default]
    MessagePack,
    /// One igbinary blob per value (header included), as PHP's `igbinary_serialize` writes it.
    Igbinary,
}

impl Codec {
    /// The codec of `format`.
    pub(crate) fn of(format: SessionFormat) -> Self {
        match format {
            SessionFormat::Native => Self::MessagePack,
            SessionFormat::Resonance => Self::Igbinary,
        }
    }

    /// Decodes `bytes` as a `T`; the error says why not, without quoting the value (errors
    /// reach logs, and values are secrets: see `redact.rs`).
    pub(crate) fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, String> {
        match self {
            Self::MessagePack => {
                if depth::nests_deeper_than(bytes, depth::MAX_DEPTH) {
                    return Err(format!("nested deeper than {} levels", depth::MAX_DEPTH));
                }
                rmp_serde::from_slice(bytes).map_err(|e| scrub(&e.to_string()))
            }
            // The igbinary decoder caps the depth itself.
            Self::Igbinary => igbinary::from_slice(bytes).map_err(|e| scrub(&e.to_string())),
        }
    }

    /// Encodes `value`; the error says why it cannot be.
    pub(crate) fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<Vec<u8>, String> {
        match self {
            Self::MessagePack => {
                let encoded = rmp_serde::to_vec_named(value).map_err(|e| scrub(&e.to_string()))?;
                if depth::nests_deeper_than(&encoded, depth::MAX_DEPTH) {
                    return Err(format!("nested deeper than {} levels", depth::MAX_DEPTH));
                }
                Ok(encoded)
            }
            Self::Igbinary => igbinary::to_vec(value).map_err(|e| scrub(&e.to_string())),
        }
    }
}
