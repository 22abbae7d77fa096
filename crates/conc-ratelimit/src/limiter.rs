//! [`Limiter`]: the one interface of every in-memory limiter, so code (and the
//! tower layer) can take any of them.

use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::time::Duration;

use conc_core::time::Clock;

use crate::{Gcra, Keyed, LeakyBucket, RateLimitError, SlidingLog, SlidingWindow, TokenBucket};

/// A rate limiter: units taken now or waited for, per key.
///
/// Implemented by [`Gcra`], [`TokenBucket`], [`LeakyBucket`] (as a meter of
/// its pacing), [`SlidingWindow`], [`SlidingLog`] (all with `Key = ()`, one
/// limit for everything) and [`Keyed`] (one limit per key, any hasher). The
/// tower [`RateLimitLayer`](crate::RateLimitLayer) takes any `Limiter`.
///
/// Each limiter also has these methods inherently, without the key for the
/// direct ones (`gcra.try_acquire(1)`); the trait is for code generic over the
/// limiter (`Limiter::try_acquire(&gcra, &(), 1)`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::time::ManualClock;
/// use conc_ratelimit::{Gcra, Limiter, Quota, SlidingLog};
///
/// /// Takes one unit, or says how long to come back after.
/// fn admit<L: Limiter<Key = ()>>(limiter: &L) -> Option<Duration> {
///     limiter.try_acquire(&(), 1).err().and_then(|refused| refused.retry_after())
/// }
///
/// let clock = ManualClock::new();
/// let gcra = Gcra::builder(Quota::per_second(1)?).clock(clock.clone()).build();
/// let log = SlidingLog::builder(1, Duration::from_secs(1)).clock(clock.clone()).build()?;
/// assert_eq!((admit(&gcra), admit(&log)), (None, None));
/// assert_eq!(admit(&gcra), Some(Duration::from_secs(1)));
/// assert_eq!(admit(&log), Some(Duration::from_secs(1)));
/// assert_eq!((gcra.capacity(), Limiter::capacity(&log)), (1, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Limiter: Send + Sync {
    /// What the limit is counted per: `()` for a direct limiter, the key type
    /// of a [`Keyed`] limiter.
    type Key: Send + Sync;

    /// Takes `n` units for `key` now, all or nothing (`n = 0` always succeeds).
    ///
    /// # Errors
    ///
    /// [`RateLimitError::Limited`] with the wait after which the same call
    /// would succeed; [`RateLimitError::ExceedsCapacity`] when `n` is more
    /// than [`capacity`](Self::capacity).
    fn try_acquire(&self, key: &Self::Key, n: u32) -> Result<(), RateLimitError>;

    /// Waits until `n` units can be taken for `key`, then takes them.
    /// Cancellation-safe: a dropped wait consumes nothing.
    ///
    /// # Errors
    ///
    /// [`RateLimitError::ExceedsCapacity`] when `n` is more than
    /// [`capacity`](Self::capacity); never `Limited`.
    fn acquire<'a>(
        &'a self,
        key: &'a Self::Key,
        n: u32,
    ) -> impl Future<Output = Result<(), RateLimitError>> + Send + 'a;

    /// Units `key` could take at once now.
    fn remaining(&self, key: &Self::Key) -> u32;

    /// How long until `n` units could be taken for `key`, without taking them
    /// (zero when they could be taken now).
    ///
    /// # Errors
    ///
    /// [`RateLimitError::ExceedsCapacity`] when `n` is more than
    /// [`capacity`](Self::capacity).
    fn retry_after(&self, key: &Self::Key, n: u32) -> Result<Duration, RateLimitError>;

    /// Forgets `key`'s charges: its whole capacity is available again.
    fn reset(&self, key: &Self::Key);

    /// The most units one call can take.
    fn capacity(&self) -> u32;
}

/// `Limiter` for a direct limiter whose inherent methods take no key.
macro_rules! direct_limiter {
    ($ty:ident<$($param:ident),*> where $($bound:tt)*) => {
        impl<$($param),*> Limiter for $ty<$($param),*>
        where
            $($bound)*
        {
            type Key = ();

            #[inline]
            fn try_acquire(&self, _key: &(), n: u32) -> Result<(), RateLimitError> {
                $ty::try_acquire(self, n)
            }

            fn acquire<'a>(
                &'a self,
                _key: &'a (),
                n: u32,
            ) -> impl Future<Output = Result<(), RateLimitError>> + Send + 'a {
                $ty::acquire(self, n)
            }

            fn remaining(&self, _key: &()) -> u32 {
                $ty::remaining(self)
            }

            fn retry_after(&self, _key: &(), n: u32) -> Result<Duration, RateLimitError> {
                $ty::retry_after(self, n)
            }

            fn reset(&self, _key: &()) {
                $ty::reset(self);
            }

            fn capacity(&self) -> u32 {
                $ty::capacity(self)
            }
        }
    };
}

direct_limiter!(Gcra<C> where C: Clock);
direct_limiter!(TokenBucket<C> where C: Clock);
direct_limiter!(SlidingWindow<C> where C: Clock);
direct_limiter!(SlidingLog<C> where C: Clock);

/// A leaky bucket as a *meter*: each unit taken is one pacing slot, the same
/// slots [`dequeue`](LeakyBucket::dequeue) spends, so `n` units pass at once
/// after an idle spell of `burst` intervals and then one per interval. The
/// queue is not involved; its capacity is not this capacity.
impl<T: Send, C: Clock> Limiter for LeakyBucket<T, C> {
    type Key = ();

    fn try_acquire(&self, _key: &(), n: u32) -> Result<(), RateLimitError> {
        self.meter_take(n)
    }

    fn acquire<'a>(
        &'a self,
        _key: &'a (),
        n: u32,
    ) -> impl Future<Output = Result<(), RateLimitError>> + Send + 'a {
        crate::wait::until_ready(None, move || self.meter_take(n))
    }

    fn remaining(&self, _key: &()) -> u32 {
        self.meter_remaining()
    }

    fn retry_after(&self, _key: &(), n: u32) -> Result<Duration, RateLimitError> {
        self.meter_retry_after(n)
    }

    fn reset(&self, _key: &()) {
        LeakyBucket::reset(self);
    }

    fn capacity(&self) -> u32 {
        self.burst()
    }
}

impl<K, C, S> Limiter for Keyed<K, C, S>
where
    K: Hash + Eq + Clone + Send + Sync,
    C: Clock,
    S: BuildHasher + Clone + Send + Sync,
{
    type Key = K;

    #[inline]
    fn try_acquire(&self, key: &K, n: u32) -> Result<(), RateLimitError> {
        Keyed::try_acquire(self, key, n)
    }

    fn acquire<'a>(
        &'a self,
        key: &'a K,
        n: u32,
    ) -> impl Future<Output = Result<(), RateLimitError>> + Send + 'a {
        Keyed::acquire(self, key, n)
    }

    fn remaining(&self, key: &K) -> u32 {
        Keyed::remaining(self, key)
    }

    fn retry_after(&self, key: &K, n: u32) -> Result<Duration, RateLimitError> {
        Keyed::retry_after(self, key, n)
    }

    fn reset(&self, key: &K) {
        Keyed::reset(self, key);
    }

    fn capacity(&self) -> u32 {
        Keyed::capacity(self)
    }
}
