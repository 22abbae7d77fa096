//! [`Keyed`]: one GCRA cell per key, in a sharded map that evicts idle keys by itself.

mod builder;

use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::time::Duration;

use conc_core::hash::FoldHash;
use conc_core::time::{Clock, CoarseClock, Timeline};
use dashmap::DashMap;
use dashmap::try_result::TryResult;

pub use builder::KeyedBuilder;

use crate::gcra::{CellRef, GcraCell, Params, reset_after};
use crate::loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use crate::stats::Stats;
use crate::{Decision, Quota, RateLimitError, wait};

/// The fewest new keys between two automatic sweeps, and the slack in the
/// memory bound: the map holds at most about twice the recently active keys
/// plus this many.
pub(crate) const MIN_SWEEP_INTERVAL: u64 = 1_024;

/// The shortest time between two sweeps driven by time passing: one second,
/// or the time a key takes to replenish fully, whichever is longer.
const MIN_SWEEP_PERIOD_NS: u64 = 1_000_000_000;

/// A GCRA limiter per key (user id, IP address, API token), all with the same
/// [`Quota`], in a sharded map with automatic eviction.
///
/// # Hit path
///
/// A check for a key already present reads the clock once, compares it with
/// the time of the next sweep (one load of a word written once per sweep)
/// and finds the key in one of many shards of a [`DashMap`] (32 per hardware
/// thread, so two threads seldom meet on a shard). When no other thread is
/// in that shard, the check takes its write lock with one compare-and-swap
/// and charges the key's cell with a plain store: two atomic
/// read-modify-writes in all, lock and unlock. When another thread is in the
/// shard, the check does not queue for the write lock: it takes the read
/// lock and charges the cell by compare-and-swap (repeated only when another
/// thread changed that key in between). It waits only while another check
/// holds the write lock: a few instructions, unless the operating system
/// preempts that thread inside them. Nothing is allocated. A new key takes
/// its shard's write lock once, to insert. `decide` and batches take the
/// same path; their decisions are built, and counted, after the lock is let
/// go.
///
/// # Bounded memory without a prune call
///
/// A key whose state is fully replenished (its TAT at or before now) decides
/// exactly like a key never seen, so dropping it changes no decision. Two
/// things make a caller sweep (walk the shards one at a time, write-locking
/// only the shard it is on, and drop idle keys):
///
/// - **time**: the first call of any kind (known key or new) once the sweep
///   period has passed since the last sweep. The period is the time a key
///   takes to replenish fully ([`Quota::replenish_all`]), at least one
///   second. So keys idle since a burst are dropped even when only known keys
///   are seen afterwards.
/// - **new keys**: once the insertions since the last sweep reach the number
///   of keys the last sweep kept (and at least 1 024). A sweep then costs
///   about as much as the insertions that triggered it, so the cost per
///   insertion stays constant (like a growing vector's).
///
/// After a sweep that leaves the table less than a quarter full, the table is
/// shrunk, so the memory of a burst of keys is given back. The map holds at
/// most about twice the keys active within the last two sweep periods, plus
/// 1 024, however many distinct keys pass through it over time.
///
/// # Memory per key
///
/// A key costs `size_of::<K>() + 8` bytes of payload (the key and its TAT)
/// plus one control byte in the map's table, times the table's load-factor
/// slack (between 8/7 and 16/7, since it doubles when it grows): for `u64`
/// keys, between 19 and 39 bytes per key (`tests/keyed_memory.rs` measures
/// it). governor's keyed store holds the same 16-byte payload. Each limiter
/// also holds its shards' headers, 128 bytes each: 32 shards per hardware
/// thread, between 64 and 1 024 (8 KiB on a two-core machine), so that two
/// threads checking different keys rarely write the same shard's lock word.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::time::ManualClock;
/// use conc_ratelimit::{Keyed, Quota};
///
/// let clock = ManualClock::new();
/// let per_user = Keyed::builder(Quota::per_second(2)?).clock(clock.clone()).build();
///
/// assert!(per_user.try_acquire(&"alice", 2).is_ok());
/// assert!(per_user.try_acquire(&"alice", 1).is_err());
/// assert!(per_user.try_acquire(&"bob", 1).is_ok()); // keys are independent
///
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(per_user.evict_idle(), 2); // both fully replenished
/// assert!(per_user.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Keyed<K, C = CoarseClock, S = FoldHash> {
    map: DashMap<K, GcraCell, S>,
    params: Params,
    quota: Quota,
    time: Timeline<C>,
    sweep: Sweep,
    stats: Stats,
}

/// Bookkeeping for the automatic sweeps.
#[derive(Debug)]
struct Sweep {
    inserts: AtomicU64,
    threshold: AtomicU64,
    /// The timeline reading at or after which the next call sweeps.
    due: AtomicU64,
    /// The time between sweeps driven by time passing, in nanoseconds.
    period: u64,
    running: AtomicBool,
    evicted: AtomicU64,
    sweeps: AtomicU64,
}

/// A snapshot of a [`Keyed`] limiter's counts and bookkeeping.
///
/// # Examples
///
/// ```
/// use conc_core::time::ManualClock;
/// use conc_ratelimit::{Keyed, Quota};
///
/// let per_user = Keyed::builder(Quota::per_second(1)?).clock(ManualClock::new()).build();
/// let _ = per_user.try_acquire(&"ann", 1);
/// let _ = per_user.try_acquire(&"ann", 1);
/// let metrics = per_user.metrics();
/// assert_eq!((metrics.allowed, metrics.rejected, metrics.keys), (1, 1, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct KeyedMetrics {
    /// Calls admitted since creation (or the last reset).
    pub allowed: u64,
    /// Calls refused since creation (or the last reset).
    pub rejected: u64,
    /// Callers waiting for capacity now.
    pub waiting: u64,
    /// Keys holding state now.
    pub keys: u64,
    /// Keys dropped because they were fully replenished, since creation.
    pub evicted: u64,
    /// Sweeps run, automatic or by [`Keyed::evict_idle`].
    pub sweeps: u64,
}

impl<K: Hash + Eq + Clone> Keyed<K, CoarseClock, FoldHash> {
    /// A keyed limiter for `quota` on the process-wide coarse clock.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_ratelimit::{Keyed, Quota};
    ///
    /// let per_ip: Keyed<[u8; 4]> = Keyed::new(Quota::per_minute(600)?);
    /// assert!(per_ip.try_acquire(&[10, 0, 0, 1], 1).is_ok());
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn new(quota: Quota) -> Self {
        Self::builder(quota).build()
    }
}

impl<K: Hash + Eq + Clone, C: Clock, S: BuildHasher + Clone> Keyed<K, C, S> {
    /// Takes `n` units for `key` now, all or nothing.
    ///
    /// # Errors
    ///
    /// [`RateLimitError::Limited`] with the exact wait for this key;
    /// [`RateLimitError::ExceedsCapacity`] when `n` is larger than the burst.
    #[inline]
    pub fn try_acquire(&self, key: &K, n: u32) -> Result<(), RateLimitError> {
        self.stats.record(self.charge(key, n))
    }

    /// [`try_acquire`](Self::try_acquire) without counting.
    #[inline]
    fn charge(&self, key: &K, n: u32) -> Result<(), RateLimitError> {
        let cost = self.params.cost(n)?;
        let now = self.now();
        self.with_cell(key, |cell| self.params.charge(cell, now, || self.time.now(), cost))
    }

    /// The time now, sweeping first when the sweep period has passed.
    #[inline]
    fn now(&self) -> u64 {
        let now = self.time.now();
        if now >= self.sweep.due.load(Ordering::Relaxed) {
            self.sweep_now(now);
        }
        now
    }

    /// Runs a sweep unless another caller is running one.
    #[cold]
    fn sweep_now(&self, now: u64) {
        if !self.sweep.running.swap(true, Ordering::Acquire) {
            // Other callers skip the check until the next period.
            self.sweep.due.store(now.saturating_add(self.sweep.period), Ordering::Relaxed);
            self.evict_idle_at(now);
            self.sweep.running.store(false, Ordering::Release);
        }
    }

    /// Takes `n` units for `key` like [`try_acquire`](Self::try_acquire) and
    /// reports the outcome as a [`Decision`] named `policy` (see
    /// [`Gcra::decide`](crate::Gcra::decide)).
    ///
    /// # Errors
    ///
    /// [`RateLimitError::ExceedsCapacity`] when `n` is larger than the burst.
    pub fn decide(&self, policy: &str, key: &K, n: u32) -> Result<Decision, RateLimitError> {
        let cost = self.params.cost(n)?;
        let now = self.now();
        let outcome = self.with_cell(key, |cell| self.params.charge_for_decision(cell, now, cost));
        Ok(self.params.decision(policy, now, outcome, &self.stats))
    }

    /// Waits until `n` units can be taken for `key`, then takes them.
    /// Cancellation-safe: a dropped wait consumes nothing.
    ///
    /// # Errors
    ///
    /// [`RateLimitError::ExceedsCapacity`] when `n` is larger than the burst.
    pub async fn acquire(&self, key: &K, n: u32) -> Result<(), RateLimitError> {
        wait::until_ready(Some(&self.stats), || self.charge(key, n)).await
    }

    /// Takes as many units as `key` has now, up to `max` and at least one;
    /// returns how many were taken (`max = 0` returns `Ok(0)`).
    ///
    /// # Errors
    ///
    /// [`RateLimitError::Limited`] with the wait for one unit.
    pub fn try_acquire_batch(&self, key: &K, max: u32) -> Result<u32, RateLimitError> {
        if max == 0 {
            return Ok(0);
        }
        let now = self.now();
        self.stats.record(self.with_cell(key, |cell| self.params.charge_up_to(cell, now, max)))
    }

    /// Units `key` could take at once now (the burst for an unknown key).
    pub fn remaining(&self, key: &K) -> u32 {
        self.params.remaining(self.tat(key), self.time.now())
    }

    /// How long until `n` units could be taken for `key`, without taking them.
    ///
    /// # Errors
    ///
    /// [`RateLimitError::ExceedsCapacity`] when `n` is larger than the burst.
    pub fn retry_after(&self, key: &K, n: u32) -> Result<Duration, RateLimitError> {
        self.params.retry_after(self.tat(key), self.time.now(), n)
    }

    /// How long until `key` is fully replenished.
    pub fn reset_after(&self, key: &K) -> Duration {
        reset_after(self.tat(key), self.time.now())
    }

    /// Forgets `key`'s charges (its whole burst is available again).
    pub fn reset(&self, key: &K) {
        self.map.remove(key);
    }

    /// Forgets every key, and gives the table's memory back.
    pub fn reset_all(&self) {
        self.map.clear();
        self.map.shrink_to_fit();
    }

    /// Drops every fully replenished key now and returns how many were
    /// dropped; when that leaves the table less than a quarter full, the
    /// table is shrunk and its memory given back. Never needed for bounded
    /// memory (sweeps run by themselves, driven by time and by new keys);
    /// useful before measuring.
    pub fn evict_idle(&self) -> u64 {
        self.evict_idle_at(self.time.now())
    }

    fn evict_idle_at(&self, now: u64) -> u64 {
        let before = self.map.len() as u64;
        self.map.retain(|_, cell| !cell.is_idle(now));
        let kept = self.map.len() as u64;
        if self.map.capacity() > 4 * self.map.len().max(16) {
            self.map.shrink_to_fit();
        }
        let evicted = before.saturating_sub(kept);
        self.sweep.evicted.fetch_add(evicted, Ordering::Relaxed);
        self.sweep.sweeps.fetch_add(1, Ordering::Relaxed);
        self.sweep.threshold.store(kept.max(MIN_SWEEP_INTERVAL), Ordering::Relaxed);
        self.sweep.inserts.store(0, Ordering::Relaxed);
        metrics::gauge!(conc_core::metrics::RATELIMIT_KEYS).set(kept as f64);
        metrics::counter!(conc_core::metrics::RATELIMIT_EVICTED).increment(evicted);
        metrics::counter!(conc_core::metrics::RATELIMIT_SWEEPS).increment(1);
        tracing::trace!(evicted, kept, "conc-ratelimit: swept idle keys");
        evicted
    }

    /// Keys holding state now.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no key holds state.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// A snapshot of the calls allowed, rejected and waiting, the key count
    /// and the eviction counters.
    pub fn metrics(&self) -> KeyedMetrics {
        let calls = self.stats.snapshot();
        KeyedMetrics {
            allowed: calls.allowed,
            rejected: calls.rejected,
            waiting: calls.waiting,
            keys: self.map.len() as u64,
            evicted: self.sweep.evicted.load(Ordering::Relaxed),
            sweeps: self.sweep.sweeps.load(Ordering::Relaxed),
        }
    }

    /// The most units one call can take: the burst.
    pub fn capacity(&self) -> u32 {
        self.quota.burst()
    }

    /// The quota every key gets.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    fn tat(&self, key: &K) -> u64 {
        self.map.get(key).map_or(0, |cell| cell.tat())
    }

    /// Runs `f` on `key`'s cell, alone or shared with other threads.
    ///
    /// The hit path write-locks the key's shard when no other thread is in
    /// it (one compare-and-swap), so the charge is a plain store: two atomic
    /// read-modify-writes a check (lock and unlock) where a read lock and a
    /// compare-and-swap on the cell take three. When another thread is in
    /// the shard, the check does not queue for the write lock: it takes the
    /// read lock and charges the cell by compare-and-swap. A key not present
    /// is inserted first.
    #[inline]
    fn with_cell<T>(&self, key: &K, f: impl FnOnce(CellRef<'_>) -> T) -> T {
        match self.map.try_get_mut(key) {
            TryResult::Present(mut cell) => f(CellRef::Alone(&mut cell)),
            TryResult::Absent => self.insert_and(key, f),
            TryResult::Locked => match self.map.get(key) {
                Some(cell) => f(CellRef::Shared(&cell)),
                None => self.insert_and(key, f),
            },
        }
    }

    /// The slow path: insert `key` (write-locking its shard), run `f` on its
    /// cell while still holding the lock, then sweep if it is time.
    #[cold]
    fn insert_and<T>(&self, key: &K, f: impl FnOnce(CellRef<'_>) -> T) -> T {
        let result = {
            let mut cell = self.map.entry(key.clone()).or_insert_with(GcraCell::new);
            f(CellRef::Alone(&mut cell))
        };
        let inserts = self.sweep.inserts.fetch_add(1, Ordering::Relaxed) + 1;
        if inserts >= self.sweep.threshold.load(Ordering::Relaxed)
            && !self.sweep.running.swap(true, Ordering::Acquire)
        {
            self.evict_idle();
            self.sweep.running.store(false, Ordering::Release);
        }
        result
    }
}

impl conc_core::metrics::MetricsSnapshot for KeyedMetrics {
    fn entries(&self) -> Vec<conc_core::metrics::MetricEntry> {
        use conc_core::metrics::{
            MetricEntry, MetricValue, RATELIMIT_EVICTED, RATELIMIT_KEYS, RATELIMIT_PERMITTED,
            RATELIMIT_REJECTED, RATELIMIT_SWEEPS, RATELIMIT_WAITING,
        };
        vec![
            MetricEntry::new(RATELIMIT_PERMITTED, MetricValue::Count(self.allowed)),
            MetricEntry::new(RATELIMIT_REJECTED, MetricValue::Count(self.rejected)),
            MetricEntry::new(RATELIMIT_WAITING, MetricValue::Gauge(self.waiting as f64)),
            MetricEntry::new(RATELIMIT_KEYS, MetricValue::Gauge(self.keys as f64)),
            MetricEntry::new(RATELIMIT_EVICTED, MetricValue::Count(self.evicted)),
            MetricEntry::new(RATELIMIT_SWEEPS, MetricValue::Count(self.sweeps)),
        ]
    }
}

impl<K, C, S> conc_core::metrics::MetricsSource for Keyed<K, C, S>
where
    K: Hash + Eq + Clone,
    C: Clock,
    S: BuildHasher + Clone,
{
    type Snapshot = KeyedMetrics;

    fn metrics(&self) -> KeyedMetrics {
        Keyed::metrics(self)
    }

    /// Resets the call, eviction and sweep counters; the key count and
    /// `waiting` describe the present.
    fn reset_metrics(&self) {
        self.stats.reset();
        self.sweep.evicted.store(0, Ordering::Relaxed);
        self.sweep.sweeps.store(0, Ordering::Relaxed);
    }
}

impl<K, C, S> fmt::Debug for Keyed<K, C, S>
where
    K: Hash + Eq,
    C: Clock,
    S: BuildHasher + Clone,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyed")
            .field("quota", &self.quota)
            .field("keys", &self.map.len())
            .field("clock", self.time.clock())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(conc_loom)))]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use conc_core::time::ManualClock;

    use super::Keyed;
    use crate::Quota;

    /// A check of a known key never queues for its shard's write lock: while
    /// another thread reads the shard, checks go through beside it (by
    /// compare-and-swap), and once it leaves they take the write lock; both
    /// charge exactly.
    #[test]
    fn a_check_beside_a_reader_does_not_wait_for_the_write_lock() {
        let limiter = std::sync::Arc::new(
            Keyed::builder(Quota::per_second(1_000).unwrap()).clock(ManualClock::new()).build(),
        );
        limiter.try_acquire(&7_u64, 1).unwrap();
        let reader = limiter.map.get(&7).expect("the key is stored");
        let (done, finished) = mpsc::channel();
        let checker = {
            let limiter = std::sync::Arc::clone(&limiter);
            std::thread::spawn(move || {
                for _ in 0..100 {
                    limiter.try_acquire(&7, 1).unwrap();
                }
                done.send(()).unwrap();
            })
        };
        let outcome = finished.recv_timeout(Duration::from_secs(10));
        drop(reader);
        checker.join().unwrap();
        assert!(outcome.is_ok(), "a known-key check waited for a write lock");
        assert_eq!(limiter.remaining(&7), 1_000 - 101);
        for _ in 0..100 {
            limiter.try_acquire(&7, 1).unwrap();
        }
        assert_eq!(limiter.try_acquire_batch(&7, 50), Ok(50));
        assert_eq!(limiter.remaining(&7), 1_000 - 251);
    }
}
