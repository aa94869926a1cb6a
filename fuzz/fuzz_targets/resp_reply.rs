//! Fuzzes `redis_link::parse_reply`, the RESP2 reader every byte from Redis passes through.
//!
//! Properties: reading never panics; a whole reply uses no more bytes than it was given, and
//! reads as the `redis` crate's own parser reads the same bytes; every prefix of a whole reply
//! is incomplete (never a different reply, never an error), so a reply split across reads is
//! read the same as one that came at once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redis_link::parse_reply;

fuzz_target!(|data: &[u8]| {
    let Ok(Some((value, used))) = parse_reply(data) else {
        return;
    };
    assert!(used > 0 && used <= data.len(), "used {used} of {}", data.len());
    let whole = &data[..used];
    let theirs = redis::parse_redis_value(whole).expect("the redis crate reads a whole reply");
    assert_eq!(value, theirs, "both parsers agree");
    for cut in 0..used {
        assert!(
            matches!(parse_reply(&whole[..cut]), Ok(None)),
            "a prefix of {cut} bytes is incomplete"
        );
    }
});
