//! The real counter example, configured only through `config.ini`, storing its sessions in a
//! Redis reached over mutual TLS as a limited ACL user: what a managed Redis asks for, end to
//! end over HTTP.

mod common;

use common::{Counter, keys, session_keys};
use redis_test_support::RedisServer;

#[tokio::test]
async fn the_counter_works_over_mutual_tls_as_a_limited_acl_user() {
    let redis = RedisServer::start_tls(true);
    redis.add_acl_user("sessions", "pw", common::acl::ACL_RULES);
    let certs = redis.tls_certificates();
    let pool = format!(
        "default[username] = sessions\ndefault[password] = pw\ndefault[tls] = true\n\
         default[tls_ca] = {}\ndefault[tls_cert] = {}\ndefault[tls_key] = {}\n\
         default[pool_prefill] = true\ndefault[timeout] = 2",
        certs.ca.display(),
        certs.client_cert.display(),
        certs.client_key.display()
    );
    let app = Counter::start(redis.tls_port(), "", &pool);
    let cookie = app.new_session().await;
    for expected in ["2", "3"] {
        let reply = app.get("/incr", Some(&cookie)).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, expected),
            "{reply:?}"
        );
    }
    let reply = app.get("/incr-locked", Some(&cookie)).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "4"), "{reply:?}");
    let reply = app.get("/logout", Some(&cookie)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(session_keys(&redis).is_empty(), "the session hash is gone");
    assert_eq!(
        keys(&redis).len(),
        1,
        "only the logged-out session's tombstone is left"
    );
    // Nothing was refused to the limited user on the way.
    assert_eq!(redis.cmd(&["ACL", "LOG"]), redis::Value::Array(vec![]));
}
