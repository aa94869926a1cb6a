//! Client traffic for the fault tests: per session, one loop of locked increments of `c` and one
//! loop of unlocked increments of fresh keys `s<session>k1`, `s<session>k2`, ... (names no other
//! request, nor any other session, writes), each request timed and recorded.

use std::time::{Duration, Instant};

use crate::common::Counter;

/// The client gives up on a request after this long; the tests' bounds are far below it, so a
/// request that hangs shows up as a late answer or as this timeout, never as a stuck test.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which counter route a request used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/incr-locked?key=c`.
    Locked,
    /// `/incr?key=s<session>k<i>`, a key no other request writes.
    Unlocked,
}

/// One request and its answer.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) route: Route,
    /// Index of the session (its cookie) in the list given to [`run`].
    pub(crate) session: usize,
    pub(crate) key: String,
    pub(crate) started: Instant,
    pub(crate) took: Duration,
    /// Status and body, or the client's error (its timeout, a refused connection).
    pub(crate) answer: Result<(u16, String), String>,
}

impl Outcome {
    pub(crate) fn status(&self) -> Option<u16> {
        self.answer.as_ref().ok().map(|(status, _)| *status)
    }

    pub(crate) fn ended(&self) -> Instant {
        self.started + self.took
    }

    pub(crate) fn ok(&self) -> bool {
        self.status() == Some(200)
    }
}

/// Sends traffic on every session in `cookies` until `until`, pausing `pace` between two
/// requests of one loop; returns every request's outcome.
pub(crate) async fn run(
    app: &Counter,
    cookies: &[String],
    until: Instant,
    pace: Duration,
) -> Vec<Outcome> {
    let loops = cookies.iter().enumerate().flat_map(|(session, cookie)| {
        [Route::Locked, Route::Unlocked]
            .map(|route| one_loop(app, session, cookie, route, until, pace))
    });
    futures_util::future::join_all(loops)
        .await
        .into_iter()
        .flatten()
        .collect()
}

async fn one_loop(
    app: &Counter,
    session: usize,
    cookie: &str,
    route: Route,
    until: Instant,
    pace: Duration,
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let mut next_key = 0;
    while Instant::now() < until {
        let key = match route {
            Route::Locked => "c".to_owned(),
            Route::Unlocked => {
                next_key += 1;
                format!("s{session}k{next_key}")
            }
        };
        let path = match route {
            Route::Locked => format!("/incr-locked?key={key}"),
            Route::Unlocked => format!("/incr?key={key}"),
        };
        let started = Instant::now();
        let answer = app
            .try_get(&path, Some(cookie), CLIENT_TIMEOUT)
            .await
            .map(|reply| (reply.status, reply.body));
        outcomes.push(Outcome {
            route,
            session,
            key,
            started,
            took: started.elapsed(),
            answer,
        });
        tokio::time::sleep(pace).await;
    }
    outcomes
}

/// Asserts that every outcome `selected` picks got an HTTP answer with one of `statuses` within
/// `bound`, and that there was at least one; `what` names the selection in messages.
pub(crate) fn assert_answered(
    outcomes: &[Outcome],
    what: &str,
    selected: impl Fn(&Outcome) -> bool,
    statuses: &[u16],
    bound: Duration,
) {
    let picked: Vec<&Outcome> = outcomes.iter().filter(|o| selected(o)).collect();
    assert!(
        !picked.is_empty(),
        "no request {what}: the test proves nothing"
    );
    let bad: Vec<&&Outcome> = picked
        .iter()
        .filter(|o| o.took > bound || !o.status().is_some_and(|s| statuses.contains(&s)))
        .collect();
    let t0 = outcomes.iter().map(|o| o.started).min();
    let shown: Vec<String> = bad
        .iter()
        .take(10)
        .map(|o| {
            let at = o.started - t0.unwrap_or(o.started);
            let answer = match &o.answer {
                Ok((status, body)) => format!("{status} {body:?}"),
                Err(e) => format!("no answer: {e}"),
            };
            format!(
                "{:?} s{} {} at {at:.3?} took {:.3?}: {answer}",
                o.route, o.session, o.key, o.took
            )
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{} of {} requests {what} were not answered {statuses:?} within {bound:?}; the first \
         ones (times from the first request):\n{}",
        bad.len(),
        picked.len(),
        shown.join("\n")
    );
}

/// The largest value a 200 of the locked route returned for `session`, if any.
pub(crate) fn largest_locked_value(outcomes: &[Outcome], session: usize) -> Option<i64> {
    outcomes
        .iter()
        .filter(|o| o.route == Route::Locked && o.session == session && o.ok())
        .filter_map(|o| o.answer.as_ref().ok()?.1.parse().ok())
        .max()
}

/// The unlocked keys of `session` whose increment was answered 200.
pub(crate) fn acknowledged_keys(outcomes: &[Outcome], session: usize) -> Vec<String> {
    outcomes
        .iter()
        .filter(|o| o.route == Route::Unlocked && o.session == session && o.ok())
        .map(|o| o.key.clone())
        .collect()
}

/// When the first request of `route` that started at or after `since` was answered 200.
pub(crate) fn first_success(outcomes: &[Outcome], route: Route, since: Instant) -> Option<Instant> {
    outcomes
        .iter()
        .filter(|o| o.route == route && o.started >= since && o.ok())
        .map(Outcome::ended)
        .min()
}

/// Requests per status (`None`: no HTTP answer), for messages.
pub(crate) fn census(outcomes: &[Outcome]) -> Vec<(Option<u16>, usize)> {
    let mut counts = std::collections::BTreeMap::new();
    for outcome in outcomes {
        *counts.entry(outcome.status()).or_insert(0) += 1;
    }
    counts.into_iter().collect()
}
