//! [`KeyedBuilder`]: the clock and the hasher of a [`Keyed`] limiter.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;

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
pub struct KeyedBuilder<K, C = CoarseClock, S = RandomState> {
    quota: Quota,
    clock: C,
    hasher: S,
    key: PhantomData<fn(&K)>,
}

impl<K: Hash + Eq + Clone> Keyed<K, CoarseClock, RandomState> {
    /// A builder for a limiter giving every key `quota`, on the process-wide
    /// coarse clock and the standard library's hasher unless
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
    pub fn builder(quota: Quota) -> KeyedBuilder<K, CoarseClock, RandomState> {
        KeyedBuilder { quota, clock: default_clock(), hasher: RandomState::new(), key: PhantomData }
    }
}

impl<K: Hash + Eq + Clone, C: Clock, S: BuildHasher + Clone> KeyedBuilder<K, C, S> {
    /// The clock decisions and sweeps read. Defaults to the process-wide
    /// [`CoarseClock`].
    pub fn clock<C2: Clock>(self, clock: C2) -> KeyedBuilder<K, C2, S> {
        KeyedBuilder { quota: self.quota, clock, hasher: self.hasher, key: PhantomData }
    }

    /// How keys are hashed to the map's shards. Defaults to the standard
    /// library's [`RandomState`], which resists hash flooding by keys an
    /// attacker chooses (IP addresses, user names); a faster hasher is safe
    /// only for keys the application controls.
    pub fn hasher<S2: BuildHasher + Clone>(self, hasher: S2) -> KeyedBuilder<K, C, S2> {
        KeyedBuilder { quota: self.quota, clock: self.clock, hasher, key: PhantomData }
    }

    /// Builds the limiter. Nothing can be refused here: the [`Quota`] was
    /// checked when it was made.
    pub fn build(self) -> Keyed<K, C, S> {
        let quota = self.quota;
        let period = quota.tolerance_ns().max(MIN_SWEEP_PERIOD_NS);
        Keyed {
            map: DashMap::with_hasher(self.hasher),
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
