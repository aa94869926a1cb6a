//! The rules of one pool that span several of its keys: the ACL login, the TLS files and
//! Redis Sentinel; and what the native session layout asks of the prefix. Apart from `validate.rs` to keep each file short; `validate.rs` calls them
//! for every pool and turns a broken rule into an error naming `NAME[key]` and its value.

use super::RedisPoolConfig;
use super::validate::cluster_node;

/// A broken pool rule: the pool key (`tls_ca`), the value as it would be written, the reason.
pub(super) type PoolRule = (&'static str, String, String);

/// `username` is an ACL user name, which Redis only accepts together with a password.
pub(super) fn login(p: &RedisPoolConfig) -> Result<(), PoolRule> {
    let Some(user) = &p.username else {
        return Ok(());
    };
    if user.is_empty() || user.chars().any(|c| c.is_whitespace() || c.is_control()) {
        let reason = "must be an ACL user name without spaces or control characters (or null)";
        return Err(("username", user.clone(), reason.into()));
    }
    if p.password.is_none() {
        let reason = "needs a password: Redis logs an ACL user in with AUTH username password";
        return Err(("username", user.clone(), reason.into()));
    }
    Ok(())
}

/// The TLS files: only with `tls = true`, certificate and key together, each readable now (so a
/// wrong path fails the start-up, not the first request).
pub(super) fn tls(p: &RedisPoolConfig) -> Result<(), PoolRule> {
    let files = [
        ("tls_ca", &p.tls_ca),
        ("tls_cert", &p.tls_cert),
        ("tls_key", &p.tls_key),
    ];
    for (sub, path) in files {
        let Some(path) = path else { continue };
        let value = path.display().to_string();
        if !p.tls {
            let reason = "is a TLS setting: it needs tls = true in the same pool";
            return Err((sub, value, reason.into()));
        }
        if let Err(e) = std::fs::File::open(path).and_then(|f| f.metadata()) {
            return Err((sub, value, format!("names a file that cannot be read: {e}")));
        }
        if !path.is_file() {
            return Err((sub, value, "must name a PEM file, not a directory".into()));
        }
    }
    match (&p.tls_cert, &p.tls_key) {
        (Some(cert), None) => Err((
            "tls_cert",
            cert.display().to_string(),
            "needs tls_key too: mutual TLS takes a client certificate and its key".into(),
        )),
        (None, Some(key)) => Err((
            "tls_key",
            key.display().to_string(),
            "needs tls_cert too: mutual TLS takes a client certificate and its key".into(),
        )),
        _ => Ok(()),
    }
}

/// `sentinel_nodes` and `sentinel_master` go together, not with `cluster_nodes`;
/// `sentinel_password` only with them.
pub(super) fn sentinel(p: &RedisPoolConfig) -> Result<(), PoolRule> {
    let nodes = p.sentinel_nodes.join(",");
    if p.sentinel_nodes.is_empty() {
        if let Some(master) = &p.sentinel_master {
            let reason = "needs sentinel_nodes too: the sentinels to ask for this master";
            return Err(("sentinel_master", master.clone(), reason.into()));
        }
        if p.sentinel_password.is_some() {
            let reason = "is the password of the sentinels: it needs sentinel_nodes";
            return Err(("sentinel_password", "(hidden)".into(), reason.into()));
        }
        return Ok(());
    }
    for node in &p.sentinel_nodes {
        cluster_node(node).map_err(|r| ("sentinel_nodes", nodes.clone(), r.to_owned()))?;
    }
    if !p.cluster_nodes.is_empty() {
        let reason = "cannot be combined with cluster_nodes: a pool is a Cluster or a \
                      Sentinel-monitored master, not both";
        return Err(("sentinel_nodes", nodes, reason.into()));
    }
    match &p.sentinel_master {
        None => {
            let reason =
                "needs sentinel_master too: the name the sentinels monitor the master under";
            Err(("sentinel_nodes", nodes, reason.into()))
        }
        Some(master)
            if master.is_empty() || master.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            let reason = "must be a master name without spaces or control characters";
            Err(("sentinel_master", master.clone(), reason.into()))
        }
        Some(_) => Ok(()),
    }
}

/// The native layout's keys are `<prefix>{<storage id>}`: the braces are the Cluster hash tag, so
/// that a session's hash and its lock share a slot, and requests are routed by the storage id's
/// slot. Redis takes the tag from the *first* `{` of a key up to the next `}`: a `{` in the
/// prefix makes the prefix (or part of it) the tag, which puts every session in one slot while
/// requests go to the storage id's node (they fail, redirected back and forth). A `}` alone is
/// harmless to Redis but refused too: one simple rule, and no key that reads as a tag.
/// Refusing beats routing by the real tag, which would put all sessions on one Cluster node.
pub(super) fn native_prefix(p: &RedisPoolConfig) -> Result<(), PoolRule> {
    if p.prefix.contains(['{', '}']) {
        let reason = "must not hold { or } with the native session layout: a session's keys \
                      are <prefix>{<storage id>}, and Redis Cluster takes a key's hash tag from \
                      its first braces, so braces in the prefix would put every session in one \
                      slot while requests are routed by the storage id (they would fail)";
        return Err(("prefix", p.prefix.clone(), reason.into()));
    }
    Ok(())
}
