//! Executing a plan's writes: the store calls of each destroy, create, save (or touch) and
//! rotation, each one observed operation (a span, a latency sample, its counters; see
//! [`crate::observe`]), and the release of a lock the writes did not release.

use super::SessionManager;
use super::persist::Write;
use crate::error::SessionError;
use crate::id::{SessionId, UserIndexId};
use crate::observe::{Observed, Op};
use crate::store::{EndOutcome, EndRequest, LockToken, SaveOutcome, now_ms};

impl SessionManager {
    /// Runs the store calls of a plan, one observed operation each: the destroys first, then
    /// the write (entering or refreshing the user's index entry first, see `users.rs`).
    pub(super) async fn write(
        &self,
        delete: &[SessionId],
        write: &Write,
        token: Option<&LockToken>,
        index: Option<&UserIndexId>,
    ) -> Result<(), SessionError> {
        if !delete.is_empty() {
            Box::pin(self.end_destroyed(delete, token)).await?;
        }
        let observer = &self.inner.observer;
        let op = match write {
            Write::None => return Ok(()),
            Write::Create(id, _) => observer.start(Op::Create, Some(id)),
            Write::Save(id, changes) if changes.set.is_empty() && changes.removed.is_empty() => {
                observer.start(Op::Touch, Some(id))
            }
            Write::Save(id, _) => observer.start(Op::Save, Some(id)),
            Write::Rotate(rotation) => {
                let op = observer.start(Op::Rotate, Some(&rotation.old));
                op.new_id(&rotation.new);
                op
            }
        };
        let writes = self.write_one(write, &op);
        let result = op.run(self.indexed(index, write, &op, writes)).await;
        op.finish(result)
    }

    /// Ends the ids a request destroyed, one observed operation each.
    async fn end_destroyed(
        &self,
        delete: &[SessionId],
        token: Option<&LockToken>,
    ) -> Result<(), SessionError> {
        let (observer, store) = (&self.inner.observer, &self.inner.store);
        for id in delete {
            let end = EndRequest {
                tombstone: self.tombstone(),
                lock: token,
                require_lock: false,
                successor: "",
            };
            let op = observer.start(Op::Destroy, Some(id));
            let storage = id.storage_id();
            let ended = op.run(op.call(store.end(&storage, end))).await;
            op.finish(match ended {
                Ok(EndOutcome::Ended(_) | EndOutcome::NotLive) => Ok(()),
                Ok(EndOutcome::LockLost) => Err(SessionError::LockLost),
                Err(error) => Err(error.into()),
            })?;
        }
        Ok(())
    }

    /// The store calls of a create, save or rotation.
    async fn write_one(&self, write: &Write, op: &Observed<'_>) -> Result<(), SessionError> {
        match write {
            Write::None => {}
            Write::Create(id, record) => {
                let ttl = self.ttl(record.meta.created_ms, now_ms());
                let storage = id.storage_id();
                match op
                    .call(self.inner.store.create(&storage, record, ttl))
                    .await?
                {
                    SaveOutcome::Saved => {}
                    SaveOutcome::Gone | SaveOutcome::LockLost => return Err(SessionError::Gone),
                }
            }
            Write::Save(id, changes) => {
                let storage = id.storage_id();
                match op.call(self.inner.store.save(&storage, changes)).await? {
                    SaveOutcome::Saved => {}
                    SaveOutcome::Gone => return Err(SessionError::Gone),
                    SaveOutcome::LockLost => return Err(SessionError::LockLost),
                }
            }
            // Boxed, like the other rare paths, to keep the common write's future small.
            Write::Rotate(rotation) => Box::pin(self.rotate_now(rotation, op)).await?,
        }
        Ok(())
    }

    /// Releases the lock of a request whose writes did not.
    pub(super) async fn unlock(
        &self,
        id: &SessionId,
        token: &LockToken,
    ) -> Result<(), SessionError> {
        let op = self.inner.observer.start(Op::Unlock, Some(id));
        let storage = id.storage_id();
        let released = op
            .run(op.call(self.inner.store.unlock(&storage, token)))
            .await;
        op.finish(released.map_err(SessionError::from))
    }
}
