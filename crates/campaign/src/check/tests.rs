//! The checker on small hand-written histories: each broken promise is reported under its
//! invariant, and the legal histories next to them (the same steps where an unanswered
//! request explains what was seen) are not.

use super::{Hold, Limits, check};
use crate::history::{CookieOut, Kind, Op, Outcome};

/// A history under construction: one browser (0), user `u0`, times in milliseconds.
#[derive(Default)]
struct History(Vec<Op>);

impl History {
    #[allow(clippy::too_many_arguments)]
    fn op(
        &mut self,
        kind: Kind,
        ms: (u64, u64),
        cookie_in: Option<&str>,
        cookie_out: CookieOut,
        status: u16,
        arg: Option<&str>,
        value: Option<&str>,
        body: &str,
    ) -> &mut Self {
        let id = self.0.len();
        self.0.push(Op {
            id,
            browser: 0,
            tab: 0,
            kind,
            instance: 0,
            start: ms.0 * 1000,
            end: ms.1 * 1000,
            cookie_in: cookie_in.map(str::to_owned),
            cookie_out,
            outcome: Outcome::Status(status),
            arg: arg.map(str::to_owned),
            value: value.map(str::to_owned),
            body: body.to_owned(),
        });
        self
    }

    fn put(&mut self, ms: (u64, u64), id: &str, key: &str, value: &str, status: u16) -> &mut Self {
        let body = format!("{{\"put\":\"{value}\"}}");
        self.op(
            Kind::Put,
            ms,
            Some(id),
            CookieOut::Keep,
            status,
            Some(key),
            Some(value),
            &body,
        )
    }

    fn read(&mut self, ms: (u64, u64), id: &str, body: &str) -> &mut Self {
        self.op(
            Kind::Read,
            ms,
            Some(id),
            CookieOut::Keep,
            200,
            None,
            None,
            body,
        )
    }

    fn found(&self, holds: &[Hold]) -> Vec<u8> {
        let limits = Limits {
            unlocked_us: 2_000_000,
            locked_us: 4_000_000,
            healed_at: Some(100_000_000),
            recovery_us: 5_000_000,
            lock_ttl_us: 5_000_000,
            app_down: Vec::new(),
        };
        let mut found: Vec<u8> = check(&self.0, &[], holds, &limits)
            .0
            .iter()
            .map(|a| a.invariant)
            .collect();
        found.sort_unstable();
        found
    }
}

#[test]
fn an_acknowledged_write_must_be_read_and_a_lost_one_is_reported() {
    let mut h = History::default();
    h.put((0, 1), "s", "k0", "b0t0-1", 200);
    h.read((2, 3), "s", r#"{"keys":{"k0":"b0t0-1"}}"#);
    assert_eq!(h.found(&[]), Vec::<u8>::new());
    h.read((4, 5), "s", r#"{"keys":{}}"#);
    assert_eq!(h.found(&[]), vec![1]);
}

#[test]
fn a_value_overwritten_before_the_read_is_stale_but_a_concurrent_one_is_not() {
    let mut h = History::default();
    h.put((0, 1), "s", "k0", "b0t0-1", 200);
    h.put((2, 3), "s", "k0", "b0t0-2", 200);
    // Concurrent with the read: either value may be seen.
    h.put((4, 8), "s", "k0", "b0t0-3", 200);
    h.read((5, 6), "s", r#"{"keys":{"k0":"b0t0-3"}}"#);
    h.read((5, 6), "s", r#"{"keys":{"k0":"b0t0-2"}}"#);
    assert_eq!(h.found(&[]), Vec::<u8>::new());
    h.read((9, 10), "s", r#"{"keys":{"k0":"b0t0-1"}}"#);
    assert_eq!(h.found(&[]), vec![1]);
}

#[test]
fn a_login_carries_the_data_over_to_the_new_id() {
    let mut h = History::default();
    h.put((0, 1), "s", "k1", "b0t0-1", 200);
    let new = CookieOut::Set("t".into());
    h.op(
        Kind::Login,
        (2, 3),
        Some("s"),
        new,
        200,
        Some("u0"),
        Some("b0t0.9"),
        "{}",
    );
    h.read(
        (4, 5),
        "t",
        r#"{"keys":{"k1":"b0t0-1"},"login":"b0t0.9","user":"u0"}"#,
    );
    assert_eq!(h.found(&[]), Vec::<u8>::new());
    h.read((6, 7), "t", r#"{"keys":{},"login":"b0t0.9","user":"u0"}"#);
    assert_eq!(h.found(&[]), vec![1]);
}

#[test]
fn an_ended_id_takes_no_write_and_reads_nothing_unless_the_end_was_unanswered() {
    let mut h = History::default();
    h.put((0, 1), "s", "k0", "b0t0-1", 200);
    h.op(
        Kind::Logout,
        (2, 3),
        Some("s"),
        CookieOut::Clear,
        200,
        None,
        None,
        "{}",
    );
    h.read((4, 5), "s", r#"{"keys":{}}"#);
    assert_eq!(h.found(&[]), Vec::<u8>::new());
    h.put((6, 7), "s", "k0", "b0t0-2", 200);
    h.read((8, 9), "s", r#"{"keys":{"k0":"b0t0-1"}}"#);
    assert_eq!(h.found(&[]), vec![2, 2]);

    // A logout answered 503 may have run: an empty read after it is legal, data too.
    let mut h = History::default();
    h.put((0, 1), "s", "k0", "b0t0-1", 200);
    h.op(
        Kind::Logout,
        (2, 3),
        Some("s"),
        CookieOut::Keep,
        503,
        None,
        None,
        "",
    );
    h.read((4, 5), "s", r#"{"keys":{}}"#);
    h.read((6, 7), "s", r#"{"keys":{"k0":"b0t0-1"}}"#);
    assert_eq!(h.found(&[]), Vec::<u8>::new());
}

#[test]
fn increments_are_counted_once_and_the_lock_is_held_by_one_request_at_a_time() {
    let mut h = History::default();
    let incr = |h: &mut History, ms, token: &str, n: i64, status| {
        let body = format!(r#"{{"n":{n},"from":0,"to":0}}"#);
        h.op(
            Kind::Incr,
            ms,
            Some("s"),
            CookieOut::Keep,
            status,
            None,
            Some(token),
            &body,
        );
    };
    incr(&mut h, (0, 1), "i1", 1, 200);
    incr(&mut h, (2, 3), "i2", 2, 200);
    // One answered 503 may have counted: a read may see 3, never 4.
    incr(&mut h, (4, 5), "i3", 0, 503);
    h.read((6, 7), "s", r#"{"n":3}"#);
    let hold = |op: &str, from, to| Hold {
        op: op.into(),
        from,
        to,
    };
    let apart = [hold("i1", 0, 10), hold("i2", 10, 20), hold("i3", 30, 40)];
    assert_eq!(h.found(&apart), Vec::<u8>::new());
    // A hold older than lock_ttl may be overtaken.
    let stale = [hold("i1", 0, 9_000_000), hold("i2", 6_000_000, 6_000_010)];
    assert_eq!(h.found(&stale), Vec::<u8>::new());
    let overlapping = [hold("i1", 0, 10), hold("i2", 5, 20)];
    assert_eq!(h.found(&overlapping), vec![3]);
    h.read((8, 9), "s", r#"{"n":4}"#);
    h.read((8, 9), "s", r#"{"n":1}"#);
    incr(&mut h, (10, 11), "i4", 2, 200);
    assert_eq!(h.found(&apart), vec![3, 3, 3]);
}

#[test]
fn a_value_of_another_session_or_browser_is_reported() {
    let mut h = History::default();
    h.put((0, 1), "s", "k0", "b0t0-1", 200);
    h.put((0, 1), "x", "k1", "b0t0-2", 200);
    h.read((2, 3), "s", r#"{"keys":{"k0":"b0t0-1","k1":"b0t0-2"}}"#);
    h.read(
        (2, 3),
        "s",
        r#"{"keys":{"k0":"b0t0-1","k2":"never-written"}}"#,
    );
    assert_eq!(h.found(&[]), vec![4, 4]);
}

#[test]
fn a_list_holds_only_its_users_live_sessions() {
    let mut h = History::default();
    let login = |h: &mut History, ms, from: &str, to: &str, user: &str, tag: &str| {
        let out = CookieOut::Set(to.into());
        h.op(
            Kind::Login,
            ms,
            Some(from),
            out,
            200,
            Some(user),
            Some(tag),
            "{}",
        );
    };
    login(&mut h, (0, 1), "a", "s", "u0", "b0t0.1");
    login(&mut h, (0, 1), "b", "t", "u1", "b0t0.2");
    let list = |tags: &[&str]| {
        let entries: Vec<String> = tags
            .iter()
            .map(|t| format!(r#"{{"about":"{t}"}}"#))
            .collect();
        format!(r#"{{"user":"u0","sessions":[{}]}}"#, entries.join(","))
    };
    let ok = list(&["b0t0.1"]);
    h.op(
        Kind::List,
        (2, 3),
        Some("s"),
        CookieOut::Keep,
        200,
        Some("u0"),
        None,
        &ok,
    );
    assert_eq!(h.found(&[]), Vec::<u8>::new());
    let other = list(&["b0t0.1", "b0t0.2"]);
    h.op(
        Kind::List,
        (4, 5),
        Some("s"),
        CookieOut::Keep,
        200,
        Some("u0"),
        None,
        &other,
    );
    assert_eq!(h.found(&[]), vec![5]);
}

#[test]
fn answers_are_2xx_409_or_503_in_time_and_succeed_after_the_heal() {
    let mut h = History::default();
    h.put((0, 1), "s", "k0", "b0t0-1", 409);
    h.put((0, 1_900), "s", "k0", "b0t0-2", 503);
    assert_eq!(h.found(&[]), Vec::<u8>::new());
    h.put((0, 1), "s", "k0", "b0t0-3", 500);
    h.put((0, 2_500), "s", "k0", "b0t0-4", 503);
    h.put((106_000, 106_001), "s", "k0", "b0t0-5", 503);
    assert_eq!(h.found(&[]), vec![6, 6, 7]);
}

#[test]
fn a_live_session_replaced_by_a_new_one_is_reported_an_ended_one_is_not() {
    let mut h = History::default();
    let first = CookieOut::Set("s".into());
    h.op(
        Kind::Put,
        (0, 1),
        None,
        first,
        200,
        Some("k0"),
        Some("b0t0-1"),
        "{}",
    );
    let again = CookieOut::Set("s".into());
    h.op(
        Kind::Put,
        (2, 3),
        Some("s"),
        again,
        200,
        Some("k0"),
        Some("b0t0-2"),
        "{}",
    );
    assert_eq!(h.found(&[]), Vec::<u8>::new());
    let other = CookieOut::Set("t".into());
    h.op(
        Kind::Incr,
        (4, 5),
        Some("s"),
        other,
        200,
        None,
        Some("i1"),
        r#"{"n":1}"#,
    );
    assert_eq!(h.found(&[]), vec![1]);

    // After a logout that may have run, a new session is what the library must give.
    let mut h = History::default();
    h.op(
        Kind::Logout,
        (0, 1),
        Some("s"),
        CookieOut::Keep,
        503,
        None,
        None,
        "",
    );
    let other = CookieOut::Set("t".into());
    h.op(
        Kind::Put,
        (2, 3),
        Some("s"),
        other,
        200,
        Some("k0"),
        Some("b0t0-1"),
        "{}",
    );
    assert_eq!(h.found(&[]), Vec::<u8>::new());
}
