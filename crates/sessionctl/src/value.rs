//! Turning what Redis holds into what a person or a script reads: MessagePack values as JSON,
//! millisecond timestamps as ISO 8601 (UTC) and durations as `1 h 2 min 3 s`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value as Json, json};

/// One stored value as JSON. MessagePack that JSON cannot say directly keeps its content:
/// binary as `{"$binary": "<base64>"}`, an extension type as `{"$ext": type, "data": base64}`,
/// a non-string map key as its JSON text, a non-finite float as a string, and bytes that are
/// not MessagePack at all as `{"$undecodable": "<base64>"}`.
pub(crate) fn msgpack_to_json(bytes: &[u8]) -> Json {
    let mut reader = bytes;
    match rmpv::decode::read_value(&mut reader) {
        Ok(value) if reader.is_empty() => to_json(value),
        _ => json!({ "$undecodable": STANDARD.encode(bytes) }),
    }
}

fn to_json(value: rmpv::Value) -> Json {
    use rmpv::Value as M;
    match value {
        M::Nil => Json::Null,
        M::Boolean(b) => Json::Bool(b),
        M::Integer(i) => i
            .as_u64()
            .map(Json::from)
            .or_else(|| i.as_i64().map(Json::from))
            .unwrap_or(Json::Null),
        M::F32(f) => float(f64::from(f)),
        M::F64(f) => float(f),
        M::String(s) => match s.into_str() {
            Some(s) => Json::String(s),
            None => json!({ "$binary": "not UTF-8" }),
        },
        M::Binary(b) => json!({ "$binary": STANDARD.encode(b) }),
        M::Array(items) => Json::Array(items.into_iter().map(to_json).collect()),
        M::Map(pairs) => {
            let mut map = Map::new();
            for (k, v) in pairs {
                let key = match to_json(k) {
                    Json::String(s) => s,
                    other => other.to_string(),
                };
                map.insert(key, to_json(v));
            }
            Json::Object(map)
        }
        M::Ext(kind, data) => json!({ "$ext": kind, "data": STANDARD.encode(data) }),
    }
}

fn float(f: f64) -> Json {
    serde_json::Number::from_f64(f).map_or_else(|| Json::String(f.to_string()), Json::Number)
}

/// Milliseconds since the Unix epoch as `2026-11-27T13:45:01.123Z`.
pub(crate) fn iso_time(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// A duration in milliseconds for people: `1 d 2 h`, `3 min 4 s`, `250 ms`.
pub(crate) fn human_duration(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms} ms");
    }
    let s = ms / 1000;
    let parts = [
        (s / 86_400, "d"),
        (s % 86_400 / 3600, "h"),
        (s % 3600 / 60, "min"),
        (s % 60, "s"),
    ];
    let shown: Vec<String> = parts
        .iter()
        .skip_while(|(n, _)| *n == 0)
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n} {unit}"))
        .collect();
    shown.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_written_by_the_library_read_as_json() {
        let named = |v: &Json| rmp_serde::to_vec_named(v).unwrap_or_default();
        let value = json!({"items": [1, 2], "name": "basket", "total": 12.5, "none": null});
        assert_eq!(msgpack_to_json(&named(&value)), value);
        assert_eq!(msgpack_to_json(&named(&json!(-3))), json!(-3));
        assert_eq!(msgpack_to_json(&named(&json!(u64::MAX))), json!(u64::MAX));
    }

    #[test]
    fn what_json_cannot_say_is_kept_visible() {
        // bin 8 of [1, 2]; fixmap {1: true}; trailing garbage after a valid value.
        assert_eq!(
            msgpack_to_json(&[0xc4, 2, 1, 2]),
            json!({"$binary": "AQI="})
        );
        assert_eq!(msgpack_to_json(&[0x81, 0x01, 0xc3]), json!({"1": true}));
        assert_eq!(
            msgpack_to_json(&[0x01, 0x02]),
            json!({"$undecodable": "AQI="})
        );
        assert_eq!(msgpack_to_json(&[]), json!({"$undecodable": ""}));
    }

    #[test]
    fn times_and_durations_read_naturally() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_time(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso_time(1_795_786_501_000), "2026-11-27T13:35:01.000Z");
        assert_eq!(human_duration(250), "250 ms");
        assert_eq!(human_duration(65_000), "1 min 5 s");
        assert_eq!(human_duration(86_400_000), "1 d");
        assert_eq!(human_duration(90_061_000), "1 d 1 h");
    }
}
