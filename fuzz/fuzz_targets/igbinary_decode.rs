//! Fuzzes the igbinary codec with what a PHP application (or an attacker who can write to
//! Redis) might leave as a session: arbitrary bytes, the header prepended half of the time so
//! most inputs reach the value decoder.
//!
//! Properties: `decode` never panics, never overflows the stack and never loops; whatever it
//! accepts re-encodes to a blob that decodes to an equal value and re-encodes to the same
//! bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (with_header, body) = match data.split_first() {
        Some((flag, body)) => (flag & 1 == 1, body),
        None => (false, data),
    };
    let blob: Vec<u8> = if with_header {
        [&[0, 0, 0, 2][..], body].concat()
    } else {
        body.to_vec()
    };
    if let Ok(value) = igbinary::decode(&blob) {
        let encoded = igbinary::encode(&value);
        let back = igbinary::decode(&encoded).expect("our own encoding decodes");
        assert!(back == value, "decode(encode(v)) != v for {blob:02x?}");
        assert_eq!(igbinary::encode(&back), encoded, "re-encoding is not stable");
    }
});
