//! Equality of value trees: structural, floats by bit pattern, and linear in the size of the
//! graph (not of the tree it unfolds to), since shared nodes can make the tree exponential.

use std::collections::HashSet;
use std::sync::Arc;

use crate::value::{Array, Object, ObjectBody, Value};

/// Pairs of nodes already found equal (or being compared): with shared structure a tree can
/// be exponentially larger than its graph, so each pair of nodes is compared once.
type Seen = HashSet<(usize, usize)>;

fn arc_eq<T>(a: &Arc<T>, b: &Arc<T>, seen: &mut Seen, eq: fn(&T, &T, &mut Seen) -> bool) -> bool {
    if Arc::ptr_eq(a, b) {
        return true;
    }
    let pair = (
        Arc::as_ptr(a).cast::<()>() as usize,
        Arc::as_ptr(b).cast::<()>() as usize,
    );
    // A pair seen before compared equal: an unequal one ends the whole comparison.
    if !seen.insert(pair) {
        return true;
    }
    eq(a, b, seen)
}

fn value_eq(a: &Value, b: &Value, seen: &mut Seen) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => arc_eq(x, y, seen, array_eq),
        (Value::Object(x), Value::Object(y)) => arc_eq(x, y, seen, object_eq),
        (Value::Reference(x), Value::Reference(y)) => arc_eq(x, y, seen, value_eq),
        _ => false,
    }
}

fn array_eq(a: &Array, b: &Array, seen: &mut Seen) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|((ka, va), (kb, vb))| ka == kb && value_eq(va, vb, seen))
}

fn object_eq(a: &Object, b: &Object, seen: &mut Seen) -> bool {
    a.class == b.class
        && match (&a.body, &b.body) {
            (ObjectBody::Properties(x), ObjectBody::Properties(y)) => array_eq(x, y, seen),
            (ObjectBody::Serialized(x), ObjectBody::Serialized(y)) => x == y,
            (ObjectBody::EnumCase(x), ObjectBody::EnumCase(y)) => x == y,
            _ => false,
        }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        value_eq(self, other, &mut Seen::new())
    }
}

impl PartialEq for Array {
    fn eq(&self, other: &Array) -> bool {
        array_eq(self, other, &mut Seen::new())
    }
}

impl PartialEq for Object {
    fn eq(&self, other: &Object) -> bool {
        object_eq(self, other, &mut Seen::new())
    }
}
