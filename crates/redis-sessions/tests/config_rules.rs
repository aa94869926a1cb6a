//! Configuration rules that span keys or guard what the library sends: cookie names, paths and
//! domains, cookie prefixes, the touch interval, duration limits, pools and the lock. Each error
//! names the section, the key and the value, and the INI and builder paths agree.

use std::time::Duration;

use redis_sessions::config::ConfigBuilder;
use redis_sessions::{Config, ConfigError, RedisPoolConfig, SameSite, SessionConfig};

const TEN_YEARS: &str = "315360000 (10 years)";
const ONE_DAY: &str = "86400 (1 day)";
/// `Duration::MAX` in seconds, as error messages write it.
const HUGE: &str = "18446744073709551615.999999999";

/// A change made by hand to the session settings.
type Change = fn(&mut SessionConfig);

fn b() -> ConfigBuilder {
    Config::builder()
}

fn secs(secs: f64) -> Duration {
    Duration::from_secs_f64(secs)
}

/// `[session]` lines (and maybe more sections after them), loaded as a file.
fn ini(text: &str) -> Result<Config, ConfigError> {
    Config::from_ini_str(&format!("[session]\n{text}\n"))
}

/// The default configuration with `change` made to its session settings by hand, validated as
/// the session manager does.
fn by_hand(change: impl FnOnce(&mut SessionConfig)) -> Result<Config, ConfigError> {
    let mut config = Config::default();
    change(&mut config.session);
    config.validate().map(|()| config)
}

fn pool(change: impl FnOnce(&mut RedisPoolConfig)) -> RedisPoolConfig {
    let mut pool = RedisPoolConfig::default();
    change(&mut pool);
    pool
}

/// A builder whose `default` pool has `change` made to it.
fn only(change: impl FnOnce(&mut RedisPoolConfig)) -> ConfigBuilder {
    b().pool("default", pool(change))
}

fn says(message: &str, part: &str) {
    assert!(message.contains(part), "{message:?} should say {part:?}");
}

/// The message of a refused configuration, checked to name `key` and the offending `value`.
fn refused(result: Result<Config, ConfigError>, key: &str, value: &str) -> String {
    let message = result.expect_err("must be refused").to_string();
    says(&message, &format!("] {key} = {value:?} is invalid: "));
    message
}

/// Refused as a file (`[session]` lines `text`) and as `code`, with the same message, which
/// names the key and value of the first `key = value` line of `text`.
fn both(text: &str, code: ConfigBuilder) -> String {
    let line = text.lines().find(|l| l.contains(" = "));
    let (key, value) = line.and_then(|l| l.split_once(" = ")).expect("key = value");
    let message = refused(ini(text), key, value);
    assert_eq!(refused(code.build(), key, value), message, "{text:?}");
    message
}

#[test]
fn the_default_config_is_valid_and_is_what_an_empty_file_gives() {
    let default = Config::default();
    default.validate().expect("Config::default() is valid");
    let empty = [Config::from_ini_str(""), Config::builder().build()];
    for other in empty.map(|c| c.expect("valid")) {
        assert_eq!(other.pools, default.pools);
        let (got, want) = (other.session, &default.session);
        assert_eq!(format!("{got:?}"), format!("{want:?}"));
    }
    let main = Config::builder().redis_connection_pool("main");
    let main = main.pool("main", RedisPoolConfig::default()).build();
    let names: Vec<_> = main.expect("valid").pools.into_keys().collect();
    assert_eq!(names, ["main"], "no stray default pool");
}

#[test]
fn a_cookie_name_must_be_a_token_however_it_is_configured() {
    for bad in "bad name|a=b|sess\u{e9}|(x)|a,b|a/b|a:b|a@b".split('|') {
        let m = both(&format!("cookie_name = {bad}"), b().cookie_name(bad));
        says(&m, "letters, digits and !#$%&'*+-.^_`|~");
    }
    for bad in ["", "sid;", "a\nb", "a\0b", "\"sid\"", "a\u{7f}"] {
        refused(b().cookie_name(bad).build(), "cookie_name", bad);
        let hand = by_hand(|s| s.cookie_name = bad.into());
        refused(hand, "cookie_name", bad);
    }
    for good in ["sid", "SID-2", "a.b_c~d!#$%&'*+^`|"] {
        let config = b().cookie_name(good).build().expect(good);
        assert_eq!(config.session.cookie_name, good);
        ini(&format!("cookie_name = {good}")).expect(good);
    }
}

#[test]
fn an_invalid_cookie_path_is_refused_not_sent_as_an_empty_cookie() {
    for bad in "app|/a b|/a,b|/caf\u{e9}|./app".split('|') {
        let m = both(&format!("cookie_path = {bad}"), b().cookie_path(bad));
        says(&m, "must start with /");
    }
    for bad in ["", "/a;b", "/a\nb", "/a\rb", "/a\tb", "/a\u{7f}", "/a\0"] {
        refused(b().cookie_path(bad).build(), "cookie_path", bad);
    }
    for good in ["/", "/app", "/a-b/c_d.e~f%20/", "/x?y=z"] {
        let config = b().cookie_path(good).build().expect(good);
        assert_eq!(config.session.cookie_path, good);
        ini(&format!("cookie_path = {good}")).expect(good);
    }
}

#[test]
fn an_invalid_cookie_domain_is_refused_not_sent_as_an_empty_cookie() {
    let bad = "exa mple.com|example.com/app|example.com:8080|..example.com|example..com|\
               example.com.|.|ex_ample.com|b\u{fc}cher.de|[::1]";
    for bad in bad.split('|') {
        let m = both(&format!("cookie_domain = {bad}"), b().cookie_domain(bad));
        says(&m, "host name such as example.com");
    }
    for bad in ["", "a.com;", "a\nb.com", "a.com\0", "a\u{7f}.com"] {
        refused(b().cookie_domain(bad).build(), "cookie_domain", bad);
    }
    for good in "example.com|.example.com|localhost|127.0.0.1|a-b.Example.COM".split('|') {
        let config = b().cookie_domain(good).build().expect(good);
        assert_eq!(config.session.cookie_domain.as_deref(), Some(good));
        ini(&format!("cookie_domain = {good}")).expect(good);
    }
    for none in ["", "null"] {
        let config = ini(&format!("cookie_domain = {none}")).expect("valid");
        assert_eq!(config.session.cookie_domain, None);
    }
}

#[test]
fn a_secure_prefixed_cookie_needs_secure() {
    for name in ["__Secure-sid", "__secure-sid", "__SECURE-sid"] {
        let text = format!("cookie_name = {name}\ncookie_secure = false");
        let m = both(&text, b().cookie_name(name).cookie_secure(false));
        says(&m, "__Secure-... (in any letter case) is dropped");
        says(&m, "here cookie_secure = false");
        let text = format!("cookie_name = {name}\ncookie_path = /a\ncookie_domain = a.test");
        ini(&text).expect("Secure is all that __Secure- needs");
    }
    for name in ["_Secure-sid", "x__Secure-sid", "__Secure"] {
        let text = format!("cookie_name = {name}\ncookie_secure = false");
        ini(&text).expect("not the prefix");
    }
}

#[test]
fn a_host_prefixed_cookie_needs_secure_root_path_and_no_domain() {
    let faults = [
        ("cookie_secure = false", "cookie_secure = false"),
        ("cookie_path = /app", "cookie_path = \"/app\""),
        ("cookie_domain = a.test", "cookie_domain = \"a.test\""),
    ];
    for name in ["__Host-sid", "__host-sid"] {
        let code = [
            b().cookie_secure(false),
            b().cookie_path("/app"),
            b().cookie_domain("a.test"),
        ];
        for ((line, named), code) in faults.into_iter().zip(code) {
            let text = format!("cookie_name = {name}\n{line}");
            let m = both(&text, code.cookie_name(name));
            says(&m, "__Host-... (in any letter case) is dropped");
            says(&m, &format!("here {named}"));
        }
        let lines: Vec<_> = faults.iter().map(|(line, _)| *line).collect();
        let text = format!("cookie_name = {name}\n{}", lines.join("\n"));
        let m = refused(ini(&text), "cookie_name", name);
        let named: Vec<_> = faults.iter().map(|(_, named)| *named).collect();
        says(&m, &format!("here {}", named.join(", ")));

        let text = format!("cookie_name = {name}\ncookie_secure = true\ncookie_path = /");
        ini(&text).expect("Secure, Path=/ and no Domain");
        b().cookie_name(name).build().expect("the defaults fit");
    }
}

#[test]
fn touch_interval_must_be_shorter_than_the_lifespan() {
    for touch in [60.0, 61.0, 86400.0] {
        let text = format!("touch_interval = {touch}\ncookie_lifespan = 60");
        let code = b().cookie_lifespan(secs(60.0)).touch_interval(secs(touch));
        let m = both(&text, code);
        says(&m, "shorter than cookie_lifespan (60 s), or sessions");
    }
    // By hand, a shorter lifespan keeps the default interval of 60 s.
    let hand = by_hand(|s| s.cookie_lifespan = secs(30.0));
    refused(hand, "touch_interval", "60");
    ini("cookie_lifespan = 60\ntouch_interval = 59.999").expect("shorter");
    // The derived default is always shorter, down to the shortest lifespan.
    let config = ini("cookie_lifespan = 1").expect("valid");
    assert_eq!(config.session.touch_interval, secs(0.1));
}

#[test]
fn every_pool_needs_a_size_and_a_timeout() {
    let cache = |change: fn(&mut _)| only(|_| ()).pool("cache", pool(change));
    let cases: [(&str, ConfigBuilder); 6] = [
        ("default[pool_size] = 0", only(|p| p.pool_size = 0)),
        ("cache[pool_size] = 0", cache(|p| p.pool_size = 0)),
        ("cache[pool_size] = 1025", cache(|p| p.pool_size = 1025)),
        ("default[timeout] = 0", only(|p| p.timeout = Duration::ZERO)),
        ("cache[timeout] = 0", cache(|p| p.timeout = Duration::ZERO)),
        ("cache[timeout] = 0.0001", cache(|p| p.timeout = secs(1e-4))),
    ];
    for (line, code) in cases {
        both(&format!("[redis]\n{line}\ndefault[port] = 6379"), code);
    }
}

#[test]
fn durations_that_would_overflow_ttl_arithmetic_are_refused() {
    for (line, max) in [
        ("cookie_lifespan = 315360001", TEN_YEARS),
        ("cookie_lifespan = 1e300", TEN_YEARS),
        ("absolute_lifetime = 1e19", TEN_YEARS),
        ("touch_interval = 315360000.5", TEN_YEARS),
        ("lock_wait = 86400.5", ONE_DAY),
        ("lock_ttl = 86401", ONE_DAY),
        ("lock_ttl = inf", ONE_DAY),
        ("[redis]\ndefault[timeout] = 1e10", ONE_DAY),
    ] {
        let key_value = line.trim_start_matches("[redis]\n");
        let (key, value) = key_value.split_once(" = ").expect("=");
        says(&refused(ini(line), key, value), max);
    }
    const MAX: Duration = Duration::MAX;
    let cases: [(&str, &str, Change); 5] = [
        ("cookie_lifespan", TEN_YEARS, |s| s.cookie_lifespan = MAX),
        ("absolute_lifetime", TEN_YEARS, |s| {
            s.absolute_lifetime = Some(MAX)
        }),
        ("touch_interval", TEN_YEARS, |s| s.touch_interval = MAX),
        ("lock_wait", ONE_DAY, |s| s.lock_wait = MAX),
        ("lock_ttl", ONE_DAY, |s| s.lock_ttl = MAX),
    ];
    for (key, max, change) in cases {
        says(&refused(by_hand(change), key, HUGE), max);
    }
    let ten = secs(10.0);
    for (code, key) in [
        (only(|p| p.timeout = MAX), "default[timeout]"),
        (b().cookie_lifespan(MAX), "cookie_lifespan"),
        (b().absolute_lifetime(MAX), "absolute_lifetime"),
        (b().touch_interval(MAX), "touch_interval"),
        (b().lock(MAX, ten), "lock_wait"),
        (b().lock(ten, MAX), "lock_ttl"),
    ] {
        refused(code.build(), key, HUGE);
    }
    // The maxima themselves are fine.
    let text = "cookie_lifespan = 315360000\nabsolute_lifetime = 315360000\n\
                touch_interval = 315359999\nlock_wait = 86400\nlock_ttl = 86400";
    let config = ini(text).expect("at the maxima");
    assert_eq!(config.session.cookie_lifespan, secs(315_360_000.0));
    // And so are the minima.
    let text = "cookie_lifespan = 1\nabsolute_lifetime = 0.001\ntouch_interval = 0.001\n\
                lock_wait = 0.001\nlock_ttl = 1\n[redis]\ndefault[timeout] = 0.001";
    let config = ini(text).expect("at the minima");
    assert_eq!(config.pool().expect("pool").timeout, secs(0.001));
}

#[test]
fn lock_ttl_must_outlive_a_redis_command() {
    let slow = |timeout| pool(|p| p.timeout = secs(timeout));
    let lock = |ttl| b().lock(secs(5.0), secs(ttl));
    for (ttl, timeout) in [(1.0, 1.0), (2.0, 2.5), (10.0, 10.0)] {
        let text = format!("lock_ttl = {ttl}\n[redis]\ndefault[timeout] = {timeout}");
        let m = both(&text, lock(ttl).pool("default", slow(timeout)));
        says(&m, "must be longer than the timeout of the session pool");
    }
    let text = "lock_ttl = 5\nredis_connection_pool = main\n[redis]\nmain[timeout] = 30";
    let code = lock(5.0).redis_connection_pool("main");
    let m = both(text, code.pool("main", slow(30.0)));
    says(
        &m,
        "session pool (main[timeout] = 30 s): a lock that can expire",
    );
    for short in [0.5, 0.999] {
        let m = both(&format!("lock_ttl = {short}"), lock(short));
        says(&m, "from 1 to 86400 (1 day)");
    }
    ini("lock_ttl = 1\n[redis]\ndefault[timeout] = 0.5").expect("1 s > 0.5 s");
    // Only the session pool's timeout counts.
    let text = "lock_ttl = 10\n[redis]\ndefault[timeout] = 1\nslow[timeout] = 30";
    ini(text).expect("valid");
}

#[test]
fn the_earlier_cross_key_rules_still_hold() {
    let text = "cookie_samesite = none\ncookie_secure = false";
    let none = b().cookie_samesite(SameSite::None).cookie_secure(false);
    says(&both(text, none), "cookie_secure = true");
    let text = "max_value_bytes = 101\nmax_session_bytes = 100";
    let m = both(text, b().size_limits(101, 100));
    says(&m, "must not exceed max_session_bytes (100)");
    let code = b().redis_connection_pool("x").build();
    for result in [ini("redis_connection_pool = x"), code] {
        let err = result.expect_err("unknown pool");
        let unknown = matches!(err, ConfigError::UnknownPool { ref pool, .. } if pool == "x");
        assert!(unknown, "{err}");
    }
}

#[test]
fn builder_configs_get_the_same_checks_as_ini_files() {
    let nodes = vec!["x".to_owned()];
    let cases = [
        ("cookie_lifespan = 0.5", b().cookie_lifespan(secs(0.5))),
        (
            "absolute_lifetime = 1000000000",
            b().absolute_lifetime(secs(1e9)),
        ),
        ("touch_interval = 0.0005", b().touch_interval(secs(5e-4))),
        ("lock_wait = 86401", b().lock(secs(86401.0), secs(10.0))),
        ("max_value_bytes = 0", b().size_limits(0, 100)),
        ("max_session_bytes = 0", b().size_limits(1, 0)),
        ("[redis]\ndefault[host] = ", only(|p| p.host.clear())),
        ("[redis]\ndefault[port] = 0", only(|p| p.port = 0)),
        ("[redis]\ndefault[db_index] = -1", only(|p| p.db_index = -1)),
        (
            "[redis]\ndefault[cluster_nodes] = x",
            only(|p| p.cluster_nodes = nodes),
        ),
    ];
    for (text, code) in cases {
        both(text, code);
    }
    // A configuration built by hand, as the session manager validates it.
    let no_limit = by_hand(|s| s.absolute_lifetime = Some(Duration::ZERO));
    says(&refused(no_limit, "absolute_lifetime", "0"), "None in code");
    refused(by_hand(|s| s.max_value_bytes = 0), "max_value_bytes", "0");
    let domain = by_hand(|s| s.cookie_domain = Some("a b".into()));
    refused(domain, "cookie_domain", "a b");
}

#[test]
fn loading_never_panics_on_any_input() {
    let keys: Vec<_> = "cookie_name cookie_lifespan redis_connection_pool cookie_samesite \
        cookie_secure cookie_path cookie_domain absolute_lifetime max_value_bytes \
        max_session_bytes touch_interval persist lock_wait lock_ttl [ a[] [b] ] default[host] \
        default[port] default[db_index] default[timeout] default[pool_size] \
        default[cluster_nodes] x[timeout]"
        .split(' ')
        .collect();
    let values: Vec<_> = "|0|-0|-1|0.0001|0.001|1|1e9|1e19|1e309|-1e309|NaN|inf|-inf|1e-320|\
        18446744073709551616|315360000.0000001|86400.0000001|9223372036854775808|true|none|\
        null|/|.|..|:|a:1|a:99999|__Host-x|__Secure-|\u{e9}|\u{0}|\"|'|\\|=|[x]|default"
        .split('|')
        .collect();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut pick = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        usize::try_from(state % n as u64).expect("small")
    };
    for _ in 0..3000 {
        let mut text = String::new();
        for _ in 0..pick(6) {
            text += ["[session]\n", "[redis]\n", "[other]\n", "[\n", ""][pick(5)];
            for _ in 0..pick(5) {
                let (key, value) = (keys[pick(keys.len())], values[pick(values.len())]);
                text += &format!("{key} = {value}\n");
            }
        }
        if let Ok(config) = Config::from_ini_str(&text) {
            config.validate().expect("what loads is valid");
        }
    }
    let durations = [Duration::ZERO, secs(1e-9), secs(1.0), Duration::MAX];
    for a in durations {
        for b in durations {
            let code = Config::builder().cookie_lifespan(a).touch_interval(b);
            let _ = code.absolute_lifetime(a).lock(b, a).build();
        }
    }
}

#[test]
fn min_replicas_ack_is_a_small_count() {
    let config = ini("[redis]\ndefault[min_replicas_ack] = 2").expect("valid");
    assert_eq!(config.pool().expect("pool").min_replicas_ack, 2);
    let message = refused(
        ini("[redis]\ndefault[min_replicas_ack] = 17"),
        "default[min_replicas_ack]",
        "17",
    );
    says(&message, "0 to 16");
    let cluster =
        ini("[redis]\ndefault[min_replicas_ack] = 1\ndefault[cluster_nodes] = 127.0.0.1:7000");
    assert_eq!(
        cluster
            .expect("valid")
            .pool()
            .expect("pool")
            .min_replicas_ack,
        1
    );
}

#[test]
fn a_session_prefix_with_braces_is_refused_naming_the_pool_and_the_hash_tag() {
    for prefix in ["{sess}:", "a{b", "b}:"] {
        let text = format!("[redis]\ndefault[prefix] = {prefix}");
        let message = both(&text, only(|p| p.prefix = prefix.to_owned()));
        says(&message, "[redis] default[prefix]");
        says(&message, "hash tag");
    }
    // The session pool by its name.
    let text = "redis_connection_pool = main\n[redis]\nmain[prefix] = {s}";
    let code = b()
        .redis_connection_pool("main")
        .pool("main", pool(|p| p.prefix = "{s}".into()));
    says(
        &refused(ini(text), "main[prefix]", "{s}"),
        "routed by the storage id",
    );
    says(
        &refused(code.build(), "main[prefix]", "{s}"),
        "routed by the storage id",
    );
    // A pool the sessions do not use is not the session layout's business.
    ini("[redis]\ndefault[port] = 6379\ncache[prefix] = {cache}:").expect("not the session pool");
    // `format = resonance` keeps its own rule, on the format (its keys hold no braces of their
    // own, its lock and tombstone take the whole session key as their tag).
    let message = refused(
        ini("format = resonance\n[redis]\ndefault[prefix] = {app}"),
        "format",
        "resonance",
    );
    says(&message, "prefix holding braces");
    // The rule for a tool that works on another pool in the native layout.
    let cache = pool(|p| p.prefix = "x{".into());
    let err = cache.check_native_layout("cache").expect_err("braces");
    says(
        &err.to_string(),
        "[redis] cache[prefix] = \"x{\" is invalid",
    );
}
