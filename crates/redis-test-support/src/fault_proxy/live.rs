//! Which of a proxy's connections are still open, by index.
//!
//! Exists so that a caller that wants to hit one live connection with
//! [`FaultProxy::set_on`] (e.g. the fault campaign, whose clients reconnect and leave closed
//! connections behind) can pick among the open ones rather than guess an index.

use super::{Action, FaultProxy};
use crate::process::lock;

impl FaultProxy {
    /// The indexes (accept order, as for [`FaultProxy::set_on`]) of the connections neither
    /// closed nor reset yet, ascending; as the event loop sees them once every command sent
    /// before this call has been applied.
    pub fn live_connection_indexes(&self) -> Vec<usize> {
        self.command(Action::Sync);
        lock(&self.shared.stats)
            .iter()
            .enumerate()
            .filter(|(_, c)| c.live)
            .map(|(i, _)| i)
            .collect()
    }
}
