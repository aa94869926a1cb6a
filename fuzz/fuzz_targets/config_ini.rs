//! Fuzzes `Config::from_ini_str`, the reader of `config.ini`: raw text, and files written from
//! the known `[session]` and `[redis]` keys with values of the fuzzer's choice, so that every
//! key's conversion and the cross-key rules are reached.
//!
//! Properties: never panics (seconds too large for a `Duration`, NaN, huge numbers, odd
//! sections); an accepted configuration passes `validate` again, names an existing pool, and
//! gives a `Set-Cookie` header that starts with its cookie name (the header builder falls back
//! to an empty value on an invalid header, so an empty one means validation let something bad
//! through).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use redis_sessions::cookie::{removal_cookie, set_cookie};
use redis_sessions::{Config, SessionId};

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
/// Values that sit on the edges of the conversions.
const EDGES: &[&str] = &[
    "0",
    "1",
    "-1",
    "0.001",
    "0.0005",
    "1e309",
    "NaN",
    "inf",
    "-0",
    "18446744073709551616",
    "315360000",
    "315360001",
    "86400",
    "86400.5",
    "null",
    "true",
    "no",
    "/",
    "__Host-x",
    "__Secure-x",
    "a:1,b:2",
    "127.0.0.1:6379",
    "",
    "default",
];

#[derive(Arbitrary, Debug)]
enum Value<'a> {
    Edge(u8),
    Text(&'a str),
}

#[derive(Arbitrary, Debug)]
enum Input<'a> {
    Raw(&'a str),
    Keys {
        session: Vec<(u8, Value<'a>)>,
        pools: Vec<(bool, u8, Value<'a>)>,
        tail: &'a str,
    },
}

fn value<'a>(v: &Value<'a>) -> &'a str {
    match v {
        Value::Edge(i) => EDGES[usize::from(*i) % EDGES.len()],
        Value::Text(text) => text,
    }
}

fn render(input: &Input<'_>) -> String {
    match input {
        Input::Raw(text) => (*text).to_owned(),
        Input::Keys {
            session,
            pools,
            tail,
        } => {
            let mut text = String::from("[session]\n");
            for (key, v) in session {
                let key = SESSION_KEYS[usize::from(*key) % SESSION_KEYS.len()];
                text.push_str(&format!("{key} = {}\n", value(v)));
            }
            text.push_str("[redis]\n");
            for (other, key, v) in pools {
                let pool = if *other { "other" } else { "default" };
                let key = POOL_KEYS[usize::from(*key) % POOL_KEYS.len()];
                text.push_str(&format!("{pool}[{key}] = {}\n", value(v)));
            }
            text.push_str(tail);
            text
        }
    }
}

fuzz_target!(|input: Input<'_>| {
    let text = render(&input);
    let Ok(config) = Config::from_ini_str(&text) else {
        return;
    };
    config
        .validate()
        .expect("an accepted configuration validates again");
    config.pool().expect("the session pool exists");
    let session = &config.session;
    let header = set_cookie(session, &SessionId::generate());
    let header = header.to_str().expect("a Set-Cookie header is ASCII");
    assert!(
        header.starts_with(&format!("{}=", session.cookie_name)),
        "Set-Cookie {header:?} for cookie_name {:?}",
        session.cookie_name
    );
    let removal = removal_cookie(session);
    assert!(!removal.is_empty(), "an empty removal cookie");
});
