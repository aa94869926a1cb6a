//! The RESP reader against the `redis` crate's parser on streams of replies, through the
//! public [`parse_reply`]: random RESP2 replies (nested arrays, errors, nils, binary bulk
//! strings) are encoded, concatenated and handed over in random chunks, as a socket delivers
//! them. Every reply must come out whole, in order, equal to what `redis::parse_redis_value`
//! reads from the same bytes, and nothing may come out of a cut reply. (Single replies of
//! random bytes are compared in `resp.rs`'s own proptest; the fuzz target `resp_reply` does
//! the same with libFuzzer.)

use proptest::prelude::*;
use redis_link::parse_reply;

/// A reply as the server would send it, RESP2-encoded.
fn reply() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        "[a-zA-Z0-9 ]{0,12}".prop_map(|s| format!("+{s}\r\n").into_bytes()),
        "[A-Z]{1,8} [a-z ]{0,12}".prop_map(|s| format!("-{s}\r\n").into_bytes()),
        any::<i64>().prop_map(|n| format!(":{n}\r\n").into_bytes()),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|bytes| {
            let mut out = format!("${}\r\n", bytes.len()).into_bytes();
            out.extend_from_slice(&bytes);
            out.extend_from_slice(b"\r\n");
            out
        }),
        Just(b"$-1\r\n".to_vec()),
        Just(b"*-1\r\n".to_vec()),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop::collection::vec(inner, 0..6).prop_map(|items| {
            let mut out = format!("*{}\r\n", items.len()).into_bytes();
            for item in items {
                out.extend_from_slice(&item);
            }
            out
        })
    })
}

proptest! {
    #[test]
    fn a_stream_of_replies_reads_as_the_redis_crate_reads_each_whatever_the_chunks(
        replies in prop::collection::vec(reply(), 1..8),
        cuts in prop::collection::vec(1usize..64, 1..40),
    ) {
        let stream = replies.concat();
        let mut received = Vec::new();
        let mut read = Vec::new();
        let mut sent = 0;
        let mut cuts = cuts.into_iter().cycle();
        while sent < stream.len() {
            let chunk = cuts.next().unwrap_or(1).min(stream.len() - sent);
            received.extend_from_slice(&stream[sent..sent + chunk]);
            sent += chunk;
            loop {
                match parse_reply(&received) {
                    Ok(Some((value, used))) => {
                        prop_assert!(used <= received.len());
                        read.push((value, received[..used].to_vec()));
                        received.drain(..used);
                    }
                    Ok(None) => break,
                    Err(e) => return Err(TestCaseError::fail(format!("valid RESP refused: {e}"))),
                }
            }
        }
        prop_assert!(received.is_empty(), "bytes left over: {:?}", received);
        prop_assert_eq!(read.len(), replies.len());
        for ((value, bytes), sent) in read.into_iter().zip(&replies) {
            prop_assert_eq!(&bytes, sent, "one reply, exactly its bytes");
            let theirs = redis::parse_redis_value(&bytes).map_err(|e| e.to_string());
            prop_assert_eq!(Ok(value), theirs);
        }
    }
}

proptest! {
    /// What the fuzz target `resp_reply` asserts, on RESP-like random bytes: a whole reply at
    /// the front reads as the `redis` crate reads it, and each of its prefixes is incomplete.
    #[test]
    fn every_prefix_of_a_reply_is_incomplete(
        lines in prop::collection::vec(
            prop_oneof![
                (prop::sample::select(b"+-:$*".to_vec()), -3i64..40)
                    .prop_map(|(kind, n)| format!("{}{n}\r\n", char::from(kind)).into_bytes()),
                "[a-z]{0,6}\r\n".prop_map(String::into_bytes),
                prop::collection::vec(any::<u8>(), 0..8),
            ],
            0..8,
        )
    ) {
        let bytes = lines.concat();
        if let Ok(Some((value, used))) = parse_reply(&bytes) {
            prop_assert!(used > 0 && used <= bytes.len());
            let theirs = redis::parse_redis_value(&bytes[..used]).map_err(|e| e.to_string());
            prop_assert_eq!(Ok(value), theirs);
            for cut in 0..used {
                prop_assert!(
                    matches!(parse_reply(&bytes[..cut]), Ok(None)),
                    "prefix of {} bytes of {:?}", cut, String::from_utf8_lossy(&bytes[..used])
                );
            }
        }
    }
}
