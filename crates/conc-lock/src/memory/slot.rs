//! One lock name's state in the in-memory backend.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use super::lock;
use crate::{Fence, Owner};

/// The state of one lock name in a [`MemoryBackend`](super::MemoryBackend),
/// shared by every handle on that name.
pub struct MemorySlot {
    name: Arc<str>,
    state: Mutex<State>,
}

/// What a slot's mutex guards.
pub(super) struct State {
    /// The current hold, if any (it may have expired).
    pub(super) hold: Option<Hold>,
    /// The last fence handed out for this name.
    last_fence: u64,
}

/// A hold on a slot.
pub(super) struct Hold {
    pub(super) owner: Owner,
    pub(super) fence: Fence,
    pub(super) expires_at: u64,
}

impl State {
    /// The next fence for this name.
    pub(super) fn next_fence(&mut self) -> Fence {
        self.last_fence += 1;
        Fence::new(self.last_fence)
    }
}

impl MemorySlot {
    /// A slot whose fences continue above `last_fence`.
    pub(super) fn new(name: Arc<str>, last_fence: u64) -> Self {
        Self { name, state: Mutex::new(State { hold: None, last_fence }) }
    }

    /// The lock name, shared.
    pub(super) fn name(&self) -> Arc<str> {
        Arc::clone(&self.name)
    }

    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// `None` while an unexpired hold exists at `now`; otherwise the last
    /// fence handed out, which a slot replacing this one must continue from.
    pub(super) fn removable(&self, now: u64) -> Option<u64> {
        let state = self.state();
        match &state.hold {
            Some(hold) if hold.expires_at > now => None,
            _ => Some(state.last_fence),
        }
    }

    /// Removes `owner`'s unexpired hold (only the one with `fence`, when
    /// given); `false` when there is none.
    pub(super) fn release(&self, owner: &Owner, fence: Option<Fence>, now: u64) -> bool {
        let mut state = self.state();
        match &state.hold {
            Some(current)
                if current.expires_at > now
                    && current.owner == *owner
                    && fence.is_none_or(|fence| current.fence == fence) =>
            {
                state.hold = None;
                true
            }
            _ => false,
        }
    }
}

impl fmt::Debug for MemorySlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("MemorySlot")
            .field("name", &self.name)
            .field("owner", &state.hold.as_ref().map(|hold| &hold.owner))
            .field("fence", &state.hold.as_ref().map(|hold| hold.fence))
            .finish_non_exhaustive()
    }
}
