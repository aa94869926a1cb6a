//! Unit tests of session ids, storage ids and user index names.

use super::*;

#[test]
fn generated_ids_round_trip_and_differ() {
    let a = SessionId::generate();
    let b = SessionId::generate();
    assert_ne!(a, b);
    assert_eq!(SessionId::parse(&a.expose()), Some(a));
}

#[test]
fn malformed_values_are_rejected() {
    let good = SessionId::generate().expose();
    assert!(SessionId::parse(&good[..42]).is_none());
    assert!(SessionId::parse(&format!("{good}A")).is_none());
    assert!(SessionId::parse(&format!("{}=", &good[..42])).is_none());
    assert!(SessionId::parse(&format!("{}+", &good[..42])).is_none());
    assert!(SessionId::parse("").is_none());
    for bad in [b'!', b'.', b' ', b'/', b'+', b'=', b'\0', b'%'] {
        let mut text = good.clone().into_bytes();
        text[20] = bad;
        let text = String::from_utf8(text).unwrap_or_default();
        assert!(SessionId::parse(&text).is_none(), "{text:?}");
    }
    assert!(SessionId::parse(&"é".repeat(21)).is_none());
}

#[test]
fn non_canonical_spelling_is_rejected() {
    // The last character carries 2 unused bits; only the spelling with them zero is accepted.
    let good = SessionId::generate().expose();
    let last = good.as_bytes()[42];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let pos = alphabet.iter().position(|&c| c == last).unwrap_or(0);
    let other = alphabet[(pos & !3) | ((pos + 1) & 3)] as char;
    let bad = format!("{}{other}", &good[..42]);
    assert!(SessionId::parse(&bad).is_none());
}

#[test]
fn storage_ids_parse_back_and_user_index_names_differ_per_user() {
    let s = SessionId::generate().storage_id();
    assert_eq!(StorageId::parse(s.as_str()), Some(s.clone()));
    assert_eq!(StorageId::parse(&s.as_str()[1..]), None);
    assert_eq!(StorageId::parse(&format!("{}{{", &s.as_str()[1..])), None);
    let alice = UserIndexId::of_user("alice@example.com");
    assert_eq!(alice, UserIndexId::of_user("alice@example.com"));
    assert_ne!(alice, UserIndexId::of_user("bob@example.com"));
    assert_eq!(alice.as_str().len(), STORAGE_LEN);
    assert!(!alice.as_str().contains("alice"));
}

#[test]
fn resonance_ids_are_strict_lowercase_hex_and_shown_redacted() {
    let id = SessionId::generate_for(SessionFormat::Resonance);
    let text = id.expose();
    assert_eq!(text.len(), RESONANCE_ID_LEN);
    assert_ne!(id, SessionId::generate_for(SessionFormat::Resonance));
    assert_eq!(
        SessionId::parse_for(&text, SessionFormat::Resonance),
        Some(id.clone())
    );
    assert_eq!(
        id.storage_id().as_str(),
        text,
        "the framework's keys hold the id"
    );
    assert_eq!(SessionId::parse_for(&text, SessionFormat::Native), None);
    assert_eq!(SessionId::parse(&text), None);
    let native = SessionId::generate().expose();
    assert_eq!(
        SessionId::parse_for(&native, SessionFormat::Resonance),
        None
    );
    assert_eq!(
        SessionId::parse_for(&text[1..], SessionFormat::Resonance),
        None
    );
    assert_eq!(
        SessionId::parse_for(&text.to_uppercase(), SessionFormat::Resonance),
        None
    );
    assert_eq!(
        SessionId::parse_for(&format!("{}g", &text[1..]), SessionFormat::Resonance),
        None
    );
    assert_eq!(
        SessionId::parse_for(&"é".repeat(128), SessionFormat::Resonance),
        None
    );
    let storage = id.storage_id();
    let shown = format!("{id} {id:?} {storage} {storage:?}");
    assert!(!shown.contains(&text[..12]), "{shown}");
    assert_eq!(
        format!("{}", SessionId::parse(&native).expect("id")),
        format!(
            "#{}…",
            &SessionId::parse(&native).expect("id").storage_id().as_str()[..6]
        )
    );
}

/// Storage ids name the records already in Redis: the derivation must never change. The
/// expected values were computed apart from this crate (Python's `hashlib` and `base64`).
#[test]
fn storage_ids_are_base64url_of_the_first_16_bytes_of_sha256_of_the_id() {
    let id = SessionId::parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8").expect("an id");
    assert_eq!(id.storage_id().as_str(), "Yw3NKWbEM2aRElRIu7JbTw");
}

#[test]
fn storage_id_is_stable_and_hides_the_id() {
    let id = SessionId::generate();
    let s = id.storage_id();
    assert_eq!(s, id.storage_id());
    assert_eq!(s.as_str().len(), STORAGE_LEN);
    assert_eq!(StorageId::parse(s.as_str()), Some(s.clone()));
    assert!(StorageId::parse(&s.as_str()[..21]).is_none());
    assert!(StorageId::parse(&id.expose()).is_none());
    assert!(!id.expose().contains(s.as_str()));
    assert!(!format!("{id} {id:?}").contains(&id.expose()));
}
