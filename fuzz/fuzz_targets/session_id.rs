//! Fuzzes `SessionId::parse`, the gate every cookie value passes before anything touches Redis.
//!
//! Properties: parsing never panics; whatever parses is exactly the canonical spelling of its id
//! (it re-encodes to the same text, so each id has one accepted cookie value); and every 32
//! bytes, spelled canonically, parse back to the same id.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use redis_sessions::SessionId;
use redis_sessions::id::ID_LEN;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(id) = SessionId::parse(text) {
            assert_eq!(
                id.expose(),
                text,
                "an accepted value is the canonical spelling"
            );
            assert_eq!(text.len(), ID_LEN);
            assert_eq!(id.storage_id().as_str().len(), 22);
            assert!(!format!("{id} {id:?}").contains(text), "logs show the id");
        }
    }
    if let Some(bytes) = data.get(..32) {
        let text = URL_SAFE_NO_PAD.encode(bytes);
        let id = SessionId::parse(&text).expect("every 32 bytes make a well-formed id");
        assert_eq!(id.expose(), text);
    }
});
