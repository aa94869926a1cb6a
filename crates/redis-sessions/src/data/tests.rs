//! Unit tests of `SessionData`: change tracking, limits and reserved keys.

use super::*;

#[test]
fn putting_an_equal_value_changes_nothing() {
    let mut data = SessionData::from_stored(
        [(
            "n".to_owned(),
            Bytes::from(rmp_serde::to_vec_named(&5).unwrap_or_default()),
        )],
        100,
        1000,
    );
    data.put("n", &5).unwrap_or_default();
    assert!(!data.is_modified());
    data.put("n", &6).unwrap_or_default();
    assert!(data.is_modified());
}

#[test]
fn oversized_value_is_rejected_and_nothing_changes() {
    let mut data = SessionData::with_limits(10, 1000);
    let err = data.put("k", &"x".repeat(20));
    assert!(matches!(
        err,
        Err(DataError::ValueTooLarge {
            size: 21,
            limit: 10,
            ..
        })
    ));
    assert!(data.is_empty());
    assert!(!data.is_modified());
}

#[test]
fn session_limit_counts_keys_and_values() {
    let mut data = SessionData::with_limits(100, 30);
    assert!(data.put("a", &"x".repeat(10)).is_ok());
    assert!(data.put("b", &"x".repeat(10)).is_ok());
    assert!(matches!(
        data.put("c", &"x".repeat(10)),
        Err(DataError::SessionTooLarge { .. })
    ));
    assert!(data.put("a", &"y").is_ok(), "shrinking is always allowed");
}

#[test]
fn changes_track_puts_and_removes() {
    let mut data = SessionData::default();
    data.put("a", &1).unwrap_or_default();
    data.put("b", &2).unwrap_or_default();
    data.remove("b");
    let changes = data.take_changes();
    assert_eq!(changes.set.len(), 1);
    assert_eq!(changes.removed, ["b"]);
    assert!(!data.is_modified());
}

#[test]
fn wrong_type_is_a_decode_error_for_that_key() {
    let mut data = SessionData::default();
    data.put("s", "text").unwrap_or_default();
    assert!(matches!(
        data.get::<u32>("s"),
        Err(DataError::Decode { .. })
    ));
    assert_eq!(
        data.get::<String>("s").ok().flatten().as_deref(),
        Some("text")
    );
}

#[test]
fn reserved_keys_are_out_of_reach_of_handlers() {
    let mut data = SessionData::default();
    data.put_reserved("\0csrf", "token").expect("library value");
    assert!(matches!(
        data.put("\0csrf", "mine"),
        Err(DataError::ReservedKey { .. })
    ));
    assert!(matches!(
        data.get::<String>("\0csrf"),
        Err(DataError::ReservedKey { .. })
    ));
    assert!(!data.remove("\0csrf"));
    assert!(!data.contains("\0csrf"));
    assert!(data.is_empty() && data.keys().next().is_none());
    assert_eq!(data.len(), 0);
    data.put("basket", &3).expect("put");
    data.clear();
    assert_eq!(
        data.get_reserved::<String>("\0csrf")
            .expect("get")
            .as_deref(),
        Some("token"),
        "clear() keeps the library's values"
    );
    assert!(data.remove_reserved("\0csrf"));
}

#[test]
fn a_rust_struct_is_read_from_a_php_array_and_written_back_as_one() {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Line {
        sku: String,
        qty: u32,
    }
    // What PHP's igbinary_serialize(['sku' => 'tea', 'qty' => 2]) stores.
    let mut php = igbinary::Array::new();
    php.insert(igbinary::Key::php("sku"), igbinary::Value::str("tea"));
    php.insert(igbinary::Key::php("qty"), igbinary::Value::Int(2));
    let stored = igbinary::encode(&igbinary::Value::Array(std::sync::Arc::new(php)));
    let mut data = SessionData::from_stored(
        [("line".to_owned(), Bytes::from(stored.clone()))],
        100,
        1000,
    )
    .with_codec(Codec::Igbinary);
    let line: Option<Line> = data.get("line").unwrap_or_default();
    let mut line = line.expect("decoded");
    assert_eq!(
        line,
        Line {
            sku: "tea".into(),
            qty: 2
        }
    );
    data.put("line", &line).expect("put");
    assert!(
        !data.is_modified(),
        "the same value encodes to PHP's own bytes"
    );
    line.qty = 3;
    data.put("line", &line).expect("put");
    let changes = data.take_changes();
    let written = igbinary::decode(&changes.set[0].1).expect("igbinary");
    let array = written.as_array().expect("a PHP array");
    assert_eq!(
        array.get_str("qty").and_then(igbinary::Value::as_int),
        Some(3)
    );
    assert_eq!(
        array.get_str("sku").and_then(igbinary::Value::as_str),
        Some("tea")
    );
    let wrong: Result<Option<u32>, _> = data.get("line");
    assert!(matches!(wrong, Err(DataError::Decode { .. })), "{wrong:?}");
}

#[test]
fn keys_keep_their_order() {
    let mut data = SessionData::default();
    for key in ["z", "a", "m", "b"] {
        data.put(key, &1).expect("put");
    }
    data.remove("a");
    data.put("a", &2).expect("put");
    assert_eq!(data.keys().collect::<Vec<_>>(), ["z", "m", "b", "a"]);
    let changes = data.take_changes();
    let keys: Vec<&str> = changes.set.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["z", "m", "b", "a"],
        "new keys reach PHP in the order they were put"
    );
}
