//! A cached clock for hot paths, refreshed by a background thread.

use std::sync::{Arc, OnceLock, Weak};
use std::thread;
use std::time::{Duration, Instant};

use super::cell::{ElapsedCell, nanos_of};
use super::{Clock, ClockError, saturating_nanos};
use crate::config;

/// A cheap, cached monotonic clock for hot paths.
///
/// A background thread stores the time elapsed since the clock's origin into
/// one atomic word every `resolution`; [`now`](Clock::now) is a single atomic
/// load plus an addition, several times cheaper than [`Instant::now()`] (see
/// `docs/performance.md`). The price is precision:
///
/// - a reading lags the true time by at most `resolution` plus however long
///   the operating system delays the updater thread (on an overloaded machine
///   the lag can exceed the resolution);
/// - a reading is never ahead of the true time and never goes backwards.
///
/// [`CoarseClock::global()`] is shared by the whole process, refreshes every
/// millisecond ([`DEFAULT_RESOLUTION`]) and starts on first use. Use
/// [`CoarseClock::with_resolution`] for a private clock; its thread exits
/// within one resolution after the last clone is dropped.
///
/// Decisions that tolerate a millisecond of error (rate limits, breaker
/// windows, idle timeouts) should read this clock; latency measurement should
/// read [`SystemClock`](super::SystemClock).
///
/// # Examples
///
/// ```
/// use conc_core::time::{Clock, CoarseClock};
///
/// let clock = CoarseClock::global();
/// let a = clock.now();
/// let b = clock.now();
/// assert!(b >= a);
/// assert_eq!(clock.resolution(), conc_core::time::DEFAULT_RESOLUTION);
/// ```
#[derive(Debug, Clone)]
pub struct CoarseClock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    origin: Instant,
    elapsed: ElapsedCell,
    resolution: Duration,
    /// Set when the updater thread could not be started: every read is then
    /// precise, so the clock stays correct, only slower.
    precise_fallback: bool,
}

/// The refresh period of [`CoarseClock::global()`]: one millisecond.
pub const DEFAULT_RESOLUTION: Duration = Duration::from_millis(1);

/// The finest resolution [`CoarseClock::with_resolution`] accepts: 50 µs.
pub const MIN_RESOLUTION: Duration = Duration::from_micros(50);

/// The coarsest resolution [`CoarseClock::with_resolution`] accepts: one second.
pub const MAX_RESOLUTION: Duration = Duration::from_secs(1);

impl CoarseClock {
    /// The process-wide coarse clock, refreshed every [`DEFAULT_RESOLUTION`].
    ///
    /// The updater thread (named `conc-coarse-clock`) starts on the first call
    /// and lives as long as the process. If the operating system refuses to
    /// start it, the clock falls back to precise reads instead of failing.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_core::time::{Clock, CoarseClock};
    ///
    /// let started = CoarseClock::global().now();
    /// assert!(CoarseClock::global().now() >= started);
    /// ```
    pub fn global() -> &'static CoarseClock {
        static GLOBAL: OnceLock<CoarseClock> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            Self::spawn(DEFAULT_RESOLUTION).unwrap_or_else(|_| Self::precise(DEFAULT_RESOLUTION))
        })
    }

    /// A private coarse clock refreshed every `resolution`.
    ///
    /// # Errors
    ///
    /// [`ClockError::Config`] when `resolution` is below
    /// [`MIN_RESOLUTION`] or above [`MAX_RESOLUTION`]; [`ClockError::Spawn`] when
    /// the updater thread cannot be started.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_core::time::{CoarseClock, ClockError};
    ///
    /// let clock = CoarseClock::with_resolution(Duration::from_millis(5))?;
    /// assert_eq!(clock.resolution(), Duration::from_millis(5));
    ///
    /// let err = CoarseClock::with_resolution(Duration::ZERO).unwrap_err();
    /// assert!(matches!(err, ClockError::Config(ref e) if e.field == "resolution"));
    /// # Ok::<(), ClockError>(())
    /// ```
    pub fn with_resolution(resolution: Duration) -> Result<CoarseClock, ClockError> {
        config::between("resolution", resolution, MIN_RESOLUTION, MAX_RESOLUTION)?;
        Self::spawn(resolution)
    }

    /// How often the reading is refreshed.
    pub fn resolution(&self) -> Duration {
        self.inner.resolution
    }

    /// The time from [`origin`](Clock::origin) to the last refresh: one atomic
    /// load, without the `Instant` arithmetic of [`now`](Clock::now). For hot
    /// paths that keep their own times as offsets from the origin.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_core::time::{Clock, CoarseClock};
    ///
    /// let clock = CoarseClock::global();
    /// let elapsed = clock.elapsed();
    /// assert!(clock.origin() + elapsed <= clock.now());
    /// ```
    #[inline]
    pub fn elapsed(&self) -> Duration {
        let inner = &*self.inner;
        if inner.precise_fallback {
            return inner.origin.elapsed();
        }
        Duration::from_nanos(inner.elapsed.get())
    }

    fn new_inner(resolution: Duration, precise_fallback: bool) -> Arc<Inner> {
        Arc::new(Inner {
            origin: Instant::now(),
            elapsed: ElapsedCell::new(0),
            resolution,
            precise_fallback,
        })
    }

    fn precise(resolution: Duration) -> CoarseClock {
        CoarseClock { inner: Self::new_inner(resolution, true) }
    }

    fn spawn(resolution: Duration) -> Result<CoarseClock, ClockError> {
        let inner = Self::new_inner(resolution, false);
        let weak = Arc::downgrade(&inner);
        thread::Builder::new()
            .name("conc-coarse-clock".into())
            .spawn(move || update_until_dropped(&weak, resolution))
            .map_err(ClockError::Spawn)?;
        Ok(CoarseClock { inner })
    }
}

/// The updater loop: refresh, sleep, and stop once no clock handle is left.
fn update_until_dropped(weak: &Weak<Inner>, resolution: Duration) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        if let Some(nanos) = nanos_of(inner.origin.elapsed()) {
            inner.elapsed.advance_to(nanos);
        }
        drop(inner);
        thread::sleep(resolution);
    }
}

impl Clock for CoarseClock {
    #[inline]
    fn now(&self) -> Instant {
        let inner = &*self.inner;
        if inner.precise_fallback {
            return Instant::now();
        }
        inner.origin + Duration::from_nanos(inner.elapsed.get())
    }

    fn origin(&self) -> Instant {
        self.inner.origin
    }

    #[inline]
    fn nanos_since(&self, origin: Instant) -> u64 {
        let inner = &*self.inner;
        if origin == inner.origin && !inner.precise_fallback {
            inner.elapsed.get()
        } else {
            saturating_nanos(self.now().saturating_duration_since(origin))
        }
    }
}
