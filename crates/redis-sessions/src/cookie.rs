//! The session cookie: reading the id from a request, writing `Set-Cookie` and the removal cookie.
//!
//! Only the configured cookie name is looked at, and its value must be a well-formed
//! [`SessionId`]; anything else is ignored as if there were no cookie (no store round trip, and
//! the client never gets to choose its id). The header is read as bytes: another site's cookie
//! with a UTF-8 value elsewhere in the header does not hide ours. If a client sends the name
//! several times (a stale cookie left by a parent domain or an old path, next to the live one),
//! every well-formed value is a candidate, in order, up to [`MAX_CANDIDATES`]: the manager uses
//! the first one with a live record (as Spring Session does).
//!
//! The `Set-Cookie` values are marked sensitive, so header-logging middleware and HTTP/2's
//! header compression (HPACK never indexes sensitive values) leave the id out.

use http::{HeaderMap, HeaderValue, header};
use smallvec::SmallVec;

use crate::config::{SameSite, SessionConfig, SessionFormat};
use crate::id::SessionId;

/// How many well-formed ids of our cookie name a request may offer; the rest are ignored, so a
/// request can cost at most this many loads.
pub const MAX_CANDIDATES: usize = 4;

/// The well-formed session ids the request's `Cookie` headers carry under `cookie_name`, in
/// order, without repeats, at most [`MAX_CANDIDATES`]. Empty when there is none.
///
/// ```
/// use http::{HeaderMap, HeaderValue, header};
/// use redis_sessions::{SessionId, cookie::session_ids_from_headers};
///
/// let (stale, live) = (SessionId::generate(), SessionId::generate());
/// let mut headers = HeaderMap::new();
/// let text = format!("theme=\u{e9}t\u{e9}; dmsession={}; dmsession={}", stale.expose(), live.expose());
/// headers.insert(header::COOKIE, HeaderValue::from_bytes(text.as_bytes()).unwrap());
/// assert_eq!(session_ids_from_headers(&headers, "dmsession"), [stale, live]);
/// ```
#[must_use]
pub fn session_ids_from_headers(headers: &HeaderMap, cookie_name: &str) -> Vec<SessionId> {
    session_ids_of_format(headers, cookie_name, SessionFormat::Native)
}

/// [`session_ids_from_headers`] for ids of `format`'s kind (see [`SessionId::parse_for`]).
#[must_use]
pub fn session_ids_of_format(
    headers: &HeaderMap,
    cookie_name: &str,
    format: SessionFormat,
) -> Vec<SessionId> {
    candidates(headers, cookie_name, format).into_vec()
}

/// The ids a request offers, as the manager keeps them: nearly every request carries one id or
/// none, so one is held without a heap allocation (the `Vec` cost about 200 instructions a
/// request, callgrind).
pub(crate) type Candidates = SmallVec<[SessionId; 1]>;

/// [`session_ids_of_format`] as [`Candidates`].
pub(crate) fn candidates(
    headers: &HeaderMap,
    cookie_name: &str,
    format: SessionFormat,
) -> Candidates {
    let mut ids = Candidates::new();
    let name = cookie_name.as_bytes();
    for header in headers.get_all(header::COOKIE) {
        let mut rest = header.as_bytes();
        while !rest.is_empty() {
            // `name = value` pairs between semicolons (names never hold `=`, checked at start-up).
            let end = memchr::memchr(b';', rest).unwrap_or(rest.len());
            let pair = &rest[..end];
            rest = rest.get(end + 1..).unwrap_or_default();
            let Some(after) = pair.trim_ascii_start().strip_prefix(name) else {
                continue;
            };
            let Some(value) = after.trim_ascii_start().strip_prefix(b"=") else {
                continue;
            };
            let value = value.trim_ascii();
            let value = value.strip_prefix(b"\"").unwrap_or(value);
            let value = value.strip_suffix(b"\"").unwrap_or(value);
            let Some(id) = SessionId::parse_bytes_for(value, format) else {
                continue;
            };
            if !ids.contains(&id) {
                ids.push(id);
                if ids.len() == MAX_CANDIDATES {
                    return ids;
                }
            }
        }
    }
    ids
}

/// The first well-formed session id the request carries (see [`session_ids_from_headers`]).
#[must_use]
pub fn session_id_from_headers(headers: &HeaderMap, cookie_name: &str) -> Option<SessionId> {
    session_ids_from_headers(headers, cookie_name)
        .into_iter()
        .next()
}

/// The `Set-Cookie` text for `value`, rendered by the `cookie` crate.
fn text(config: &SessionConfig, value: String, max_age: cookie::time::Duration) -> String {
    let same_site = match config.cookie_samesite {
        SameSite::Lax => cookie::SameSite::Lax,
        SameSite::Strict => cookie::SameSite::Strict,
        SameSite::None => cookie::SameSite::None,
    };
    let mut builder = cookie::Cookie::build((config.cookie_name.as_str(), value))
        .http_only(true)
        .secure(config.cookie_secure)
        .same_site(same_site)
        .path(config.cookie_path.as_str())
        .max_age(max_age);
    if let Some(domain) = &config.cookie_domain {
        builder = builder.domain(domain.as_str());
    }
    builder.build().to_string()
}

/// `text` as a header marked sensitive (kept out of logs by `http`'s `Debug`).
fn sensitive(text: String) -> HeaderValue {
    // Name, path and domain were validated at start-up and the value is base64url, so the header
    // is always valid; fall back to an empty value rather than panic. The text becomes the
    // header's bytes without a copy.
    let mut header = HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static(""));
    header.set_sensitive(true);
    header
}

/// `Max-Age` of a session cookie: `cookie_lifespan`, at least one second.
fn lifespan(config: &SessionConfig) -> cookie::time::Duration {
    let secs = i64::try_from(config.cookie_lifespan.as_secs()).unwrap_or(i64::MAX);
    cookie::time::Duration::seconds(secs.max(1))
}

/// `Set-Cookie` carrying `id`, with `Max-Age` = `cookie_lifespan`.
///
/// ```
/// use redis_sessions::{SessionConfig, SessionId, cookie::set_cookie};
///
/// let header = set_cookie(&SessionConfig::default(), &SessionId::generate());
/// let text = header.to_str().unwrap();
/// assert!(text.starts_with("dmsession="));
/// assert!(text.contains("Max-Age=86400") && text.contains("HttpOnly") && text.contains("Secure"));
/// ```
#[must_use]
pub fn set_cookie(config: &SessionConfig, id: &SessionId) -> HeaderValue {
    sensitive(text(config, id.expose(), lifespan(config)))
}

/// `Set-Cookie` headers for the session ids of one configuration: the attributes
/// (`; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=...`) are rendered once by the `cookie`
/// crate, exactly as [`set_cookie`] renders them, and each response only joins the name, the id
/// and those attributes (rendering through `fmt` cost about 2,000 instructions a response).
#[derive(Debug, Clone)]
pub(crate) struct SetCookieTemplate {
    /// `name=`.
    name: String,
    /// Everything after the value.
    attributes: String,
}

impl SetCookieTemplate {
    pub(crate) fn new(config: &SessionConfig) -> Self {
        let text = text(config, String::new(), lifespan(config));
        // The name was validated at start-up (no `=`): the value starts right after it.
        let split = (config.cookie_name.len() + 1).min(text.len());
        Self {
            name: text[..split].to_owned(),
            attributes: text[split..].to_owned(),
        }
    }

    /// The same header as [`set_cookie`] for `id`.
    pub(crate) fn header(&self, id: &SessionId) -> HeaderValue {
        let mut text =
            String::with_capacity(self.name.len() + id.exposed_len() + self.attributes.len());
        text.push_str(&self.name);
        id.expose_into(&mut text);
        text.push_str(&self.attributes);
        sensitive(text)
    }
}

/// `Set-Cookie` that makes the browser drop the session cookie (`Max-Age=0`, same path/domain).
#[must_use]
pub fn removal_cookie(config: &SessionConfig) -> HeaderValue {
    sensitive(text(config, String::new(), cookie::time::Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_well_formed_value_under_our_name_counts() {
        let id = SessionId::generate();
        let mut headers = HeaderMap::new();
        let text = format!(
            "other={}; dmsession=garbage; dmsession={}",
            id.expose(),
            id.expose()
        );
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("")),
        );
        assert_eq!(session_id_from_headers(&headers, "dmsession"), Some(id));
        assert_eq!(session_id_from_headers(&headers, "absent"), None);
    }

    #[test]
    fn a_foreign_cookie_with_utf8_does_not_hide_ours() {
        let id = SessionId::generate();
        let text = format!("name=J\u{f6}rg; dmsession={}; x=\u{1f600}", id.expose());
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_bytes(text.as_bytes())
                .unwrap_or_else(|_| HeaderValue::from_static("")),
        );
        assert_eq!(session_id_from_headers(&headers, "dmsession"), Some(id));
    }

    #[test]
    fn every_well_formed_value_of_our_name_is_a_candidate_in_order() {
        let ids: Vec<SessionId> = (0..6).map(|_| SessionId::generate()).collect();
        let mut headers = HeaderMap::new();
        for chunk in ids.chunks(3) {
            let text = chunk
                .iter()
                .map(|id| format!("dmsession={}", id.expose()))
                .collect::<Vec<_>>()
                .join("; ");
            headers.append(
                header::COOKIE,
                HeaderValue::from_str(&format!("{text}; dmsession={}", ids[0].expose()))
                    .unwrap_or_else(|_| HeaderValue::from_static("")),
            );
        }
        assert_eq!(session_ids_from_headers(&headers, "dmsession"), ids[..4]);
    }

    #[test]
    fn the_template_renders_exactly_what_set_cookie_renders() {
        let configs = [
            SessionConfig::default(),
            SessionConfig {
                cookie_name: "__Host-s".into(),
                cookie_samesite: crate::config::SameSite::Strict,
                cookie_lifespan: std::time::Duration::from_secs(7),
                ..SessionConfig::default()
            },
            SessionConfig {
                cookie_domain: Some("example.com".into()),
                cookie_secure: false,
                cookie_path: "/shop".into(),
                cookie_samesite: crate::config::SameSite::None,
                ..SessionConfig::default()
            },
        ];
        for config in &configs {
            let template = SetCookieTemplate::new(config);
            for _ in 0..20 {
                let id = SessionId::generate();
                let ours = template.header(&id);
                assert_eq!(ours, set_cookie(config, &id));
                assert!(ours.is_sensitive());
            }
        }
    }

    #[test]
    fn set_cookie_is_marked_sensitive() {
        let header = set_cookie(&SessionConfig::default(), &SessionId::generate());
        assert!(header.is_sensitive());
        assert!(removal_cookie(&SessionConfig::default()).is_sensitive());
    }

    #[test]
    fn removal_cookie_expires_now() {
        let text = removal_cookie(&SessionConfig::default());
        let text = text.to_str().unwrap_or_default();
        assert!(text.starts_with("dmsession=;"), "{text}");
        assert!(
            text.contains("Max-Age=0") && text.contains("Path=/"),
            "{text}"
        );
    }
}
