//! Walking a pool's keys with `SCAN` (never `KEYS`, which blocks Redis for the whole keyspace):
//! the patterns of the session layout, one master at a time, with a progress line on a
//! terminal when a scan takes a while.
//!
//! Keys of the library: `{prefix}{<storage id>}` (the session hash, or a string tombstone after
//! a destroy or rotation) and `{prefix}{<storage id>}:l` (a string, the session lock). A storage
//! id is always 22 characters, so the patterns match these shapes and no other key the
//! application may keep under the same prefix.

use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use redis::aio::MultiplexedConnection;
use redis_sessions::id::STORAGE_LEN;

use crate::error::{CtlError, CtlResult};

/// Keys asked for per `SCAN` call (a hint to Redis; each call stays short).
const SCAN_COUNT: usize = 1000;
/// A scan shorter than this shows no progress line.
const QUIET_FOR: Duration = Duration::from_millis(300);

/// `prefix` with the glob characters of `SCAN MATCH` escaped.
fn escape(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Matches the session keys of `prefix` (hashes and tombstones): `prefix{` + 22 characters + `}`.
pub(crate) fn session_pattern(prefix: &str) -> String {
    format!("{}{{{}}}", escape(prefix), "?".repeat(STORAGE_LEN))
}

/// Matches every key of a session of `prefix`: the session key and its lock (`...}:l`).
pub(crate) fn purge_pattern(prefix: &str) -> String {
    format!("{}*", session_pattern(prefix))
}

/// One `SCAN` walk over one master.
pub(crate) struct Scanner {
    pattern: String,
    kind: Option<&'static str>,
    cursor: u64,
    done: bool,
}

impl Scanner {
    /// A walk over the keys matching `pattern`, of Redis type `kind` if given (`TYPE` option).
    pub(crate) fn new(pattern: String, kind: Option<&'static str>) -> Self {
        Self {
            pattern,
            kind,
            cursor: 0,
            done: false,
        }
    }

    /// The next batch of keys (possibly empty), or `None` once the walk is complete.
    pub(crate) async fn next(
        &mut self,
        conn: &mut MultiplexedConnection,
        node: &str,
    ) -> CtlResult<Option<Vec<Vec<u8>>>> {
        if self.done {
            return Ok(None);
        }
        let mut scan = redis::cmd("SCAN");
        scan.arg(self.cursor)
            .arg("MATCH")
            .arg(&self.pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT);
        if let Some(kind) = self.kind {
            scan.arg("TYPE").arg(kind);
        }
        let (cursor, keys): (u64, Vec<Vec<u8>>) = scan
            .query_async(conn)
            .await
            .map_err(|e| CtlError::redis(&format!("SCAN on {node}"), &e))?;
        self.cursor = cursor;
        self.done = cursor == 0;
        Ok(Some(keys))
    }
}

/// Keys seen so far, so that a key `SCAN` returns twice (it may, while Redis resizes its
/// table) is counted once. Holds 64-bit hashes, not keys: about 16 bytes per session.
#[derive(Default)]
pub(crate) struct Seen(HashSet<u64, BuildHasherDefault<IdentityHasher>>);

impl Seen {
    /// Whether `key` is new (and remembers it).
    pub(crate) fn insert(&mut self, key: &[u8]) -> bool {
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(key);
        self.0.insert(hash)
    }
}

/// The hasher of [`Seen`]'s set: its values are hashes already.
#[derive(Default)]
pub(crate) struct IdentityHasher(u64);

impl std::hash::Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The progress line of a scan: hidden unless stderr is a terminal and the scan lasts longer
/// than [`QUIET_FOR`].
pub(crate) struct Progress {
    bar: ProgressBar,
    started: Instant,
    shown: bool,
    terminal: bool,
}

impl Progress {
    /// A progress line that is not shown yet.
    pub(crate) fn new() -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        let style = ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        Self {
            bar,
            started: Instant::now(),
            shown: false,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// Updates the message; shows the line once the scan has run for a while.
    pub(crate) fn update(&mut self, message: impl FnOnce() -> String) {
        if !self.terminal {
            return;
        }
        if !self.shown && self.started.elapsed() >= QUIET_FOR {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.bar.enable_steady_tick(Duration::from_millis(120));
            self.shown = true;
        }
        if self.shown {
            self.bar.set_message(message());
        }
    }

    /// Time since the scan started.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Removes the line.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_the_session_layout_only() {
        let id = "?".repeat(22);
        assert_eq!(session_pattern("dm:"), format!("dm:{{{id}}}"));
        assert_eq!(purge_pattern("dm:"), format!("dm:{{{id}}}*"));
        assert_eq!(
            session_pattern("a*b?[c]\\"),
            format!("a\\*b\\?\\[c\\]\\\\{{{id}}}")
        );
        assert_eq!(session_pattern(""), format!("{{{id}}}"));
    }

    #[test]
    fn a_key_is_seen_once() {
        let mut seen = Seen::default();
        assert!(seen.insert(b"dm:{a}"));
        assert!(!seen.insert(b"dm:{a}"));
        assert!(seen.insert(b"dm:{b}"));
    }
}
