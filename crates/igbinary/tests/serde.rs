//! Rust types through serde: round trips, PHP's view of what we write, and the errors a typed
//! Rust side must get (non-UTF-8 strings, out-of-range ints, type mismatches, depth).

mod common;

use std::collections::{BTreeMap, HashMap};

use common::*;
use igbinary::{Array, Error, Key, Value, decode, encode, from_slice, from_value, php_export};
use igbinary::{to_value, to_vec};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct CsrfTokens {
    login_form: String,
    logout_form: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Flash {
    info: Vec<String>,
}

/// The shape of the resonance_like vector.
#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Session {
    authenticated_user_id: String,
    csrf_token: CsrfTokens,
    flash: Flash,
    visits: i64,
    last_seen: f64,
    remember: bool,
    oauth2: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
enum Shape {
    Empty,
    Circle(f64),
    Point(i32, i32),
    Rect { w: u32, h: u32 },
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Unit;

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Everything {
    shapes: Vec<Shape>,
    by_id: BTreeMap<u32, String>,
    by_name: BTreeMap<String, i64>,
    pair: (u8, String),
    unit: Unit,
    nothing: (),
    maybe: Option<Box<Everything>>,
    small: f32,
    empty_a: Vec<i32>,
    empty_b: BTreeMap<String, i32>,
    ch: char,
}

fn everything() -> Everything {
    Everything {
        shapes: vec![
            Shape::Empty,
            Shape::Circle(1.5),
            Shape::Point(-3, 4),
            Shape::Rect { w: 2, h: 3 },
        ],
        by_id: [(7, "seven".to_owned()), (0, "zero".to_owned())].into(),
        by_name: [
            ("123".to_owned(), 1),
            ("0123".to_owned(), 2),
            ("-0".to_owned(), 3),
        ]
        .into(),
        pair: (255, "two".into()),
        unit: Unit,
        nothing: (),
        maybe: Some(Box::new(Everything {
            shapes: vec![],
            by_id: BTreeMap::new(),
            by_name: BTreeMap::new(),
            pair: (0, String::new()),
            unit: Unit,
            nothing: (),
            maybe: None,
            small: -0.0,
            empty_a: vec![],
            empty_b: BTreeMap::new(),
            ch: 'é',
        })),
        small: 1.1,
        empty_a: vec![],
        empty_b: BTreeMap::new(),
        ch: '✓',
    }
}

#[test]
fn the_resonance_like_vector_reads_into_a_struct_and_back() {
    let blob = vector_blob("resonance_like");
    let session: Session = from_slice(&blob).expect("from_slice");
    assert_eq!(session.authenticated_user_id, "42");
    assert_eq!(session.flash.info, ["Saved.", "Saved."]);
    assert_eq!(session.oauth2, None);
    assert_eq!(
        from_slice::<Session>(&to_vec(&session).expect("to_vec")).expect("back"),
        session
    );
}

#[test]
fn structs_enums_maps_and_tuples_round_trip() {
    let value = everything();
    let blob = to_vec(&value).expect("to_vec");
    assert_eq!(from_slice::<Everything>(&blob).expect("from_slice"), value);
}

#[test]
fn php_reads_what_to_vec_writes_as_we_show_it_and_writes_it_back_identically() {
    let session: Session = from_slice(&vector_blob("resonance_like")).expect("session");
    let blobs = vec![
        to_vec(&everything()).expect("everything"),
        to_vec(&session).expect("session"),
        to_vec(&vec![vec![0u8; 0]; 3]).expect("empty lists"),
        to_vec("top-level string").expect("string"),
        to_vec(&HashMap::from([("k", "v")])).expect("map"),
    ];
    let php = php_decode(&blobs);
    for (blob, decoded) in blobs.iter().zip(php) {
        let mut ours = php_export(&decode(blob).expect("decode"));
        ours.push(b'\n');
        assert_eq!(
            String::from_utf8_lossy(&decoded.export),
            String::from_utf8_lossy(&ours)
        );
        assert_eq!(to_hex(&decoded.reserialized), to_hex(blob));
    }
}

#[test]
fn numeric_string_keys_become_int_keys_like_in_php() {
    let value = to_value(&everything()).expect("to_value");
    let by_name = value
        .as_array()
        .and_then(|a| a.get_str("by_name"))
        .expect("by_name");
    let by_name = by_name.as_array().expect("array");
    let keys: Vec<&Key> = by_name.iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            &Key::Str(b"-0".to_vec()),
            &Key::Str(b"0123".to_vec()),
            &Key::Int(123)
        ]
    );
    assert_eq!(Key::php("-5"), Key::Int(-5));
    assert_eq!(Key::php("9223372036854775807"), Key::Int(i64::MAX));
    assert_eq!(
        Key::php("9223372036854775808"),
        Key::Str(b"9223372036854775808".to_vec())
    );
    assert_eq!(Key::php("-9223372036854775808"), Key::Int(i64::MIN));
    assert_eq!(Key::php("0"), Key::Int(0));
    assert_eq!(Key::php(""), Key::Str(Vec::new()));
    assert_eq!(Key::php("1e3"), Key::Str(b"1e3".to_vec()));
}

#[test]
fn int_keys_read_into_string_keys_as_decimal_text_and_into_int_keys() {
    let blob = vector_blob("int_keys");
    let value = decode(&blob).expect("decode");
    let sparse = value
        .as_array()
        .and_then(|a| a.get_str("sparse"))
        .expect("sparse");
    let as_strings: HashMap<String, String> = from_value(sparse).expect("string keys");
    assert_eq!(as_strings["2"], "b");
    let as_ints: BTreeMap<i64, String> = from_value(sparse).expect("int keys");
    assert_eq!(as_ints[&5], "c");
}

#[test]
fn php_lists_read_as_vecs_but_sparse_arrays_do_not() {
    let value = decode(&vector_blob("int_keys")).expect("decode");
    let sparse = value
        .as_array()
        .and_then(|a| a.get_str("sparse"))
        .expect("sparse");
    let err = from_value::<Vec<String>>(sparse).expect_err("sparse is no list");
    assert!(matches!(err, Error::TypeMismatch { .. }), "{err}");
    assert!(err.to_string().contains("keys 0..n"), "{err}");

    let list: Array = [
        (Key::Int(0), Value::from("a")),
        (Key::Int(1), Value::from("b")),
    ]
    .into_iter()
    .collect();
    let list = Value::array(list);
    assert_eq!(from_value::<Vec<String>>(&list).expect("list"), ["a", "b"]);
    assert_eq!(from_value::<(String, String)>(&list).expect("tuple").1, "b");
}

#[test]
fn u64_above_i64_max_is_refused_with_a_clear_error() {
    let err = to_vec(&(i64::MAX as u64 + 1)).expect_err("too large");
    assert!(matches!(err, Error::IntegerTooLarge(_)), "{err}");
    assert!(err.to_string().contains("9223372036854775808"), "{err}");
    assert!(to_vec(&BTreeMap::from([(u64::MAX, 1)])).is_err());
    assert_eq!(
        from_slice::<u64>(&to_vec(&(i64::MAX as u64)).expect("max")).expect("back"),
        i64::MAX as u64
    );
    let err = from_value::<u8>(&Value::Int(256)).expect_err("u8");
    assert!(err.to_string().contains("256"), "{err}");
}

#[test]
fn a_php_string_that_is_not_utf8_into_a_string_is_a_clear_error() {
    let value = decode(&vector_blob("strings")).expect("decode");
    let invalid = value
        .as_array()
        .and_then(|a| a.get_str("invalid_utf8"))
        .expect("invalid");
    let err = from_value::<String>(invalid).expect_err("not UTF-8");
    assert_eq!(err, Error::NotUtf8 { valid_up_to: 0 });
    assert!(err.to_string().contains("not UTF-8"), "{err}");
    // As bytes it reads fine.
    let bytes: Bytes = from_value(invalid).expect("bytes");
    assert_eq!(bytes.0, b"\xc3\x28\xa0\xa1");
    assert_eq!(to_value(&bytes).expect("to_value"), *invalid);
}

#[test]
fn type_mismatches_name_expected_and_found() {
    let err = from_value::<String>(&Value::Int(3)).expect_err("mismatch");
    assert_eq!(
        err.to_string(),
        "type mismatch: expected a string, found int"
    );
    let err = from_value::<Session>(&Value::Bool(true)).expect_err("mismatch");
    assert!(
        err.to_string().contains("expected an array, found bool"),
        "{err}"
    );
    let err = from_value::<bool>(&Value::from("x")).expect_err("mismatch");
    assert!(err.to_string().contains("expected a boolean"), "{err}");
}

#[test]
fn enum_case_objects_read_as_unit_variants() {
    #[derive(Deserialize, Debug, PartialEq)]
    enum Role {
        Admin,
        User,
    }
    let roles: BTreeMap<String, Role> = from_slice(&vector_blob("enum_case")).expect("roles");
    assert_eq!(roles["role"], Role::Admin);
    assert_eq!(roles["role2"], Role::Admin);
}

#[test]
fn serde_nesting_is_capped_both_ways() {
    let mut list = Value::Null;
    for _ in 0..300 {
        let mut a = Array::new();
        a.push(list);
        list = Value::array(a);
    }
    let err = from_value::<serde_json_like::Any>(&list).expect_err("too deep");
    assert_eq!(
        err,
        Error::NestingTooDeep {
            limit: igbinary::MAX_DEPTH
        }
    );
    let mut nested: Vec<serde_json_like::Any> = Vec::new();
    for _ in 0..300 {
        nested = vec![serde_json_like::Any::List(nested)];
    }
    let err = to_value(&nested).expect_err("too deep");
    assert_eq!(
        err,
        Error::NestingTooDeep {
            limit: igbinary::MAX_DEPTH
        }
    );
}

/// A self-describing value for the depth tests (serde_json is not a dependency).
mod serde_json_like {
    use serde::{Deserialize, Serialize};
    #[derive(Serialize, Deserialize, Debug)]
    #[serde(untagged)]
    pub(crate) enum Any {
        Null(()),
        List(Vec<Any>),
    }
}

/// Bytes through serialize_bytes / deserialize_byte_buf (what serde_bytes does).
#[derive(Debug, PartialEq)]
struct Bytes(Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Bytes, E> {
                Ok(Bytes(v.as_bytes().to_vec()))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

#[test]
fn encode_of_from_value_input_is_stable() {
    let value = to_value(&everything()).expect("to_value");
    assert_eq!(decode(&encode(&value)).expect("decode"), value);
}
