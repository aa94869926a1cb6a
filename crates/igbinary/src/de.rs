//! [`Value`] to Rust through serde: PHP arrays read as structs, maps or (when their keys are
//! 0..n in order) sequences, with the checks a typed Rust side needs (UTF-8, types, depth).

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, Visitor};
use serde::forward_to_deserialize_any;

use crate::de_key::KeyDeser;
use crate::value::{Array, Key, ObjectBody, Value};
use crate::{Error, MAX_DEPTH};

/// Converts a [`Value`] to any `DeserializeOwned` type.
///
/// Arrays read as structs and maps (int keys read into string keys as decimal text, into int
/// keys as ints) and, when their keys are 0..n in order, as sequences; null as `None` and `()`;
/// strings as `String` (an error if not UTF-8) or bytes; PHP references are transparent;
/// enums in serde's externally tagged form (`"Variant"` or `["Variant" => content]`), or an
/// enum case object by its case name.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, Error> {
    T::deserialize(Deser { value, depth: 0 })
}

#[derive(Clone, Copy)]
pub(crate) struct Deser<'de> {
    value: &'de Value,
    depth: usize,
}

pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, Error> {
    std::str::from_utf8(bytes).map_err(|e| Error::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    })
}

impl<'de> Deser<'de> {
    fn nested(&self, value: &'de Value) -> Result<Deser<'de>, Error> {
        if self.depth >= MAX_DEPTH {
            return Err(Error::NestingTooDeep { limit: MAX_DEPTH });
        }
        Ok(Deser {
            value,
            depth: self.depth + 1,
        })
    }

    fn mismatch(&self, expected: &'static str) -> Error {
        Error::TypeMismatch {
            expected,
            found: self.value.kind(),
        }
    }

    /// The properties or entries to read as a map.
    fn entries(&self) -> Option<&'de Array> {
        match self.value {
            Value::Array(a) => Some(a),
            Value::Object(o) => match &o.body {
                ObjectBody::Properties(p) => Some(p),
                _ => None,
            },
            _ => None,
        }
    }

    fn map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let array = self.entries().ok_or_else(|| self.mismatch("an array"))?;
        self.nested(self.value)?;
        visitor.visit_map(MapReader {
            iter: Box::new(array.iter()),
            value: None,
            depth: self.depth + 1,
        })
    }

    fn seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Array(a) if a.is_list() => {
                self.nested(self.value)?;
                visitor.visit_seq(SeqReader {
                    iter: Box::new(a.iter().map(|(_, v)| v)),
                    depth: self.depth + 1,
                })
            }
            Value::Array(_) => Err(Error::TypeMismatch {
                expected: "a list (array with keys 0..n in order)",
                found: "an array with other keys",
            }),
            _ => Err(self.mismatch("a list")),
        }
    }
}

impl<'de> de::Deserializer<'de> for Deser<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => match std::str::from_utf8(s) {
                Ok(s) => visitor.visit_borrowed_str(s),
                Err(_) => visitor.visit_borrowed_bytes(s),
            },
            Value::Array(a) if a.is_list() && !a.is_empty() => self.seq(visitor),
            Value::Array(_) => self.map(visitor),
            Value::Object(o) => match &o.body {
                ObjectBody::Properties(_) => self.map(visitor),
                ObjectBody::EnumCase(name) => visitor.visit_borrowed_str(utf8(name)?),
                ObjectBody::Serialized(_) => Err(Error::TypeMismatch {
                    expected: "a value serde can read",
                    found: "a Serializable object's payload",
                }),
            },
            Value::Reference(r) => self.nested(r)?.deserialize_any(visitor),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Str(s) => visitor.visit_borrowed_str(utf8(s)?),
            Value::Reference(r) => self.nested(r)?.deserialize_str(visitor),
            _ => Err(self.mismatch("a string")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Str(s) => visitor.visit_borrowed_bytes(s),
            Value::Reference(r) => self.nested(r)?.deserialize_bytes(visitor),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value.deref_ref() {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value.deref_ref() {
            Value::Null => visitor.visit_unit(),
            _ => Err(self.mismatch("null")),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Reference(r) => self.nested(r)?.deserialize_seq(visitor),
            _ => self.seq(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Reference(r) => self.nested(r)?.deserialize_map(visitor),
            _ => self.map(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let (name, content): (&'de [u8], Option<&'de Value>) = match self.value {
            Value::Reference(r) => {
                return self.nested(r)?.deserialize_enum(_name, _variants, visitor);
            }
            Value::Str(s) => (s, None),
            Value::Array(a) if a.len() == 1 => match a.iter().next() {
                Some((Key::Str(k), v)) => (k, Some(v)),
                _ => return Err(self.mismatch("an enum (a string key)")),
            },
            Value::Object(o) => match &o.body {
                ObjectBody::EnumCase(case) => (case, None),
                _ => return Err(self.mismatch("an enum")),
            },
            _ => return Err(self.mismatch("an enum (a string or a one-entry array)")),
        };
        let content = match content {
            Some(v) => Some(self.nested(v)?),
            None => None,
        };
        visitor.visit_enum(EnumReader {
            name: utf8(name)?,
            content,
        })
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char ignored_any
    }
}

struct SeqReader<'de> {
    iter: Box<dyn Iterator<Item = &'de Value> + 'de>,
    depth: usize,
}

impl<'de> de::SeqAccess<'de> for SeqReader<'de> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.iter.next() {
            Some(value) => seed
                .deserialize(Deser {
                    value,
                    depth: self.depth,
                })
                .map(Some),
            None => Ok(None),
        }
    }
}

struct MapReader<'de> {
    iter: Box<dyn Iterator<Item = (&'de Key, &'de Value)> + 'de>,
    value: Option<&'de Value>,
    depth: usize,
}

impl<'de> de::MapAccess<'de> for MapReader<'de> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.iter.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(KeyDeser(key)).map(Some)
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let value = self
            .value
            .take()
            .ok_or_else(|| Error::Custom("map value asked before its key".into()))?;
        seed.deserialize(Deser {
            value,
            depth: self.depth,
        })
    }
}

pub(crate) struct EnumReader<'de> {
    pub(crate) name: &'de str,
    pub(crate) content: Option<Deser<'de>>,
}

impl<'de> de::EnumAccess<'de> for EnumReader<'de> {
    type Error = Error;
    type Variant = Self;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        let name = BorrowedStrDeserializer::<Error>::new(self.name);
        Ok((seed.deserialize(name)?, self))
    }
}

impl<'de> de::VariantAccess<'de> for EnumReader<'de> {
    type Error = Error;
    fn unit_variant(self) -> Result<(), Error> {
        match self.content {
            None => Ok(()),
            Some(d) if d.value.is_null() => Ok(()),
            Some(d) => Err(d.mismatch("a unit variant (no content)")),
        }
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self.content()?)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_seq(self.content()?, visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_map(self.content()?, visitor)
    }
}

impl<'de> EnumReader<'de> {
    fn content(&self) -> Result<Deser<'de>, Error> {
        self.content.ok_or(Error::TypeMismatch {
            expected: "an enum variant with content",
            found: "a bare variant name",
        })
    }
}
