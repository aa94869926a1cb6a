//! Logging in to Redis as an ACL user and over TLS, against real servers: the rights the
//! library needs are exactly the documented ones, and every way of getting the login or TLS
//! wrong (wrong password, unknown user, a missing right, an untrusted or unauthenticated
//! TLS peer, plain text to a TLS port) is a clear `StoreError` within the pool's timeout,
//! never a hang or a panic.

mod common;

use std::time::{Duration, Instant};

use redis_sessions::id::SessionId;
use redis_sessions::store::{Meta, Record, SessionStore};
use redis_sessions::{RedisPoolConfig, RedisStore, StoreError};
use redis_test_support::{RedisServer, TestCertificates};

const TIMEOUT: Duration = Duration::from_millis(500);
/// The rights of the README's ACL example: what the library needs on one server.
const RIGHTS: &[&str] = common::acl::ACL_RULES;

fn acl_pool(server: &RedisServer, user: &str, password: &str) -> RedisPoolConfig {
    RedisPoolConfig {
        port: server.port(),
        username: Some(user.to_owned()),
        password: Some(password.to_owned()),
        timeout: TIMEOUT,
        pool_size: 1,
        ..RedisPoolConfig::default()
    }
}

fn tls_pool(server: &RedisServer, ca: &TestCertificates, client: bool) -> RedisPoolConfig {
    let own = server.tls_certificates();
    RedisPoolConfig {
        port: server.tls_port(),
        tls: true,
        tls_ca: Some(ca.ca.clone()),
        tls_cert: client.then(|| own.client_cert.clone()),
        tls_key: client.then(|| own.client_key.clone()),
        timeout: TIMEOUT,
        pool_size: 1,
        ..RedisPoolConfig::default()
    }
}

/// One load through `pool`: its error, and that it came within the timeout (plus slack).
async fn load_error(pool: &RedisPoolConfig) -> StoreError {
    let store = RedisStore::new(pool).expect("store");
    let started = Instant::now();
    let id = SessionId::generate().storage_id();
    let result = store.load(&id).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < pool.timeout + Duration::from_millis(500),
        "took {elapsed:?}"
    );
    result.expect_err("must fail")
}

#[tokio::test]
async fn an_acl_user_with_the_documented_rights_can_do_everything() {
    let server = RedisServer::start();
    server.add_acl_user("app", "pw", RIGHTS);
    let store = RedisStore::new(&acl_pool(&server, "app", "pw")).expect("store");
    store.prefill().await.expect("PING as the ACL user");
    assert_eq!(store.eviction_risk().await.expect("INFO"), None);
    let id = SessionId::generate().storage_id();
    let meta = Meta {
        created_ms: 1,
        touched_ms: 1,
    };
    let record = Record {
        meta,
        fields: Default::default(),
    };
    store
        .create(&id, &record, Duration::from_secs(60))
        .await
        .expect("create");
    assert!(store.load(&id).await.expect("load").record().is_some());
    // The writes really were made as `app` (whose keys are limited to dm:*).
    let whoami = server.cmd(&["ACL", "LOG"]);
    assert_eq!(whoami, redis::Value::Array(vec![]), "no ACL denials");
}

#[tokio::test]
async fn a_wrong_password_or_unknown_user_is_a_clear_error() {
    let server = RedisServer::start();
    server.add_acl_user("app", "pw", RIGHTS);
    for (user, password) in [("app", "wrong"), ("nobody", "pw")] {
        let error = load_error(&acl_pool(&server, user, password)).await;
        let text = error.to_string();
        assert!(
            text.contains("authentication failed"),
            "{user}/{password}: {text}"
        );
    }
}

#[tokio::test]
async fn a_missing_right_is_a_clear_error() {
    let server = RedisServer::start();
    let without_hgetall: Vec<&str> = RIGHTS
        .iter()
        .copied()
        .filter(|r| *r != "+hgetall")
        .collect();
    server.add_acl_user("app", "pw", &without_hgetall);
    let error = load_error(&acl_pool(&server, "app", "pw")).await;
    assert!(matches!(error, StoreError::Backend(_)), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("no permissions to run the 'hgetall'"),
        "{error}"
    );

    // A key outside ~dm:* is refused too (another prefix needs another key pattern).
    server.add_acl_user("app", "pw", RIGHTS);
    let mut pool = acl_pool(&server, "app", "pw");
    pool.prefix = "other:".to_owned();
    let error = load_error(&pool).await;
    assert!(
        error.to_string().contains("no permissions to access"),
        "{error}"
    );
}

#[tokio::test]
async fn an_untrusted_server_certificate_is_a_clear_error() {
    let server = RedisServer::start_tls(false);
    let other = tempfile::tempdir().expect("tempdir");
    let foreign = TestCertificates::generate(other.path());
    let mut pool = tls_pool(&server, &foreign, false);
    // The handshake's failure, not a timeout, even on a loaded machine.
    pool.timeout = std::time::Duration::from_secs(5);
    let error = load_error(&pool).await;
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains("certificate") || text.contains("UnknownIssuer"),
        "{text}"
    );
}

#[tokio::test]
async fn mutual_tls_without_a_client_certificate_is_a_clear_error() {
    let server = RedisServer::start_tls(true);
    let error = load_error(&tls_pool(&server, server.tls_certificates(), false)).await;
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
}

#[tokio::test]
async fn plain_text_to_a_tls_port_and_tls_to_a_plain_port_fail_quickly() {
    let server = RedisServer::start_tls(false);
    let plain_to_tls = RedisPoolConfig {
        port: server.tls_port(),
        timeout: TIMEOUT,
        pool_size: 1,
        ..RedisPoolConfig::default()
    };
    load_error(&plain_to_tls).await;
    let mut tls_to_plain = tls_pool(&server, server.tls_certificates(), false);
    tls_to_plain.port = server.port();
    load_error(&tls_to_plain).await;
}

#[test]
fn a_tls_file_that_is_not_pem_fails_when_the_store_is_built() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junk = dir.path().join("ca.pem");
    std::fs::write(&junk, "not a certificate").expect("write");
    let key = dir.path().join("key.pem");
    std::fs::write(&key, "not a key").expect("write");
    let pool = RedisPoolConfig {
        tls: true,
        tls_cert: Some(junk.clone()),
        tls_key: Some(key),
        ..RedisPoolConfig::default()
    };
    let error = RedisStore::new(&pool).expect_err("junk key");
    assert!(error.to_string().contains("key"), "{error}");
}

#[tokio::test]
async fn a_db_index_other_than_0_needs_the_select_right() {
    let server = RedisServer::start();
    server.add_acl_user("app", "pw", RIGHTS);
    let mut pool = acl_pool(&server, "app", "pw");
    pool.db_index = 1;
    let error = load_error(&pool).await;
    assert!(error.to_string().contains("'select'"), "{error}");

    let mut with_select = RIGHTS.to_vec();
    with_select.push("+select");
    server.add_acl_user("app", "pw", &with_select);
    let store = RedisStore::new(&pool).expect("store");
    let id = SessionId::generate().storage_id();
    assert!(store.load(&id).await.expect("load").record().is_none());
}
