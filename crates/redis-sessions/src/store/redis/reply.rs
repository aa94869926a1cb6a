//! The commands the Redis store builds and the replies it reads back: records as hashes, the
//! metadata field, and what an `HGETALL` or `end.lua` reply means.

use std::time::Duration;

use bytes::Bytes;
use redis::{RedisResult, Value};

use super::pool::store_error;
use crate::store::{EndOutcome, Loaded, Meta, Record, StoreError, millis, now_ms};
use redis_link::{Command, cmd};

/// The field that holds [`Meta`]; data keys are never empty, so it cannot clash.
pub(super) const META_FIELD: &str = "";

/// `HSET key "" meta field value...`: the metadata and the given fields.
pub(super) fn hset(key: &str, meta: Meta, fields: &[(String, Bytes)]) -> Command {
    let mut hset = cmd("HSET");
    hset.arg(key).arg(META_FIELD).arg(&meta.encode()[..]);
    for (field, value) in fields {
        hset.arg(field).arg(&value[..]);
    }
    hset
}

pub(super) fn pexpire(key: &str, ttl: Duration) -> Command {
    cmd("PEXPIRE").arg(key).arg(ttl_ms(ttl)).take()
}

/// A TTL in whole milliseconds, at least 1 (`PX 0` is an error in Redis).
pub(super) fn ttl_ms(ttl: Duration) -> u64 {
    millis(ttl).max(1)
}

/// Builds a record from the flat `field, value, field, value...` list of a hash.
fn record_of_pairs(items: impl Iterator<Item = Value>) -> Result<Option<Record>, StoreError> {
    let mut items = items.peekable();
    if items.peek().is_none() {
        return Ok(None);
    }
    let mut meta = None;
    let mut fields = Vec::with_capacity(items.size_hint().0 / 2);
    while let (Some(k), Some(v)) = (items.next(), items.next()) {
        let (Value::BulkString(k), Value::BulkString(v)) = (k, v) else {
            return Err(StoreError::Backend(
                "a session hash holds a non-string".into(),
            ));
        };
        if k.is_empty() {
            meta = Meta::decode(&v);
        } else {
            let key = String::from_utf8(k)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            fields.push((key, Bytes::from(v)));
        }
    }
    let meta = meta.unwrap_or_else(|| {
        // Written by something else, or damaged: keep the data, and let the next save or touch
        // write fresh metadata.
        tracing::warn!("session record without valid metadata; treating it as new");
        Meta {
            created_ms: now_ms(),
            touched_ms: 0,
        }
    });
    Ok(Some(Record { meta, fields }))
}

/// What an `HGETALL` reply says: a record, nothing, or a tombstone (`WRONGTYPE`).
pub(super) fn loaded(reply: Option<RedisResult<Value>>) -> Result<Loaded, StoreError> {
    let value = match reply {
        Some(Ok(value)) => value,
        Some(Err(e)) if e.code() == Some("WRONGTYPE") => return Ok(Loaded::Ended),
        Some(Err(e)) => return Err(store_error(&e)),
        None => return Err(StoreError::Backend("no reply to HGETALL".into())),
    };
    let record = match value {
        Value::Array(items) => record_of_pairs(items.into_iter())?,
        Value::Map(pairs) => record_of_pairs(pairs.into_iter().flat_map(|(k, v)| [k, v]))?,
        Value::Nil => None,
        other => {
            return Err(StoreError::Backend(format!(
                "unexpected HGETALL reply: {}",
                shape(&other)
            )));
        }
    };
    Ok(record.map_or(Loaded::Missing, Loaded::Found))
}

/// What the replies of `take_fields`'s `HDEL`s say: for each field, whether it was removed by
/// this call. `WRONGTYPE` (a tombstone: the session ended) removed nothing.
pub(super) fn taken(
    replies: Vec<RedisResult<Value>>,
    expected: usize,
) -> Result<Vec<bool>, StoreError> {
    if replies.len() != expected {
        return Err(StoreError::Backend(format!(
            "{} replies to {expected} HDEL",
            replies.len()
        )));
    }
    replies
        .into_iter()
        .map(|reply| match reply {
            Ok(Value::Int(n)) => Ok(n > 0),
            Err(e) if e.code() == Some("WRONGTYPE") => Ok(false),
            Err(e) => Err(store_error(&e)),
            Ok(other) => Err(StoreError::Backend(format!(
                "unexpected HDEL reply: {}",
                shape(&other)
            ))),
        })
        .collect()
}

/// What an `end.lua` reply says (see the script's header).
pub(super) fn ended(value: Value) -> Result<EndOutcome, StoreError> {
    let Value::Array(items) = value else {
        return Err(StoreError::Backend(format!(
            "unexpected end reply: {}",
            shape(&value)
        )));
    };
    let mut items = items.into_iter();
    match items.next() {
        Some(Value::Int(1)) => {
            Ok(record_of_pairs(items)?.map_or(EndOutcome::NotLive, EndOutcome::Ended))
        }
        Some(Value::Int(0)) => Ok(EndOutcome::NotLive),
        Some(Value::Int(-1)) => Ok(EndOutcome::LockLost),
        other => Err(StoreError::Backend(format!(
            "unexpected end reply: {}",
            other.as_ref().map_or_else(|| "no status".to_owned(), shape)
        ))),
    }
}

/// What kind of reply `value` is and how long, never its content: an unexpected reply may hold
/// a session's values, and store errors reach logs (see `tests/no_secret_leaks.rs`).
pub(super) fn shape(value: &Value) -> String {
    match value {
        Value::Nil => "nil".to_owned(),
        Value::Int(_) => "an integer".to_owned(),
        Value::BulkString(bytes) => format!("a bulk string of {} bytes", bytes.len()),
        Value::SimpleString(text) => format!("a simple string of {} bytes", text.len()),
        Value::Okay => "OK".to_owned(),
        Value::Array(items) => format!("an array of {} items", items.len()),
        Value::Map(pairs) => format!("a map of {} pairs", pairs.len()),
        Value::Set(items) => format!("a set of {} items", items.len()),
        Value::ServerError(e) => format!("the error {:?}", e.code()),
        _ => "a reply of another RESP3 type".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use redis::Value;

    use super::{ended, loaded};

    /// An unexpected reply is described by its kind and size in the error, never quoted: it may
    /// hold a session's values, and store errors are logged.
    #[test]
    fn an_unexpected_reply_is_never_quoted_in_the_error() {
        let secret = b"card=4111111111111111".to_vec();
        let odd = Value::BulkString(secret.clone());
        let errors = [
            loaded(Some(Ok(odd.clone()))).err().map(|e| e.to_string()),
            ended(odd.clone()).err().map(|e| e.to_string()),
            ended(Value::Array(vec![odd.clone()]))
                .err()
                .map(|e| e.to_string()),
        ];
        for error in errors {
            let error = error.expect("an unexpected reply is an error");
            assert!(!error.contains("4111"), "{error}");
            assert!(error.contains("21 bytes"), "{error}");
        }
    }
}
