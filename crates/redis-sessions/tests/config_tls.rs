//! The pool keys for managed Redis: `username` (ACL user), `tls`, `tls_ca`, `tls_cert` and
//! `tls_key`. Each wrong combination fails the start-up with an error naming the key and the
//! path, from `config.ini` and from code alike.

use std::path::{Path, PathBuf};

use redis_sessions::{Config, ConfigError, RedisPoolConfig};

fn ini(redis_lines: &str) -> Result<Config, ConfigError> {
    Config::from_ini_str(&format!("[redis]\n{redis_lines}\n"))
}

/// The message of a refused configuration, checked to name `key` and `value`.
fn refused(result: Result<Config, ConfigError>, key: &str, value: &str) -> String {
    let message = result.expect_err("must be refused").to_string();
    let expected = format!("[redis] {key} = {value:?} is invalid: ");
    assert!(
        message.contains(&expected),
        "{message:?} should say {expected:?}"
    );
    message
}

/// Three readable (not necessarily valid) PEM files in a temporary directory.
fn files() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = ["ca.pem", "client.pem", "client.key"].map(|name| {
        let path = dir.path().join(name);
        std::fs::write(&path, "-----BEGIN CERTIFICATE-----\n").expect("write");
        path
    });
    let [ca, cert, key] = paths;
    (dir, ca, cert, key)
}

fn s(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn the_defaults_are_plain_text_as_the_default_user() {
    let pool = RedisPoolConfig::default();
    assert!(!pool.tls);
    assert_eq!(
        (pool.username, pool.tls_ca, pool.tls_cert, pool.tls_key),
        (None, None, None, None)
    );
}

#[test]
fn all_keys_are_read_from_the_file() {
    let (_dir, ca, cert, key) = files();
    let config = ini(&format!(
        "default[host] = redis.example.com\ndefault[username] = app\n\
         default[password] = pw\ndefault[tls] = true\ndefault[tls_ca] = {}\n\
         default[tls_cert] = {}\ndefault[tls_key] = {}\n\
         cluster[cluster_nodes] = 10.0.0.1:6379\ncluster[tls] = yes\n\
         cluster[username] = app\ncluster[password] = pw",
        s(&ca),
        s(&cert),
        s(&key)
    ))
    .expect("valid");
    let pool = &config.pools["default"];
    assert_eq!(pool.username.as_deref(), Some("app"));
    assert!(pool.tls);
    assert_eq!(pool.tls_ca.as_deref(), Some(ca.as_path()));
    assert_eq!(pool.tls_cert.as_deref(), Some(cert.as_path()));
    assert_eq!(pool.tls_key.as_deref(), Some(key.as_path()));
    let cluster = &config.pools["cluster"];
    assert!(cluster.tls && cluster.tls_ca.is_none());
    // `null` and empty mean none, as for the password.
    let config =
        ini("default[username] = null\ndefault[tls] = false\ndefault[tls_ca] =").expect("valid");
    assert_eq!(config.pools["default"].username, None);
    assert_eq!(config.pools["default"].tls_ca, None);
}

#[test]
fn tls_must_be_a_boolean() {
    let message = refused(ini("default[tls] = maybe"), "default[tls]", "maybe");
    assert!(message.contains("true or false"), "{message}");
}

#[test]
fn tls_files_need_tls_true() {
    let (_dir, ca, _, _) = files();
    let message = refused(
        ini(&format!("default[tls_ca] = {}", s(&ca))),
        "default[tls_ca]",
        &s(&ca),
    );
    assert!(message.contains("tls = true"), "{message}");
}

#[test]
fn a_missing_tls_file_names_the_key_and_path() {
    for key in ["tls_ca", "tls_cert", "tls_key"] {
        let (_dir, ca, cert, pem_key) = files();
        let missing = ca.with_file_name("missing.pem");
        let path = |k: &str, own: &Path| if k == key { s(&missing) } else { s(own) };
        let result = ini(&format!(
            "default[tls] = true\ndefault[tls_ca] = {}\ndefault[tls_cert] = {}\n\
             default[tls_key] = {}",
            path("tls_ca", &ca),
            path("tls_cert", &cert),
            path("tls_key", &pem_key)
        ));
        let message = refused(result, &format!("default[{key}]"), &s(&missing));
        assert!(message.contains("cannot be read"), "{message}");
    }
    let (dir, ..) = files();
    let message = refused(
        ini(&format!(
            "default[tls] = on\ndefault[tls_ca] = {}",
            s(dir.path())
        )),
        "default[tls_ca]",
        &s(dir.path()),
    );
    assert!(message.contains("not a directory"), "{message}");
}

#[test]
fn the_client_certificate_and_key_go_together() {
    let (_dir, _, cert, key) = files();
    let message = refused(
        ini(&format!(
            "default[tls] = true\ndefault[tls_cert] = {}",
            s(&cert)
        )),
        "default[tls_cert]",
        &s(&cert),
    );
    assert!(message.contains("needs tls_key"), "{message}");
    let message = refused(
        ini(&format!(
            "default[tls] = true\ndefault[tls_key] = {}",
            s(&key)
        )),
        "default[tls_key]",
        &s(&key),
    );
    assert!(message.contains("needs tls_cert"), "{message}");
}

#[test]
fn a_username_needs_a_password_and_no_spaces() {
    let message = refused(ini("default[username] = app"), "default[username]", "app");
    assert!(message.contains("needs a password"), "{message}");
    refused(
        ini("default[username] = my app\ndefault[password] = pw"),
        "default[username]",
        "my app",
    );
}

#[test]
fn code_gets_the_same_checks_as_the_file() {
    let (_dir, ca, cert, _) = files();
    let build = |pool: RedisPoolConfig| Config::builder().pool("default", pool).build();
    let no_tls = RedisPoolConfig {
        tls_ca: Some(ca.clone()),
        ..RedisPoolConfig::default()
    };
    refused(build(no_tls), "default[tls_ca]", &s(&ca));
    let lone_cert = RedisPoolConfig {
        tls: true,
        tls_cert: Some(cert.clone()),
        ..RedisPoolConfig::default()
    };
    refused(build(lone_cert), "default[tls_cert]", &s(&cert));
    let user_only = RedisPoolConfig {
        username: Some("app".into()),
        ..RedisPoolConfig::default()
    };
    refused(build(user_only), "default[username]", "app");
    let empty_user = RedisPoolConfig {
        username: Some(String::new()),
        password: Some("pw".into()),
        ..RedisPoolConfig::default()
    };
    refused(build(empty_user), "default[username]", "");
}

#[test]
fn unknown_pool_keys_list_the_new_ones() {
    let message = ini("default[tls_ca_file] = x")
        .expect_err("typo")
        .to_string();
    for key in ["username", "tls", "tls_ca", "tls_cert", "tls_key"] {
        assert!(message.contains(key), "{message}");
    }
}
