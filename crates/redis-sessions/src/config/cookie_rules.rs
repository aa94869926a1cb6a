//! The rules of the session cookie's name and attributes, apart from the other settings because
//! they follow what browsers accept rather than what the library needs: a cookie a browser
//! silently drops (a `__Host-` name with a `Domain`, a name too long to fit beside the id) would
//! make every visitor look new, with nothing in any log to say why.
//!
//! Browsers keep a cookie only if its name and value together are at most 4096 bytes, and ignore
//! an attribute whose value is longer than 1024 bytes (RFC 6265bis, section 5.6; Chrome and
//! Firefox do both). The value is always a 43-character session id, so these are limits on
//! `cookie_name`, `cookie_path` and `cookie_domain`, checked when the configuration is loaded.

use super::validate::invalid;
use super::{ConfigError, SessionConfig};
use crate::id::ID_LEN;

/// Most bytes of name and value together that browsers keep.
pub const MAX_COOKIE_BYTES: usize = 4096;
/// Most bytes of one attribute's value that browsers do not ignore.
pub const MAX_ATTRIBUTE_BYTES: usize = 1024;
/// Longest `cookie_name`: room for the 43-character id within [`MAX_COOKIE_BYTES`].
pub const MAX_NAME_BYTES: usize = MAX_COOKIE_BYTES - ID_LEN;

/// Why a name is too long (its number is [`MAX_NAME_BYTES`], checked by a test).
const NAME_TOO_LONG: &str = "must be at most 4053 bytes: browsers keep a cookie only if its name \
                             and value (the 43-character session id) are at most 4096 bytes \
                             together";

/// `cookie_name` must be an RFC 6265 token that leaves room for the id.
pub(super) fn cookie_name(name: &str) -> Result<(), &'static str> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        Err("must be a non-empty cookie name of letters, digits and !#$%&'*+-.^_`|~")
    } else if name.len() > MAX_NAME_BYTES {
        Err(NAME_TOO_LONG)
    } else {
        Ok(())
    }
}

/// `cookie_path`: an absolute path of visible ASCII that cannot end the cookie attribute early,
/// short enough that browsers do not ignore it.
pub(super) fn cookie_path(path: &str) -> Result<(), &'static str> {
    let visible = |b: u8| b.is_ascii_graphic() && b != b';' && b != b',';
    if !path.starts_with('/') || !path.bytes().all(visible) {
        Err(
            "must start with / and hold only visible ASCII characters other than ; and , \
             (no spaces or control characters), e.g. / or /app",
        )
    } else if path.len() > MAX_ATTRIBUTE_BYTES {
        Err("must be at most 1024 bytes: browsers ignore a longer Path attribute")
    } else {
        Ok(())
    }
}

/// `cookie_domain`: a host name, optionally with the one leading dot old browsers expected.
pub(super) fn cookie_domain(domain: &str) -> Result<(), &'static str> {
    let host = domain.strip_prefix('.').unwrap_or(domain);
    let label =
        |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !host.split('.').all(label) {
        Err(
            "must be a host name such as example.com or .example.com: letters, digits, - and \
             dots between non-empty labels, at most one leading dot, no spaces, ;, /, : or \
             control characters",
        )
    } else if domain.len() > MAX_ATTRIBUTE_BYTES {
        Err("must be at most 1024 bytes: browsers ignore a longer Domain attribute")
    } else {
        Ok(())
    }
}

/// Browsers drop a cookie whose name starts with `__Secure-` unless it is `Secure`, and one
/// starting with `__Host-` unless it is also `Path=/` without `Domain`. RFC 6265bis matches the
/// prefixes ignoring letter case (older browsers matched them exactly), so this does too.
pub(super) fn prefix_rules(s: &SessionConfig) -> Result<(), ConfigError> {
    let starts_with = |prefix: &str| {
        s.cookie_name
            .get(..prefix.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
    };
    let mut broken = Vec::new();
    if !s.cookie_secure {
        broken.push("cookie_secure = false".to_owned());
    }
    let rule = if starts_with("__Host-") {
        if s.cookie_path != "/" {
            broken.push(format!("cookie_path = {:?}", s.cookie_path));
        }
        if let Some(domain) = &s.cookie_domain {
            broken.push(format!("cookie_domain = {domain:?}"));
        }
        "a cookie named __Host-... (in any letter case) is dropped by browsers unless \
         cookie_secure = true, cookie_path = / and cookie_domain is unset"
    } else if starts_with("__Secure-") {
        "a cookie named __Secure-... (in any letter case) is dropped by browsers unless \
         cookie_secure = true"
    } else {
        return Ok(());
    };
    if broken.is_empty() {
        return Ok(());
    }
    let reason = format!("{rule}; here {}", broken.join(", "));
    Err(invalid(
        "session",
        "cookie_name",
        s.cookie_name.as_str(),
        reason,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_messages_state_the_limits_the_code_applies() {
        assert_eq!(MAX_NAME_BYTES, 4053);
        assert!(NAME_TOO_LONG.contains(&format!("at most {MAX_NAME_BYTES} bytes")));
        assert!(NAME_TOO_LONG.contains(&format!("{ID_LEN}-character")));
        assert!(NAME_TOO_LONG.contains(&format!("{MAX_COOKIE_BYTES} bytes")));
        let long = format!("/{}", "a".repeat(MAX_ATTRIBUTE_BYTES));
        let said = cookie_path(&long).err().unwrap_or_default();
        assert!(said.contains(&format!("at most {MAX_ATTRIBUTE_BYTES} bytes")));
    }

    #[test]
    fn a_name_may_take_exactly_the_room_the_id_leaves() {
        assert_eq!(cookie_name(&"n".repeat(MAX_NAME_BYTES)), Ok(()));
        assert_eq!(
            cookie_name(&"n".repeat(MAX_NAME_BYTES + 1)),
            Err(NAME_TOO_LONG)
        );
        assert!(cookie_path(&format!("/{}", "p".repeat(MAX_ATTRIBUTE_BYTES - 1))).is_ok());
        let domain = format!(".{}", vec!["d".repeat(63); 16].join("."));
        assert_eq!(domain.len(), MAX_ATTRIBUTE_BYTES);
        assert_eq!(cookie_domain(&domain), Ok(()));
        assert!(cookie_domain(&format!("{domain}d")).is_err());
    }
}
