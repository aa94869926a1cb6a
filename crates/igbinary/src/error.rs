//! The one error type of the crate: what went wrong and, for blobs, at which byte offset, so a
//! bad session in Redis can be diagnosed from the message alone.

use std::fmt::Display;

/// Why decoding, encoding through serde, or converting a [`Value`](crate::Value) failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The blob does not start with the igbinary header `00 00 00 02` (or `00 00 00 01`).
    #[error("bad header: expected 00 00 00 02 (or 00 00 00 01), found {found:02x?}")]
    BadHeader {
        /// The first bytes of the blob (up to 4).
        found: Vec<u8>,
    },
    /// The blob ends in the middle of a value.
    #[error("truncated input: {needed} more bytes needed at offset {offset}, {available} left")]
    Truncated {
        /// Where the missing bytes should start.
        offset: usize,
        /// How many bytes the value needs there.
        needed: u64,
        /// How many bytes are left.
        available: usize,
    },
    /// An array, string or payload claims more entries or bytes than the blob has left.
    #[error("count {count} at offset {offset} is larger than the {available} bytes left")]
    CountTooLarge {
        /// Offset of the count.
        offset: usize,
        /// The count read.
        count: u64,
        /// Bytes left after the count.
        available: usize,
    },
    /// Arrays, objects and references nest deeper than [`MAX_DEPTH`](crate::MAX_DEPTH).
    #[error("nesting deeper than {limit} at offset {offset}")]
    TooDeep {
        /// Offset of the value one level too deep.
        offset: usize,
        /// The limit.
        limit: usize,
    },
    /// A Rust value (serde) or value tree nests deeper than [`MAX_DEPTH`](crate::MAX_DEPTH).
    #[error("value nests deeper than {limit} levels")]
    NestingTooDeep {
        /// The limit.
        limit: usize,
    },
    /// A type tag the format does not define (or not allowed where it is).
    #[error("unknown tag 0x{tag:02x} at offset {offset} ({context})")]
    UnknownTag {
        /// The tag byte.
        tag: u8,
        /// Its offset.
        offset: usize,
        /// What was being read there.
        context: &'static str,
    },
    /// An integer outside i64 in a blob.
    #[error("integer out of range (beyond i64) at offset {offset}")]
    IntegerOutOfRange {
        /// Offset of the integer's tag.
        offset: usize,
    },
    /// A Rust integer PHP cannot hold (PHP ints are i64).
    #[error("integer {0} out of range: PHP ints are i64")]
    IntegerTooLarge(String),
    /// Bytes after the one top-level value.
    #[error("{count} trailing bytes at offset {offset} after the value")]
    TrailingBytes {
        /// Offset of the first extra byte.
        offset: usize,
        /// How many there are.
        count: usize,
    },
    /// A back-reference to a slot that does not exist (yet).
    #[error("back-reference to unknown slot {index} at offset {offset} ({slots} slots so far)")]
    BadBackReference {
        /// Offset of the back-reference.
        offset: usize,
        /// The slot it names.
        index: u32,
        /// Slots known at that point.
        slots: usize,
    },
    /// A back-reference to an array or object still being decoded: a cycle, refused.
    #[error(
        "back-reference at offset {offset} to slot {index}, which encloses it (cycles are refused)"
    )]
    Cycle {
        /// Offset of the back-reference.
        offset: usize,
        /// The slot it names.
        index: u32,
    },
    /// A reference to an interned string that does not exist (yet).
    #[error("string id {index} at offset {offset} unknown ({strings} strings so far)")]
    BadStringId {
        /// Offset of the string reference.
        offset: usize,
        /// The id.
        index: u32,
        /// Strings known at that point.
        strings: usize,
    },
    /// Back-references (to arrays, objects or interned strings) would make the value tree far
    /// larger than the blob.
    #[error(
        "back-references at offset {offset} expand the value past {limit} (nodes plus string bytes)"
    )]
    TooLarge {
        /// Offset where the limit was passed.
        offset: usize,
        /// The limit for this blob.
        limit: u64,
    },
    /// A PHP string that is not UTF-8 where a Rust string was asked for.
    #[error("string is not UTF-8 (valid up to byte {valid_up_to}) where a String was expected")]
    NotUtf8 {
        /// Length of the valid UTF-8 prefix.
        valid_up_to: usize,
    },
    /// The value has another type than the Rust side asked for.
    #[error("type mismatch: expected {expected}, found {found}")]
    TypeMismatch {
        /// What was asked for.
        expected: &'static str,
        /// What the value is.
        found: &'static str,
    },
    /// A map key that is neither an integer nor a string.
    #[error("unsupported map key: {0} (PHP array keys are ints or strings)")]
    UnsupportedKey(&'static str),
    /// A message from a `Serialize` or `Deserialize` implementation.
    #[error("{0}")]
    Custom(String),
}

impl serde::ser::Error for Error {
    fn custom<T: Display>(msg: T) -> Error {
        Error::Custom(msg.to_string())
    }
}

impl serde::de::Error for Error {
    fn custom<T: Display>(msg: T) -> Error {
        Error::Custom(msg.to_string())
    }
}
