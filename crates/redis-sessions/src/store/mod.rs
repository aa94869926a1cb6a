//! The storage contract: what a backend must do, in records of fields and bytes.
//!
//! A store never sees a `Session`: it is handed a [`StorageId`], records of encoded fields and
//! change sets, and answers with outcomes. The manager above decides *what* to write; a store
//! decides *how* to write it atomically. Every backend runs the same conformance suite
//! (`tests/store_conformance.rs`), which is the real specification of this trait:
//!
//! - `load` of an unknown or expired id is [`Loaded::Missing`]; of an id that [`SessionStore::end`]
//!   ended (destroyed or rotated away) less than its tombstone time ago, [`Loaded::Ended`]; a
//!   record always carries its [`Meta`].
//! - `save` never recreates a record that is gone (destroyed, rotated away, or expired): it
//!   answers [`SaveOutcome::Gone`]. This is what stops a slow request from resurrecting a
//!   session after logout. A store may rely on what `end` left behind (a tombstone) for that
//!   when the manager says the record cannot have expired yet ([`ChangeSet::within_lifetime`]),
//!   and must check atomically otherwise.
//! - `end` is atomic: it returns the record exactly as it stood when it ended, so a rotation can
//!   carry over every write that landed before it, and every later save finds it gone. For a
//!   rotation it keeps that answer with the tombstone: a retry to the same successor (the first
//!   reply was lost) gets the same record back, or the same [`EndOutcome::NotLive`], so a
//!   retried rotation carries over exactly what the first one would have.
//! - `save` writes only the fields it is given, so concurrent saves of different keys of one
//!   session both survive.
//! - a save that holds the session lock releases it, and refuses to write if the lock is no
//!   longer its own ([`SaveOutcome::LockLost`]).
//! - `take_fields` removes each given field on its own and says whether it was this call that
//!   removed it, so of two concurrent calls for one field exactly one gets `true` (flash
//!   messages rely on it to be shown once); it never creates a record, nor touches its TTL.
//! - a user's index (`index_*`) lists every live session bound to the user: entries are added
//!   before the record exists and kept longer than it lives; it may list dead ones.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::data::redact;
use crate::id::{StorageId, UserIndexId};

pub mod memory;
pub mod redis;

/// A boxed future returned by store methods (boxed so that stores can be used as trait objects).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// An error from the storage backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or did not answer in time.
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    /// The backend answered with something this library did not expect.
    #[error("session store error: {0}")]
    Backend(String),
}

/// Times the store keeps beside the data, in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// When the session was created (for the absolute lifetime).
    pub created_ms: u64,
    /// When its TTL was last refreshed (for the throttled touch).
    pub touched_ms: u64,
}

impl Meta {
    /// Encoded size: two 48-bit little-endian millisecond counts (good until the year 10889).
    /// Measured on Redis 7.0, 12 bytes instead of 16 keeps a one-integer session in the next
    /// smaller allocation class (112 instead of 120 bytes per session).
    pub const ENCODED_LEN: usize = 12;

    /// Encodes as [`Meta::ENCODED_LEN`] bytes.
    #[must_use]
    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[..6].copy_from_slice(&self.created_ms.to_le_bytes()[..6]);
        out[6..].copy_from_slice(&self.touched_ms.to_le_bytes()[..6]);
        out
    }

    /// Decodes [`Meta::encode`]'s output; `None` for anything else.
    #[must_use]
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != Self::ENCODED_LEN {
            return None;
        }
        let read = |part: &[u8]| {
            let mut word = [0u8; 8];
            word[..6].copy_from_slice(part);
            u64::from_le_bytes(word)
        };
        Some(Self {
            created_ms: read(&bytes[..6]),
            touched_ms: read(&bytes[6..]),
        })
    }
}

/// The current time in milliseconds since the Unix epoch.
#[must_use]
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, millis)
}

/// Whole milliseconds of `d`, saturating at `u64::MAX`.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A whole stored session: metadata and every data field. Its `Debug` shows the keys and the
/// sizes of their values, never a value (so does every type here that holds one).
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    /// Creation and touch times.
    pub meta: Meta,
    /// Data key to encoded value.
    pub fields: Vec<(String, Bytes)>,
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("meta", &self.meta)
            .field("fields", &sized(&self.fields))
            .finish()
    }
}

/// The keys of `fields` with the sizes of their values.
fn sized(fields: &[(String, Bytes)]) -> redact::Sized<'_> {
    redact::Sized::of(fields.iter().map(|(k, v)| (k.as_str(), v)))
}

/// A random token proving ownership of a session lock (its `Debug` hides it).
#[derive(Clone, PartialEq, Eq)]
pub struct LockToken(pub String);

impl std::fmt::Debug for LockToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LockToken").field(&redact::Hidden).finish()
    }
}

/// A session lock this process holds. If it is dropped without [`HeldLock::disarm`] (the request
/// was cancelled, or persisting failed), it releases the lock in a background task, so the
/// session is not blocked until `lock_ttl` runs out. It may also carry a guard that keeps the
/// other requests of this process for the same session waiting in line (see the manager).
pub struct HeldLock {
    store: Arc<dyn SessionStore>,
    id: StorageId,
    token: Option<LockToken>,
    _local: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl std::fmt::Debug for HeldLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldLock")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl HeldLock {
    /// The lock `token` holds (or is about to hold) on `id` in `store`. Create it *before*
    /// asking the store for the lock: if the request is cancelled while the answer is on its way,
    /// dropping this releases whatever the store granted.
    pub fn new(store: Arc<dyn SessionStore>, id: StorageId, token: LockToken) -> Self {
        Self {
            store,
            id,
            token: Some(token),
            _local: None,
        }
    }

    /// Keeps `local` (the caller's in-process queue turn) until the lock is let go.
    #[must_use]
    pub fn with_local(mut self, local: Option<Box<dyn std::any::Any + Send + Sync>>) -> Self {
        self._local = local;
        self
    }

    /// The token that proves ownership.
    #[must_use]
    pub fn token(&self) -> Option<&LockToken> {
        self.token.as_ref()
    }

    /// Forgets the lock without releasing it in the store (it was released or deleted there);
    /// the in-process guard is dropped, letting the next local waiter go.
    pub fn disarm(mut self) {
        self.token = None;
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        let Some(token) = self.token.take() else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (store, id) = (Arc::clone(&self.store), self.id.clone());
            runtime.spawn(async move {
                if let Err(error) = store.unlock(&id, &token).await {
                    tracing::warn!(%error, "releasing an abandoned session lock failed");
                }
            });
        }
    }
}

/// What a save writes: only the changed fields, new metadata, a new TTL.
#[derive(Clone)]
pub struct ChangeSet {
    /// Fields to write.
    pub set: Vec<(String, Bytes)>,
    /// Fields to delete.
    pub removed: Vec<String>,
    /// The metadata to store (a save is also a touch).
    pub meta: Meta,
    /// The TTL the record gets.
    pub ttl: Duration,
    /// Release this lock in the same step, and write nothing unless it is still held.
    pub unlock: Option<LockToken>,
    /// The record cannot have expired by itself yet: by the manager's clock its TTL runs for at
    /// least a safety margin more. Then only an `end` can have removed it, and a store that
    /// leaves tombstones may skip the atomic existence check (the Redis store then saves with
    /// plain pipelined commands instead of a script).
    pub within_lifetime: bool,
}

impl std::fmt::Debug for ChangeSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeSet")
            .field("set", &sized(&self.set))
            .field("removed", &self.removed)
            .field("meta", &self.meta)
            .field("ttl", &self.ttl)
            .field("unlock", &self.unlock)
            .field("within_lifetime", &self.within_lifetime)
            .finish()
    }
}

/// How a save ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveOutcome {
    /// Written.
    Saved,
    /// The record no longer exists; nothing was written.
    Gone,
    /// The lock given in [`ChangeSet::unlock`] is held by someone else or expired; nothing written.
    LockLost,
}

/// What a load found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// A live record.
    Found(Record),
    /// No record: never stored, expired, or ended longer ago than its tombstone lasts.
    Missing,
    /// The id was ended by [`SessionStore::end`] (destroyed or rotated away) recently: a request
    /// carrying it raced a logout or a login, and must neither write nor get a new session.
    Ended,
}

impl Loaded {
    /// The record, if one was found.
    #[must_use]
    pub fn record(self) -> Option<Record> {
        match self {
            Self::Found(record) => Some(record),
            Self::Missing | Self::Ended => None,
        }
    }
}

/// How [`SessionStore::end`] should end a record.
#[derive(Debug, Clone, Copy)]
pub struct EndRequest<'a> {
    /// How long the tombstone lasts (saves and loads within it see the id as ended).
    pub tombstone: Duration,
    /// The lock this request holds on the record, released with it (a lock held by anyone else
    /// is left alone).
    pub lock: Option<&'a LockToken>,
    /// End the record only if `lock` still holds the session lock (a locked rotation); a
    /// destroy passes `false`: a logout proceeds even when the lock was lost.
    pub require_lock: bool,
    /// For a rotation, the storage id of the successor, kept in the tombstone so that a retried
    /// rotation recognises its own earlier end and gets its answer again; empty for a destroy.
    pub successor: &'a str,
}

/// How [`SessionStore::end`] went. A retried rotation (same successor) gets the answer of its
/// first end again, while the tombstone lasts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndOutcome {
    /// The record was live and is ended now (or by this rotation's first end); this is how it
    /// stood at that moment.
    Ended(Record),
    /// There was no live record (never stored, expired, or ended by another request); a
    /// tombstone was written all the same (or this rotation's first end found none).
    NotLive,
    /// `require_lock` was set and the lock is not `lock`'s any more: nothing changed.
    LockLost,
}

/// How a locked load ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockedLoad {
    /// The lock is ours; what the load under it found.
    Acquired(Loaded),
    /// Someone else holds the lock; nothing was loaded.
    Busy,
}

/// A session storage backend. See the module docs for the contract.
pub trait SessionStore: Send + Sync + 'static {
    /// Loads the record, telling a recently ended id from one that was never stored or expired.
    fn load<'a>(&'a self, id: &'a StorageId) -> StoreFuture<'a, Loaded>;

    /// Takes the session lock (unless held by someone else) and loads the record in one step.
    fn load_locked<'a>(
        &'a self,
        id: &'a StorageId,
        token: &'a LockToken,
        lock_ttl: Duration,
    ) -> StoreFuture<'a, LockedLoad>;

    /// Stores a new record with the given TTL. Ids are 256 random bits, so `id` is new, but it
    /// may already be ended: a login writes the user's index entry of its new id first, and a
    /// revoke that listed it ends the id (a tombstone) before the record is written. Then
    /// nothing is written and the answer is [`SaveOutcome::Gone`]: a revoked session never
    /// comes to life outside its user's index.
    fn create<'a>(
        &'a self,
        id: &'a StorageId,
        record: &'a Record,
        ttl: Duration,
    ) -> StoreFuture<'a, SaveOutcome>;

    /// Applies a change set to an existing record (never recreating it) and refreshes its TTL.
    fn save<'a>(
        &'a self,
        id: &'a StorageId,
        changes: &'a ChangeSet,
    ) -> StoreFuture<'a, SaveOutcome>;

    /// Releases the lock if `token` still owns it.
    fn unlock<'a>(&'a self, id: &'a StorageId, token: &'a LockToken) -> StoreFuture<'a, ()>;

    /// Ends the record atomically (destroy, or the old id of a rotation): replaces it with a
    /// tombstone for [`EndRequest::tombstone`], releases this request's lock, and returns the
    /// record as it stood. A save or load arriving within the tombstone time must find the id
    /// ended, even with [`ChangeSet::within_lifetime`] set.
    ///
    /// A rotation's end (a [`EndRequest::successor`] given) keeps its answer as long as its
    /// tombstone: ending the same id again for the same successor changes nothing and answers
    /// what the first end did ([`EndOutcome::Ended`] with the same record, or
    /// [`EndOutcome::NotLive`]). The manager retries a rotation whose reply was lost this way,
    /// and carries over what the first end read: without it, a write answered `2xx` to another
    /// request before the first end would be lost.
    fn end<'a>(&'a self, id: &'a StorageId, request: EndRequest<'a>)
    -> StoreFuture<'a, EndOutcome>;

    /// Removes `fields` from the live record, each atomically on its own, and answers for each
    /// (in order) whether this call removed it: `false` when it was not there, e.g. another call
    /// took it first. Neither the TTL nor the metadata change; a missing or ended record is not
    /// created, and every answer is then `false`.
    fn take_fields<'a>(
        &'a self,
        id: &'a StorageId,
        fields: &'a [String],
    ) -> StoreFuture<'a, Vec<bool>>;

    /// Adds `id` to the user's index (or refreshes its entry), to be kept at least `keep` from
    /// now, and keeps the index itself at least as long; drops entries whose time has passed. Called *before* the record is created
    /// and whenever the session's TTL is refreshed, so an entry outlives its session.
    fn index_add<'a>(
        &'a self,
        user: &'a UserIndexId,
        id: &'a StorageId,
        keep: Duration,
    ) -> StoreFuture<'a, ()>;

    /// The ids in the user's index, after dropping the entries whose time has passed (their
    /// sessions have certainly expired). Live sessions of the user are all among them.
    fn index_list<'a>(&'a self, user: &'a UserIndexId) -> StoreFuture<'a, Vec<StorageId>>;

    /// Removes `ids` from the user's index (after their records were ended).
    fn index_remove<'a>(
        &'a self,
        user: &'a UserIndexId,
        ids: &'a [StorageId],
    ) -> StoreFuture<'a, ()>;
}
