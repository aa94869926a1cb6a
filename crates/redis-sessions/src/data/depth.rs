//! How deeply a MessagePack value nests, measured without recursion, so that a hostile or
//! corrupt stored value cannot overflow the stack when it is decoded.
//!
//! serde decodes nested values recursively. rmp-serde stops arrays and maps at 1,024 levels,
//! which is more than a debug build's tokio worker thread (2 MiB of stack) survives for a
//! `serde_json::Value`, and it does not count the levels of an enum at all: a recursive enum
//! read from 60 KB of `{0: {0: ...}}` overflowed the stack and aborted the process (found by
//! `tests/hostile_input.rs` on a tokio worker thread). [`nests_deeper_than`] walks the
//! bytes with an explicit stack first; values nested deeper than [`MAX_DEPTH`] are refused
//! before serde sees them, on `get` and on `put` alike, so a value that can be put can be read.

/// The deepest nesting of arrays, maps and extension values a session value may have: as deep
/// as `serde_json` allows by default, and far from the stack's limit in every build.
pub const MAX_DEPTH: usize = 128;

/// Whether the first MessagePack value in `bytes` nests arrays, maps and extension values
/// deeper than `limit`. Malformed or truncated input stops the walk with `false` (the decoder
/// then reports it); trailing bytes after the first value are not looked at.
pub(crate) fn nests_deeper_than(bytes: &[u8], limit: usize) -> bool {
    // Items still to read in each open container, innermost last.
    let mut open: Vec<u64> = Vec::new();
    let mut at = 0;
    loop {
        let Some(&marker) = bytes.get(at) else {
            return false;
        };
        at += 1;
        let length = |at: &mut usize, width: usize| -> Option<u64> {
            let field = bytes.get(*at..*at + width)?;
            *at += width;
            Some(field.iter().fold(0u64, |n, &b| (n << 8) | u64::from(b)))
        };
        // (bytes of payload to skip, items of a container that opens here)
        let (skip, items) = match marker {
            0x00..=0x7f | 0xc0 | 0xc2 | 0xc3 | 0xe0..=0xff => (0, None),
            0x80..=0x8f => (0, Some(2 * u64::from(marker & 0x0f))),
            0x90..=0x9f => (0, Some(u64::from(marker & 0x0f))),
            0xa0..=0xbf => (u64::from(marker & 0x1f), None),
            0xc4 | 0xd9 => (length(&mut at, 1).unwrap_or(u64::MAX), None),
            0xc5 | 0xda => (length(&mut at, 2).unwrap_or(u64::MAX), None),
            0xc6 | 0xdb => (length(&mut at, 4).unwrap_or(u64::MAX), None),
            // Extension values: opaque payload, but rmp-serde counts them as a level.
            0xc7 => (length(&mut at, 1).map_or(u64::MAX, |n| n + 1), Some(0)),
            0xc8 => (length(&mut at, 2).map_or(u64::MAX, |n| n + 1), Some(0)),
            0xc9 => (length(&mut at, 4).map_or(u64::MAX, |n| n + 1), Some(0)),
            0xd4..=0xd8 => (1 + (1 << (marker - 0xd4)), Some(0)),
            0xca | 0xce | 0xd2 => (4, None),
            0xcb | 0xcf | 0xd3 => (8, None),
            0xcc | 0xd0 => (1, None),
            0xcd | 0xd1 => (2, None),
            0xdc => (0, length(&mut at, 2)),
            0xdd => (0, length(&mut at, 4)),
            0xde => (0, length(&mut at, 2).map(|n| 2 * n)),
            0xdf => (0, length(&mut at, 4).map(|n| 2 * n)),
            // 0xc1 is never used.
            0xc1 => return false,
        };
        let Some(next) = usize::try_from(skip).ok().and_then(|s| at.checked_add(s)) else {
            return false;
        };
        at = next;
        match items {
            Some(_) if open.len() + 1 > limit => return true,
            Some(n) if n > 0 => {
                open.push(n);
                continue;
            }
            _ => {}
        }
        // One item read: close every container it completes.
        loop {
            let Some(left) = open.last_mut() else {
                return false;
            };
            *left -= 1;
            if *left > 0 {
                break;
            }
            open.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested_arrays(depth: usize) -> Vec<u8> {
        let mut bytes = vec![0x91; depth];
        bytes.push(0x01);
        bytes
    }

    #[test]
    fn the_depth_of_arrays_is_counted_exactly() {
        assert!(!nests_deeper_than(&nested_arrays(MAX_DEPTH), MAX_DEPTH));
        assert!(nests_deeper_than(&nested_arrays(MAX_DEPTH + 1), MAX_DEPTH));
        assert!(nests_deeper_than(&nested_arrays(60_000), MAX_DEPTH));
    }

    #[test]
    fn maps_of_enums_and_extensions_count_as_levels() {
        let enums = [0x81, 0x00].repeat(MAX_DEPTH + 1);
        assert!(nests_deeper_than(&enums, MAX_DEPTH));
        assert!(!nests_deeper_than(&enums, MAX_DEPTH + 1));
        // An array of one fixext1 is two levels.
        assert!(nests_deeper_than(&[0x91, 0xd4, 0x01, 0x00], 1));
        assert!(!nests_deeper_than(&[0x91, 0xd4, 0x01, 0x00], 2));
    }

    #[test]
    fn wide_values_are_shallow() {
        // [[1], [1], ... 1,000 times]: depth 2, however long.
        let mut bytes = vec![0xdc, 0x03, 0xe8];
        for _ in 0..1000 {
            bytes.extend_from_slice(&[0x91, 0x01]);
        }
        assert!(!nests_deeper_than(&bytes, 2));
        assert!(nests_deeper_than(&bytes, 1));
        // Strings and binaries are skipped, whatever they hold.
        let mut bytes = vec![0x92, 0xc4, 0x03, 0x91, 0x91, 0x91, 0xa2, 0x91, 0x91];
        bytes.push(0x01);
        assert!(!nests_deeper_than(&bytes, 1));
    }

    #[test]
    fn truncated_and_invalid_input_is_left_to_the_decoder() {
        assert!(!nests_deeper_than(&[], 1));
        assert!(!nests_deeper_than(&[0xc1], 1));
        assert!(!nests_deeper_than(&[0xdd, 0xff], 1));
        assert!(!nests_deeper_than(&[0xc6, 0xff, 0xff, 0xff, 0xff], 1));
        assert!(nests_deeper_than(&[0x91, 0x91], 1), "two open levels");
    }
}
