//! Rust to [`Value`] through serde: structs and maps become PHP arrays with string keys
//! (numeric-string rule applied), sequences become lists, as a PHP application expects.

use serde::ser::{self, Serialize};

use crate::value::{Array, Key, Value};
use crate::{Error, MAX_DEPTH};

/// Converts any `Serialize` value to a [`Value`].
///
/// Structs and maps become arrays with string keys (a canonical decimal string key becomes an
/// int key, as in PHP), sequences and tuples lists (keys 0..n), `None` and `()` null, bytes
/// strings, enums serde's externally tagged form (`"Variant"` or `["Variant" => content]`).
/// A `u64` above `i64::MAX` is refused, as is nesting deeper than [`MAX_DEPTH`].
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, Error> {
    value.serialize(ValueSerializer { depth: 0 })
}

#[derive(Clone, Copy)]
struct ValueSerializer {
    depth: usize,
}

impl ValueSerializer {
    /// The serializer for the elements of a compound at this level.
    fn nested(self) -> Result<ValueSerializer, Error> {
        if self.depth >= MAX_DEPTH {
            return Err(Error::NestingTooDeep { limit: MAX_DEPTH });
        }
        Ok(ValueSerializer {
            depth: self.depth + 1,
        })
    }
}

/// An array value; serde's empty arrays share one node, as PHP's do.
fn finish(array: Array) -> Value {
    if array.is_empty() {
        Value::empty_array()
    } else {
        Value::array(array)
    }
}

fn tagged(variant: &'static str, value: Value) -> Value {
    let mut array = Array::new();
    array.insert(Key::php(variant), value);
    Value::array(array)
}

fn int<T: TryInto<i64> + ToString + Copy>(v: T) -> Result<Value, Error> {
    v.try_into()
        .map(Value::Int)
        .map_err(|_| Error::IntegerTooLarge(v.to_string()))
}

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = Error;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = SeqBuilder;
    type SerializeMap = MapBuilder;
    type SerializeStruct = MapBuilder;
    type SerializeStructVariant = MapBuilder;

    fn serialize_bool(self, v: bool) -> Result<Value, Error> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, Error> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<Value, Error> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<Value, Error> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<Value, Error> {
        Ok(Value::Int(v))
    }
    fn serialize_i128(self, v: i128) -> Result<Value, Error> {
        int(v)
    }
    fn serialize_u8(self, v: u8) -> Result<Value, Error> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<Value, Error> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<Value, Error> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u64(self, v: u64) -> Result<Value, Error> {
        int(v)
    }
    fn serialize_u128(self, v: u128) -> Result<Value, Error> {
        int(v)
    }
    fn serialize_f32(self, v: f32) -> Result<Value, Error> {
        Ok(Value::Float(v.into()))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, Error> {
        Ok(Value::Float(v))
    }
    fn serialize_char(self, v: char) -> Result<Value, Error> {
        Ok(Value::from(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, Error> {
        Ok(Value::from(v))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, Error> {
        Ok(Value::Str(v.to_vec()))
    }
    fn serialize_none(self) -> Result<Value, Error> {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, Error> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, Error> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, Error> {
        Ok(Value::from(variant))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Value, Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, Error> {
        Ok(tagged(variant, value.serialize(self.nested()?)?))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder, Error> {
        Ok(SeqBuilder {
            array: Array::with_capacity(len.unwrap_or(0).min(1024)),
            inner: self.nested()?,
            variant: None,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<SeqBuilder, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, Error> {
        let mut builder = self.nested()?.serialize_seq(Some(len))?;
        builder.variant = Some(variant);
        Ok(builder)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapBuilder, Error> {
        Ok(MapBuilder {
            array: Array::with_capacity(len.unwrap_or(0).min(1024)),
            inner: self.nested()?,
            key: None,
            variant: None,
        })
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<MapBuilder, Error> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<MapBuilder, Error> {
        let mut builder = self.nested()?.serialize_map(Some(len))?;
        builder.variant = Some(variant);
        Ok(builder)
    }
}

/// Builds a list array (and wraps it for a tuple variant).
struct SeqBuilder {
    array: Array,
    inner: ValueSerializer,
    variant: Option<&'static str>,
}

impl SeqBuilder {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let value = value.serialize(self.inner)?;
        self.array.insert(Key::Int(self.array.len() as i64), value);
        Ok(())
    }
    fn done(self) -> Result<Value, Error> {
        let value = finish(self.array);
        Ok(match self.variant {
            Some(variant) => tagged(variant, value),
            None => value,
        })
    }
}

macro_rules! seq_impl {
    ($trait:ident, $method:ident) => {
        impl ser::$trait for SeqBuilder {
            type Ok = Value;
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                self.push(value)
            }
            fn end(self) -> Result<Value, Error> {
                self.done()
            }
        }
    };
}
seq_impl!(SerializeSeq, serialize_element);
seq_impl!(SerializeTuple, serialize_element);
seq_impl!(SerializeTupleStruct, serialize_field);
seq_impl!(SerializeTupleVariant, serialize_field);

/// Builds an array with keys (and wraps it for a struct variant).
struct MapBuilder {
    array: Array,
    inner: ValueSerializer,
    key: Option<Key>,
    variant: Option<&'static str>,
}

impl MapBuilder {
    fn done(self) -> Result<Value, Error> {
        let value = finish(self.array);
        Ok(match self.variant {
            Some(variant) => tagged(variant, value),
            None => value,
        })
    }
    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Error> {
        let value = value.serialize(self.inner)?;
        self.array.insert(Key::php(key), value);
        Ok(())
    }
}

/// A map key: ints stay ints, strings follow PHP's numeric-string rule.
fn key<T: Serialize + ?Sized>(key: &T, serializer: ValueSerializer) -> Result<Key, Error> {
    match key.serialize(serializer)? {
        Value::Int(i) => Ok(Key::Int(i)),
        Value::Str(s) => Ok(Key::php(s)),
        other => Err(Error::UnsupportedKey(other.kind())),
    }
}

impl ser::SerializeMap for MapBuilder {
    type Ok = Value;
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), Error> {
        self.key = Some(key(k, self.inner)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let key = self
            .key
            .take()
            .ok_or_else(|| Error::Custom("serialize_value before serialize_key".into()))?;
        let value = value.serialize(self.inner)?;
        self.array.insert(key, value);
        Ok(())
    }
    fn end(self) -> Result<Value, Error> {
        self.done()
    }
}

macro_rules! struct_impl {
    ($trait:ident) => {
        impl ser::$trait for MapBuilder {
            type Ok = Value;
            type Error = Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Error> {
                self.field(key, value)
            }
            fn end(self) -> Result<Value, Error> {
                self.done()
            }
        }
    };
}
struct_impl!(SerializeStruct);
struct_impl!(SerializeStructVariant);
