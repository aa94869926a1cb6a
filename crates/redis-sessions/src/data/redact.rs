//! Debug output without secrets. Session values hold what applications keep secret (the CSRF
//! token, the user a session is bound to, whatever a handler stores), and `{:?}` reaches logs
//! easily: `#[tracing::instrument]` records every handler argument with it by default. So the
//! `Debug` of every public type that holds values shows their shape only (keys, counts, sizes),
//! and error messages of the value codecs lose the parts that quote a value. The types build
//! their `Debug` from these pieces.

use std::fmt;

/// The size of a value, in place of the value: `<12 bytes>`.
pub(crate) struct Size(pub(crate) usize);

impl fmt::Debug for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0)
    }
}

/// What stands for a secret that has no useful size (a token, a password).
pub(crate) struct Hidden;

impl fmt::Debug for Hidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A list of keys, for a map whose values are hidden: `["basket", "n"]`.
pub(crate) struct Keys<'a>(pub(crate) Vec<&'a str>);

impl fmt::Debug for Keys<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.0).finish()
    }
}

/// Keys with the sizes of their values: `{"basket": <12 bytes>}`.
pub(crate) struct Sized<'a>(pub(crate) Vec<(&'a str, usize)>);

impl<'a> Sized<'a> {
    /// The keys of `pairs` with the sizes of their values.
    pub(crate) fn of<V: AsRef<[u8]> + 'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a V)>,
    ) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k, v.as_ref().len()))
                .collect(),
        )
    }
}

impl fmt::Debug for Sized<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, n)| (k, Size(*n))))
            .finish()
    }
}

/// Shows the keys of the data, each with its value's size, how many changed and which were
/// removed; never a value.
impl fmt::Debug for super::SessionData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut removed: Vec<&str> = self.removed.iter().map(String::as_str).collect();
        removed.sort_unstable();
        f.debug_struct("SessionData")
            .field(
                "values",
                &Sized::of(self.values.iter().map(|(k, e)| (k, &e.bytes))),
            )
            .field("changed", &self.changed)
            .field("removed", &Keys(removed))
            .field("size_bytes", &self.size)
            .finish_non_exhaustive()
    }
}

/// The size of the value, and whether it changed.
impl fmt::Debug for super::Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("bytes", &Size(self.bytes.len()))
            .field("changed", &self.changed)
            .finish()
    }
}

/// The changed keys with their sizes, and the removed keys.
impl fmt::Debug for super::DataChanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataChanges")
            .field(
                "set",
                &Sized::of(self.set.iter().map(|(k, v)| (k.as_str(), v))),
            )
            .field(
                "removed",
                &Keys(self.removed.iter().map(String::as_str).collect()),
            )
            .finish()
    }
}

/// A codec's error message without the value it quotes. serde's messages name what they found
/// first and what the type expected after it (`invalid type: string "s3cret", expected u32`,
/// `unknown variant `x`, expected one of ...`): every `"..."` and `` `...` `` before
/// `, expected` becomes `"…"` / `` `…` ``; the expectation (written by the program, not taken
/// from the data) stays. Without `, expected`, every quoted part goes.
pub(crate) fn scrub(message: &str) -> String {
    let (found, expected) = match message.find(", expected") {
        Some(at) => message.split_at(at),
        None => (message, ""),
    };
    let mut out = String::with_capacity(message.len());
    let mut quote = None;
    let mut escaped = false;
    for c in found.chars() {
        match quote {
            Some(close) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && close == '"' {
                    escaped = true;
                } else if c == close {
                    out.push('…');
                    out.push(c);
                    quote = None;
                }
            }
            None => {
                out.push(c);
                if c == '"' || c == '`' {
                    quote = Some(c);
                }
            }
        }
    }
    if quote.is_some() {
        out.push('…');
    }
    out.push_str(expected);
    out
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn scrub_hides_what_was_found_and_keeps_what_was_expected() {
        let cases = [
            (
                r#"invalid type: string "s3cret", expected u32"#,
                r#"invalid type: string "…", expected u32"#,
            ),
            (
                r#"invalid value: string "a\"b", expected "x""#,
                r#"invalid value: string "…", expected "x""#,
            ),
            (
                "unknown variant `s3cret`, expected one of `A`, `B`",
                "unknown variant `…`, expected one of `A`, `B`",
            ),
            (
                "invalid type: integer `42`, expected a string",
                "invalid type: integer `…`, expected a string",
            ),
            ("unknown field `s3cret`", "unknown field `…`"),
            ("cut \"s3cr", "cut \"…"),
            (
                "invalid length 3, expected 2",
                "invalid length 3, expected 2",
            ),
        ];
        for (message, scrubbed) in cases {
            assert_eq!(scrub(message), scrubbed, "{message}");
        }
    }
}
