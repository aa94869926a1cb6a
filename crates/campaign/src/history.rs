//! What the campaign records of each request: who sent it, with which cookie, when it started
//! and ended, and what came back. The checker reads nothing else, so every claim it makes can
//! be traced to these records (written to a file when an anomaly is found).

use serde::Serialize;

/// The operations a simulated browser performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Read every key of the session (`GET /all`).
    Read,
    /// Put a unique value under one of a few keys (`GET /put`).
    Put,
    /// Locked increment of the counter `n` (`GET /incr`).
    Incr,
    /// Login: bind the browser's user and rotate the id, under the lock (`GET /login`).
    Login,
    /// Logout: destroy the session (`GET /logout`).
    Logout,
    /// End the user's other sessions (`GET /revoke-others`).
    RevokeOthers,
    /// List the user's sessions (`GET /list`).
    List,
}

impl Kind {
    /// Every kind, in the report's order.
    pub const ALL: [Kind; 7] = [
        Kind::Read,
        Kind::Put,
        Kind::Incr,
        Kind::Login,
        Kind::Logout,
        Kind::RevokeOthers,
        Kind::List,
    ];

    /// The route's name, as in the report.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Read => "read",
            Kind::Put => "put",
            Kind::Incr => "incr-locked",
            Kind::Login => "login",
            Kind::Logout => "logout",
            Kind::RevokeOthers => "revoke-others",
            Kind::List => "list",
        }
    }

    /// Whether the request takes the session lock (its latency bound includes `lock_wait`).
    pub fn locked(self) -> bool {
        matches!(self, Kind::Incr | Kind::Login)
    }
}

/// What the response did to the browser's cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CookieOut {
    /// No `Set-Cookie` for the session cookie.
    Keep,
    /// A `Set-Cookie` with this id.
    Set(String),
    /// A `Set-Cookie` removing the cookie.
    Clear,
}

/// How a request ended, as the browser saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// An HTTP status.
    Status(u16),
    /// The app could not be reached (the connection was refused): an app instance restarting.
    /// The request was never sent.
    Unreachable(String),
    /// The connection failed after the request was sent, before an answer (an app instance
    /// killed while it ran the request): it may or may not have had its effect.
    Cut(String),
    /// No answer within the client's timeout.
    Timeout,
}

impl Outcome {
    /// Answered `2xx`: the request's effects are acknowledged.
    pub fn ok(&self) -> bool {
        matches!(self, Outcome::Status(s) if (200..300).contains(s))
    }

    /// The request certainly changed nothing: refused by the library with `409` (ended session,
    /// lock lost) or `401` (not signed in), or the app was never reached.
    pub fn refused(&self) -> bool {
        matches!(self, Outcome::Status(409 | 401) | Outcome::Unreachable(_))
    }

    /// Neither acknowledged nor refused: its effects may or may not have happened (`503`, a
    /// timeout).
    pub fn unknown(&self) -> bool {
        !self.ok() && !self.refused()
    }

    /// A short label for the report (`200`, `409`, `503`, `unreachable`, `timeout`).
    pub fn label(&self) -> String {
        match self {
            Outcome::Status(s) => s.to_string(),
            Outcome::Unreachable(_) => "unreachable".into(),
            Outcome::Cut(_) => "cut".into(),
            Outcome::Timeout => "timeout".into(),
        }
    }
}

/// One request of one tab, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Op {
    /// Its index in the history.
    pub id: usize,
    /// The simulated browser (its cookie jar).
    pub browser: usize,
    /// The tab of that browser.
    pub tab: usize,
    /// What it did.
    pub kind: Kind,
    /// Which app instance it went to.
    pub instance: usize,
    /// When the browser sent it, microseconds since the campaign started.
    pub start: u64,
    /// When the answer (or the failure) came back, microseconds since the campaign started.
    pub end: u64,
    /// The session id the request carried.
    pub cookie_in: Option<String>,
    /// What the response did to the cookie.
    pub cookie_out: CookieOut,
    /// The status, or why there was none.
    pub outcome: Outcome,
    /// `put`: the key; `login`, `revoke-others`, `list`: the browser's user.
    pub arg: Option<String>,
    /// `put`: the unique value written; `login`: the unique tag of this login; `incr-locked`:
    /// a unique token naming the request in the app's log of lock holds.
    pub value: Option<String>,
    /// The response body (JSON for `2xx`).
    pub body: String,
}

impl Op {
    /// The session the request's effects landed in: the id a response set (a new session, or
    /// a login's new id), else the one the request carried.
    pub fn session(&self) -> Option<&str> {
        match &self.cookie_out {
            CookieOut::Set(id) => Some(id),
            _ => self.cookie_in.as_deref(),
        }
    }

    /// One line for the report: `#12 b3/t1 login(u1) @1.234-1.250s :1 in=abcd… out=set:ef01… 200`.
    pub fn line(&self) -> String {
        let short = |s: &str| s.chars().take(8).collect::<String>();
        let cookie_in = self.cookie_in.as_deref().map_or("-".into(), short);
        let cookie_out = match &self.cookie_out {
            CookieOut::Keep => "keep".into(),
            CookieOut::Set(id) => format!("set:{}", short(id)),
            CookieOut::Clear => "clear".into(),
        };
        let arg = match (&self.arg, &self.value) {
            (Some(a), Some(v)) => format!("({a}={v})"),
            (Some(a), None) => format!("({a})"),
            _ => String::new(),
        };
        let body: String = self.body.chars().take(160).collect();
        format!(
            "#{} b{}/t{} {}{arg} @{:.3}-{:.3}s app{} in={cookie_in} out={cookie_out} {} {body}",
            self.id,
            self.browser,
            self.tab,
            self.kind.name(),
            self.start as f64 / 1e6,
            self.end as f64 / 1e6,
            self.instance,
            self.outcome.label(),
        )
    }
}
