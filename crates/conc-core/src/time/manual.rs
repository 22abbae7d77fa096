//! A clock moved by hand, for deterministic tests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cell::{ElapsedCell, MAX_ELAPSED, nanos_of};
use super::{Clock, ClockError, saturating_nanos};

/// A clock that only moves when told to: the time source for deterministic tests.
///
/// It reads `origin + elapsed`, where `origin` is fixed when the clock is
/// created and `elapsed` starts at zero. Clones share the same time, so a test
/// keeps one handle and gives another to the component under test. It is
/// `Send + Sync`; concurrent [`advance`](ManualClock::advance) calls add up.
///
/// It may be moved backwards with [`rewind`](ManualClock::rewind), which is how
/// tests check that components survive a clock stepping back.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::time::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let handle = clock.clone();
/// let start = clock.now();
///
/// handle.advance(Duration::from_secs(2));
/// assert_eq!(clock.now() - start, Duration::from_secs(2));
///
/// clock.rewind(Duration::from_millis(500))?;
/// assert_eq!(clock.elapsed(), Duration::from_millis(1500));
/// # Ok::<(), conc_core::time::ClockError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    origin: Instant,
    elapsed: ElapsedCell,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualClock {
    /// A clock whose origin is the current instant and whose elapsed time is zero.
    pub fn new() -> Self {
        Self::with_origin(Instant::now())
    }

    /// A clock counting from `origin`, with zero elapsed time.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// use conc_core::time::{Clock, ManualClock};
    ///
    /// let origin = Instant::now();
    /// assert_eq!(ManualClock::with_origin(origin).now(), origin);
    /// ```
    pub fn with_origin(origin: Instant) -> Self {
        Self { inner: Arc::new(Inner { origin, elapsed: ElapsedCell::new(0) }) }
    }

    /// Time elapsed since the origin.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_core::time::ManualClock;
    ///
    /// let clock = ManualClock::new();
    /// clock.advance(Duration::from_millis(7));
    /// assert_eq!(clock.elapsed(), Duration::from_millis(7));
    /// ```
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.inner.elapsed.get())
    }

    /// Moves the clock forward by `by`.
    ///
    /// The elapsed time saturates at `u64::MAX` nanoseconds (about 584 years);
    /// use [`try_advance`](ManualClock::try_advance) to be told instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_core::time::ManualClock;
    ///
    /// let clock = ManualClock::new();
    /// clock.advance(Duration::from_secs(1));
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(clock.elapsed(), Duration::from_secs(2));
    /// ```
    pub fn advance(&self, by: Duration) {
        let nanos = nanos_of(by).unwrap_or(u64::MAX);
        // Never refused: the closure always returns `Some`.
        let _ = self.inner.elapsed.update(|now| Some(now.saturating_add(nanos)));
    }

    /// Moves the clock forward by `by`, refusing to pass the largest
    /// representable elapsed time.
    ///
    /// # Errors
    ///
    /// [`ClockError::OutOfRange`] when the clock would pass about 584 years
    /// after its origin; the clock is left unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_core::time::{ClockError, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// clock.try_advance(Duration::from_secs(3))?;
    /// assert!(clock.try_advance(Duration::MAX).is_err());
    /// assert_eq!(clock.elapsed(), Duration::from_secs(3));
    /// # Ok::<(), ClockError>(())
    /// ```
    pub fn try_advance(&self, by: Duration) -> Result<(), ClockError> {
        let out_of_range = |from: u64| ClockError::OutOfRange {
            value: Duration::from_nanos(from).saturating_add(by),
            limit: MAX_ELAPSED,
        };
        let Some(nanos) = nanos_of(by) else {
            return Err(out_of_range(self.inner.elapsed.get()));
        };
        self.inner.elapsed.update(|now| now.checked_add(nanos)).map(drop).map_err(out_of_range)
    }

    /// Moves the clock backwards by `by`.
    ///
    /// # Errors
    ///
    /// [`ClockError::BeforeOrigin`] when the clock would move before its
    /// origin; the clock is left unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_core::time::{ClockError, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// clock.advance(Duration::from_secs(1));
    /// clock.rewind(Duration::from_millis(250))?;
    /// assert_eq!(clock.elapsed(), Duration::from_millis(750));
    /// assert!(matches!(
    ///     clock.rewind(Duration::from_secs(1)),
    ///     Err(ClockError::BeforeOrigin { .. })
    /// ));
    /// # Ok::<(), ClockError>(())
    /// ```
    pub fn rewind(&self, by: Duration) -> Result<(), ClockError> {
        let before_origin = |short_by: Duration| ClockError::BeforeOrigin { by: short_by };
        let Some(nanos) = nanos_of(by) else {
            return Err(before_origin(by.saturating_sub(self.elapsed())));
        };
        self.inner
            .elapsed
            .update(|now| now.checked_sub(nanos))
            .map(drop)
            .map_err(|now| before_origin(Duration::from_nanos(nanos - now)))
    }

    /// Sets the elapsed time since the origin to exactly `elapsed`.
    ///
    /// # Errors
    ///
    /// [`ClockError::OutOfRange`] when `elapsed` exceeds `u64::MAX` nanoseconds.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_core::time::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// clock.set_elapsed(Duration::from_secs(60))?;
    /// assert_eq!(clock.now(), clock.origin() + Duration::from_secs(60));
    /// # Ok::<(), conc_core::time::ClockError>(())
    /// ```
    pub fn set_elapsed(&self, elapsed: Duration) -> Result<(), ClockError> {
        let nanos = nanos_of(elapsed)
            .ok_or(ClockError::OutOfRange { value: elapsed, limit: MAX_ELAPSED })?;
        self.inner.elapsed.set(nanos);
        Ok(())
    }

    /// Sets the clock to the instant `at`.
    ///
    /// # Errors
    ///
    /// [`ClockError::BeforeOrigin`] when `at` is before the origin;
    /// [`ClockError::OutOfRange`] when it is too far after it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_core::time::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let later = clock.origin() + Duration::from_millis(40);
    /// clock.set(later)?;
    /// assert_eq!(clock.now(), later);
    /// # Ok::<(), conc_core::time::ClockError>(())
    /// ```
    pub fn set(&self, at: Instant) -> Result<(), ClockError> {
        let origin = self.inner.origin;
        match at.checked_duration_since(origin) {
            Some(elapsed) => self.set_elapsed(elapsed),
            None => Err(ClockError::BeforeOrigin { by: origin - at }),
        }
    }
}

impl Clock for ManualClock {
    #[inline]
    fn now(&self) -> Instant {
        self.inner.origin + Duration::from_nanos(self.inner.elapsed.get())
    }

    fn origin(&self) -> Instant {
        self.inner.origin
    }

    #[inline]
    fn nanos_since(&self, origin: Instant) -> u64 {
        if origin == self.inner.origin {
            self.inner.elapsed.get()
        } else {
            saturating_nanos(self.now().saturating_duration_since(origin))
        }
    }
}
