//! Fuzzes decoding what a corrupt or hostile Redis hands back: the metadata field
//! (`Meta::decode`) and MessagePack values loaded with `SessionData::from_stored` and read with
//! `get::<T>` as flat, nested, self-describing (`serde_json::Value`) and recursive types.
//!
//! Properties: never panics and never overflows the stack (values up to 64 KiB, the default
//! `max_value_bytes`, so nesting can reach tens of thousands of levels); a value that does not
//! decode is `DataError::Decode` naming its key; metadata decodes from exactly 12 bytes and
//! re-encodes to them; a reserved (NUL-prefixed) key is never readable or listed; the size
//! accounting covers every stored byte; and a value that decodes as `serde_json::Value` survives
//! `put` then `get` unchanged.
#![no_main]

use std::collections::{BTreeMap, HashSet};

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use redis_sessions::store::Meta;
use redis_sessions::{DataError, SessionData};
use serde::Deserialize;
use serde::de::DeserializeOwned;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    meta: &'a [u8],
    fields: Vec<(String, &'a [u8])>,
    /// One value of the fuzzer's making, repeated, to reach deep nesting cheaply.
    deep: Option<(&'a [u8], u16, &'a [u8])>,
}

/// A basket as an application might store it.
#[derive(Deserialize, Debug)]
#[allow(dead_code)]
struct Basket {
    items: Vec<(String, u32)>,
    coupon: Option<String>,
    #[serde(default)]
    total_cents: u64,
}

/// A recursive enum: serde visits each level through `deserialize_enum`.
#[derive(Deserialize, Debug)]
#[allow(dead_code)]
enum Tree {
    Leaf(i64),
    Node(Box<Tree>),
    Branch(Vec<Tree>),
}

/// A recursive struct (a linked list).
#[derive(Deserialize, Debug)]
#[allow(dead_code)]
struct Chain {
    value: u8,
    next: Option<Box<Chain>>,
}

fn check<T: DeserializeOwned>(data: &SessionData, key: &str) -> Option<T> {
    match data.get::<T>(key) {
        Ok(value) => value,
        Err(DataError::Decode { key: named, .. }) => {
            assert_eq!(named, key, "the error names the key");
            None
        }
        Err(other) => panic!("get({key:?}) failed with {other:?}"),
    }
}

fuzz_target!(|input: Input<'_>| {
    if let Some(meta) = Meta::decode(input.meta) {
        assert_eq!(
            &meta.encode()[..],
            input.meta,
            "metadata re-encodes to its bytes"
        );
        assert!(meta.created_ms < 1 << 48 && meta.touched_ms < 1 << 48);
    } else {
        assert_ne!(
            input.meta.len(),
            Meta::ENCODED_LEN,
            "12 bytes always decode"
        );
    }

    let mut fields: Vec<(String, Bytes)> = input
        .fields
        .iter()
        .filter(|(key, _)| !key.is_empty())
        .map(|(key, value)| (key.clone(), Bytes::copy_from_slice(value)))
        .collect();
    if let Some((prefix, count, suffix)) = input.deep {
        let mut value = Vec::new();
        for _ in 0..count {
            value.extend_from_slice(prefix);
            if value.len() > 64 * 1024 {
                break;
            }
        }
        value.extend_from_slice(suffix);
        fields.push(("deep".to_owned(), Bytes::from(value)));
    }
    let distinct: HashSet<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    let all_distinct = distinct.len() == fields.len();
    let stored: usize = fields.iter().map(|(k, v)| k.len() + v.len()).sum();

    let data = SessionData::from_stored(fields.clone(), 64 * 1024, 1024 * 1024);
    assert!(!data.is_modified(), "loading is not a change");
    if all_distinct {
        assert_eq!(data.size_bytes(), stored);
    }
    assert!(
        data.keys().all(|k| !k.starts_with('\0')),
        "a reserved key is listed"
    );

    for key in distinct {
        if key.starts_with('\0') {
            let err = data
                .get::<i64>(key)
                .expect_err("a reserved key was readable");
            assert!(matches!(err, DataError::ReservedKey { .. }), "{err:?}");
            continue;
        }
        check::<i64>(&data, key);
        check::<f64>(&data, key);
        check::<bool>(&data, key);
        check::<String>(&data, key);
        check::<Vec<u8>>(&data, key);
        check::<Option<Vec<Option<i32>>>>(&data, key);
        check::<BTreeMap<String, i64>>(&data, key);
        check::<Basket>(&data, key);
        check::<Tree>(&data, key);
        check::<Chain>(&data, key);
        check::<BTreeMap<String, serde_json::Value>>(&data, key);
        if let Some(value) = check::<serde_json::Value>(&data, key) {
            let mut copy = SessionData::with_limits(usize::MAX, usize::MAX);
            copy.put("k", &value)
                .expect("a decoded value encodes again");
            let back: Option<serde_json::Value> = copy.get("k").expect("and decodes");
            assert_eq!(back.as_ref(), Some(&value), "a decoded value round-trips");
        }
    }
});
