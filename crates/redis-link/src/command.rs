//! Redis commands, encoded in RESP as they are built.
//!
//! Why not `redis::Cmd`: it keeps each argument's bytes and its end offset in two growing
//! vectors, and the batcher then re-encodes the whole command into the connection's queue. For a
//! new session's `HSET` and `PEXPIRE` that cost about 3,700 instructions (building plus
//! encoding, callgrind, `bash bench/callgrind.sh`), more than the SHA-256 of its id. A
//! [`Command`] writes each argument's RESP form (`$len\r\nbytes\r\n`) into one buffer as it is
//! added, so sending it is one header and one copy. Arguments go through the `redis` crate's
//! own [`ToRedisArgs`], so every value reaches Redis exactly as it did through `Cmd` (a unit
//! test compares the bytes).

use std::io;

use redis::{RedisWrite, ToRedisArgs};

/// One Redis command: its arguments already in RESP, and how many there are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Command {
    args: usize,
    body: Vec<u8>,
}

/// A command named `name` (`cmd("HGETALL").arg(key)`).
#[must_use]
#[inline]
pub fn cmd(name: &str) -> Command {
    let mut command = Command {
        args: 0,
        // Room for the name and a key or two: most commands never grow it.
        body: Vec::with_capacity(96),
    };
    command.write_arg(name.as_bytes());
    command
}

impl Command {
    /// Adds `arg` (one argument, or several for a list), as `redis::Cmd::arg` would.
    #[inline]
    pub fn arg<T: ToRedisArgs>(&mut self, arg: T) -> &mut Self {
        arg.write_redis_args(self);
        self
    }

    /// The command, leaving an empty one in its place (ends a chain of `arg` calls).
    #[must_use]
    #[inline]
    pub fn take(&mut self) -> Self {
        std::mem::take(self)
    }

    /// Appends the whole command, as Redis reads it, to `out`.
    pub(crate) fn write_to(&self, out: &mut Vec<u8>) {
        header(out, b'*', self.args, self.body.len());
        out.extend_from_slice(&self.body);
    }
}

/// A RESP header line: `kind` (`*` for a command's argument count, `$` for an argument's length),
/// the number, CRLF.
/// `room` is what the caller writes right after it, reserved together.
#[inline]
fn header(out: &mut Vec<u8>, kind: u8, n: usize, room: usize) {
    // Most numbers are one digit (argument counts, short keys' parts, small values): no
    // formatting, no copy of a digit string. Everything in one reservation: each step of a
    // command's encoding cost about 120 instructions an argument before (callgrind).
    if n < 10 {
        out.reserve(4 + room);
        out.extend_from_slice(&[kind, b'0' + n as u8, b'\r', b'\n']);
    } else {
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(n).as_bytes();
        out.reserve(digits.len() + 3 + room);
        out.push(kind);
        out.extend_from_slice(digits);
        out.extend_from_slice(b"\r\n");
    }
}

impl RedisWrite for Command {
    #[inline]
    fn write_arg(&mut self, arg: &[u8]) {
        self.args += 1;
        header(&mut self.body, b'$', arg.len(), arg.len() + 2);
        self.body.extend_from_slice(arg);
        self.body.extend_from_slice(b"\r\n");
    }

    fn writer_for_next_arg(&mut self) -> impl io::Write + '_ {
        ArgWriter {
            command: self,
            arg: Vec::new(),
        }
    }

    fn reserve_space_for_args(&mut self, additional: impl IntoIterator<Item = usize>) {
        let bytes: usize = additional.into_iter().map(|len| len + 16).sum();
        self.body.reserve(bytes);
    }
}

/// An argument written in pieces: its length comes first in RESP, so it is added whole when
/// the writer is dropped.
struct ArgWriter<'a> {
    command: &'a mut Command,
    arg: Vec<u8>,
}

impl io::Write for ArgWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.arg.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for ArgWriter<'_> {
    fn drop(&mut self) {
        self.command.write_arg(&self.arg);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn bytes(command: &Command) -> Vec<u8> {
        let mut out = Vec::new();
        command.write_to(&mut out);
        out
    }

    #[test]
    fn encodes_every_argument_kind_as_redis_cmd_does() {
        let fields = vec!["a".to_owned(), String::new(), "ключ".to_owned()];
        let keys: &[&str] = &["k1", "k2"];
        let value: &[u8] = &[0, 13, 10, 255];
        // The same arguments through both builders.
        macro_rules! every_kind {
            ($command:expr) => {
                $command
                    .arg("key")
                    .arg(value)
                    .arg(&fields)
                    .arg(keys)
                    .arg(u64::MAX)
                    .arg(-1i64)
                    .arg(keys.len())
                    .arg(vec![1u8, 2, 3])
            };
        }
        let ours = every_kind!(cmd("HSET")).take();
        let theirs = every_kind!(redis::cmd("HSET")).get_packed_command();
        assert_eq!(bytes(&ours), theirs);
    }

    #[test]
    fn a_long_argument_and_one_written_in_pieces_are_whole() {
        let long = vec![b'x'; 100_000];
        let mut command = cmd("SET");
        command.arg("k").arg(&long[..]);
        {
            let mut writer = command.writer_for_next_arg();
            writer.write_all(b"in ").expect("a Vec takes any write");
            writer.write_all(b"pieces").expect("a Vec takes any write");
        }
        let theirs = redis::cmd("SET")
            .arg("k")
            .arg(&long[..])
            .arg("in pieces")
            .get_packed_command();
        assert_eq!(bytes(&command), theirs);
    }

    #[test]
    fn commands_append_one_after_another() {
        let mut out = Vec::new();
        cmd("PING").write_to(&mut out);
        cmd("GET").arg("k").write_to(&mut out);
        assert_eq!(out, b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    }
}
