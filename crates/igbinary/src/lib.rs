#![doc = include_str!("../README.md")]
//! The crate root: the public API in one place (decode/encode of blobs, serde conversion) and
//! the limits that apply to hostile input.

mod de;
mod de_key;
mod decode;
mod encode;
mod eq;
mod error;
mod export;
mod ser;
mod value;

pub use de::from_value;
pub use decode::decode;
pub use encode::encode;
pub use error::Error;
pub use export::php_export;
pub use ser::to_value;
pub use value::{Array, Key, Object, ObjectBody, Value};

/// How deep arrays, objects and references may nest, in a blob and on the serde side.
pub const MAX_DEPTH: usize = 128;

/// Serializes a Rust value to an igbinary blob (through [`to_value`] and [`encode`]).
pub fn to_vec<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    Ok(encode(&to_value(value)?))
}

/// Deserializes a Rust value from an igbinary blob (through [`decode`] and [`from_value`]).
pub fn from_slice<T: serde::de::DeserializeOwned>(blob: &[u8]) -> Result<T, Error> {
    from_value(&decode(blob)?)
}
