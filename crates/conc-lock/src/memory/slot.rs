//! One lock name's state in the in-memory backend.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::lock;
use crate::{Fence, Owner};

/// The state of one lock name in a [`MemoryBackend`](super::MemoryBackend),
/// shared by every handle on that name.
pub struct MemorySlot {
    name: Arc<str>,
    shard: usize,
    hold: Mutex<Option<Hold>>,
}

/// A hold on a slot.
pub(super) struct Hold {
    pub(super) owner: Owner,
    pub(super) fence: Fence,
    pub(super) expires_at: Instant,
}

impl MemorySlot {
    pub(super) fn new(name: Arc<str>, shard: usize) -> Self {
        Self { name, shard, hold: Mutex::new(None) }
    }

    pub(super) fn shard(&self) -> usize {
        self.shard
    }

    pub(super) fn hold(&self) -> MutexGuard<'_, Option<Hold>> {
        lock(&self.hold)
    }

    /// Whether an unexpired hold exists at `now`.
    pub(super) fn is_held(&self, now: Instant) -> bool {
        self.hold().as_ref().is_some_and(|hold| hold.expires_at > now)
    }

    /// Removes `owner`'s unexpired hold; `false` when it had none.
    pub(super) fn release(&self, owner: &Owner, now: Instant) -> bool {
        let mut hold = self.hold();
        match hold.as_ref() {
            Some(current) if current.expires_at > now && current.owner == *owner => {
                *hold = None;
                true
            }
            _ => false,
        }
    }
}

impl fmt::Debug for MemorySlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hold = self.hold();
        f.debug_struct("MemorySlot")
            .field("name", &self.name)
            .field("owner", &hold.as_ref().map(|hold| &hold.owner))
            .field("fence", &hold.as_ref().map(|hold| hold.fence))
            .finish()
    }
}
