//! One session blob of the PHP framework (an igbinary array of the session's keys), and how the
//! store's records and changes map onto it: each top-level entry is one field whose bytes are
//! that value as a blob of its own, and the library's metadata is the entry `"\0meta"`.

use std::sync::Arc;

use bytes::Bytes;
use igbinary::{Array, Key, Value};

use crate::store::{Meta, Record, StoreError};

/// The entry holding the library's metadata: `[created_ms, touched_ms]`. It starts with a NUL
/// byte, which no data key can (`SessionData` refuses such keys).
const META_KEY: &[u8] = b"\0meta";

/// A decoded session blob: its top-level array.
#[derive(Default)]
pub(super) struct Blob(Arc<Array>);

impl Blob {
    /// Decodes a stored blob. An error leaves the blob as it is: nothing is written over data
    /// that cannot be read.
    pub(super) fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let value = igbinary::decode(bytes).map_err(|e| {
            StoreError::Backend(format!(
                "the session blob is not a readable igbinary array ({e}); it was left as it is"
            ))
        })?;
        match value {
            Value::Array(array) => Ok(Self(array)),
            other => Err(StoreError::Backend(format!(
                "the session blob holds {} where a PHP array was expected; it was left as it is",
                other.kind()
            ))),
        }
    }

    /// The blob with its header, as PHP's `igbinary_serialize` would write it.
    pub(super) fn encode(&self) -> Vec<u8> {
        igbinary::encode(&Value::Array(Arc::clone(&self.0)))
    }

    /// The record this blob holds. Entries whose key is not UTF-8 are not fields (the store
    /// keeps them as they are); int keys become their decimal text, as PHP reads `$s['7']`.
    /// A blob that PHP created has no metadata yet: it counts as created now and never
    /// touched, so the first request that reads it gives it a TTL.
    pub(super) fn record(&self, now_ms: u64) -> Record {
        let mut meta = Meta {
            created_ms: now_ms,
            touched_ms: 0,
        };
        let mut fields = Vec::with_capacity(self.0.len());
        for (key, value) in self.0.iter() {
            let name = match key {
                Key::Str(bytes) if bytes == META_KEY => {
                    meta = meta_of(value).unwrap_or(meta);
                    continue;
                }
                Key::Str(bytes) => match std::str::from_utf8(bytes) {
                    Ok(name) => name.to_owned(),
                    Err(_) => continue,
                },
                Key::Int(n) => n.to_string(),
            };
            fields.push((name, Bytes::from(igbinary::encode(value))));
        }
        Record { meta, fields }
    }

    /// Sets `set` (values as blobs of their own), removes `removed`, and stores `meta`.
    pub(super) fn apply(
        &mut self,
        set: &[(String, Bytes)],
        removed: &[String],
        meta: Option<Meta>,
    ) -> Result<(), StoreError> {
        for (name, bytes) in set {
            let value = igbinary::decode(bytes).map_err(|e| {
                StoreError::Backend(format!("the value of {name:?} is not igbinary: {e}"))
            })?;
            Arc::make_mut(&mut self.0).insert(Key::php(name), value);
        }
        for name in removed {
            Arc::make_mut(&mut self.0).remove(&Key::php(name));
        }
        if let Some(meta) = meta {
            let mut times = Array::new();
            times.push(Value::Int(saturating_i64(meta.created_ms)));
            times.push(Value::Int(saturating_i64(meta.touched_ms)));
            let times = Value::Array(Arc::new(times));
            Arc::make_mut(&mut self.0).insert(Key::Str(META_KEY.to_vec()), times);
        }
        Ok(())
    }

    /// Removes each of `names`, answering for each whether it was there.
    pub(super) fn take(&mut self, names: &[String]) -> Vec<bool> {
        names
            .iter()
            .map(|name| Arc::make_mut(&mut self.0).remove(&Key::php(name)).is_some())
            .collect()
    }
}

fn saturating_i64(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// `[created_ms, touched_ms]` as [`Blob::apply`] writes it; `None` for anything else.
fn meta_of(value: &Value) -> Option<Meta> {
    let times = value.as_array()?;
    let at = |i: i64| {
        times
            .get(&Key::Int(i))
            .and_then(Value::as_int)
            .and_then(|n| u64::try_from(n).ok())
    };
    Some(Meta {
        created_ms: at(0)?,
        touched_ms: at(1)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_metadata_round_trip_and_other_entries_stay() {
        let mut php = Array::new();
        php.insert(Key::php("visits"), Value::Int(17));
        php.insert(Key::Int(7), Value::str("seven"));
        php.insert(Key::Str(vec![0xff, 0xfe]), Value::str("not utf-8"));
        let bytes = igbinary::encode(&Value::Array(Arc::new(php)));
        let mut blob = Blob::decode(&bytes).expect("decode");
        let record = blob.record(5);
        assert_eq!(record.meta.created_ms, 5);
        assert_eq!(record.meta.touched_ms, 0, "a PHP blob was never touched");
        let names: Vec<&str> = record.fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["visits", "7"]);

        let eighteen = Bytes::from(igbinary::encode(&Value::Int(18)));
        let meta = Meta {
            created_ms: 1,
            touched_ms: 2,
        };
        blob.apply(
            &[("visits".into(), eighteen.clone())],
            &["7".into()],
            Some(meta),
        )
        .expect("apply");
        let again = Blob::decode(&blob.encode()).expect("decode");
        let record = again.record(99);
        assert_eq!(record.meta, meta);
        assert_eq!(record.fields, [("visits".to_owned(), eighteen)]);
        assert!(
            again.0.get(&Key::Str(vec![0xff, 0xfe])).is_some(),
            "an entry the library cannot name is kept"
        );
        assert_eq!(again.clone_take(&["visits", "visits"]), [true, false]);
    }

    #[test]
    fn unreadable_blobs_are_errors() {
        assert!(Blob::decode(b"a:0:{}").is_err(), "PHP's native serialize()");
        let string = igbinary::encode(&Value::str("x"));
        assert!(Blob::decode(&string).is_err(), "not an array");
    }

    impl Blob {
        fn clone_take(&self, names: &[&str]) -> Vec<bool> {
            let names: Vec<String> = names.iter().map(|&n| n.to_owned()).collect();
            Self(Arc::new(Array::clone(&self.0))).take(&names)
        }
    }
}
