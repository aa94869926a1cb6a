//! Incremental parsing of the commands a Redis client sends (RESP arrays of bulk strings), for
//! the counting proxy.

/// Largest array header accepted by the RESP parser (Redis' own limit).
const MAX_ARGS: usize = 1024 * 1024;

/// Largest header line (`*N` or `$N`) accepted by the RESP parser.
const MAX_HEADER_LINE: usize = 32;

/// Incremental parser of the commands a client sends: RESP arrays of bulk
/// strings.
#[derive(Default)]
pub(crate) struct RespParser {
    /// Bytes received but not yet parsed into a whole command.
    pending: Vec<u8>,
    /// Set after malformed input; nothing more is parsed.
    broken: bool,
}

impl RespParser {
    /// Whether the bytes received so far end inside a command.
    pub(crate) fn in_command(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Appends `data` and pushes every command it completes onto `out`.
    pub(crate) fn feed(&mut self, data: &[u8], out: &mut Vec<Vec<String>>) {
        if self.broken {
            return;
        }
        self.pending.extend_from_slice(data);
        let mut start = 0;
        while start < self.pending.len() {
            match parse_command(&self.pending[start..]) {
                Ok(Some((command, used))) => {
                    out.extend(command);
                    start += used;
                }
                Ok(None) => break,
                Err(()) => {
                    self.broken = true;
                    self.pending = Vec::new();
                    return;
                }
            }
        }
        self.pending.drain(..start);
    }
}

/// Outcome of [`parse_command`]: a command (or `None` for input that is
/// skipped, like an inline command) and the number of bytes it used.
type Parsed = (Option<Vec<String>>, usize);

/// Parses one command at the start of `buf`.
///
/// `Ok(None)` means more bytes are needed; `Err(())` means the input is not
/// a command a Redis client would send.
fn parse_command(buf: &[u8]) -> Result<Option<Parsed>, ()> {
    if buf.first() != Some(&b'*') {
        // Inline command: skipped up to and including its newline.
        return Ok(buf
            .iter()
            .position(|&b| b == b'\n')
            .map(|newline| (None, newline + 1)));
    }
    let Some((count, mut pos)) = parse_header(buf, 0, b'*')? else {
        return Ok(None);
    };
    let count = match usize::try_from(count) {
        Ok(count) if count > 0 => count,
        // `*-1` (null array) or `*0`: nothing to record.
        _ => return Ok(Some((None, pos))),
    };
    if count > MAX_ARGS {
        return Err(());
    }
    let mut argv = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let Some((len, data_start)) = parse_header(buf, pos, b'$')? else {
            return Ok(None);
        };
        let len = usize::try_from(len).map_err(|_| ())?;
        let data_end = data_start.checked_add(len).ok_or(())?;
        let Some(terminator) = buf.get(data_end..data_end + 2) else {
            return Ok(None);
        };
        if terminator != b"\r\n" {
            return Err(());
        }
        argv.push(String::from_utf8_lossy(&buf[data_start..data_end]).into_owned());
        pos = data_end + 2;
    }
    Ok(Some((Some(argv), pos)))
}

/// Parses a `<kind><integer>\r\n` line at `buf[pos..]`, returning the
/// integer and the position after the line, `Ok(None)` if incomplete.
fn parse_header(buf: &[u8], pos: usize, kind: u8) -> Result<Option<(i64, usize)>, ()> {
    let rest = buf.get(pos..).unwrap_or_default();
    let Some(&first) = rest.first() else {
        return Ok(None);
    };
    if first != kind {
        return Err(());
    }
    let Some(cr) = rest.iter().position(|&b| b == b'\r') else {
        return if rest.len() > MAX_HEADER_LINE {
            Err(())
        } else {
            Ok(None)
        };
    };
    let Some(&lf) = rest.get(cr + 1) else {
        return Ok(None);
    };
    if lf != b'\n' {
        return Err(());
    }
    let number = std::str::from_utf8(&rest[1..cr])
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(())?;
    Ok(Some((number, pos + cr + 2)))
}

#[cfg(test)]
mod tests {
    use super::RespParser;

    fn parse_in_chunks(input: &[u8], chunk: usize) -> Vec<Vec<String>> {
        let mut parser = RespParser::default();
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            parser.feed(piece, &mut out);
        }
        assert!(parser.pending.is_empty(), "bytes left over");
        out
    }

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn parses_pipelines_split_anywhere() {
        let input = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv\r\nv!\r\n*1\r\n$4\r\nPING\r\n";
        let expected = vec![
            argv(&["GET", "k"]),
            argv(&["SET", "k", "v\r\nv!"]),
            argv(&["PING"]),
        ];
        for chunk in 1..=input.len() {
            assert_eq!(parse_in_chunks(input, chunk), expected, "chunk {chunk}");
        }
    }

    #[test]
    fn skips_inline_and_empty_arrays() {
        let input = b"PING\r\n*0\r\n*-1\r\n*1\r\n$4\r\nINFO\r\n";
        assert_eq!(parse_in_chunks(input, 3), vec![argv(&["INFO"])]);
    }

    #[test]
    fn empty_and_binary_arguments() {
        let input = b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$2\r\n\xff\x00\r\n";
        assert_eq!(
            parse_in_chunks(input, 2),
            vec![argv(&["SET", "", "\u{fffd}\u{0}"])]
        );
    }

    #[test]
    fn stops_parsing_after_garbage() {
        let mut parser = RespParser::default();
        let mut out = Vec::new();
        parser.feed(b"*1\r\n:5\r\n", &mut out);
        parser.feed(b"*1\r\n$4\r\nPING\r\n", &mut out);
        assert!(out.is_empty());
        assert!(parser.broken);
    }
}
