//! [`KeyedBuilder`]: the clock and the hasher of a [`Keyed`] limiter.

use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;

use conc_core::hash::FoldHash;
use conc_core::time::{Clock, CoarseClock, Timeline};
use dashmap::DashMap;

use super::{Keyed, MIN_SWEEP_INTERVAL, MIN_SWEEP_PERIOD_NS, Sweep};
use crate::Quota;
use crate::gcra::Params;
use crate::loom::sync::atomic::{AtomicBool, AtomicU64};
use crate::stats::Stats;
use crate::time::default_clock;

/// Builds a [`Keyed`] limiter; see [`Keyed::builder`].
///
/// # Examples
///
/// ```
/// use std::collections::hash_map::RandomState;
/// use conc_core::time::ManualClock;
/// use conc_ratelimit::{Keyed, Quota};
///
/// let per_user: Keyed<u64, _, _> = Keyed::builder(Quota::per_minute(5)?)
///     .clock(ManualClock::new())
///     .hasher(RandomState::new())
///     .build();
/// assert!(per_user.try_acquire(&7, 5).is_ok());
/// assert!(per_user.try_acquire(&7, 1).is_err());
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct KeyedBuilder<K, C = CoarseClock, S = FoldHash> {
    quota: Quota,
    clock: C,
    hasher: S,
    key: PhantomData<fn(&K)>,
}

impl<K: Hash + Eq + Clone> Keyed<K, CoarseClock, FoldHash> {
    /// A builder for a limiter giving every key `quota`, on the process-wide
    /// coarse clock and a [`FoldHash`] with keys of its own unless
    /// [`clock`](KeyedBuilder::clock) and [`hasher`](KeyedBuilder::hasher)
    /// say otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_core::time::ManualClock;
    /// use conc_ratelimit::{Keyed, Quota};
    ///
    /// let per_ip = Keyed::builder(Quota::per_second(1)?).clock(ManualClock::new()).build();
    /// assert!(per_ip.try_acquire(&[10, 0, 0, 1], 1).is_ok());
    /// assert!(per_ip.try_acquire(&[10, 0, 0, 1], 1).is_err());
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn builder(quota: Quota) -> KeyedBuilder<K, CoarseClock, FoldHash> {
        KeyedBuilder { quota, clock: default_clock(), hasher: FoldHash::new(), key: PhantomData }
    }
}

impl<K: Hash + Eq + Clone, C: Clock, S: BuildHasher + Clone> KeyedBuilder<K, C, S> {
    /// The clock decisions and sweeps read. Defaults to the process-wide
    /// [`CoarseClock`].
    pub fn clock<C2: Clock>(self, clock: C2) -> KeyedBuilder<K, C2, S> {
        KeyedBuilder { quota: self.quota, clock, hasher: self.hasher, key: PhantomData }
    }

    /// How keys are hashed to the map's shards and buckets. Defaults to a
    /// [`FoldHash`] with random keys of this limiter's own: a few
    /// instructions per key where the standard library's `SipHash`
    /// (`RandomState`) takes several rounds, and keys a client chooses blind
    /// (IP addresses, user names) cannot be aimed at one bucket. It is not a
    /// keyed pseudo-random function: where an attacker can probe the limiter
    /// adaptively, pass `RandomState::new()`.
    pub fn hasher<S2: BuildHasher + Clone>(self, hasher: S2) -> KeyedBuilder<K, C, S2> {
        KeyedBuilder { quota: self.quota, clock: self.clock, hasher, key: PhantomData }
    }

    /// Builds the limiter. Nothing can be refused here: the [`Quota`] was
    /// checked when it was made.
    pub fn build(self) -> Keyed<K, C, S> {
        let quota = self.quota;
        let period = quota.tolerance_ns().max(MIN_SWEEP_PERIOD_NS);
        Keyed {
            map: DashMap::with_hasher_and_shard_amount(self.hasher, shard_count()),
            params: Params::of(quota),
            quota,
            time: Timeline::new(self.clock),
            sweep: Sweep {
                inserts: AtomicU64::new(0),
                threshold: AtomicU64::new(MIN_SWEEP_INTERVAL),
                due: AtomicU64::new(period),
                period,
                running: AtomicBool::new(false),
                evicted: AtomicU64::new(0),
                sweeps: AtomicU64::new(0),
            },
            stats: Stats::new(),
        }
    }
}

/// Shards per thread the machine can run at once.
const SHARDS_PER_THREAD: usize = 32;

/// The fewest shards a keyed map has.
const MIN_SHARDS: usize = 64;

/// The most shards a keyed map has (128 KiB of shard headers at 128 bytes each).
const MAX_SHARDS: usize = 1_024;

/// How many shards a keyed map has: 32 per hardware thread, rounded up to a
/// power of two, between 64 and 1 024.
///
/// Every check of a known key writes its shard's lock word (the read lock's
/// count), so a line holding a lock word moves between cores whenever two
/// threads check keys of one shard. With few shards (the map's own default
/// is four per thread) two busy threads meet on the same few lines all the
/// time; with 32 per thread they rarely do. On two threads over 100 000 keys
/// that took a check from about 112 ns to about 84 ns. A shard header costs
/// 128 bytes, so the smallest map holds 8 KiB of them.
fn shard_count() -> usize {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    threads.saturating_mul(SHARDS_PER_THREAD).next_power_of_two().clamp(MIN_SHARDS, MAX_SHARDS)
}

impl<K, C: Clone, S: Clone> Clone for KeyedBuilder<K, C, S> {
    fn clone(&self) -> Self {
        Self {
            quota: self.quota,
            clock: self.clock.clone(),
            hasher: self.hasher.clone(),
            key: PhantomData,
        }
    }
}

impl<K, C: fmt::Debug, S> fmt::Debug for KeyedBuilder<K, C, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedBuilder")
            .field("quota", &self.quota)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(conc_loom)))]
mod tests {
    use super::{MAX_SHARDS, MIN_SHARDS, shard_count};

    /// The map refuses (panics on) a shard count that is not a power of two
    /// above one; whatever the machine, the count is one, within the bounds.
    #[test]
    fn the_shard_count_is_a_power_of_two_within_its_bounds() {
        let shards = shard_count();
        assert!(shards.is_power_of_two(), "{shards} shards");
        assert!((MIN_SHARDS..=MAX_SHARDS).contains(&shards), "{shards} shards");
    }
}
