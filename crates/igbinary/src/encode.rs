//! [`Value`] to blob: writes igbinary v2 the way PHP's igbinary_serialize does, with the same
//! string interning and reference numbering, so PHP's blobs re-encode byte for byte.

use std::collections::HashMap;
use std::sync::Arc;

use crate::value::{Array, Key, Object, ObjectBody, Value};

/// Encodes `value` as an igbinary v2 blob (header `00 00 00 02` and the value).
///
/// A node met a second time (the same `Arc`) is written as a back-reference, as PHP does.
/// Trees deeper than [`MAX_DEPTH`](crate::MAX_DEPTH) encode, but [`decode`](crate::decode)
/// (like PHP's decoder with its own limits) may refuse them.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut e = Encoder {
        out: vec![0, 0, 0, 2],
        strings: HashMap::new(),
        refs: HashMap::new(),
    };
    match value {
        // PHP never interns a bare top-level string.
        Value::Str(s) if !s.is_empty() => e.new_string(s),
        _ => e.value(value),
    }
    e.out
}

struct Encoder<'a> {
    out: Vec<u8>,
    /// The string table: id of every string and class name written so far.
    strings: HashMap<&'a [u8], u32>,
    /// The reference table: slot of every node written so far, by address.
    refs: HashMap<usize, u32>,
}

fn addr<T>(node: &Arc<T>) -> usize {
    Arc::as_ptr(node).cast::<()>() as usize
}

impl<'a> Encoder<'a> {
    /// Writes `tag` (8-bit form), `tag + 1` (16) or `tag + 2` (32) and the number.
    fn tagged(&mut self, tag: u8, n: u64) {
        if n <= 0xff {
            self.out.extend([tag, n as u8]);
        } else if n <= 0xffff {
            self.out.push(tag + 1);
            self.out.extend((n as u16).to_be_bytes());
        } else {
            self.out.push(tag + 2);
            self.out.extend((n as u32).to_be_bytes());
        }
    }

    /// The slot of a node already written, or a new slot for it.
    fn slot(&mut self, address: usize) -> Option<u32> {
        let next = self.refs.len() as u32;
        match self.refs.insert(address, next) {
            Some(old) => {
                self.refs.insert(address, old);
                Some(old)
            }
            None => None,
        }
    }

    fn value(&mut self, value: &'a Value) {
        match value {
            Value::Null => self.out.push(0x00),
            Value::Bool(b) => self.out.push(if *b { 0x05 } else { 0x04 }),
            Value::Int(i) => self.int(*i),
            Value::Float(f) => {
                self.out.push(0x0c);
                self.out.extend(f.to_bits().to_be_bytes());
            }
            Value::Str(s) => self.string(s),
            Value::Array(a) => match self.slot(addr(a)) {
                Some(slot) => self.tagged(0x01, slot.into()),
                None => self.array(a),
            },
            Value::Object(o) => match self.slot(addr(o)) {
                Some(slot) => self.tagged(0x22, slot.into()),
                None => self.object(o),
            },
            Value::Reference(r) => self.reference(r),
        }
    }

    /// An int value or key: 06/07 (u8), 08/09 (u16), 0a/0b (u32), 20/21 (u64) magnitude,
    /// the odd tag for negatives.
    fn int(&mut self, i: i64) {
        let magnitude = i.unsigned_abs();
        let negative = u8::from(i < 0);
        let bytes = magnitude.to_be_bytes();
        let (tag, width) = match magnitude {
            0..=0xff => (0x06, 1),
            0x100..=0xffff => (0x08, 2),
            0x1_0000..=0xffff_ffff => (0x0a, 4),
            _ => (0x20, 8),
        };
        self.out.push(tag + negative);
        self.out.extend_from_slice(&bytes[8 - width..]);
    }

    fn string(&mut self, s: &'a [u8]) {
        if s.is_empty() {
            self.out.push(0x0d);
        } else if let Some(&id) = self.strings.get(s) {
            self.tagged(0x0e, id.into());
        } else {
            let id = self.strings.len() as u32;
            self.strings.insert(s, id);
            self.new_string(s);
        }
    }

    /// A string written in full (11, 12, 13 or 26 by its length).
    fn new_string(&mut self, s: &[u8]) {
        let len = s.len() as u64;
        if len <= 0xffff_ffff {
            self.tagged(0x11, len);
        } else {
            self.out.push(0x26);
            self.out.extend(len.to_be_bytes());
        }
        self.out.extend_from_slice(s);
    }

    /// An array's count and entries (the slot, if any, is already taken).
    fn array(&mut self, array: &'a Array) {
        self.tagged(0x14, array.len() as u64);
        for (key, value) in array.iter() {
            match key {
                Key::Int(i) => self.int(*i),
                Key::Str(s) => self.string(s),
            }
            self.value(value);
        }
    }

    fn object(&mut self, object: &'a Object) {
        let class: &'a [u8] = &object.class;
        match self.strings.get(class) {
            Some(&id) => self.tagged(0x1a, id.into()),
            None => {
                // Class names are always interned, even an empty one.
                let id = self.strings.len() as u32;
                self.strings.insert(class, id);
                self.tagged(0x17, class.len() as u64);
                self.out.extend_from_slice(class);
            }
        }
        match &object.body {
            ObjectBody::Properties(properties) => self.array(properties),
            ObjectBody::Serialized(payload) => {
                self.tagged(0x1d, payload.len() as u64);
                self.out.extend_from_slice(payload);
            }
            ObjectBody::EnumCase(name) => {
                self.out.push(0x27);
                self.string(name);
            }
        }
    }

    /// A PHP reference: `25`, then a back-reference if this reference was written before;
    /// else its slot and the value (an object keeps its own numbering, as in PHP).
    fn reference(&mut self, reference: &'a Arc<Value>) {
        let mut r = reference;
        while let Value::Reference(inner) = &**r {
            r = inner;
        }
        self.out.push(0x25);
        match &**r {
            Value::Object(_) => self.value(r),
            inner => match self.slot(addr(r)) {
                Some(slot) => self.tagged(0x01, slot.into()),
                None => match inner {
                    Value::Array(a) => self.array(a),
                    _ => self.value(inner),
                },
            },
        }
    }
}
