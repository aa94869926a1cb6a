//! Hostile blobs, one test per property: each is refused with the error that names the
//! problem and its offset, quickly and without a panic.

use igbinary::{Array, Error, MAX_DEPTH, Value, decode, encode};

fn blob(body: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 0, 2];
    b.extend_from_slice(body);
    b
}

#[test]
fn a_count_larger_than_the_input_is_refused_before_allocating() {
    let err = decode(&blob(&[0x16, 0xff, 0xff, 0xff, 0xff, 0x06])).expect_err("count");
    assert_eq!(
        err,
        Error::CountTooLarge {
            offset: 5,
            count: 0xffff_ffff,
            available: 1
        }
    );
    assert_eq!(
        err.to_string(),
        "count 4294967295 at offset 5 is larger than the 1 bytes left"
    );
    // A string length too, including the 64-bit one.
    let err = decode(&blob(&[0x26, 0xff, 0, 0, 0, 0, 0, 0, 0, b'a'])).expect_err("len");
    assert!(
        matches!(err, Error::CountTooLarge { offset: 5, .. }),
        "{err}"
    );
    // And a Serializable payload.
    let err = decode(&blob(&[0x17, 1, b'C', 0x1f, 0x7f, 0, 0, 0])).expect_err("payload");
    assert!(
        matches!(err, Error::CountTooLarge { offset: 8, .. }),
        "{err}"
    );
}

#[test]
fn depth_10000_is_refused() {
    let mut body = Vec::new();
    for _ in 0..10_000 {
        body.extend_from_slice(&[0x14, 0x01, 0x06, 0x00]);
    }
    body.push(0x00);
    let err = decode(&blob(&body)).expect_err("deep arrays");
    assert_eq!(
        err,
        Error::TooDeep {
            offset: 4 + 4 * (MAX_DEPTH + 1),
            limit: MAX_DEPTH
        }
    );
    // Through references and objects as well.
    let mut body = Vec::new();
    for _ in 0..10_000 {
        body.extend_from_slice(&[0x25, 0x17, 0x01, b'C', 0x14, 0x01, 0x06, 0x00]);
    }
    body.push(0x00);
    assert!(matches!(decode(&blob(&body)), Err(Error::TooDeep { .. })));
}

#[test]
fn u64_above_i64_max_is_refused() {
    let mut body = vec![0x20, 0x80];
    body.extend([0; 7]);
    assert_eq!(
        decode(&blob(&body)),
        Err(Error::IntegerOutOfRange { offset: 4 })
    );
    let mut body = vec![0x21, 0x80];
    body.extend([0; 7]);
    assert_eq!(decode(&blob(&body)), Ok(Value::Int(i64::MIN)));
    let mut body = vec![0x21, 0x80];
    body.extend([0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(
        decode(&blob(&body)),
        Err(Error::IntegerOutOfRange { offset: 4 })
    );
    let mut body = vec![0x14, 0x01, 0x20, 0xff];
    body.extend([0xff; 7]);
    body.push(0x00);
    assert_eq!(
        decode(&blob(&body)),
        Err(Error::IntegerOutOfRange { offset: 6 })
    );
}

#[test]
fn an_unknown_tag_is_named_with_its_offset() {
    let err = decode(&blob(&[0x14, 0x01, 0x06, 0x00, 0xfe])).expect_err("tag");
    assert_eq!(err.to_string(), "unknown tag 0xfe at offset 8 (value)");
    let err = decode(&blob(&[0x14, 0x01, 0x05, 0x00])).expect_err("key");
    assert_eq!(err.to_string(), "unknown tag 0x05 at offset 6 (array key)");
    let err = decode(&blob(&[0x17, 0x01, b'C', 0x05])).expect_err("body");
    assert_eq!(
        err.to_string(),
        "unknown tag 0x05 at offset 7 (object body)"
    );
}

#[test]
fn a_back_reference_out_of_range_is_refused() {
    let err = decode(&blob(&[0x14, 0x01, 0x06, 0x00, 0x01, 0x05])).expect_err("back-ref");
    assert_eq!(
        err,
        Error::BadBackReference {
            offset: 8,
            index: 5,
            slots: 1
        }
    );
    let err = decode(&blob(&[0x0e, 0x00])).expect_err("string id");
    assert!(
        matches!(
            err,
            Error::BadStringId {
                offset: 4,
                index: 0,
                strings: 0
            }
        ),
        "{err}"
    );
}

#[test]
fn a_back_reference_to_an_enclosing_array_is_a_refused_cycle() {
    let err = decode(&blob(&[0x14, 0x01, 0x06, 0x00, 0x01, 0x00])).expect_err("cycle");
    assert_eq!(
        err,
        Error::Cycle {
            offset: 8,
            index: 0
        }
    );
    // PHP's `$a['self'] = &$a` shape.
    let err = decode(&blob(&[0x14, 0x01, 0x06, 0x00, 0x25, 0x01, 0x00])).expect_err("cycle");
    assert!(matches!(err, Error::Cycle { index: 0, .. }), "{err}");
    // An object's property pointing at the object.
    let err =
        decode(&blob(&[0x17, 1, b'C', 0x14, 0x01, 0x06, 0x00, 0x22, 0x00])).expect_err("cycle");
    assert!(matches!(err, Error::Cycle { index: 0, .. }), "{err}");
}

#[test]
fn trailing_bytes_are_refused() {
    let err = decode(&blob(&[0x00, 0x00, 0x01])).expect_err("trailing");
    assert_eq!(
        err,
        Error::TrailingBytes {
            offset: 5,
            count: 2
        }
    );
    assert_eq!(
        err.to_string(),
        "2 trailing bytes at offset 5 after the value"
    );
}

#[test]
fn a_bad_or_short_header_is_refused() {
    assert!(matches!(decode(b"a:0:{}"), Err(Error::BadHeader { .. })));
    assert!(matches!(decode(&[0, 0]), Err(Error::BadHeader { .. })));
    assert!(matches!(decode(&[]), Err(Error::BadHeader { .. })));
    assert_eq!(decode(&[0, 0, 0, 1, 0x05]), Ok(Value::Bool(true)));
    assert!(matches!(
        decode(&[0, 0, 0, 2]),
        Err(Error::Truncated { offset: 4, .. })
    ));
}

#[test]
fn back_references_cannot_blow_the_tree_up_exponentially() {
    // Entry k is [slot k, slot k]: the tree doubles with every entry.
    let mut body = vec![0x14, 100, 0x06, 0x00, 0x14, 0x00];
    for k in 1..100u8 {
        body.extend_from_slice(&[
            0x06, k, 0x14, 0x02, 0x06, 0x00, 0x01, k, 0x06, 0x01, 0x01, k,
        ]);
    }
    let err = decode(&blob(&body)).expect_err("expansion");
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
}

#[test]
fn equality_of_shared_trees_is_linear() {
    fn doubling(levels: usize) -> Value {
        let mut v = Value::array(Array::new());
        for _ in 0..levels {
            let mut a = Array::new();
            a.push(v.clone());
            a.push(v);
            v = Value::array(a);
        }
        v
    }
    let (a, b) = (doubling(200), doubling(200));
    assert_eq!(a, b);
    // Encoding writes each node once; back-references do the rest.
    assert!(encode(&a).len() < 200 * 12);
}

#[test]
fn value_is_send_sync_clone_debug_partialeq() {
    fn check<T: Send + Sync + Clone + std::fmt::Debug + PartialEq>() {}
    check::<Value>();
    check::<Array>();
    check::<Error>();
}

#[test]
fn an_interned_string_cannot_be_copied_without_bound() {
    // One 64 KiB string, then a list of 200,000 references to it (12.8 GB once copied).
    let n: u32 = 200_000;
    let mut body = vec![0x16];
    body.extend((n + 1).to_be_bytes());
    body.extend([0x06, 0x00, 0x13]);
    body.extend(65_536u32.to_be_bytes());
    body.extend(std::iter::repeat_n(b'x', 65_536));
    for i in 1..=n {
        body.push(0x0a);
        body.extend(i.to_be_bytes());
        body.extend([0x0e, 0x00]);
    }
    let err = decode(&blob(&body)).expect_err("copies");
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
}
