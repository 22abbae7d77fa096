//! The in-memory backend: locks shared by the tasks and threads of one process.

mod slot;

use std::borrow::Borrow;
use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use conc_core::hash::FoldHash;
use conc_core::time::{Clock, CoarseClock, Timeline, saturating_nanos};

pub use slot::MemorySlot;

use crate::{Acquisition, Fence, LockBackend, LockError, Owner};

/// Locks in this process's memory.
///
/// Names are spread over shards, each with its own small map, so threads
/// working on different names rarely meet. Each slot keeps its name (inline
/// up to 22 bytes), so looking a name up reads the slot and its map entry, no
/// third allocation. A lock handle keeps its name's
/// slot, so acquiring and releasing through a handle is one atomic
/// compare-and-swap on the slot each, and never looks the name up again.
/// Slots nobody holds, no handle refers to and no handle was made for in the
/// last second ([`keep_idle`](MemoryBackendBuilder::keep_idle)) are removed
/// as the map grows, so memory stays proportional to the names in use.
/// Fences come from a counter in the slot; the shard keeps
/// the highest fence of the slots it removed and new slots continue above it,
/// so fences only grow per name even across removal.
///
/// Times come from a [`Clock`]: the process-wide [`CoarseClock`] by default
/// (expiry is then accurate to about a millisecond), a
/// [`ManualClock`](conc_core::time::ManualClock) in tests.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::time::ManualClock;
/// use conc_lock::{LockStore, MemoryBackend};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_lock::LockError> {
/// let clock = ManualClock::new();
/// let store = LockStore::new(MemoryBackend::builder().clock(clock.clone()).build());
/// let held = store.lock("job", Duration::from_secs(1))?.get().await?.unwrap();
///
/// clock.advance(Duration::from_secs(1));
/// let taker = store.lock("job", Duration::from_secs(1))?.get().await?;
/// assert!(taker.is_some(), "the first hold expired");
/// assert!(held.release().await.is_err(), "and its owner is told it lost the lock");
/// # Ok(()) }
/// ```
pub struct MemoryBackend<C: Clock = CoarseClock> {
    shards: Box<[Shard]>,
    /// Picks a name's shard; each shard's map hashes with its own keys, so
    /// the names of one shard spread over its buckets.
    hasher: FoldHash,
    time: Timeline<C>,
    /// [`MemoryBackendBuilder::keep_idle`], in nanoseconds.
    keep_idle: u64,
}

/// Builds a [`MemoryBackend`]; see [`MemoryBackend::builder`].
///
/// # Examples
///
/// ```
/// use conc_core::time::ManualClock;
/// use conc_lock::MemoryBackend;
///
/// let backend = MemoryBackend::builder().clock(ManualClock::new()).build();
/// assert!(backend.is_empty());
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct MemoryBackendBuilder<C = CoarseClock> {
    clock: C,
    keep_idle: Duration,
}

impl<C: Clock> MemoryBackendBuilder<C> {
    /// The clock holds expire on. Defaults to the process-wide
    /// [`CoarseClock`] (expiry accurate to about a millisecond).
    pub fn clock<C2: Clock>(self, clock: C2) -> MemoryBackendBuilder<C2> {
        MemoryBackendBuilder { clock, keep_idle: self.keep_idle }
    }

    /// How long the slot of a name nobody holds and no handle refers to is
    /// kept after a handle on it was last made, so that keyed code cycling
    /// through a working set of names (a new handle per use) finds their
    /// slots instead of making them again. Slots idle for longer are removed
    /// as the map grows; `Duration::ZERO` removes every unused slot then.
    ///
    /// Defaults to 1 second.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_lock::MemoryBackend;
    ///
    /// let backend = MemoryBackend::builder().keep_idle(Duration::ZERO).build();
    /// assert!(backend.is_empty());
    /// ```
    pub fn keep_idle(self, keep_idle: Duration) -> Self {
        Self { keep_idle, ..self }
    }

    /// Builds the backend (nothing here can be invalid).
    pub fn build(self) -> MemoryBackend<C> {
        let parallelism = std::thread::available_parallelism().map_or(4, usize::from);
        let shards = (parallelism * 4).next_power_of_two().max(8);
        let shards = (0..shards)
            .map(|_| Shard {
                slots: Mutex::new(Slots {
                    by_name: HashSet::with_hasher(FoldHash::new()),
                    sweep_at: MIN_SWEEP_AT,
                    removed_fence: 0,
                }),
            })
            .collect();
        MemoryBackend {
            shards,
            hasher: FoldHash::new(),
            time: Timeline::new(self.clock),
            keep_idle: saturating_nanos(self.keep_idle),
        }
    }
}

struct Shard {
    slots: Mutex<Slots>,
}

struct Slots {
    /// The slots, looked up by name: each keeps its name (inline when
    /// short), so the map holds one pointer per name and a lookup compares
    /// the name on the line that also holds the slot's state.
    by_name: HashSet<SlotKey, FoldHash>,
    /// The map's size that triggers the next sweep of unused slots.
    sweep_at: usize,
    /// The highest fence of any slot removed from this shard: new slots
    /// continue above it.
    removed_fence: u64,
}

/// A slot in its shard's map, found by its name's bytes.
struct SlotKey(Arc<MemorySlot>);

impl Borrow<[u8]> for SlotKey {
    fn borrow(&self) -> &[u8] {
        self.0.name_bytes()
    }
}

impl Hash for SlotKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `[u8]` hashes, which `Borrow` requires.
        self.0.name_bytes().hash(state);
    }
}

impl PartialEq for SlotKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.name_bytes() == other.0.name_bytes()
    }
}

impl Eq for SlotKey {}

/// [`MemoryBackendBuilder::keep_idle`]'s default.
const DEFAULT_KEEP_IDLE: Duration = Duration::from_secs(1);

/// The smallest map size that triggers a sweep.
const MIN_SWEEP_AT: usize = 64;

impl MemoryBackend<CoarseClock> {
    /// A backend on the process-wide coarse clock.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder: the process-wide coarse clock unless
    /// [`clock`](MemoryBackendBuilder::clock) says otherwise.
    pub fn builder() -> MemoryBackendBuilder<CoarseClock> {
        MemoryBackendBuilder { clock: CoarseClock::global().clone(), keep_idle: DEFAULT_KEEP_IDLE }
    }
}

impl Default for MemoryBackend<CoarseClock> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Clock> MemoryBackend<C> {
    /// How many names have a slot now (held, or referred to by a handle, or
    /// not yet swept).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| lock(&shard.slots).by_name.len()).sum()
    }

    /// Whether no name has a slot.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    fn acquire_now(&self, slot: &MemorySlot, owner: &Owner, ttl: Duration) -> Acquisition {
        let now = self.time.now();
        match slot.acquire(owner, now, now.saturating_add(saturating_nanos(ttl))) {
            Ok(fence) => Acquisition::Acquired(fence),
            Err(left) => Acquisition::Busy { retry_after: Some(Duration::from_nanos(left)) },
        }
    }

    fn shard_of(&self, name: &str) -> usize {
        // The shard count is a power of two.
        (self.hasher.hash_one(name) as usize) & (self.shards.len() - 1)
    }
}

/// Locks a std mutex; no code here panics while holding one, so a poisoned
/// lock still holds consistent data.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<C: Clock + 'static> LockBackend for MemoryBackend<C> {
    type Prepared = MemorySlot;

    fn prepare(&self, name: &str) -> Arc<MemorySlot> {
        let shard_index = self.shard_of(name);
        let now = self.time.now();
        let mut slots = lock(&self.shards[shard_index].slots);
        if let Some(SlotKey(slot)) = slots.by_name.get(name.as_bytes()) {
            slot.touch(now);
            return Arc::clone(slot);
        }
        if slots.by_name.len() >= slots.sweep_at {
            let Slots { by_name, sweep_at, removed_fence } = &mut *slots;
            let keep_idle = self.keep_idle;
            // A slot only this map refers to cannot gain a handle while the
            // shard is locked, since handles are made here.
            by_name.retain(|SlotKey(slot)| {
                if Arc::strong_count(slot) > 1 || now.saturating_sub(slot.touched()) < keep_idle {
                    return true;
                }
                match slot.removable(now) {
                    Some(last_fence) => {
                        *removed_fence = (*removed_fence).max(last_fence);
                        false
                    }
                    None => true,
                }
            });
            *sweep_at = (by_name.len() * 2).max(MIN_SWEEP_AT);
        }
        let slot = Arc::new(MemorySlot::new(name, slots.removed_fence));
        slot.touch(now);
        slots.by_name.insert(SlotKey(Arc::clone(&slot)));
        slot
    }

    fn prepared_name(slot: &MemorySlot) -> Option<Arc<str>> {
        Some(slot.name())
    }

    const KEEPS_NAMES: bool = true;

    fn name_of(slot: &MemorySlot) -> Option<&str> {
        Some(slot.name_str())
    }

    fn acquire_ready(
        &self,
        slot: &MemorySlot,
        owner: &Owner,
        ttl: Duration,
    ) -> Option<Result<Acquisition, LockError>> {
        Some(Ok(self.acquire_now(slot, owner, ttl)))
    }

    async fn acquire(
        &self,
        slot: &MemorySlot,
        owner: &Owner,
        ttl: Duration,
    ) -> Result<Acquisition, LockError> {
        Ok(self.acquire_now(slot, owner, ttl))
    }

    async fn release(&self, slot: &MemorySlot, owner: &Owner) -> Result<bool, LockError> {
        Ok(slot.release(owner, None, self.time.now()))
    }

    async fn extend(
        &self,
        slot: &MemorySlot,
        owner: &Owner,
        ttl: Duration,
    ) -> Result<bool, LockError> {
        let now = self.time.now();
        Ok(slot.extend(owner, now, now.saturating_add(saturating_nanos(ttl))))
    }

    async fn owner(&self, slot: &MemorySlot) -> Result<Option<Owner>, LockError> {
        Ok(slot.owner(self.time.now()))
    }

    async fn force_release(&self, slot: &MemorySlot) -> Result<bool, LockError> {
        Ok(slot.force_release(self.time.now()))
    }

    fn release_hold_ready(
        &self,
        slot: &MemorySlot,
        owner: &Owner,
        fence: Fence,
    ) -> Option<Result<bool, LockError>> {
        Some(Ok(slot.release(owner, Some(fence), self.time.now())))
    }

    async fn release_hold(
        &self,
        slot: &MemorySlot,
        owner: &Owner,
        fence: Fence,
    ) -> Result<bool, LockError> {
        Ok(slot.release(owner, Some(fence), self.time.now()))
    }

    fn release_on_drop(self: Arc<Self>, slot: Arc<MemorySlot>, owner: Owner, fence: Fence) {
        slot.release(&owner, Some(fence), self.time.now());
    }
}

impl<C: Clock> fmt::Debug for MemoryBackend<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("shards", &self.shards.len())
            .field("clock", self.time.clock())
            .finish_non_exhaustive()
    }
}
