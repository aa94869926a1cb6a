//! Store constructors for Redis behind TLS, mutual TLS and a limited ACL user, so that the
//! whole conformance suite also runs the way managed Redis services are reached, on a single
//! server and on a Cluster.

#[path = "../common/acl.rs"]
mod acl;
pub(crate) use acl::ACL_RULES;

use std::time::Duration;

use redis_sessions::{RedisPoolConfig, RedisStore};
use redis_test_support::{RedisCluster, RedisServer};

/// The ACL user the limited stores log in as.
pub(crate) const ACL_USER: &str = "sessions";
/// Its password.
pub(crate) const ACL_PASSWORD: &str = "s3cret-pw";

/// A store over TLS to a server that checks no client certificate; trusts the server's CA.
pub(crate) fn tls_store() -> (RedisStore, RedisServer) {
    let server = RedisServer::start_tls(false);
    let config = RedisPoolConfig {
        port: server.tls_port(),
        pool_size: 2,
        tls: true,
        tls_ca: Some(server.tls_certificates().ca.clone()),
        ..RedisPoolConfig::default()
    };
    (RedisStore::new(&config).expect("store"), server)
}

/// A store over mutual TLS: the server requires the client certificate.
pub(crate) fn mtls_store() -> (RedisStore, RedisServer) {
    let server = RedisServer::start_tls(true);
    let certs = server.tls_certificates();
    let config = RedisPoolConfig {
        port: server.tls_port(),
        pool_size: 2,
        tls: true,
        tls_ca: Some(certs.ca.clone()),
        tls_cert: Some(certs.client_cert.clone()),
        tls_key: Some(certs.client_key.clone()),
        ..RedisPoolConfig::default()
    };
    (RedisStore::new(&config).expect("store"), server)
}

/// A store logged in as [`ACL_USER`], which has only [`ACL_RULES`].
pub(crate) fn acl_store() -> (RedisStore, RedisServer) {
    let server = RedisServer::start();
    server.add_acl_user(ACL_USER, ACL_PASSWORD, ACL_RULES);
    let config = RedisPoolConfig {
        port: server.port(),
        pool_size: 2,
        username: Some(ACL_USER.to_owned()),
        password: Some(ACL_PASSWORD.to_owned()),
        ..RedisPoolConfig::default()
    };
    (RedisStore::new(&config).expect("store"), server)
}

/// A Cluster store logged in as [`ACL_USER`] on every node, with [`ACL_RULES`] plus
/// `CLUSTER SLOTS`, which the Cluster client needs to find the nodes.
pub(crate) fn acl_cluster_store() -> (RedisStore, RedisCluster) {
    let cluster = RedisCluster::start(3);
    let mut rules = ACL_RULES.to_vec();
    rules.push("+cluster|slots");
    for node in cluster.servers() {
        node.add_acl_user(ACL_USER, ACL_PASSWORD, &rules);
    }
    let config = RedisPoolConfig {
        cluster_nodes: cluster.nodes(),
        timeout: Duration::from_secs(2),
        username: Some(ACL_USER.to_owned()),
        password: Some(ACL_PASSWORD.to_owned()),
        ..RedisPoolConfig::default()
    };
    (RedisStore::new(&config).expect("store"), cluster)
}

/// A Cluster store over TLS (no client certificate), trusting the nodes' CA.
pub(crate) fn tls_cluster_store() -> (RedisStore, RedisCluster) {
    let cluster = RedisCluster::start_tls(3, false);
    let config = RedisPoolConfig {
        cluster_nodes: cluster.nodes(),
        timeout: Duration::from_secs(2),
        tls: true,
        tls_ca: Some(cluster.tls_certificates().ca.clone()),
        ..RedisPoolConfig::default()
    };
    (RedisStore::new(&config).expect("store"), cluster)
}

/// A Cluster store over mutual TLS, logged in as [`ACL_USER`] on every node: everything a
/// managed Cluster may ask for at once.
pub(crate) fn mtls_acl_cluster_store() -> (RedisStore, RedisCluster) {
    let cluster = RedisCluster::start_tls(3, true);
    let mut rules = ACL_RULES.to_vec();
    rules.push("+cluster|slots");
    for node in cluster.servers() {
        node.add_acl_user(ACL_USER, ACL_PASSWORD, &rules);
    }
    let certs = cluster.tls_certificates();
    let config = RedisPoolConfig {
        cluster_nodes: cluster.nodes(),
        timeout: Duration::from_secs(2),
        username: Some(ACL_USER.to_owned()),
        password: Some(ACL_PASSWORD.to_owned()),
        tls: true,
        tls_ca: Some(certs.ca.clone()),
        tls_cert: Some(certs.client_cert.clone()),
        tls_key: Some(certs.client_key.clone()),
        ..RedisPoolConfig::default()
    };
    (RedisStore::new(&config).expect("store"), cluster)
}
