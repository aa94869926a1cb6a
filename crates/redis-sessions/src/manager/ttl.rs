//! TTL arithmetic: how long a record lives, how long a tombstone must outlive any request that
//! may still save with plain commands, and when a save must take the atomic path instead.

use std::time::Duration;

use super::SessionManager;
use crate::store::{Meta, millis};

/// How long after its load a session may still be saved with plain commands, trusting the
/// tombstone of a concurrent destroy or rotation to stop the write; later saves run the atomic
/// script. Tombstones last this long plus the clock margin.
const PLAIN_SAVE_WINDOW: Duration = Duration::from_secs(60);

impl SessionManager {
    /// The TTL a record gets now: the idle lifespan, cut short by the absolute lifetime.
    pub(super) fn ttl(&self, created_ms: u64, now: u64) -> Duration {
        let idle = self.inner.config.cookie_lifespan;
        match self.lifetime_end(created_ms) {
            Some(end) => idle.min(Duration::from_millis(end.saturating_sub(now).max(1))),
            None => idle,
        }
    }

    /// Slack for clock differences between app servers and for time spent between deciding and
    /// writing: half the lifespan, at most 5 s.
    pub(super) fn clock_margin(&self) -> Duration {
        (self.inner.config.cookie_lifespan / 2).min(Duration::from_secs(5))
    }

    /// Whether a plain save may trust tombstones: the record, last touched as `meta` says, is
    /// certainly still within its TTL (so only an `end` can have removed it), and it was loaded
    /// recently enough that the tombstone of any `end` since is certainly still there.
    pub(super) fn within_lifetime(&self, meta: &Meta, loaded_ms: u64, now: u64) -> bool {
        let expires = meta
            .touched_ms
            .saturating_add(millis(self.ttl(meta.created_ms, meta.touched_ms)));
        now.saturating_add(millis(self.clock_margin())) < expires
            && now.saturating_sub(loaded_ms) < millis(PLAIN_SAVE_WINDOW)
    }

    /// How long an ended record stays recognisably dead: longer than any request that loaded it
    /// may still save it with plain commands. About a minute, whatever `cookie_lifespan` is.
    pub(super) fn tombstone(&self) -> Duration {
        PLAIN_SAVE_WINDOW + self.clock_margin()
    }

    /// How long the tombstone of a destroyed session lasts with these settings: what a tool
    /// that ends sessions outside a request (`sessionctl destroy`) must pass as
    /// [`EndRequest::tombstone`](crate::store::EndRequest::tombstone) for the same
    /// no-resurrection guarantee as [`SessionManager::destroy`].
    #[must_use]
    pub fn tombstone_time(&self) -> Duration {
        self.tombstone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;
    use crate::store::memory::MemoryStore;
    use crate::store::now_ms;

    #[test]
    fn a_session_loaded_longer_ago_than_the_window_is_saved_atomically() {
        let manager = SessionManager::with_store(Config::default(), MemoryStore::default())
            .unwrap_or_else(|e| panic!("{e}"));
        let now = now_ms();
        let meta = Meta {
            created_ms: now,
            touched_ms: now,
        };
        assert!(manager.within_lifetime(&meta, now, now));
        let window = millis(PLAIN_SAVE_WINDOW);
        assert!(manager.within_lifetime(&meta, now - window + 1_000, now));
        assert!(
            !manager.within_lifetime(&meta, now - window - 1, now),
            "its tombstone may be gone: the save must check atomically"
        );
        assert!(manager.tombstone() > PLAIN_SAVE_WINDOW);
        assert!(manager.tombstone() <= Duration::from_secs(120));
    }
}
