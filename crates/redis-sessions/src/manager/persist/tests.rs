//! The layer's shortcut for settled sessions, checked against the plan it skips.

use bytes::Bytes;

use super::*;
use crate::Config;
use crate::session::Ended;
use crate::store::Loaded;
use crate::store::memory::MemoryStore;

/// The layer skips persisting a settled session: that is only right if its plan would have
/// done nothing. Over every combination of what a request can leave pending.
#[test]
fn a_settled_session_is_one_whose_plan_does_nothing() {
    let manager = SessionManager::with_store(Config::default(), MemoryStore::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut settled = 0;
    for mask in 0..96u32 {
        let stored = mask & 1 == 1;
        let data = (mask >> 1) % 3; // 0: nothing, 1: as loaded, 2: a value put
        let rotate = (mask / 6) & 1 == 1;
        let touch_due = (mask / 12) & 1 == 1;
        let destroyed = (mask / 24) & 1 == 1;
        let ended = (mask / 48) & 1 == 1;
        let id = SessionId::generate();
        let loaded = match data {
            0 => Loaded::Missing,
            _ => Loaded::Found(Record {
                meta: Meta {
                    created_ms: now_ms(),
                    touched_ms: now_ms(),
                },
                fields: vec![("k".to_owned(), Bytes::from_static(b"\x01"))],
            }),
        };
        let mut state = manager.state_from(stored.then(|| id.clone()), loaded, None);
        if data == 2 {
            state.data.put("n", &2).unwrap_or_else(|e| panic!("{e}"));
        }
        state.rotate = rotate;
        state.touch_due = touch_due;
        if destroyed {
            state.destroyed.push(SessionId::generate());
        }
        if ended {
            state.ended = Some(Ended::Gone);
        }
        let session = Session::new(state);
        if !session.is_settled() {
            continue;
        }
        settled += 1;
        let plan = manager.plan(&session);
        let nothing = plan.refused.is_none()
            && plan.delete.is_empty()
            && matches!(plan.write, Write::None)
            && plan.lock.is_none()
            && matches!(plan.cookie, CookieAction::Keep)
            && plan.taken.is_empty()
            && plan.index.is_none();
        assert!(
            nothing,
            "case {mask:#b} is settled but its plan is {plan:?}"
        );
    }
    // A read of a stored session, and a new session nobody wrote to, are settled.
    assert!(settled >= 2, "only {settled} settled cases");
}
