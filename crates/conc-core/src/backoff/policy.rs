//! The validated backoff policy, [`Backoff`].

use std::ops::RangeInclusive;
use std::time::Duration;

use super::delays::Step;
use super::rng::fresh_seed;
use super::strategy::{DelayFn, decorrelated_step};
use super::{BackoffBuilder, Delays, Jitter, Strategy};

/// A validated backoff policy: how long to wait before each retry, and how many retries to make.
///
/// Create one with a strategy constructor ([`fixed`](Self::fixed), [`linear`](Self::linear),
/// [`exponential`](Self::exponential), [`fibonacci`](Self::fibonacci),
/// [`decorrelated_jitter`](Self::decorrelated_jitter), [`custom`](Self::custom)), configure the
/// returned [`BackoffBuilder`] and call [`build`](BackoffBuilder::build). A policy is immutable,
/// cheap to clone (a custom function sits behind an `Arc`) and shared freely across threads; each
/// retry loop takes its own schedule from [`delays`](Self::delays).
///
/// Retry indices are 0-based: the delay at index `n` is waited after attempt `n + 1` failed and
/// before attempt `n + 2`, i.e. before retry `n + 1`. See the [module docs](super) for the
/// formulas and golden tables.
///
/// ```
/// use std::time::Duration;
///
/// use conc_core::backoff::Backoff;
///
/// let backoff = Backoff::exponential(Duration::from_millis(100))
///     .max_delay(Duration::from_secs(1))
///     .max_attempts(6)
///     .build()?;
/// let delays: Vec<u64> = backoff.delays().map(|d| d.as_millis() as u64).collect();
/// assert_eq!(delays, [100, 200, 400, 800, 1000]);
/// assert_eq!(backoff.max_retries(), Some(5));
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Backoff {
    strategy: Strategy,
    jitter: Jitter,
    max_delay: Option<Duration>,
    max_retries: Option<u32>,
    seed: Option<u64>,
}

impl Backoff {
    /// Starts a policy that waits `delay` before every retry.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use conc_core::backoff::Backoff;
    ///
    /// let backoff = Backoff::fixed(Duration::from_millis(100)).max_retries(3).build()?;
    /// assert_eq!(backoff.delays().collect::<Vec<_>>(), [Duration::from_millis(100); 3]);
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn fixed(delay: Duration) -> BackoffBuilder {
        BackoffBuilder::new(Strategy::Fixed { delay })
    }

    /// Starts a policy that waits `initial` before the first retry and `increment` longer before
    /// each further one: `initial + n * increment`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use conc_core::backoff::Backoff;
    ///
    /// let ms = Duration::from_millis;
    /// let backoff = Backoff::linear(ms(100), ms(50)).max_retries(3).build()?;
    /// assert_eq!(backoff.delays().collect::<Vec<_>>(), [ms(100), ms(150), ms(200)]);
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn linear(initial: Duration, increment: Duration) -> BackoffBuilder {
        BackoffBuilder::new(Strategy::Linear { initial, increment })
    }

    /// Starts a policy that waits `initial` before the first retry and multiplies the delay by
    /// [`factor`](BackoffBuilder::factor) (default 2.0) before each further one:
    /// `initial * factor^n`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use conc_core::backoff::Backoff;
    ///
    /// let ms = Duration::from_millis;
    /// let backoff = Backoff::exponential(ms(100)).factor(3.0).max_retries(3).build()?;
    /// assert_eq!(backoff.delays().collect::<Vec<_>>(), [ms(100), ms(300), ms(900)]);
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn exponential(initial: Duration) -> BackoffBuilder {
        BackoffBuilder::new(Strategy::Exponential { initial, factor: 2.0 })
    }

    /// Starts a policy whose delays follow the Fibonacci numbers: `initial`, `initial`,
    /// `2 * initial`, `3 * initial`, `5 * initial`, `8 * initial`, …
    ///
    /// Grows more gently than doubling (by about 1.618 per step).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use conc_core::backoff::Backoff;
    ///
    /// let backoff = Backoff::fibonacci(Duration::from_secs(1)).max_retries(6).build()?;
    /// let secs: Vec<u64> = backoff.delays().map(|d| d.as_secs()).collect();
    /// assert_eq!(secs, [1, 1, 2, 3, 5, 8]);
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn fibonacci(initial: Duration) -> BackoffBuilder {
        BackoffBuilder::new(Strategy::Fibonacci { initial })
    }

    /// Starts an AWS "decorrelated jitter" policy: each delay is random between `base` and three
    /// times the previous delay, capped by [`max_delay`](BackoffBuilder::max_delay).
    ///
    /// `d(n) = min(max_delay, random(base, 3 * d(n - 1)))` with `d(-1) = base`, so the first
    /// delay is already random, in `[base, 3 * base]`, and the delay at index `n` lies in
    /// `[base, min(max_delay, base * 3^(n + 1))]`. It is random by construction, so combining it
    /// with a [`Jitter`] other than `None` is an error. Set a `max_delay`: without one the delays
    /// can triple every retry.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use conc_core::backoff::Backoff;
    ///
    /// let ms = Duration::from_millis;
    /// let backoff = Backoff::decorrelated_jitter(ms(100)).max_delay(ms(1000)).build()?;
    /// for delay in backoff.delays().take(20) {
    ///     assert!(ms(100) <= delay && delay <= ms(1000));
    /// }
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn decorrelated_jitter(base: Duration) -> BackoffBuilder {
        BackoffBuilder::new(Strategy::DecorrelatedJitter { base })
    }

    /// Starts a policy whose delay before retry `n + 1` is `f(n)`, for a 0-based index `n`.
    ///
    /// The cap and jitter still apply to what `f` returns. `f` must not panic; it should be
    /// cheap, since it runs once per delay.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use conc_core::backoff::Backoff;
    ///
    /// // Laravel-style explicit table; the last entry repeats.
    /// let table = [1, 5, 10].map(Duration::from_secs);
    /// let backoff = Backoff::custom(move |n| table[(n as usize).min(table.len() - 1)])
    ///     .max_retries(4)
    ///     .build()?;
    /// let secs: Vec<u64> = backoff.delays().map(|d| d.as_secs()).collect();
    /// assert_eq!(secs, [1, 5, 10, 10]);
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn custom<F>(f: F) -> BackoffBuilder
    where
        F: Fn(u32) -> Duration + Send + Sync + 'static,
    {
        BackoffBuilder::new(Strategy::Custom(DelayFn::new(f)))
    }

    /// Assembles a policy from settings [`BackoffBuilder::build`] has validated.
    pub(crate) fn from_validated(
        strategy: Strategy,
        jitter: Jitter,
        max_delay: Option<Duration>,
        max_retries: Option<u32>,
        seed: Option<u64>,
    ) -> Self {
        Self { strategy, jitter, max_delay, max_retries, seed }
    }

    /// Returns the configured strategy.
    pub fn strategy(&self) -> &Strategy {
        &self.strategy
    }

    /// Returns the configured jitter mode.
    pub fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// Returns the cap on every delay, or `None` when delays are uncapped.
    pub fn max_delay(&self) -> Option<Duration> {
        self.max_delay
    }

    /// Returns how many retries follow the first call, or `None` for an unlimited schedule.
    ///
    /// Whichever of [`max_retries`](BackoffBuilder::max_retries) and
    /// [`max_attempts`](BackoffBuilder::max_attempts) was configured, this is the number of
    /// delays the schedule yields.
    #[inline]
    pub fn max_retries(&self) -> Option<u32> {
        self.max_retries
    }

    /// Returns how many calls are made in total, the first one included, or `None` for an
    /// unlimited schedule.
    ///
    /// Always `max_retries() + 1`, except that `max_retries(u32::MAX)` reports `u32::MAX`
    /// attempts because one more does not fit a `u32`.
    pub fn max_attempts(&self) -> Option<u32> {
        self.max_retries.map(|retries| retries.saturating_add(1))
    }

    /// Returns the configured seed, or `None` when every schedule draws a fresh one.
    pub fn seed(&self) -> Option<u64> {
        self.seed
    }

    /// Returns the delay at 0-based retry index `retry` before jitter, capped by `max_delay`.
    ///
    /// For decorrelated jitter, whose delays are random by construction, this is the largest
    /// delay the index can take: `min(max_delay, base * 3^(retry + 1))`. The computation takes
    /// constant time (a custom function is called once), ignores the retry limit, and saturates
    /// at `max_delay` or [`Duration::MAX`] instead of overflowing, for any `retry`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use conc_core::backoff::Backoff;
    ///
    /// let backoff = Backoff::exponential(Duration::from_millis(100)).build()?;
    /// assert_eq!(backoff.base_delay(3), Duration::from_millis(800));
    /// assert_eq!(backoff.base_delay(u32::MAX), Duration::MAX);
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn base_delay(&self, retry: u32) -> Duration {
        self.strategy.base_delay(retry, self.cap())
    }

    /// Returns the range the delay at 0-based retry index `retry` can take, jitter included.
    ///
    /// With `d = base_delay(retry)`: `d..=d` without jitter, `0..=d` with full jitter,
    /// `d/2..=d` with equal jitter, and `base..=d` for decorrelated jitter. (A decorrelated
    /// schedule resumed by [`delays_from`](Self::delays_from) with a `previous` delay it did not
    /// produce itself is bounded by `min(max_delay, 3 * previous)` instead.)
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use conc_core::backoff::{Backoff, Jitter};
    ///
    /// let ms = Duration::from_millis;
    /// let backoff = Backoff::exponential(ms(100)).jitter(Jitter::Equal).build()?;
    /// assert_eq!(backoff.delay_bounds(2), ms(200)..=ms(400));
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn delay_bounds(&self, retry: u32) -> RangeInclusive<Duration> {
        let high = self.base_delay(retry);
        match self.strategy {
            Strategy::DecorrelatedJitter { base } => base.min(high)..=high,
            _ => self.jitter.bounds(high),
        }
    }

    /// Returns the schedule of delays, one per retry, from the first retry on.
    ///
    /// Finite when a retry limit is set, infinite otherwise. With a configured
    /// [`seed`](BackoffBuilder::seed) every call yields the same delays; without one each call
    /// draws a fresh seed (thread-local, no locking), so concurrent callers spread their retries.
    /// Does not allocate.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use conc_core::backoff::{Backoff, Jitter};
    ///
    /// let backoff = Backoff::exponential(Duration::from_millis(100))
    ///     .jitter(Jitter::Full)
    ///     .max_retries(5)
    ///     .seed(7)
    ///     .build()?;
    /// assert_eq!(backoff.delays().collect::<Vec<_>>(), backoff.delays().collect::<Vec<_>>());
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    #[inline]
    pub fn delays(&self) -> Delays {
        self.delays_from(0, None)
    }

    /// Returns the schedule drawn with `seed`, whatever seed the policy was configured with.
    ///
    /// Two schedules with the same seed yield the same delays.
    pub fn delays_seeded(&self, seed: u64) -> Delays {
        Delays::new(self.clone(), seed, 0, None)
    }

    /// Resumes a schedule at 0-based retry index `next_index`, after a pause such as a job
    /// stored in a durable queue.
    ///
    /// `next_index` is the number of delays already waited (the interrupted schedule's
    /// [`Delays::retries_so_far`]) and `previous` the last of them ([`Delays::previous`]), which
    /// only decorrelated jitter uses; `None` restarts its growth from `base`. The retry limit
    /// counts the delays already waited, so a resumed schedule yields
    /// `max_retries - next_index` more. With the same seed, resuming gives exactly the delays
    /// the uninterrupted schedule would have given; the seed is the configured one, or a fresh
    /// one.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use conc_core::backoff::Backoff;
    ///
    /// let backoff = Backoff::decorrelated_jitter(Duration::from_millis(100))
    ///     .max_delay(Duration::from_secs(10))
    ///     .max_retries(6)
    ///     .seed(42)
    ///     .build()?;
    /// let mut first = backoff.delays();
    /// let _ = first.by_ref().take(2).count();
    /// // Persist `first.retries_so_far()` and `first.previous()`; later:
    /// let resumed = backoff.delays_from(first.retries_so_far(), first.previous());
    /// assert_eq!(resumed.collect::<Vec<_>>(), first.collect::<Vec<_>>());
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    #[inline]
    pub fn delays_from(&self, next_index: u32, previous: Option<Duration>) -> Delays {
        // A schedule without randomness needs no fresh seed; skipping the draw
        // keeps deterministic schedules as cheap as a plain counter.
        let seed = match self.seed {
            Some(seed) => seed,
            None if self.is_random() => fresh_seed(),
            None => 0,
        };
        Delays::new(self.clone(), seed, next_index, previous)
    }

    /// Whether the schedule draws random numbers: jitter, or decorrelated jitter.
    pub(crate) fn is_random(&self) -> bool {
        self.jitter != Jitter::None || matches!(self.strategy, Strategy::DecorrelatedJitter { .. })
    }

    /// How a schedule starting at retry index `next_index` computes its delays:
    /// a shortcut for fixed and Fibonacci schedules without jitter, else the
    /// general formula.
    #[inline]
    pub(crate) fn step_from(&self, next_index: u32) -> Step {
        if self.jitter != Jitter::None {
            return Step::General;
        }
        let cap = self.cap();
        match &self.strategy {
            Strategy::Fixed { delay } => Step::Constant((*delay).min(cap)),
            // F(1) = F(2) = 1: a schedule from the start needs no multiplication.
            Strategy::Fibonacci { initial } if next_index == 0 => {
                Step::Fibonacci { next: *initial, after: *initial, cap }
            }
            strategy @ Strategy::Fibonacci { .. } => Step::Fibonacci {
                next: strategy.base_delay(next_index, Duration::MAX),
                after: next_index
                    .checked_add(1)
                    .map_or(Duration::MAX, |index| strategy.base_delay(index, Duration::MAX)),
                cap,
            },
            _ => Step::General,
        }
    }

    /// Computes the delay at `retry`, given the previous delay and 64 random bits.
    pub(crate) fn delay_at(&self, retry: u32, previous: Option<Duration>, random: u64) -> Duration {
        let cap = self.cap();
        match &self.strategy {
            Strategy::DecorrelatedJitter { base } => {
                decorrelated_step(*base, previous, cap, random)
            }
            strategy => self.jitter.apply(strategy.base_delay(retry, cap), random).min(cap),
        }
    }

    /// The cap as a plain duration: `max_delay`, or `Duration::MAX` when uncapped.
    fn cap(&self) -> Duration {
        self.max_delay.unwrap_or(Duration::MAX)
    }
}
