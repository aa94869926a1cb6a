//! Rotation: moving a session to a new id without losing a write and without resurrecting it.
//!
//! A rotation (login) first creates the new record from this request's copy, then ends the old
//! one with `end`, which atomically reads it and leaves a tombstone naming the successor. Every
//! write to the old id that landed before that step is in the record it returns and is carried
//! over to the new id; every write after it finds the tombstone and fails (`409`). So a write
//! that was answered `2xx` is never dropped. On a locked rotation the old record ends only while
//! the lock is still this request's: a login slower than `lock_ttl` gets `409` instead of
//! overwriting a locked write saved meanwhile, and the new record is removed again.
//!
//! The order also makes failures safe: if the process stops after the first step, the old
//! session lives on (the new record is an orphan that expires); a retry after a store error
//! reuses the same new id, and `end` recognises its own tombstone and answers what it answered
//! the first time (the store keeps that answer as long as the tombstone). So a retry whose first
//! `end` ran but whose reply was lost (a timeout) still carries over every write that the first
//! `end` found, and one whose first `end` found the session already ended still removes the new
//! record: every step is repeated with the same inputs and ends in the same state. Re-creating
//! the new record on a retry writes this request's copy again, and the carry-over is saved again
//! over it, so a carry-over save that ran before its reply was lost is not undone either.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use super::SessionManager;
use crate::error::SessionError;
use crate::id::SessionId;
use crate::observe::Observed;
use crate::store::{ChangeSet, EndOutcome, EndRequest, LockToken, Record, SaveOutcome, now_ms};

/// A planned rotation.
#[derive(Debug)]
pub(crate) struct Rotation {
    pub(super) old: SessionId,
    pub(super) new: SessionId,
    /// This request's copy of the session, with its changes.
    pub(super) record: Record,
    /// The keys this request changed or removed: its values win over anything carried over.
    pub(super) ours: HashSet<String>,
    /// The lock this request holds on the old id.
    pub(super) lock: Option<LockToken>,
}

impl SessionManager {
    pub(super) async fn rotate_now(
        &self,
        rotation: &Rotation,
        op: &Observed<'_>,
    ) -> Result<(), SessionError> {
        let store = &self.inner.store;
        let ttl = self.ttl(rotation.record.meta.created_ms, now_ms());
        let new = rotation.new.storage_id();
        // A revoke that listed the new id's index entry ended it first: the login fails (409)
        // and the old session stays as it was (`execute` releases its lock).
        match op.call(store.create(&new, &rotation.record, ttl)).await? {
            SaveOutcome::Saved => {}
            SaveOutcome::Gone | SaveOutcome::LockLost => return Err(SessionError::Gone),
        }
        let end = EndRequest {
            tombstone: self.tombstone(),
            lock: rotation.lock.as_ref(),
            require_lock: rotation.lock.is_some(),
            successor: new.as_str(),
        };
        let current = match op.call(store.end(&rotation.old.storage_id(), end)).await? {
            EndOutcome::Ended(current) => current,
            // The session ended meanwhile (or the lock was lost): the copy must not outlive it.
            outcome @ (EndOutcome::NotLive | EndOutcome::LockLost) => {
                let remove = EndRequest {
                    tombstone: self.tombstone(),
                    lock: None,
                    require_lock: false,
                    successor: "",
                };
                op.call(store.end(&new, remove)).await?;
                return Err(if outcome == EndOutcome::LockLost {
                    SessionError::LockLost
                } else {
                    SessionError::Gone
                });
            }
        };
        let Some(changes) = carried_over(rotation, current, ttl) else {
            return Ok(());
        };
        match op.call(store.save(&new, &changes)).await? {
            SaveOutcome::Saved => Ok(()),
            SaveOutcome::Gone | SaveOutcome::LockLost => Err(SessionError::Gone),
        }
    }
}

/// What other requests wrote to the old record after this request loaded it: fields that
/// differ from this request's copy (and that this request did not change itself), and fields
/// that they removed. `None` when there is nothing to carry over.
fn carried_over(
    rotation: &Rotation,
    current: Record,
    ttl: std::time::Duration,
) -> Option<ChangeSet> {
    let copy: HashMap<&str, &Bytes> = rotation
        .record
        .fields
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let theirs: HashSet<&str> = current.fields.iter().map(|(k, _)| k.as_str()).collect();
    let removed: Vec<String> = copy
        .keys()
        .filter(|k| !theirs.contains(*k) && !rotation.ours.contains(**k))
        .map(|k| (*k).to_owned())
        .collect();
    let set: Vec<(String, Bytes)> = current
        .fields
        .iter()
        .filter(|(k, v)| !rotation.ours.contains(k) && copy.get(k.as_str()) != Some(&v))
        .cloned()
        .collect();
    if set.is_empty() && removed.is_empty() {
        return None;
    }
    Some(ChangeSet {
        set,
        removed,
        meta: rotation.record.meta,
        ttl,
        unlock: None,
        // Nobody but this request knows the new id yet: the plain save is safe.
        within_lifetime: true,
    })
}
