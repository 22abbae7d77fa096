//! [`Quota`]: a rate and a burst, in exact integer nanoseconds.

use std::time::Duration;

use conc_core::config::{self, ConfigError};

/// How many requests a [`Gcra`](crate::Gcra) limiter admits: one every
/// *emission interval*, and up to *burst* at once.
///
/// `Quota::per_second(10)` means "a burst of 10, refilling one every 100 ms".
/// Over any interval of length `w`, a GCRA limiter admits at most
/// `burst + w / emission_interval` requests: `per_minute(60)` can admit up to
/// 119 within the first minute (60 at once, then one a second). Use a
/// [`SlidingLog`](crate::SlidingLog) where "never more than N in any window"
/// must hold exactly.
///
/// The emission interval is kept in whole nanoseconds (`period / rate`,
/// rounded down), so a quota is exact to within a nanosecond per request
/// (700 per minute stays 700 per minute, not 705).
///
/// # Burst conventions
///
/// `burst = B` means B requests may pass at once from rest. This is governor's
/// and `redis_rate`'s convention. redis-cell's `max_burst M` admits `M + 1` at
/// once; build the same quota here with [`Quota::redis_cell`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::config::ConfigError;
/// use conc_ratelimit::Quota;
///
/// let quota = Quota::per_second(10)?.with_burst(20)?;
/// assert_eq!(quota.emission_interval(), Duration::from_millis(100));
/// assert_eq!(quota.burst(), 20);
///
/// let refused = Quota::per_minute(0).unwrap_err();
/// assert_eq!(refused.field, "rate");
/// assert_eq!(refused.to_string(), "invalid `rate` 0: must be at least 1");
/// # Ok::<(), ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    emission_ns: u64,
    burst: u32,
}

impl Quota {
    /// `rate` requests per `period`, with a burst of `rate`.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `rate` (zero, or more than one request per
    /// nanosecond) or `period` (zero, or past about 584 years).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_ratelimit::Quota;
    ///
    /// let quota = Quota::new(700, Duration::from_secs(60))?;
    /// assert_eq!(quota.emission_interval(), Duration::from_nanos(85_714_285));
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn new(rate: u32, period: Duration) -> Result<Quota, ConfigError> {
        config::at_least("rate", rate, 1)?;
        let period_ns = nanos("period", period)?;
        let emission_ns = period_ns / u64::from(rate);
        if emission_ns == 0 {
            let reason =
                format!("must be at most one request per nanosecond of `period` {period:?}");
            return Err(ConfigError::new("rate", rate, reason));
        }
        Quota { emission_ns, burst: 1 }.with_burst(rate)
    }

    /// `rate` requests per second, burst `rate`.
    ///
    /// # Errors
    ///
    /// As [`Quota::new`].
    pub fn per_second(rate: u32) -> Result<Quota, ConfigError> {
        Self::new(rate, Duration::from_secs(1))
    }

    /// `rate` requests per minute, burst `rate`.
    ///
    /// # Errors
    ///
    /// As [`Quota::new`].
    pub fn per_minute(rate: u32) -> Result<Quota, ConfigError> {
        Self::new(rate, Duration::from_secs(60))
    }

    /// `rate` requests per hour, burst `rate`.
    ///
    /// # Errors
    ///
    /// As [`Quota::new`].
    pub fn per_hour(rate: u32) -> Result<Quota, ConfigError> {
        Self::new(rate, Duration::from_secs(3_600))
    }

    /// `rate` requests per day, burst `rate`.
    ///
    /// # Errors
    ///
    /// As [`Quota::new`].
    pub fn per_day(rate: u32) -> Result<Quota, ConfigError> {
        Self::new(rate, Duration::from_secs(86_400))
    }

    /// One request every `interval`, burst 1.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `period`: zero, or past about 584 years.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_ratelimit::Quota;
    ///
    /// let quota = Quota::with_period(Duration::from_millis(250))?.with_burst(4)?;
    /// assert_eq!(quota.burst(), 4);
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn with_period(interval: Duration) -> Result<Quota, ConfigError> {
        Self::new(1, interval)
    }

    /// The quota redis-cell's `CL.THROTTLE key max_burst count period` describes:
    /// `count` per `period`, admitting `max_burst + 1` at once.
    ///
    /// # Errors
    ///
    /// As [`Quota::new`], and a [`ConfigError`] naming `max_burst` for `u32::MAX`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_ratelimit::Quota;
    ///
    /// let quota = Quota::redis_cell(15, 30, Duration::from_secs(60))?;
    /// assert_eq!(quota.burst(), 16);
    /// assert_eq!(quota.emission_interval(), Duration::from_secs(2));
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn redis_cell(max_burst: u32, count: u32, period: Duration) -> Result<Quota, ConfigError> {
        let burst = config::at_most("max_burst", max_burst, u32::MAX - 1)? + 1;
        Self::new(count, period)?.with_burst(burst)
    }

    /// The same rate with a burst of `burst` requests at once.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `burst`: zero, or so large that
    /// `burst × emission interval` passes about 584 years.
    pub fn with_burst(self, burst: u32) -> Result<Quota, ConfigError> {
        config::at_least("burst", burst, 1)?;
        if self.emission_ns.checked_mul(u64::from(burst)).is_none() {
            let max = u32::try_from(u64::MAX / self.emission_ns).unwrap_or(u32::MAX);
            return Err(ConfigError::above("burst", burst, max));
        }
        Ok(Quota { burst, ..self })
    }

    /// The time one request is worth: `period / rate`.
    pub fn emission_interval(&self) -> Duration {
        Duration::from_nanos(self.emission_ns)
    }

    /// Requests admitted at once from rest.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// The time a full burst takes to replenish from empty: `burst × emission interval`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_ratelimit::Quota;
    ///
    /// let quota = Quota::per_minute(60)?;
    /// assert_eq!(quota.replenish_all(), Duration::from_secs(60));
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn replenish_all(&self) -> Duration {
        Duration::from_nanos(self.tolerance_ns())
    }

    pub(crate) fn emission_ns(&self) -> u64 {
        self.emission_ns
    }

    /// `emission × burst`: how far ahead of now the TAT may run. Checked in
    /// [`with_burst`](Self::with_burst), so it never overflows.
    pub(crate) fn tolerance_ns(&self) -> u64 {
        self.emission_ns * u64::from(self.burst)
    }
}

/// `duration` (a period, window or interval named `field`) in whole
/// nanoseconds: longer than zero and at most `u64::MAX` ns (about 584 years).
pub(crate) fn nanos(field: &'static str, duration: Duration) -> Result<u64, ConfigError> {
    config::positive(field, duration)?;
    u64::try_from(duration.as_nanos()).map_err(|_| {
        ConfigError::new(field, duration, "must be at most 584 years (u64::MAX nanoseconds)")
    })
}
