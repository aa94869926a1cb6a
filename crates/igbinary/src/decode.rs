//! Blob to [`Value`]: reads igbinary v2 exactly as PHP writes it, keeping the string table and
//! the reference table PHP keeps, and treats every blob as hostile (counts checked against the
//! bytes left, nesting capped, back-references only to finished nodes, no panics).

use std::sync::Arc;

use crate::value::{Array, Key, Object, ObjectBody, Value};
use crate::{Error, MAX_DEPTH};

/// Decodes one igbinary blob: header `00 00 00 02` (or `00 00 00 01`) and exactly one value.
pub fn decode(blob: &[u8]) -> Result<Value, Error> {
    let header = blob.get(..4).unwrap_or(blob);
    if header != [0, 0, 0, 2] && header != [0, 0, 0, 1] {
        return Err(Error::BadHeader {
            found: header.to_vec(),
        });
    }
    let mut d = Decoder {
        buf: blob,
        pos: 4,
        strings: Vec::new(),
        slots: Vec::new(),
        nodes: 0,
        // Without back-references a tree has at most one node and one string byte per byte
        // of blob; shared nodes and interned strings may repeat within this budget (generous
        // for real sessions, bounded for hostile ones).
        node_limit: (blob.len() as u64).saturating_mul(16).max(1 << 24),
    };
    let value = d.value(0)?;
    if d.pos != blob.len() {
        return Err(Error::TrailingBytes {
            offset: d.pos,
            count: blob.len() - d.pos,
        });
    }
    Ok(value)
}

/// An entry of the reference table, with the size of its tree (in nodes).
enum Slot {
    /// An array or object still being read: a back-reference to it would be a cycle.
    Pending,
    Array(Arc<Array>),
    Object(Arc<Object>),
    Reference(Arc<Value>),
}

struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    /// The string table: every new string and class name, in order of appearance.
    strings: Vec<&'a [u8]>,
    /// The reference table and the tree size of each slot.
    slots: Vec<(Slot, u64)>,
    /// Size of the tree so far: one per node plus the bytes of each string (an interned
    /// string is copied at every use), back-references counted at their full size.
    nodes: u64,
    node_limit: u64,
}

/// The size of a count or index by its tag, for the families 8/16/32-bit.
fn width(tag: u8, base: u8) -> usize {
    1 << (tag - base)
}

impl<'a> Decoder<'a> {
    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], Error> {
        let available = self.left();
        match usize::try_from(n) {
            Ok(n) if n <= available => {
                let bytes = &self.buf[self.pos..self.pos + n];
                self.pos += n;
                Ok(bytes)
            }
            _ => Err(Error::Truncated {
                offset: self.pos,
                needed: n,
                available,
            }),
        }
    }

    fn byte(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    /// A big-endian unsigned integer of `n` bytes (1, 2, 4 or 8).
    fn uint(&mut self, n: usize) -> Result<u64, Error> {
        Ok(self
            .take(n as u64)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    /// A count or length that must fit in the bytes left (each unit needs at least a byte).
    fn count(&mut self, n: usize) -> Result<u64, Error> {
        let offset = self.pos;
        let count = self.uint(n)?;
        if count > self.left() as u64 {
            return Err(Error::CountTooLarge {
                offset,
                count,
                available: self.left(),
            });
        }
        Ok(count)
    }

    fn add_nodes(&mut self, n: u64) -> Result<(), Error> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > self.node_limit {
            return Err(Error::TooLarge {
                offset: self.pos,
                limit: self.node_limit,
            });
        }
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        let at = self.pos;
        if depth > MAX_DEPTH {
            return Err(Error::TooDeep {
                offset: at,
                limit: MAX_DEPTH,
            });
        }
        let tag = self.byte()?;
        self.add_nodes(1)?;
        Ok(match tag {
            0x00 => Value::Null,
            0x04 => Value::Bool(false),
            0x05 => Value::Bool(true),
            0x06..=0x0b | 0x20 | 0x21 => Value::Int(self.int(tag, at)?),
            0x0c => Value::Float(f64::from_bits(self.uint(8)?)),
            0x0d..=0x13 | 0x26 => Value::Str(self.string(tag, at)?.to_vec()),
            0x14..=0x16 => self.array(tag, depth)?,
            0x17..=0x1c => self.object(tag, at, depth)?,
            0x01..=0x03 | 0x22..=0x24 => self.back_ref(tag, at, false)?,
            0x25 => self.reference(at, depth)?,
            _ => {
                return Err(Error::UnknownTag {
                    tag,
                    offset: at,
                    context: "value",
                });
            }
        })
    }

    /// The int after an int tag (06-0b, 20, 21).
    fn int(&mut self, tag: u8, at: usize) -> Result<i64, Error> {
        let (n, negative) = match tag {
            0x06..=0x0b => (1 << ((tag - 0x06) / 2), tag % 2 == 1),
            _ => (8, tag == 0x21),
        };
        let magnitude = self.uint(n)?;
        let out_of_range = Error::IntegerOutOfRange { offset: at };
        if negative {
            0i64.checked_sub_unsigned(magnitude).ok_or(out_of_range)
        } else {
            i64::try_from(magnitude).map_err(|_| out_of_range)
        }
    }

    /// The bytes of a string value or key (0d, 0e-10, 11-13, 26).
    fn string(&mut self, tag: u8, at: usize) -> Result<&'a [u8], Error> {
        match tag {
            0x0d => Ok(&[]),
            0x0e..=0x10 => {
                let index = self.uint(width(tag, 0x0e))? as u32;
                let bytes =
                    self.strings
                        .get(index as usize)
                        .copied()
                        .ok_or(Error::BadStringId {
                            offset: at,
                            index,
                            strings: self.strings.len(),
                        })?;
                self.add_nodes(bytes.len() as u64)?;
                Ok(bytes)
            }
            0x11..=0x13 | 0x26 => {
                let n = if tag == 0x26 { 8 } else { width(tag, 0x11) };
                let len = self.count(n)?;
                let bytes = self.take(len)?;
                self.strings.push(bytes);
                self.add_nodes(len)?;
                Ok(bytes)
            }
            _ => Err(Error::UnknownTag {
                tag,
                offset: at,
                context: "expected a string",
            }),
        }
    }

    fn array(&mut self, tag: u8, depth: usize) -> Result<Value, Error> {
        let slot = self.slots.len();
        self.slots.push((Slot::Pending, 0));
        let start = self.nodes;
        let array = Arc::new(self.entries(tag, depth)?);
        self.slots[slot] = (Slot::Array(Arc::clone(&array)), self.nodes - start + 1);
        Ok(Value::Array(array))
    }

    /// The count and entries of an array (tag 14-16); a `00` key is padding and skipped.
    fn entries(&mut self, tag: u8, depth: usize) -> Result<Array, Error> {
        let count = self.count(width(tag, 0x14))?;
        // Every entry takes at least a byte: capacity from the bytes left, and bounded so that
        // nested arrays do not each reserve the whole blob.
        let mut array = Array::with_capacity((count as usize).min(1024));
        for _ in 0..count {
            let at = self.pos;
            let tag = self.byte()?;
            let key = match tag {
                0x00 => continue,
                0x06..=0x0b | 0x20 | 0x21 => Key::Int(self.int(tag, at)?),
                0x0d..=0x13 | 0x26 => Key::Str(self.string(tag, at)?.to_vec()),
                _ => {
                    return Err(Error::UnknownTag {
                        tag,
                        offset: at,
                        context: "array key",
                    });
                }
            };
            let value = self.value(depth + 1)?;
            array.insert(key, value);
        }
        Ok(array)
    }

    fn object(&mut self, tag: u8, at: usize, depth: usize) -> Result<Value, Error> {
        let class = if tag <= 0x19 {
            let len = self.count(width(tag, 0x17))?;
            let name = self.take(len)?;
            self.strings.push(name);
            name
        } else {
            self.string(tag - 0x1a + 0x0e, at)?
        };
        let slot = self.slots.len();
        self.slots.push((Slot::Pending, 0));
        let start = self.nodes;
        let inner_at = self.pos;
        let inner = self.byte()?;
        let body = match inner {
            0x14..=0x16 => ObjectBody::Properties(self.entries(inner, depth)?),
            0x1d..=0x1f => {
                let len = self.count(width(inner, 0x1d))?;
                ObjectBody::Serialized(self.take(len)?.to_vec())
            }
            0x27 => {
                let name_at = self.pos;
                let tag = self.byte()?;
                ObjectBody::EnumCase(self.string(tag, name_at)?.to_vec())
            }
            _ => {
                return Err(Error::UnknownTag {
                    tag: inner,
                    offset: inner_at,
                    context: "object body",
                });
            }
        };
        let object = Arc::new(Object {
            class: class.to_vec(),
            body,
        });
        self.slots[slot] = (Slot::Object(Arc::clone(&object)), self.nodes - start + 1);
        Ok(Value::Object(object))
    }

    /// A back-reference (01-03 to arrays, 22-24 to objects): the node it names, shared.
    /// `want_ref` (after a `25`) asks for the PHP reference itself rather than its value.
    fn back_ref(&mut self, tag: u8, at: usize, want_ref: bool) -> Result<Value, Error> {
        let base = if tag <= 0x03 { 0x01 } else { 0x22 };
        let index = self.uint(width(tag, base))? as u32;
        let slots = self.slots.len();
        let (slot, size) = self
            .slots
            .get_mut(index as usize)
            .ok_or(Error::BadBackReference {
                offset: at,
                index,
                slots,
            })?;
        let size = *size;
        let value = match slot {
            Slot::Pending => return Err(Error::Cycle { offset: at, index }),
            Slot::Reference(r) if want_ref => Value::Reference(Arc::clone(r)),
            Slot::Reference(r) => Value::clone(r),
            Slot::Array(a) => Value::Array(Arc::clone(a)),
            Slot::Object(o) => Value::Object(Arc::clone(o)),
        };
        let value = match value {
            Value::Reference(_) => value,
            _ if want_ref => {
                // A `25` before a back-reference to a plain node makes it a PHP reference
                // from here on.
                let r = Arc::new(value);
                *slot = Slot::Reference(Arc::clone(&r));
                Value::Reference(r)
            }
            _ => value,
        };
        self.add_nodes(size)?;
        Ok(value)
    }

    /// A PHP reference (`25`) and the value it wraps. An array or object keeps the slot it
    /// takes itself (now holding the reference); a scalar takes a slot of its own.
    fn reference(&mut self, at: usize, depth: usize) -> Result<Value, Error> {
        let inner_at = self.pos;
        let tag = *self.buf.get(inner_at).ok_or(Error::Truncated {
            offset: inner_at,
            needed: 1,
            available: 0,
        })?;
        match tag {
            0x25 => Err(Error::UnknownTag {
                tag,
                offset: inner_at,
                context: "a reference to a reference",
            }),
            0x01..=0x03 | 0x22..=0x24 => {
                self.pos += 1;
                self.back_ref(tag, at, true)
            }
            // Arrays (14-16) and objects (17-1c).
            0x14..=0x1c => {
                let slot = self.slots.len();
                let value = Arc::new(self.value(depth + 1)?);
                if let Some((s, _)) = self.slots.get_mut(slot) {
                    *s = Slot::Reference(Arc::clone(&value));
                }
                Ok(Value::Reference(value))
            }
            _ => {
                let value = Arc::new(self.value(depth + 1)?);
                self.slots.push((Slot::Reference(Arc::clone(&value)), 1));
                Ok(Value::Reference(value))
            }
        }
    }
}
