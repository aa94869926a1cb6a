//! Array keys for serde: PHP arrays key by int or string, Rust maps by anything; this decides
//! what an int key is to a `String` key (its decimal text) and a string key to an int one.

use serde::de::{self, Visitor};
use serde::forward_to_deserialize_any;

use crate::Error;
use crate::de::{EnumReader, utf8};
use crate::value::Key;

/// An array key: an int reads as an int or, where a string is asked, as its decimal text.
pub(crate) struct KeyDeser<'de>(pub(crate) &'de Key);

impl<'de> de::Deserializer<'de> for KeyDeser<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Key::Int(i) => visitor.visit_i64(*i),
            Key::Str(s) => match std::str::from_utf8(s) {
                Ok(s) => visitor.visit_borrowed_str(s),
                Err(_) => visitor.visit_borrowed_bytes(s),
            },
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Key::Int(i) => visitor.visit_string(i.to_string()),
            Key::Str(s) => visitor.visit_borrowed_str(utf8(s)?),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Key::Str(s) => visitor.visit_enum(EnumReader {
                name: utf8(s)?,
                content: None,
            }),
            Key::Int(_) => Err(Error::TypeMismatch {
                expected: "an enum variant name",
                found: "int key",
            }),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf unit
        unit_struct seq tuple tuple_struct map struct ignored_any
    }
}
