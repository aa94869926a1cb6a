//! Properties over generated inputs: value trees (shared nodes and references included) and
//! Rust types round-trip, and no input makes `decode` panic.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use igbinary::{Array, Key, Object, ObjectBody, Value, decode, encode, from_slice, to_vec};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    // Short strings repeat often, so interning is exercised.
    prop_oneof![
        prop::collection::vec(prop::sample::select(vec![b'a', b'1', 0, 0xff]), 0..4),
        prop::collection::vec(any::<u8>(), 0..300),
    ]
}

fn key() -> impl Strategy<Value = Key> {
    prop_oneof![
        any::<i64>().prop_map(Key::Int),
        (-3i64..300).prop_map(Key::Int),
        bytes().prop_map(Key::Str),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        (-70_000i64..70_000).prop_map(Value::Int),
        any::<u64>().prop_map(|bits| Value::Float(f64::from_bits(bits))),
        bytes().prop_map(Value::Str),
    ]
}

fn entries(inner: impl Strategy<Value = Value>) -> impl Strategy<Value = Array> {
    prop::collection::vec((key(), inner), 0..6).prop_map(|e| e.into_iter().collect())
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            entries(inner.clone()).prop_map(Value::array),
            (bytes(), entries(inner.clone())).prop_map(|(class, p)| Value::object(class, p)),
            (bytes(), bytes())
                .prop_map(|(class, payload)| object(class, ObjectBody::Serialized(payload))),
            (bytes(), bytes()).prop_map(|(class, case)| object(class, ObjectBody::EnumCase(case))),
            // A PHP reference (never directly to another reference).
            inner.clone().prop_map(|v| match v {
                Value::Reference(_) => v,
                v => Value::Reference(Arc::new(v)),
            }),
            // The same node twice: arrays, objects and references are shared by Arc.
            (inner, key(), key()).prop_map(|(v, k1, k2)| {
                let mut a = Array::new();
                a.insert(k1, v.clone());
                a.insert(k2, v);
                Value::array(a)
            }),
        ]
    })
}

fn object(class: Vec<u8>, body: ObjectBody) -> Value {
    Value::Object(Arc::new(Object { class, body }))
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
enum Event {
    Login,
    Visit(String),
    Cart { sku: String, qty: u32 },
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Record {
    id: i64,
    name: String,
    tags: Vec<String>,
    scores: BTreeMap<String, f64>,
    by_id: HashMap<i32, Vec<Option<bool>>>,
    note: Option<String>,
    events: Vec<Event>,
    pair: (u16, i8),
}

fn record() -> impl Strategy<Value = Record> {
    let event = prop_oneof![
        Just(Event::Login),
        ".*".prop_map(Event::Visit),
        (".*", any::<u32>()).prop_map(|(sku, qty)| Event::Cart { sku, qty }),
    ];
    (
        any::<i64>(),
        ".*",
        prop::collection::vec("[0-9a-z-]{0,4}", 0..5),
        prop::collection::btree_map("-?[0-9]{0,3}|.*", -1e9f64..1e9, 0..5),
        prop::collection::hash_map(
            any::<i32>(),
            prop::collection::vec(any::<Option<bool>>(), 0..3),
            0..4,
        ),
        prop::option::of(".*"),
        prop::collection::vec(event, 0..4),
        any::<(u16, i8)>(),
    )
        .prop_map(
            |(id, name, tags, scores, by_id, note, events, pair)| Record {
                id,
                name,
                tags,
                scores,
                by_id,
                note,
                events,
                pair,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn value_trees_round_trip(v in value()) {
        let blob = encode(&v);
        let back = decode(&blob).expect("decode of our own encoding");
        prop_assert_eq!(&back, &v);
        prop_assert_eq!(encode(&back), blob);
    }

    #[test]
    fn truncated_blobs_are_errors(v in value()) {
        let blob = encode(&v);
        for end in 0..blob.len() {
            prop_assert!(decode(&blob[..end]).is_err(), "prefix of {} bytes decoded", end);
        }
    }

    #[test]
    fn rust_types_round_trip(r in record()) {
        let blob = to_vec(&r).expect("to_vec");
        prop_assert_eq!(from_slice::<Record>(&blob).expect("from_slice"), r);
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(&body);
        let mut blob = vec![0, 0, 0, 2];
        blob.extend(&body);
        if let Ok(v) = decode(&blob) {
            prop_assert_eq!(decode(&encode(&v)).expect("re-decode"), v);
        }
    }

    #[test]
    fn mutated_vectors_never_panic(
        which in 0usize..26,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let names = common::vector_names();
        let mut blob = common::vector_blob(&names[which % names.len()]);
        for (at, byte) in edits {
            let i = at.index(blob.len());
            blob[i] = byte;
        }
        if let Ok(v) = decode(&blob) {
            prop_assert_eq!(decode(&encode(&v)).expect("re-decode"), v);
        }
    }
}
