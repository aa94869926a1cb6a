//! What the history says about sessions, indexed once for the checks: which id a login
//! rotated to which (lineages), which requests ended or may have ended an id, which user a
//! session was bound to, and which request wrote each unique value.

use std::collections::HashMap;

use serde_json::Value;

use crate::history::{CookieOut, Kind, Op};

/// The history and its indexes.
pub struct Facts<'h> {
    /// Every recorded operation, by index.
    pub ops: &'h [Op],
    /// The parsed bodies of the answered requests (`Null` when not JSON).
    bodies: Vec<Value>,
    /// Successor id -> predecessor id, for each acknowledged login that rotated.
    pred: HashMap<&'h str, &'h str>,
    /// Id -> the logins and logouts sent with it that did or may have ended it.
    enders: HashMap<&'h str, Vec<usize>>,
    /// Id -> the request whose answer set it.
    made: HashMap<&'h str, usize>,
    /// Id made by a login (acknowledged or not) -> that login.
    made_by_login: HashMap<&'h str, usize>,
    /// Id -> the writes (put, incr, login) that landed in it.
    writes: HashMap<&'h str, Vec<usize>>,
    /// Unique value (put) or tag (login) -> the request that wrote it.
    writer: HashMap<&'h str, usize>,
    /// User -> the revoke-others requests of that user's browsers that were not refused,
    /// sorted by start.
    revokes: HashMap<String, Vec<usize>>,
}

impl<'h> Facts<'h> {
    /// Indexes `ops`.
    pub fn new(ops: &'h [Op]) -> Facts<'h> {
        let mut facts = Facts {
            ops,
            bodies: ops
                .iter()
                .map(|op| match op.outcome.ok() {
                    true => serde_json::from_str(&op.body).unwrap_or(Value::Null),
                    false => Value::Null,
                })
                .collect(),
            pred: HashMap::new(),
            enders: HashMap::new(),
            made_by_login: HashMap::new(),
            made: HashMap::new(),
            writes: HashMap::new(),
            writer: HashMap::new(),
            revokes: HashMap::new(),
        };
        for op in ops {
            facts.index(op);
        }
        for list in facts.revokes.values_mut() {
            list.sort_by_key(|&i| ops[i].start);
        }
        facts
    }

    fn index(&mut self, op: &'h Op) {
        if let Some(value) = &op.value {
            self.writer.insert(value, op.id);
        }
        let landed = self.landed(op);
        if let CookieOut::Set(id) = &op.cookie_out {
            self.made.entry(id).or_insert(op.id);
        }
        match op.kind {
            Kind::Put | Kind::Incr | Kind::Login => {
                if let Some(id) = landed {
                    self.writes.entry(id).or_default().push(op.id);
                }
            }
            _ => {}
        }
        if let (Kind::Login, Some(new)) = (op.kind, landed) {
            self.made_by_login.insert(new, op.id);
            if let (Some(old), true) = (op.cookie_in.as_deref(), op.outcome.ok())
                && old != new
            {
                self.pred.insert(new, old);
            }
        }
        let ends = matches!(op.kind, Kind::Login | Kind::Logout) && !op.outcome.refused();
        if let (true, Some(id)) = (ends, op.cookie_in.as_deref()) {
            self.enders.entry(id).or_default().push(op.id);
        }
        if let (Kind::RevokeOthers, false, Some(user)) = (op.kind, op.outcome.refused(), &op.arg) {
            self.revokes.entry(user.clone()).or_default().push(op.id);
        }
    }

    /// The session an operation's writes landed in: a login's new id (unknown unless its
    /// answer set it), else the id a response set (a new session), else the request's.
    pub fn landed(&self, op: &'h Op) -> Option<&'h str> {
        match (&op.cookie_out, op.kind) {
            (CookieOut::Set(id), _) => Some(id),
            (_, Kind::Login) => None,
            _ => op.cookie_in.as_deref(),
        }
    }

    /// The request whose answer gave the browser `id` (a login's or a first write's
    /// `Set-Cookie`), if recorded.
    pub fn made(&self, id: &str) -> Option<usize> {
        self.made.get(id).copied()
    }

    /// The parsed body of operation `i` (`Null` unless it was answered `2xx` with JSON).
    pub fn body(&self, i: usize) -> &Value {
        &self.bodies[i]
    }

    /// The request that wrote `value` (a put's value or a login's tag).
    pub fn writer(&self, value: &str) -> Option<&'h Op> {
        self.writer.get(value).map(|&i| &self.ops[i])
    }

    /// `id` and the ids it was rotated from, newest first.
    pub fn lineage(&self, id: &'h str) -> Vec<&'h str> {
        let mut chain = vec![id];
        while let Some(&older) = self.pred.get(chain[chain.len() - 1]) {
            if chain.contains(&older) || chain.len() > 10_000 {
                break;
            }
            chain.push(older);
        }
        chain
    }

    /// The writes that landed in the sessions of `lineage`.
    pub fn writes_in<'a>(&'a self, lineage: &'a [&'h str]) -> impl Iterator<Item = &'h Op> + 'a {
        lineage
            .iter()
            .filter_map(|id| self.writes.get(id))
            .flatten()
            .map(|&i| &self.ops[i])
    }

    /// The login that made `id` and the revokes of that login's user (sorted by start), if a
    /// login made it and its user revoked anything.
    fn login_and_revokes(&self, id: &str) -> Option<(&'h Op, &[usize])> {
        let login = &self.ops[*self.made_by_login.get(id)?];
        let revokes = self.revokes.get(login.arg.as_deref()?)?;
        Some((login, revokes))
    }

    /// An operation that ended `id` for certain before time `t` (acknowledged and finished
    /// before `t`): a login that rotated it, a logout of it, or a revoke of its user's other
    /// sessions that started after its login was answered.
    pub fn ended_before(&self, id: &str, t: u64) -> Option<usize> {
        let explicit = self.enders.get(id).into_iter().flatten().copied();
        let by_request = explicit.filter(|&e| {
            let op = &self.ops[e];
            let rotated = op.kind != Kind::Login
                || matches!(&op.cookie_out, CookieOut::Set(new) if new != id);
            op.outcome.ok() && op.end < t && rotated
        });
        if let Some(e) = by_request.min_by_key(|&e| self.ops[e].end) {
            return Some(e);
        }
        let (login, revokes) = self.login_and_revokes(id)?;
        if !login.outcome.ok() {
            return None;
        }
        let from = revokes.partition_point(|&r| self.ops[r].start <= login.end);
        revokes[from..]
            .iter()
            .copied()
            .take_while(|&r| self.ops[r].start < t)
            .find(|&r| {
                let op = &self.ops[r];
                op.outcome.ok() && op.end < t && op.cookie_in.as_deref() != Some(id)
            })
    }

    /// An operation that may have ended `id` before time `t` (started before `t` and not
    /// refused): a login or logout sent with it, or a revoke of its user's sessions that may
    /// have listed it.
    pub fn maybe_ended_before(&self, id: &str, t: u64) -> Option<usize> {
        let explicit = self.enders.get(id).into_iter().flatten().copied();
        if let Some(e) = explicit.filter(|&e| self.ops[e].start < t).min() {
            return Some(e);
        }
        let (login, revokes) = self.login_and_revokes(id)?;
        // A revoke that started before the login may still have listed it (a revoke's listing
        // is bounded by the client timeout): look back that far.
        let back = login.start.saturating_sub(30_000_000);
        let from = revokes.partition_point(|&r| self.ops[r].start < back);
        revokes[from..]
            .iter()
            .copied()
            .take_while(|&r| self.ops[r].start < t)
            .find(|&r| {
                let op = &self.ops[r];
                op.end > login.start && op.cookie_in.as_deref() != Some(id)
            })
    }
}
