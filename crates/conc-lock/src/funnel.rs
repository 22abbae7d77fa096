//! [`Funnel`]: at most N holders at once under one name.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::name::LockName;
use crate::wait::{self, Try};
use crate::{Fence, Lock, LockBackend, LockError, LockGuard, LockStore, Owner, SlotAcquisition};

/// A concurrency limiter: at most `limit` holders of `name` at once, each
/// slot held for the funnel's time to live unless extended or released
/// (Laravel's `Redis::funnel`). Made by [`LockStore::funnel`].
///
/// Slots are locks of their own, so a holder that dies frees its slot when
/// the time to live runs out, and each slot hands out fences.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_lock::{LockError, LockStore};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), LockError> {
/// let store = LockStore::memory();
/// let exports = store.funnel("exports", 2, Duration::from_secs(60))?;
/// let a = exports.get().await?.expect("slot 1");
/// let b = exports.get().await?.expect("slot 2");
/// assert!(exports.get().await?.is_none(), "both slots taken");
/// a.release().await?;
/// let c = exports.get().await?.expect("a slot came free");
/// # b.release().await?; c.release().await?;
/// # Ok(()) }
/// ```
pub struct Funnel<B: LockBackend> {
    store: LockStore<B>,
    name: LockName,
    slot_names: Arc<[LockName]>,
    slots: Arc<[Arc<B::Prepared>]>,
    ttl: Duration,
}

impl<B: LockBackend> Funnel<B> {
    pub(crate) fn new(store: LockStore<B>, name: &LockName, limit: u32, ttl: Duration) -> Self {
        let slot_names: Arc<[LockName]> = (0..limit).map(|slot| name.slot(slot)).collect();
        let slots = slot_names.iter().map(|slot| store.backend().prepare(slot.as_str())).collect();
        Self { store, name: name.clone(), slot_names, slots, ttl }
    }

    /// The funnel's name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// How many holders it admits at once.
    pub fn limit(&self) -> u32 {
        u32::try_from(self.slots.len()).unwrap_or(u32::MAX)
    }

    /// Tries once to take a slot. `Ok(None)` when all are held.
    ///
    /// # Errors
    ///
    /// [`LockError::Backend`] when the backend fails.
    pub async fn get(&self) -> Result<Option<FunnelPermit<B>>, LockError> {
        match self.attempt().await? {
            Try::Acquired(permit) => Ok(Some(permit)),
            Try::Busy(_) => Ok(None),
        }
    }

    /// Takes a slot, waiting up to `wait` while all are held.
    ///
    /// # Errors
    ///
    /// [`LockError::Timeout`] when no slot came free in time;
    /// [`LockError::Backend`] when the backend fails.
    pub async fn block(&self, wait: Duration) -> Result<FunnelPermit<B>, LockError> {
        let backoff = self.store.block_backoff().clone();
        wait::block(self.name(), wait, &backoff, || self.attempt()).await
    }

    /// [`block`](Funnel::block)s for a slot, runs `work`, then releases the slot.
    ///
    /// # Errors
    ///
    /// As [`block`](Funnel::block); [`LockError::Lost`] when the slot had
    /// expired by the time `work` finished.
    pub async fn block_with<T, F, Fut>(&self, wait: Duration, work: F) -> Result<T, LockError>
    where
        F: FnOnce(Fence) -> Fut,
        Fut: Future<Output = T>,
    {
        let permit = self.block(wait).await?;
        let output = work(permit.fence()).await;
        permit.release().await?;
        Ok(output)
    }

    async fn attempt(&self) -> Result<Try<FunnelPermit<B>>, LockError> {
        let owner = Owner::random();
        match self.store.backend().acquire_any(&self.slots, &owner, self.ttl).await? {
            SlotAcquisition::Acquired { slot, fence } => {
                let prepared = &self.slots[slot];
                // No copy of the slot's name when the backend keeps it.
                let name = Lock::<B>::needs_name(prepared).then(|| self.slot_names[slot].clone());
                let lock = Lock::from_prepared(
                    self.store.clone(),
                    name,
                    Arc::clone(prepared),
                    owner,
                    self.ttl,
                );
                let slot = u32::try_from(slot).unwrap_or(u32::MAX);
                Ok(Try::Acquired(FunnelPermit { guard: LockGuard::new(lock, fence), slot }))
            }
            SlotAcquisition::Busy { retry_after } => {
                self.store.counters().contended();
                Ok(Try::Busy(retry_after))
            }
        }
    }
}

impl<B: LockBackend> fmt::Debug for Funnel<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Funnel")
            .field("name", &self.name)
            .field("limit", &self.slots.len())
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// A held slot of a [`Funnel`]. Release it with
/// [`release`](FunnelPermit::release); dropping it releases it best effort.
#[must_use = "a funnel permit frees its slot (best effort) when dropped"]
#[derive(Debug)]
pub struct FunnelPermit<B: LockBackend> {
    guard: LockGuard<B>,
    slot: u32,
}

impl<B: LockBackend> FunnelPermit<B> {
    /// Which slot is held, from 0 to `limit - 1`.
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// The slot's fencing token.
    pub fn fence(&self) -> Fence {
        self.guard.fence()
    }

    /// Frees the slot.
    ///
    /// # Errors
    ///
    /// [`LockError::Lost`] when the slot had expired; [`LockError::Backend`].
    pub async fn release(self) -> Result<(), LockError> {
        self.guard.release().await
    }

    /// Resets the slot's time to live to `ttl` from now.
    ///
    /// # Errors
    ///
    /// [`LockError::Config`] for a bad `ttl`, [`LockError::Lost`], [`LockError::Backend`].
    pub async fn extend(&self, ttl: Duration) -> Result<(), LockError> {
        self.guard.extend(ttl).await
    }

    /// Keeps the slot alive in the background (see [`LockGuard::keep_alive`]).
    pub fn keep_alive(self) -> Self {
        Self { guard: self.guard.keep_alive(), slot: self.slot }
    }

    /// Whether the keep-alive task found the slot lost.
    pub fn is_lost(&self) -> bool {
        self.guard.is_lost()
    }
}
