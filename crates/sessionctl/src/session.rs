//! `show` and `destroy`: one session, named by its cookie value or its storage id.
//!
//! `show` reads the key the way the library lays it out (a hash with the metadata under the
//! empty field, or a string tombstone naming a rotation's successor) straight from the master
//! that holds it. `destroy` does not delete anything itself: it calls the library's
//! `SessionStore::end` with the manager's tombstone time, exactly what a logout does, so a
//! request that loaded the session earlier and saves late gets `WRONGTYPE`, not a new session.

use redis_sessions::id::StorageId;
use redis_sessions::store::memory::MemoryStore;
use redis_sessions::store::{EndOutcome, EndRequest, Meta, now_ms};
use redis_sessions::{RedisStore, SessionId, SessionManager, SessionStore as _};
use serde_json::{Map, Value as Json, json};

use crate::error::{CtlError, CtlResult, code};
use crate::nodes::Nodes;
use crate::value::{human_duration, iso_time, msgpack_to_json};
use crate::{Context, Outcome};

/// The storage id named by `arg`: a cookie value (hashed as the library does), a storage id, or
/// a whole Redis key `{prefix}{<storage id>}`. The argument is never echoed (it may be a live
/// cookie).
pub(crate) fn storage_id(arg: &str, prefix: &str) -> CtlResult<StorageId> {
    if let Some(id) = SessionId::parse(arg) {
        return Ok(id.storage_id());
    }
    let bare = arg
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('{'))
        .and_then(|rest| rest.strip_suffix('}'))
        .unwrap_or(arg);
    StorageId::parse(bare).ok_or_else(|| {
        CtlError::Usage(format!(
            "the id given ({} characters) is neither a session cookie value (43 base64url \
             characters) nor a storage id (22 base64url characters)",
            arg.chars().count()
        ))
    })
}

fn store(ctx: &Context) -> CtlResult<RedisStore> {
    RedisStore::new(&ctx.pool).map_err(|e| CtlError::Usage(format!("pool {}: {e}", ctx.pool_name)))
}

/// `show`: times, TTL and values of one session.
pub(crate) async fn show(ctx: &Context, arg: &str) -> CtlResult<Outcome> {
    let id = storage_id(arg, &ctx.pool.prefix)?;
    let key = store(ctx)?.session_key(&id);
    let mut nodes = Nodes::connect(&ctx.pool).await?;
    let node = nodes.owner_of(id.as_str())?;
    let failed =
        |e: redis::RedisError| CtlError::redis(&format!("reading {key} on {}", node.addr), &e);
    let (kind, ttl_ms): (String, i64) = redis::pipe()
        .cmd("TYPE")
        .arg(&key)
        .cmd("PTTL")
        .arg(&key)
        .query_async(&mut node.conn)
        .await
        .map_err(&failed)?;
    let ttl_ms = u64::try_from(ttl_ms).ok();
    let mut json = json!({
        "command": "show",
        "storage_id": id.as_str(),
        "key": key,
        "node": node.addr,
        "ttl_ms": ttl_ms,
    });
    let ttl_text = ttl_ms.map_or_else(|| "none".to_owned(), human_duration);
    let found = match kind.as_str() {
        "hash" => {
            let pairs: Vec<(Vec<u8>, Vec<u8>)> = redis::cmd("HGETALL")
                .arg(&key)
                .query_async(&mut node.conn)
                .await
                .map_err(&failed)?;
            pairs
        }
        "string" => {
            let successor: Option<String> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut node.conn)
                .await
                .map_err(&failed)?;
            let successor = successor.filter(|s| !s.is_empty());
            json["status"] = json!("ended");
            json["rotated_to"] = json!(successor);
            let how = successor.map_or_else(
                || "destroyed".to_owned(),
                |s| format!("rotated to storage id {s}"),
            );
            let text = format!(
                "session {id}: ended ({how}); its tombstone lasts {ttl_text} more \
                 (no save can bring it back)"
            );
            return Ok(Outcome {
                code: code::NOT_FOUND,
                text,
                json,
            });
        }
        "none" => Vec::new(),
        other => {
            return Err(CtlError::Redis(format!(
                "{key} holds a Redis {other}, not a session: is the prefix shared with other data?"
            )));
        }
    };
    if found.is_empty() {
        json["status"] = json!("not_found");
        let text = format!("session {id}: no such session (never existed, or expired)");
        return Ok(Outcome {
            code: code::NOT_FOUND,
            text,
            json,
        });
    }
    Ok(describe(json, &id, &key, &ttl_text, found))
}

/// The report of a live session's hash.
fn describe(
    mut json: Json,
    id: &StorageId,
    key: &str,
    ttl_text: &str,
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
) -> Outcome {
    let mut meta = None;
    let mut fields = Map::new();
    for (field, value) in pairs {
        if field.is_empty() {
            meta = Meta::decode(&value);
        } else {
            let name = String::from_utf8_lossy(&field).into_owned();
            fields.insert(name, msgpack_to_json(&value));
        }
    }
    let now = now_ms();
    let mut text = format!("session  {id}\nkey      {key}\nstatus   live\n");
    json["status"] = json!("live");
    match meta {
        Some(meta) => {
            for (name, ms) in [("created", meta.created_ms), ("touched", meta.touched_ms)] {
                json[format!("{name}_ms")] = json!(ms);
                json[name] = json!(iso_time(ms));
                let ago = human_duration(now.saturating_sub(ms));
                text.push_str(&format!("{name:<9}{} ({ago} ago)\n", iso_time(ms)));
            }
        }
        None => {
            json["created_ms"] = Json::Null;
            json["touched_ms"] = Json::Null;
            text.push_str("created  unknown (no valid metadata field)\n");
        }
    }
    text.push_str(&format!("ttl      {ttl_text}\nfields   {}\n", fields.len()));
    for (name, value) in &fields {
        // Keys starting with NUL are the library's own (CSRF token, user binding).
        let shown = name.replace('\0', "\\0");
        text.push_str(&format!("  {shown} = {value}\n"));
    }
    json["fields"] = Json::Object(fields);
    Outcome {
        code: code::OK,
        text: text.trim_end().to_owned(),
        json,
    }
}

/// Where a pool's Redis is, for messages.
pub(crate) fn place(pool: &redis_sessions::RedisPoolConfig) -> String {
    if !pool.cluster_nodes.is_empty() {
        format!("Cluster {}", pool.cluster_nodes.join(","))
    } else if !pool.sentinel_nodes.is_empty() {
        format!("sentinels {}", pool.sentinel_nodes.join(","))
    } else {
        format!("{}:{}", pool.host, pool.port)
    }
}

/// `destroy`: ends the session through the library's store, leaving a tombstone.
pub(crate) async fn destroy(ctx: &Context, arg: &str) -> CtlResult<Outcome> {
    let id = storage_id(arg, &ctx.pool.prefix)?;
    let store = store(ctx)?;
    // The tombstone time depends on the [session] settings only; a manager over an unused
    // in-memory store computes it without touching any pool.
    let manager = SessionManager::with_store(ctx.config.clone(), MemoryStore::default())
        .map_err(|e| CtlError::Usage(e.to_string()))?;
    let tombstone = manager.tombstone_time();
    let request = EndRequest {
        tombstone,
        lock: None,
        require_lock: false,
        successor: "",
    };
    let outcome = store
        .end(&id, request)
        .await
        .map_err(|e| CtlError::store(&place(&ctx.pool), &e))?;
    let tombstone_ms = u64::try_from(tombstone.as_millis()).unwrap_or(u64::MAX);
    let mut json = json!({
        "command": "destroy",
        "storage_id": id.as_str(),
        "key": store.session_key(&id),
        "tombstone_ms": tombstone_ms,
    });
    let (code, text) = match outcome {
        EndOutcome::Ended(record) => {
            json["status"] = json!("destroyed");
            json["fields"] = json!(record.fields.len());
            let text = format!(
                "destroyed session {id} ({} field{}); late saves fail for {}",
                record.fields.len(),
                if record.fields.len() == 1 { "" } else { "s" },
                human_duration(tombstone_ms)
            );
            (code::OK, text)
        }
        EndOutcome::NotLive | EndOutcome::LockLost => {
            json["status"] = json!("not_found");
            let text =
                format!("session {id}: no such session (never existed, expired or already ended)");
            (code::NOT_FOUND, text)
        }
    };
    Ok(Outcome { code, text, json })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_accepted_as_cookie_storage_id_or_key() {
        let cookie = SessionId::generate();
        let storage = cookie.storage_id();
        let by_cookie = storage_id(&cookie.expose(), "dm:").ok();
        assert_eq!(by_cookie.as_ref(), Some(&storage));
        assert_eq!(
            storage_id(storage.as_str(), "dm:").ok().as_ref(),
            Some(&storage)
        );
        let key = format!("dm:{{{storage}}}");
        assert_eq!(storage_id(&key, "dm:").ok().as_ref(), Some(&storage));
    }

    #[test]
    fn malformed_ids_are_usage_errors_that_do_not_echo_the_input() {
        for bad in ["", "abc", "dm:{short}", &"A".repeat(44)] {
            match storage_id(bad, "dm:") {
                Err(CtlError::Usage(m)) => assert!(bad.is_empty() || !m.contains(bad)),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }
}
