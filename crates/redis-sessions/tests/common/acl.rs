//! The ACL rights the library needs, shared by the tests that log in as a limited user.

/// Exactly the rights the library needs on a single server: its own keys (`~dm:*`), no
/// channels, and only the commands it sends (`store/redis/*.rs` and the Lua scripts, which
/// Redis checks against the caller's rights too); `PING` for `pool_prefill`, `INFO` for the
/// start-up eviction check. Nothing that redis-rs sends on connect needs a right of its own
/// (`AUTH` and `HELLO` are always allowed; its `CLIENT SETINFO` is allowed to fail).
pub(crate) const ACL_RULES: &[&str] = &[
    "~dm:*",
    "resetchannels",
    "-@all",
    "+hgetall",
    "+hset",
    "+hdel",
    "+pexpire",
    "+set",
    "+get",
    "+del",
    "+type",
    "+eval",
    "+evalsha",
    "+ping",
    "+info",
    // Users' indexes of sessions (`store/redis/users.rs`).
    "+zadd",
    "+zrange",
    "+zremrangebyscore",
    "+zrem",
];
