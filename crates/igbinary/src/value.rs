//! The value tree: every kind of data a PHP session can hold, kept losslessly so that a blob
//! written by PHP decodes and re-encodes byte for byte (shared arrays and objects included).

use std::fmt;
use std::sync::{Arc, LazyLock};

use indexmap::IndexMap;

/// A PHP value as igbinary carries it.
///
/// Arrays, objects and PHP references sit behind [`Arc`]: a back-reference in a blob decodes
/// to an `Arc::clone` of the node it names, and [`encode`](crate::encode) writes a
/// back-reference when it meets a node it already wrote (compared by pointer), so shared
/// structure survives a round trip. To change a shared node use [`Arc::make_mut`].
///
/// Equality is structural: floats compare by bit pattern (so `NaN == NaN` when the bits are
/// the same, and `0.0 != -0.0`), and sharing is not compared (two equal arrays are equal
/// whether or not they are the same node).
#[derive(Clone, Debug)]
pub enum Value {
    /// PHP `null`.
    Null,
    /// PHP `true` / `false`.
    Bool(bool),
    /// A PHP int (64-bit).
    Int(i64),
    /// A PHP float; the bit pattern is kept (`-0.0`, infinities, NaN payloads).
    Float(f64),
    /// A PHP string: bytes, not necessarily UTF-8.
    Str(Vec<u8>),
    /// A PHP array (ordered map).
    Array(Arc<Array>),
    /// A PHP object.
    Object(Arc<Object>),
    /// A PHP reference (`&$x`): every `Reference` holding the same `Arc` is the same PHP
    /// reference. PHP itself writes one only where two places share it (a reference held
    /// once is plain data to PHP's serializer); [`encode`](crate::encode) writes every
    /// `Reference` it meets, and PHP reads one held once as the plain value.
    Reference(Arc<Value>),
}

/// A PHP array key: an int or a byte string.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// An integer key.
    Int(i64),
    /// A string key (bytes, not necessarily UTF-8).
    Str(Vec<u8>),
}

/// A PHP object: its class name and its body.
#[derive(Clone, Debug)]
pub struct Object {
    /// The class name (for example `stdClass`, `Ds\Map`).
    pub class: Vec<u8>,
    /// What follows the class name.
    pub body: ObjectBody,
}

/// The body of a PHP object.
#[derive(Clone, Debug)]
pub enum ObjectBody {
    /// Properties (or the array of `__serialize()`). Protected names are `\0*\0name`, private
    /// ones `\0Class\0name`, as PHP writes them.
    Properties(Array),
    /// The payload of a `Serializable::serialize()` object, in PHP's native `serialize()`
    /// format, kept as raw bytes.
    Serialized(Vec<u8>),
    /// An enum case: the case's name.
    EnumCase(Vec<u8>),
}

/// A PHP array: an ordered map from [`Key`] to [`Value`].
///
/// Order of insertion is kept; inserting an existing key replaces its value in place.
#[derive(Clone, Default)]
pub struct Array {
    entries: IndexMap<Key, Value>,
}

impl Key {
    /// The key PHP makes of a string: a canonical decimal i64 (optional `-`, no leading zero
    /// except `"0"`; `"-0"` stays a string) becomes [`Key::Int`], anything else [`Key::Str`].
    pub fn php(bytes: impl AsRef<[u8]>) -> Key {
        let bytes = bytes.as_ref();
        match canonical_int(bytes) {
            Some(i) => Key::Int(i),
            None => Key::Str(bytes.to_vec()),
        }
    }
}

/// The i64 a canonical decimal string stands for, PHP's numeric-string key rule.
fn canonical_int(bytes: &[u8]) -> Option<i64> {
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    let canonical = match digits {
        [] => false,
        [b'0'] => digits.len() == bytes.len(), // "0" yes, "-0" no
        [first, ..] => *first != b'0' && digits.iter().all(u8::is_ascii_digit),
    };
    if !canonical || bytes.len() > 20 {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

impl From<i64> for Key {
    fn from(i: i64) -> Key {
        Key::Int(i)
    }
}

impl From<&str> for Key {
    /// Applies PHP's numeric-string rule (see [`Key::php`]).
    fn from(s: &str) -> Key {
        Key::php(s)
    }
}

impl Array {
    /// An empty array.
    pub fn new() -> Array {
        Array::default()
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the array has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value under `key`.
    pub fn get(&self, key: &Key) -> Option<&Value> {
        self.entries.get(key)
    }

    /// The value under a string key, after PHP's numeric-string rule (`get_str("7")` finds
    /// the int key 7).
    pub fn get_str(&self, key: &str) -> Option<&Value> {
        self.entries.get(&Key::php(key))
    }

    /// Inserts `value` under `key`: an existing key keeps its place and gets the new value
    /// (returned is the old one), a new key is appended.
    pub fn insert(&mut self, key: Key, value: Value) -> Option<Value> {
        self.entries.insert(key, value)
    }

    /// Appends `value` under the next int key: one more than the largest int key, or 0 (like
    /// PHP's `$a[] = $v` on an array whose largest int key was never removed).
    pub fn push(&mut self, value: Value) {
        let next = self
            .entries
            .keys()
            .filter_map(|k| match k {
                Key::Int(i) => Some(i.saturating_add(1)),
                Key::Str(_) => None,
            })
            .max()
            .unwrap_or(0)
            .max(0);
        self.entries.insert(Key::Int(next), value);
    }

    /// Removes the entry under `key`, keeping the order of the others.
    pub fn remove(&mut self, key: &Key) -> Option<Value> {
        self.entries.shift_remove(key)
    }

    /// The entries in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&Key, &Value)> {
        self.entries.iter()
    }

    /// Whether the keys are the ints 0, 1, ... n-1 in this order (a PHP "list").
    pub fn is_list(&self) -> bool {
        self.entries
            .keys()
            .enumerate()
            .all(|(i, k)| matches!(k, Key::Int(j) if usize::try_from(*j) == Ok(i)))
    }

    pub(crate) fn with_capacity(n: usize) -> Array {
        Array {
            entries: IndexMap::with_capacity(n),
        }
    }
}

impl fmt::Debug for Array {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.entries.iter()).finish()
    }
}

impl FromIterator<(Key, Value)> for Array {
    fn from_iter<I: IntoIterator<Item = (Key, Value)>>(iter: I) -> Array {
        let mut array = Array::new();
        for (k, v) in iter {
            array.insert(k, v);
        }
        array
    }
}

/// The one empty array that serde output shares, as PHP shares its immutable empty array (so
/// PHP writes `[[], []]` with a back-reference, and so do we).
static EMPTY_ARRAY: LazyLock<Arc<Array>> = LazyLock::new(|| Arc::new(Array::new()));

impl Value {
    /// A string value.
    pub fn str(bytes: impl Into<Vec<u8>>) -> Value {
        Value::Str(bytes.into())
    }

    /// An array value (a new node).
    pub fn array(array: Array) -> Value {
        Value::Array(Arc::new(array))
    }

    /// The shared empty array (PHP's immutable empty array).
    pub fn empty_array() -> Value {
        Value::Array(Arc::clone(&EMPTY_ARRAY))
    }

    /// An object with properties.
    pub fn object(class: impl Into<Vec<u8>>, properties: Array) -> Value {
        Value::Object(Arc::new(Object {
            class: class.into(),
            body: ObjectBody::Properties(properties),
        }))
    }

    /// The value itself, or for a PHP reference the value it refers to.
    pub fn deref_ref(&self) -> &Value {
        let mut v = self;
        while let Value::Reference(inner) = v {
            v = inner;
        }
        v
    }

    /// The array, if this is one (through references).
    pub fn as_array(&self) -> Option<&Array> {
        match self.deref_ref() {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The object, if this is one (through references).
    pub fn as_object(&self) -> Option<&Object> {
        match self.deref_ref() {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The string's bytes, if this is a string (through references).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self.deref_ref() {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The string, if this is a UTF-8 string (through references).
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.as_bytes()?).ok()
    }

    /// The int, if this is one (through references).
    pub fn as_int(&self) -> Option<i64> {
        match self.deref_ref() {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The float, if this is one (through references).
    pub fn as_float(&self) -> Option<f64> {
        match self.deref_ref() {
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The bool, if this is one (through references).
    pub fn as_bool(&self) -> Option<bool> {
        match self.deref_ref() {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Whether this is `null` (through references).
    pub fn is_null(&self) -> bool {
        matches!(self.deref_ref(), Value::Null)
    }

    /// A short name of the value's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
            Value::Reference(_) => "reference",
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.as_bytes().to_vec())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s.into_bytes())
    }
}
impl From<Array> for Value {
    fn from(a: Array) -> Value {
        Value::array(a)
    }
}
