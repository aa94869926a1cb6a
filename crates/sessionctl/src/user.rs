//! `user list` and `user revoke`: the sessions an application bound to a user at login
//! (`Session::bind_user`), through the library's own `SessionManager` over the selected pool.
//!
//! Nothing here reads the user index itself: `SessionManager::user_sessions` lists (and drops
//! the entries of ended sessions), `revoke_user_session(s)` end each session with the manager's
//! tombstone time, as a logout does, so a request of a revoked session that saves late gets
//! `409` and never brings it back. Handles are those the library shows ("not the id": a handle
//! opens nothing).

use std::time::{SystemTime, UNIX_EPOCH};

use redis_sessions::{SessionManager, UserSession};
use serde_json::json;

use crate::error::{CtlError, CtlResult, code};
use crate::session::place;
use crate::value::{human_duration, iso_time};
use crate::{Context, Outcome};

/// The library's manager over the pool the tool works on (`--pool`, or the sessions' pool).
/// It connects lazily, at the first command.
fn manager(ctx: &Context) -> CtlResult<SessionManager> {
    let mut config = ctx.config.clone();
    config
        .session
        .redis_connection_pool
        .clone_from(&ctx.pool_name);
    SessionManager::new(config).map_err(|e| CtlError::Usage(e.to_string()))
}

/// Milliseconds since the Unix epoch (0 for a time before it).
fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A description as one line of a table: control characters (a newline, an escape sequence
/// in a `User-Agent`) are shown escaped, not sent to the terminal.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `user list`: the user's live sessions, oldest first.
pub(crate) async fn list(ctx: &Context, user: &str) -> CtlResult<Outcome> {
    let manager = manager(ctx)?;
    let sessions = manager
        .user_sessions(user, None)
        .await
        .map_err(|e| CtlError::session(&place(&ctx.pool), &e))?;
    let json = json!({
        "command": "user list",
        "pool": ctx.pool_name,
        "user": user,
        "count": sessions.len(),
        "sessions": sessions.iter().map(session_json).collect::<Vec<_>>(),
    });
    if sessions.is_empty() {
        return Ok(Outcome {
            code: code::NOT_FOUND,
            text: format!(
                "user {user:?} has no live session in pool {}",
                ctx.pool_name
            ),
            json,
        });
    }
    Ok(Outcome {
        code: code::OK,
        text: table(user, &ctx.pool_name, &sessions),
        json,
    })
}

fn session_json(session: &UserSession) -> serde_json::Value {
    let (created, last_seen) = (millis(session.created), millis(session.last_seen));
    json!({
        "handle": session.handle,
        "created": iso_time(created),
        "created_ms": created,
        "last_seen": iso_time(last_seen),
        "last_seen_ms": last_seen,
        "description": session.description,
    })
}

/// The text table of `user list`, then a summary line.
fn table(user: &str, pool: &str, sessions: &[UserSession]) -> String {
    let now = millis(SystemTime::now());
    let rows: Vec<[String; 4]> = sessions
        .iter()
        .map(|s| {
            let seen = millis(s.last_seen);
            [
                s.handle.clone(),
                iso_time(millis(s.created)),
                format!(
                    "{} ({} ago)",
                    iso_time(seen),
                    human_duration(now.saturating_sub(seen))
                ),
                s.description
                    .as_deref()
                    .map_or_else(|| "-".into(), printable),
            ]
        })
        .collect();
    let header = ["HANDLE", "CREATED", "LAST SEEN", "DESCRIPTION"].map(String::from);
    let widths: Vec<usize> = (0..3)
        .map(|i| {
            std::iter::once(&header)
                .chain(&rows)
                .map(|row| row[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        for (cell, width) in row.iter().zip(&widths) {
            text.push_str(&format!("{cell:<width$}  "));
        }
        text.push_str(&row[3]);
        text.push('\n');
    }
    let n = sessions.len();
    text.push_str(&format!(
        "{n} live session{} of user {user:?} in pool {pool}",
        if n == 1 { "" } else { "s" }
    ));
    text
}

/// `user revoke`: ends the session of `handle`, or every session of the user.
pub(crate) async fn revoke(ctx: &Context, user: &str, handle: Option<&str>) -> CtlResult<Outcome> {
    let manager = manager(ctx)?;
    let failed = |e| CtlError::session(&place(&ctx.pool), &e);
    let revoked = match handle {
        Some(handle) => usize::from(
            manager
                .revoke_user_session(user, handle)
                .await
                .map_err(failed)?,
        ),
        None => manager
            .revoke_user_sessions(user, None)
            .await
            .map_err(failed)?,
    };
    let tombstone_ms = u64::try_from(manager.tombstone_time().as_millis()).unwrap_or(u64::MAX);
    let json = json!({
        "command": "user revoke",
        "pool": ctx.pool_name,
        "user": user,
        "handle": handle,
        "revoked": revoked,
        "tombstone_ms": tombstone_ms,
    });
    let (code, text) = match (revoked, handle) {
        (0, Some(handle)) => (
            code::NOT_FOUND,
            format!(
                "user {user:?} has no live session with handle {handle:?}; nothing was revoked"
            ),
        ),
        (0, None) => (
            code::NOT_FOUND,
            format!("user {user:?} has no live session; nothing was revoked"),
        ),
        (n, _) => (
            code::OK,
            format!(
                "revoked {n} session{} of user {user:?}; late saves fail for {}",
                if n == 1 { "" } else { "s" },
                human_duration(tombstone_ms)
            ),
        ),
    };
    Ok(Outcome { code, text, json })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn session(handle: &str, description: Option<&str>) -> UserSession {
        UserSession {
            handle: handle.into(),
            current: false,
            created: UNIX_EPOCH + Duration::from_millis(951_782_400_123),
            last_seen: SystemTime::now(),
            description: description.map(String::from),
        }
    }

    #[test]
    fn the_table_aligns_columns_and_escapes_descriptions() {
        let sessions = [
            session("AAAAAAAAAAAAAAAAAAAAAA", Some("Firefox\n\u{1b}[31mred")),
            session("BBBBBBBBBBBBBBBBBBBBBB", None),
        ];
        let text = table("alice", "default", &sessions);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(
            lines[0].starts_with("HANDLE                  CREATED"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("AAAAAAAAAAAAAAAAAAAAAA  2000-02-29T00:00:00.123Z  "),
            "{text}"
        );
        assert!(lines[1].ends_with("Firefox\\n\\u{1b}[31mred"), "{text}");
        assert!(lines[2].ends_with("  -"), "{text}");
        let column = |line: &str| line.find("DESCRIPTION").or_else(|| line.rfind("  -"));
        assert_eq!(column(lines[0]), column(lines[2]).map(|i| i + 2), "{text}");
        assert_eq!(
            lines[3],
            "2 live sessions of user \"alice\" in pool default"
        );
    }

    #[test]
    fn times_before_the_epoch_do_not_fail() {
        assert_eq!(millis(UNIX_EPOCH - Duration::from_secs(1)), 0);
        assert_eq!(millis(UNIX_EPOCH + Duration::from_millis(5)), 5);
    }
}
