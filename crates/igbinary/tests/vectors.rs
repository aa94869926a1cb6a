//! The PHP-written vectors: each decodes to what PHP's var_export shows, re-encodes byte for
//! byte, and our encoding of it reads back in real PHP to the same var_export.

mod common;

use common::*;
use igbinary::{Value, decode, encode, php_export};

/// Vectors whose var_export PHP computes with class code we cannot run: Token has
/// `__unserialize()`, which renames the array keys `v`/`e` to properties `value`/`expires`.
const CLASS_CODE: &[&str] = &["serialize_magic"];

#[test]
fn all_26_vectors_are_present() {
    assert_eq!(vector_names().len(), 26);
}

#[test]
fn every_vector_decodes_to_phps_var_export() {
    for name in vector_names() {
        if CLASS_CODE.contains(&name.as_str()) {
            continue;
        }
        let value = decode(&vector_blob(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut ours = php_export(&value);
        ours.push(b'\n');
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&vector_export(&name)),
            "{name}"
        );
        assert_eq!(ours, vector_export(&name), "{name} (bytes)");
    }
}

#[test]
fn serialize_magic_decodes_to_the_serialized_array() {
    let value = decode(&vector_blob("serialize_magic")).expect("decode");
    let tok = value
        .as_array()
        .and_then(|a| a.get_str("tok"))
        .expect("tok");
    let object = tok.as_object().expect("an object");
    assert_eq!(object.class, b"Token");
    let igbinary::ObjectBody::Properties(p) = &object.body else {
        panic!("properties expected");
    };
    assert_eq!(p.get_str("v"), Some(&Value::from("abc")));
    assert_eq!(p.get_str("e"), Some(&Value::Int(1_700_000_000)));
}

#[test]
fn every_vector_reencodes_byte_identically() {
    for name in vector_names() {
        let blob = vector_blob(&name);
        let value = decode(&blob).expect("decode");
        assert_eq!(to_hex(&encode(&value)), to_hex(&blob), "{name}");
    }
}

#[test]
fn shared_nodes_decode_as_shared_arcs() {
    let value = decode(&vector_blob("shared_array_value")).expect("decode");
    let a = value.as_array().expect("array");
    let (Some(Value::Array(first)), Some(Value::Array(second))) =
        (a.get_str("first"), a.get_str("second"))
    else {
        panic!("arrays expected");
    };
    assert!(std::sync::Arc::ptr_eq(first, second));

    let value = decode(&vector_blob("php_reference")).expect("decode");
    let a = value.as_array().expect("array");
    let (Some(Value::Reference(x)), Some(Value::Reference(y))) = (a.get_str("a"), a.get_str("b"))
    else {
        panic!("references expected");
    };
    assert!(std::sync::Arc::ptr_eq(x, y));
}

#[test]
fn php_reads_our_encoding_of_every_vector_as_it_read_the_original() {
    let names = vector_names();
    let ours: Vec<Vec<u8>> = names
        .iter()
        .map(|n| encode(&decode(&vector_blob(n)).expect("decode")))
        .collect();
    let php = php_decode(&ours);
    for (name, decoded) in names.iter().zip(php) {
        assert_eq!(
            String::from_utf8_lossy(&decoded.export),
            String::from_utf8_lossy(&vector_export(name)),
            "{name}"
        );
        assert_eq!(decoded.export, vector_export(name), "{name} (bytes)");
    }
}

/// Shapes PHP writes that the vectors lack: a reference to an array used twice, a reference to
/// an object used twice, an object and a string shared across the tree. PHP must read our bytes and
/// write exactly the same bytes back.
#[test]
fn php_rewrites_our_references_and_shared_objects_byte_for_byte() {
    use igbinary::{Array, Key};
    use std::sync::Arc;

    let mut list = Array::new();
    list.push(Value::Int(1));
    list.push(Value::from("two"));
    let r = Arc::new(Value::array(list));

    let mut props = Array::new();
    props.insert(Key::php("sku"), Value::from("SKU-9"));
    props.insert(Key::Str(b"\0*\0qty".to_vec()), Value::Int(2));
    props.insert(Key::Str(b"\0CartItem\0price".to_vec()), Value::Float(-0.0));
    let item = Value::object("CartItem", props);

    let mut top = Array::new();
    top.insert(Key::php("r1"), Value::Reference(Arc::clone(&r)));
    top.insert(Key::php("item"), item.clone());
    top.insert(Key::php("r2"), Value::Reference(r));
    top.insert(Key::php("again"), item.clone());
    // A reference to an object, held twice (PHP drops a reference held once).
    let object_ref = Arc::new(Value::object("stdClass", Array::new()));
    top.insert(Key::php("ref_a"), Value::Reference(Arc::clone(&object_ref)));
    top.insert(Key::php("ref_b"), Value::Reference(object_ref));
    top.insert(Key::php("sku"), Value::from("SKU-9"));
    // A Serializable object and an enum case, each twice: both take a slot like any object.
    let map = Value::Object(Arc::new(igbinary::Object {
        class: b"Ds\\Map".to_vec(),
        body: igbinary::ObjectBody::Serialized(b"s:1:\"k\";s:1:\"v\";".to_vec()),
    }));
    let role = Value::Object(Arc::new(igbinary::Object {
        class: b"Role".to_vec(),
        body: igbinary::ObjectBody::EnumCase(b"User".to_vec()),
    }));
    top.insert(Key::php("map"), map.clone());
    top.insert(Key::php("role"), role.clone());
    top.insert(Key::php("map2"), map);
    top.insert(Key::php("role2"), role);
    let value = Value::array(top);

    let ours = encode(&value);
    let php = php_decode(std::slice::from_ref(&ours));
    let mut export = php_export(&value);
    export.push(b'\n');
    assert_eq!(
        String::from_utf8_lossy(&php[0].export),
        String::from_utf8_lossy(&export)
    );
    assert_eq!(to_hex(&php[0].reserialized), to_hex(&ours));
    assert_eq!(decode(&ours).expect("decode"), value);
}

/// php_export prints floats and odd strings as PHP's var_export does (edge cases of the
/// notation switch, subnormals, precision, escapes), checked against real PHP.
#[test]
fn php_export_prints_floats_and_strings_as_php_does() {
    use igbinary::{Array, Key};
    let floats = [
        1e15,
        1e16,
        1e17,
        1e18,
        123_456_789_012_345_680.0,
        0.0001,
        0.00001,
        -1.5e-7,
        5e-324,
        f64::MAX,
        f64::MIN_POSITIVE,
        0.1 + 0.2,
        100.0,
        1e22,
        9_007_199_254_740_993.0,
        -0.0,
        f64::from_bits(0xfff8_0000_0000_0001),
    ];
    let mut array: Array = floats
        .iter()
        .map(|&f| Value::Float(f))
        .enumerate()
        .map(|(i, v)| (Key::Int(i as i64), v))
        .collect();
    array.insert(Key::php("quote's\\back"), Value::from("it's a \\ \0 nul"));
    array.insert(Key::Str(b"\0nul key".to_vec()), Value::Int(i64::MIN));
    array.insert(Key::Int(i64::MIN), Value::Int(i64::MAX));
    let value = Value::array(array);
    let php = php_decode(&[encode(&value)]);
    let mut ours = php_export(&value);
    ours.push(b'\n');
    assert_eq!(
        String::from_utf8_lossy(&php[0].export),
        String::from_utf8_lossy(&ours)
    );
}
