//! Properties over generated inputs (proptest): session values survive `put` then `get` and a
//! trip through the stored encoding, metadata round-trips, any `Cookie` header bytes are safe,
//! well-formed ids parse back, and `config.ini` with arbitrary values never panics. The fuzz
//! targets in `fuzz/` push the same code with hostile bytes; these run with every `cargo test`.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};
use proptest::prelude::*;
use redis_sessions::cookie::{MAX_CANDIDATES, session_ids_from_headers};
use redis_sessions::store::Meta;
use redis_sessions::{Config, ConfigError, SessionData, SessionId};
use serde::{Deserialize, Serialize};

/// A value shaped like an application's: nested, optional, with a map and a float.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Basket {
    items: Vec<(String, u32)>,
    coupon: Option<String>,
    prices: BTreeMap<String, i64>,
    blob: Vec<u8>,
    ratio: f64,
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        ".{0,20}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(8, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A data key handlers may use: non-empty, not beginning with NUL.
fn data_key() -> impl Strategy<Value = String> {
    "[^\u{0}].{0,15}"
}

/// `put` then `get` gives back the value, in the same data and after a trip through the stored
/// form (`encoded` -> `from_stored`), which is what Redis holds between requests.
fn round_trips<T>(value: &T) -> Result<(), TestCaseError>
where
    T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let mut data = SessionData::with_limits(usize::MAX, usize::MAX);
    data.put("k", value).expect("put");
    let got = data.get::<T>("k").expect("get");
    prop_assert_eq!(got.as_ref(), Some(value));
    let stored: Vec<(String, Bytes)> = data
        .encoded()
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect();
    let loaded = SessionData::from_stored(stored, usize::MAX, usize::MAX);
    let got = loaded.get::<T>("k").expect("get");
    prop_assert_eq!(got.as_ref(), Some(value));
    prop_assert_eq!(loaded.size_bytes(), data.size_bytes());
    prop_assert!(!loaded.is_modified());
    Ok(())
}

proptest! {
    #[test]
    fn scalars_and_strings_round_trip(n in any::<i64>(), u in any::<u64>(), s in ".*", b in any::<bool>()) {
        round_trips(&n)?;
        round_trips(&u)?;
        round_trips(&s)?;
        round_trips(&b)?;
        round_trips(&Some(s.clone()))?;
    }

    #[test]
    fn structs_round_trip(
        items in prop::collection::vec((".{0,10}", any::<u32>()), 0..8),
        coupon in prop::option::of(".{0,10}"),
        prices in prop::collection::btree_map(".{0,8}", any::<i64>(), 0..8),
        blob in prop::collection::vec(any::<u8>(), 0..64),
        ratio in any::<f64>().prop_filter("NaN is not equal to itself", |f| !f.is_nan()),
    ) {
        round_trips(&Basket { items, coupon, prices, blob, ratio })?;
    }

    #[test]
    fn nested_json_values_round_trip(value in json_value()) {
        round_trips(&value)?;
    }

    #[test]
    fn many_keys_survive_the_stored_form(
        values in prop::collection::btree_map(data_key(), any::<i64>(), 0..32),
    ) {
        let mut data = SessionData::default();
        for (key, value) in &values {
            data.put(key, value).expect("put");
        }
        let stored: Vec<(String, Bytes)> =
            data.encoded().map(|(k, v)| (k.to_owned(), v.clone())).collect();
        let loaded = SessionData::from_stored(stored, 1 << 16, 1 << 20);
        prop_assert_eq!(loaded.len(), values.len());
        for (key, value) in &values {
            prop_assert_eq!(loaded.get::<i64>(key).expect("get"), Some(*value));
        }
    }

    #[test]
    fn meta_round_trips(created in 0u64..1 << 48, touched in 0u64..1 << 48) {
        let meta = Meta { created_ms: created, touched_ms: touched };
        prop_assert_eq!(Meta::decode(&meta.encode()), Some(meta));
    }

    #[test]
    fn meta_decodes_exactly_twelve_bytes(bytes in prop::collection::vec(any::<u8>(), 0..32)) {
        match Meta::decode(&bytes) {
            Some(meta) => prop_assert_eq!(&meta.encode()[..], &bytes[..]),
            None => prop_assert_ne!(bytes.len(), Meta::ENCODED_LEN),
        }
    }

    #[test]
    fn any_header_bytes_are_safe(
        headers in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..8),
        name in prop_oneof![Just("dmsession".to_owned()), ".{0,10}"],
    ) {
        let mut map = HeaderMap::new();
        for bytes in &headers {
            if let Ok(value) = HeaderValue::from_bytes(bytes) {
                map.append(header::COOKIE, value);
            }
        }
        let ids = session_ids_from_headers(&map, &name);
        prop_assert!(ids.len() <= MAX_CANDIDATES);
        for id in &ids {
            let text = id.expose();
            prop_assert!(headers.iter().any(|h| h.windows(43).any(|w| w == text.as_bytes())));
        }
    }

    #[test]
    fn well_formed_ids_parse_back(bytes in any::<[u8; 32]>(), junk in ".{0,60}") {
        let text = URL_SAFE_NO_PAD.encode(bytes);
        let id = SessionId::parse(&text).expect("a canonical id parses");
        prop_assert_eq!(id.expose(), text.clone());
        let mut map = HeaderMap::new();
        let cookie = format!("{junk}; dmsession={text}");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            map.insert(header::COOKIE, value);
            let ids = session_ids_from_headers(&map, "dmsession");
            prop_assert!(ids.contains(&id), "{cookie:?} hides the id");
        }
        if let Some(other) = SessionId::parse(&junk) {
            prop_assert_eq!(other.expose(), junk);
        }
    }

    #[test]
    fn config_with_arbitrary_values_never_panics(
        key in prop::sample::select(SESSION_KEYS),
        value in prop_oneof!["[^\r\n]{0,30}", "-?[0-9]{1,25}(\\.[0-9]{0,5})?(e[0-9]{1,3})?", Just("NaN".to_owned())],
        pool_key in prop::sample::select(POOL_KEYS),
        pool_value in prop_oneof!["[^\r\n]{0,30}", "-?[0-9]{1,25}(\\.[0-9]{0,5})?"],
    ) {
        // A value may break a rule that relates two keys (`default[timeout]` against
        // `lock_ttl`): the error is then about the other key, and its message names both.
        let pool_key = format!("default[{pool_key}]");
        for (text, written) in [
            (format!("[session]\n{key} = {value}\n"), key),
            (format!("[redis]\n{pool_key} = {pool_value}\n"), pool_key.as_str()),
        ] {
            match Config::from_ini_str(&text) {
                Ok(config) => prop_assert!(config.validate().is_ok()),
                Err(error @ ConfigError::Invalid { .. }) => {
                    let message = error.to_string();
                    prop_assert!(message.contains(written), "{text:?}: {message}");
                }
                Err(ConfigError::Syntax(_) | ConfigError::UnknownPool { .. }) => {}
                Err(other) => prop_assert!(false, "{text:?}: {other}"),
            }
        }
    }
}

const SESSION_KEYS: &[&str] = &[
    "cookie_name",
    "cookie_lifespan",
    "redis_connection_pool",
    "cookie_samesite",
    "cookie_secure",
    "cookie_path",
    "cookie_domain",
    "absolute_lifetime",
    "max_value_bytes",
    "max_session_bytes",
    "touch_interval",
    "persist",
    "lock_wait",
    "lock_ttl",
    "format",
];

const POOL_KEYS: &[&str] = &[
    "host",
    "port",
    "db_index",
    "password",
    "username",
    "prefix",
    "timeout",
    "pool_size",
    "pool_prefill",
    "min_replicas_ack",
    "cluster_nodes",
    "sentinel_nodes",
    "sentinel_master",
    "sentinel_password",
    "tls",
    "tls_ca",
    "tls_cert",
    "tls_key",
];
