//! Configuration: the original keys, our keys, and errors that name what is wrong.

use std::time::Duration;

use redis_sessions::{Config, ConfigError, PersistMode, SameSite};

fn error_of(ini: &str) -> String {
    Config::from_ini_str(ini)
        .expect_err("must be rejected")
        .to_string()
}

#[test]
fn the_shipped_config_ini_loads() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config.ini");
    let config = Config::from_ini_file(path).expect("config.ini is valid");
    assert_eq!(config.session.cookie_name, "dmsession");
    assert_eq!(config.session.cookie_lifespan, Duration::from_secs(86_400));
    assert_eq!(config.pool().expect("pool").port, 6379);
    assert_eq!(config.pool().expect("pool").password, None);
}

#[test]
fn defaults_match_the_original_system() {
    let config = Config::from_ini_str("").expect("empty config is valid");
    let s = &config.session;
    assert_eq!(
        (s.cookie_name.as_str(), s.redis_connection_pool.as_str()),
        ("dmsession", "default")
    );
    assert_eq!(s.cookie_lifespan, Duration::from_secs(86_400));
    assert_eq!((s.cookie_samesite, s.cookie_secure), (SameSite::Lax, true));
    assert_eq!(s.persist_mode, PersistMode::BeforeResponse);
}

#[test]
fn every_key_is_read() {
    let config = Config::from_ini_str(
        "[session]\ncookie_name = sid\ncookie_lifespan = 60 ; a comment\nredis_connection_pool = main\n\
         cookie_samesite = strict\ncookie_secure = false\ncookie_path = /app\ncookie_domain = example.test\n\
         absolute_lifetime = 3600\nmax_value_bytes = 10\nmax_session_bytes = 100\ntouch_interval = 0.5\n\
         persist = after_response\nlock_wait = 2\nlock_ttl = 3\n\
         [redis]\nmain[host] = 10.0.0.1\nmain[port] = 7000\nmain[db_index] = 2\nmain[password] = s3cret\n\
         main[prefix] = app:\nmain[timeout] = 0.25\nmain[pool_size] = 3\nmain[pool_prefill] = true\n",
    )
    .expect("valid");
    let s = &config.session;
    assert_eq!(s.cookie_name, "sid");
    assert_eq!(s.cookie_lifespan, Duration::from_secs(60));
    assert_eq!(
        (s.cookie_samesite, s.cookie_secure),
        (SameSite::Strict, false)
    );
    assert_eq!(
        (s.cookie_path.as_str(), s.cookie_domain.as_deref()),
        ("/app", Some("example.test"))
    );
    assert_eq!(s.absolute_lifetime, Some(Duration::from_secs(3600)));
    assert_eq!((s.max_value_bytes, s.max_session_bytes), (10, 100));
    assert_eq!(s.touch_interval, Duration::from_millis(500));
    assert_eq!(s.persist_mode, PersistMode::AfterResponse);
    assert_eq!(
        (s.lock_wait, s.lock_ttl),
        (Duration::from_secs(2), Duration::from_secs(3))
    );
    let p = config.pool().expect("pool main");
    assert_eq!((p.host.as_str(), p.port, p.db_index), ("10.0.0.1", 7000, 2));
    assert_eq!(
        (p.password.as_deref(), p.prefix.as_str()),
        (Some("s3cret"), "app:")
    );
    assert_eq!(
        (p.timeout, p.pool_size, p.pool_prefill),
        (Duration::from_millis(250), 3, true)
    );
}

#[test]
fn a_bad_value_is_an_error_naming_section_key_and_value() {
    for (ini, key, value) in [
        (
            "[session]\ncookie_lifespan = soon",
            "cookie_lifespan",
            "soon",
        ),
        ("[session]\ncookie_lifespan = -5", "cookie_lifespan", "-5"),
        (
            "[session]\ncookie_samesite = sometimes",
            "cookie_samesite",
            "sometimes",
        ),
        ("[session]\ncookie_secure = maybe", "cookie_secure", "maybe"),
        ("[session]\ncookie_name = a b", "cookie_name", "a b"),
        ("[session]\nmax_value_bytes = 0", "max_value_bytes", "0"),
        ("[redis]\ndefault[port] = 70000", "default[port]", "70000"),
        (
            "[redis]\ndefault[pool_size] = none",
            "default[pool_size]",
            "none",
        ),
        ("[redis]\ndefault[timeout] = 0", "default[timeout]", "0"),
        (
            "[redis]\ndefault[pool_prefill] = perhaps",
            "default[pool_prefill]",
            "perhaps",
        ),
    ] {
        let message = error_of(ini);
        assert!(
            message.contains(key) && message.contains(value),
            "{ini:?} gave {message:?}"
        );
        assert!(message.starts_with('['), "names the section: {message}");
    }
}

#[test]
fn a_pool_that_does_not_exist_is_an_error_not_a_fallback_to_default() {
    let err = Config::from_ini_str(
        "[session]\nredis_connection_pool = missing\n[redis]\ndefault[host] = 127.0.0.1\n",
    )
    .expect_err("unknown pool");
    assert!(matches!(err, ConfigError::UnknownPool { ref pool, .. } if pool == "missing"));
    assert!(
        err.to_string().contains("default"),
        "lists the configured pools: {err}"
    );
}

#[test]
fn unknown_keys_are_reported_as_typos() {
    let message = error_of("[session]\ncookie_lifetime = 60");
    assert!(
        message.contains("cookie_lifetime") && message.contains("cookie_lifespan"),
        "{message}"
    );
    let message = error_of("[redis]\ndefault[hots] = x");
    assert!(message.contains("default[hots]"), "{message}");
    let message = error_of("[redis]\nhost = x");
    assert!(message.contains("NAME[key]"), "{message}");
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let err = Config::from_ini_file("/nonexistent/config.ini").expect_err("missing file");
    assert!(err.to_string().contains("/nonexistent/config.ini"), "{err}");
}

#[test]
fn the_builder_derives_the_touch_interval_and_checks_like_a_file() {
    let config = Config::builder()
        .cookie_lifespan(Duration::from_secs(3))
        .build()
        .expect("valid");
    assert_eq!(config.session.touch_interval, Duration::from_millis(300));
    let err = Config::builder()
        .redis_connection_pool("nowhere")
        .build()
        .expect_err("unknown pool");
    assert!(matches!(err, ConfigError::UnknownPool { .. }));
    let zero_pool = redis_sessions::RedisPoolConfig {
        pool_size: 0,
        ..Default::default()
    };
    let err = Config::builder()
        .pool("default", zero_pool)
        .build()
        .expect_err("empty pool");
    assert!(err.to_string().contains("default[pool_size]"), "{err}");
}
