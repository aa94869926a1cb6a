//! The session cookie: reading the id from a request, writing `Set-Cookie` and the removal cookie.
//!
//! Only the configured cookie name is looked at, and its value must be a well-formed
//! [`SessionId`]; anything else is ignored as if there were no cookie (no store round trip, and
//! the client never gets to choose its id). If a client sends the name several times (e.g. from a
//! parent-domain cookie), the first well-formed value wins.

use http::{HeaderMap, HeaderValue, header};

use crate::config::{SameSite, SessionConfig};
use crate::id::SessionId;

/// The session id the request carries, if any is well-formed.
#[must_use]
pub fn session_id_from_headers(headers: &HeaderMap, cookie_name: &str) -> Option<SessionId> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == cookie_name)
        .find_map(|(_, value)| SessionId::parse(value.trim_matches('"')))
}

fn build(config: &SessionConfig, value: String, max_age: cookie::time::Duration) -> HeaderValue {
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
    // Name, path and domain were validated at start-up and the value is base64url, so the header
    // is always valid; fall back to an empty value rather than panic.
    HeaderValue::from_str(&builder.build().to_string())
        .unwrap_or_else(|_| HeaderValue::from_static(""))
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
    let secs = i64::try_from(config.cookie_lifespan.as_secs()).unwrap_or(i64::MAX);
    build(
        config,
        id.expose(),
        cookie::time::Duration::seconds(secs.max(1)),
    )
}

/// `Set-Cookie` that makes the browser drop the session cookie (`Max-Age=0`, same path/domain).
#[must_use]
pub fn removal_cookie(config: &SessionConfig) -> HeaderValue {
    build(config, String::new(), cookie::time::Duration::ZERO)
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
