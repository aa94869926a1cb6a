//! Reading Redis replies (RESP2) off our own connections (`link.rs`), into `redis::Value`.
//!
//! Why our own reader: the `redis` crate's reply parser is built from `combine` parser
//! combinators and cost 7,500 instructions for the one `HGETALL` reply of a session read
//! (callgrind, `bash bench/instructions.sh`), more than the rest of the library's own work on
//! that request. Replies are a handful of simple types, read here in one pass over the buffer.
//! Only the reply types of RESP2 come: the library never switches a connection to RESP3.
//!
//! A server error becomes `Value::ServerError`, built by the `redis` crate itself from the
//! error line (rare, so its cost does not matter), so error codes (`NOSCRIPT`, `WRONGTYPE`,
//! `MOVED` with its target, ...) read exactly as they did through its connections.

use redis::Value;

/// Deepest nesting of arrays accepted in a reply (the library's replies nest at most twice).
const MAX_DEPTH: usize = 32;

/// What reading one reply from the front of a buffer gave.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// A whole reply and the number of bytes it took.
    Reply(Value, usize),
    /// The reply is not whole yet: wait for at least this many bytes in the buffer (0 when the
    /// length is not known yet).
    Incomplete(usize),
}

/// A reply that is not valid RESP2: the connection cannot be trusted any more.
#[derive(Debug)]
pub(crate) struct ProtocolError(pub(crate) String);

/// Reads the reply at the front of `buf`: `Ok(Some((reply, bytes used)))`, `Ok(None)` when it
/// is not whole yet. For fuzzing and tests; the client reads replies itself.
///
/// # Errors
///
/// A description of what is not valid RESP2 in `buf`.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Value, usize)>, String> {
    match parse(buf) {
        Ok(Parsed::Reply(value, used)) => Ok(Some((value, used))),
        Ok(Parsed::Incomplete(_)) => Ok(None),
        Err(ProtocolError(e)) => Err(e),
    }
}

/// Reads the reply at the front of `buf`.
#[inline]
pub(crate) fn parse(buf: &[u8]) -> Result<Parsed, ProtocolError> {
    let mut reader = Reader { buf, pos: 0 };
    match reader.value(0)? {
        Some(value) => Ok(Parsed::Reply(value, reader.pos)),
        None => Ok(Parsed::Incomplete(reader.needed())),
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    /// When a bulk string is cut short, the whole length the buffer must reach.
    fn needed(&self) -> usize {
        if self.pos > self.buf.len() {
            self.pos
        } else {
            0
        }
    }

    /// The line at the cursor without its CRLF (and moves past it), or `None` when no CRLF yet.
    /// Lines are short (a type byte and a length, or a status) and never hold a CR in RESP: a
    /// plain scan for the CR.
    fn line(&mut self) -> Result<Option<&[u8]>, ProtocolError> {
        let Some(rest) = self.buf.get(self.pos..) else {
            return Ok(None);
        };
        let Some(end) = rest.iter().position(|&b| b == b'\r') else {
            return Ok(None);
        };
        match rest.get(end + 1) {
            None => Ok(None),
            Some(b'\n') => {
                self.pos += end + 2;
                Ok(Some(&rest[..end]))
            }
            Some(_) => Err(ProtocolError("a CR without LF in a reply line".into())),
        }
    }

    /// The decimal integer line at the cursor (a length or an integer reply, after its type
    /// byte), read in the same pass that finds its end, and moves past its CRLF; `None` when the
    /// line is not whole yet. (Finding the line first and parsing it after cost a session read
    /// about 80 instructions per value, callgrind.)
    fn integer(&mut self) -> Result<Option<i64>, ProtocolError> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let negative = rest.first() == Some(&b'-');
        let first = usize::from(negative);
        let mut magnitude: u64 = 0;
        let mut end = first;
        loop {
            match rest.get(end) {
                None => return Ok(None),
                // At most 19 digits: any of them fits in a u64, and i64 needs no more.
                Some(&digit @ b'0'..=b'9') if end - first < 19 => {
                    magnitude = magnitude * 10 + u64::from(digit - b'0');
                    end += 1;
                }
                Some(b'\r') if end > first => break,
                Some(_) => return Err(Self::not_an_integer(rest)),
            }
        }
        match rest.get(end + 1) {
            None => return Ok(None),
            Some(b'\n') => {}
            Some(_) => return Err(Self::not_an_integer(rest)),
        }
        let value = if negative {
            0i64.checked_sub_unsigned(magnitude)
        } else {
            i64::try_from(magnitude).ok()
        };
        let value = value.ok_or_else(|| Self::not_an_integer(rest))?;
        self.pos += end + 2;
        Ok(Some(value))
    }

    /// The error for an integer line that is not one (`rest` starts with the line).
    fn not_an_integer(rest: &[u8]) -> ProtocolError {
        let line = rest.split(|&b| b == b'\r').next().unwrap_or_default();
        ProtocolError(format!(
            "not an integer in a reply: {:?}",
            String::from_utf8_lossy(line)
        ))
    }

    fn value(&mut self, depth: usize) -> Result<Option<Value>, ProtocolError> {
        if depth > MAX_DEPTH {
            return Err(ProtocolError("a reply nests arrays too deep".into()));
        }
        let Some(&kind) = self.buf.get(self.pos) else {
            return Ok(None);
        };
        let start = self.pos;
        self.pos += 1;
        match kind {
            b'+' | b'-' => self.line_value(kind, start),
            b':' => Ok(self.integer()?.map(Value::Int)),
            b'$' => match self.integer()? {
                Some(len) => self.bulk(len),
                None => Ok(None),
            },
            b'*' => match self.integer()? {
                Some(count) => self.array(count, depth),
                None => Ok(None),
            },
            other => Err(ProtocolError(format!(
                "unexpected reply type {:?}",
                char::from(other)
            ))),
        }
    }

    /// A status (`+`) or error (`-`) reply, whose line starts at `start`.
    fn line_value(&mut self, kind: u8, start: usize) -> Result<Option<Value>, ProtocolError> {
        let Some(line) = self.line()? else {
            return Ok(None);
        };
        Ok(Some(match kind {
            b'+' if line == b"OK" => Value::Okay,
            b'+' => match std::str::from_utf8(line) {
                Ok(text) => Value::SimpleString(text.to_owned()),
                // As the `redis` crate reads it (Redis writes status lines in ASCII).
                Err(_) => return Err(ProtocolError("a status line that is not UTF-8".into())),
            },
            _ => Self::error(&self.buf[start..self.pos])?,
        }))
    }

    /// The bytes of a bulk string of length `len` (-1: nil) at the cursor.
    fn bulk(&mut self, len: i64) -> Result<Option<Value>, ProtocolError> {
        if len == -1 {
            return Ok(Some(Value::Nil));
        }
        let len = usize::try_from(len)
            .map_err(|_| ProtocolError(format!("a bulk string of length {len}")))?;
        let data = self.pos;
        self.pos += len + 2;
        match self.buf.get(data..self.pos) {
            Some([bytes @ .., b'\r', b'\n']) => Ok(Some(Value::BulkString(bytes.to_vec()))),
            Some(_) => Err(ProtocolError("a bulk string without its CRLF".into())),
            None => Ok(None),
        }
    }

    /// The `count` elements (-1: nil) of an array at the cursor.
    fn array(&mut self, count: i64, depth: usize) -> Result<Option<Value>, ProtocolError> {
        if count == -1 {
            return Ok(Some(Value::Nil));
        }
        let count = usize::try_from(count)
            .map_err(|_| ProtocolError(format!("an array of length {count}")))?;
        // Each element takes at least 3 bytes: no reserving for a length the buffer cannot hold.
        let mut items = Vec::with_capacity(count.min(self.buf.len() / 3));
        for _ in 0..count {
            match self.value(depth + 1)? {
                Some(item) => items.push(item),
                None => return Ok(None),
            }
        }
        Ok(Some(Value::Array(items)))
    }

    /// A `-CODE detail` line as the `redis` crate's own server error value.
    fn error(line: &[u8]) -> Result<Value, ProtocolError> {
        match redis::parse_redis_value(line) {
            Ok(value @ Value::ServerError(_)) => Ok(value),
            other => Err(ProtocolError(format!(
                "an unreadable error reply: {other:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn whole(bytes: &[u8]) -> Value {
        match parse(bytes).expect("valid") {
            Parsed::Reply(value, used) => {
                assert_eq!(used, bytes.len(), "all of {bytes:?} read");
                value
            }
            Parsed::Incomplete(_) => panic!("{bytes:?} is whole"),
        }
    }

    #[test]
    fn reads_every_resp2_type_as_the_redis_crate_does() {
        let cases: &[&[u8]] = &[
            b"+OK\r\n",
            b"+QUEUED\r\n",
            b":9223372036854775807\r\n",
            b":-9223372036854775807\r\n",
            b":-9223372036854775808\r\n",
            b":-42\r\n",
            b"$5\r\nhe\r\no\r\n",
            b"$0\r\n\r\n",
            b"$-1\r\n",
            b"*-1\r\n",
            b"*0\r\n",
            b"*3\r\n$1\r\na\r\n:1\r\n*1\r\n$-1\r\n",
            b"-NOSCRIPT No matching script. Please use EVAL.\r\n",
            b"-MOVED 3999 127.0.0.1:6381\r\n",
            b"*2\r\n-WRONGTYPE Operation against a key\r\n:1\r\n",
        ];
        for case in cases {
            let ours = whole(case);
            let theirs = redis::parse_redis_value(case).expect("redis parses it");
            assert_eq!(ours, theirs, "{}", String::from_utf8_lossy(case));
        }
    }

    #[test]
    fn a_cut_reply_is_incomplete_at_every_length() {
        let reply = b"*3\r\n$5\r\nhello\r\n:7\r\n*2\r\n+OK\r\n$3\r\nabc\r\n";
        for cut in 0..reply.len() {
            assert!(
                matches!(parse(&reply[..cut]), Ok(Parsed::Incomplete(_))),
                "cut at {cut}"
            );
        }
        assert!(matches!(whole(reply), Value::Array(items) if items.len() == 3));
    }

    #[test]
    fn a_long_bulk_string_says_how_many_bytes_it_needs() {
        let Ok(Parsed::Incomplete(needed)) = parse(b"$100000\r\nabc") else {
            panic!("incomplete");
        };
        assert_eq!(needed, 9 + 100_000 + 2);
    }

    #[test]
    fn only_the_first_reply_is_read() {
        let Ok(Parsed::Reply(Value::Int(1), 4)) = parse(b":1\r\n:2\r\n") else {
            panic!("one reply");
        };
    }

    proptest! {
        /// Any bytes: no panic, and whatever reads as a whole reply reads the same through
        /// the `redis` crate's parser. Inputs are RESP-like lines (a type byte, a short
        /// number or text, CRLF) as often as random bytes, so that both parsers get far.
        #[test]
        fn any_bytes_read_as_the_redis_crate_reads_them_or_not_at_all(
            lines in prop::collection::vec(
                prop_oneof![
                    (prop::sample::select(b"+-:$*".to_vec()), -3i64..40)
                        .prop_map(|(kind, n)| format!("{}{n}\r\n", char::from(kind)).into_bytes()),
                    "[a-z]{0,6}\r\n".prop_map(String::into_bytes),
                    prop::collection::vec(any::<u8>(), 0..8),
                ],
                0..8,
            )
        ) {
            let bytes = lines.concat();
            if let Ok(Parsed::Reply(value, used)) = parse(&bytes) {
                prop_assert!(used <= bytes.len());
                let theirs = redis::parse_redis_value(&bytes[..used]);
                prop_assert_eq!(Ok(value), theirs.map_err(|e| e.to_string()));
            }
        }
    }

    #[test]
    fn garbage_is_a_protocol_error_not_a_panic() {
        let cases: &[&[u8]] = &[
            b"?what\r\n",
            b":12x\r\n",
            b"$-5\r\n",
            b"*-2\r\n",
            b"$2\r\nabcd\r\n",
            b"$99999999999999999999\r\n",
            b":\r\n",
            b":-\r\n",
            b":+1\r\n",
            b":9223372036854775808\r\n",
            b":1\rx\r\n",
            b"+a\rb\r\n",
            b"+\x80\r\n",
        ];
        for case in cases {
            assert!(parse(case).is_err(), "{}", String::from_utf8_lossy(case));
        }
        let deep = "*1\r\n".repeat(100) + ":1\r\n";
        assert!(parse(deep.as_bytes()).is_err());
        // A huge announced array does not reserve memory for it.
        assert!(matches!(
            parse(b"*4000000000\r\n:1\r\n"),
            Ok(Parsed::Incomplete(_))
        ));
    }
}
