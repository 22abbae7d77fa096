//! [`LeakyBucketBuilder`]: the capacity, interval, burst and clock of a [`LeakyBucket`].

use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Mutex;
use std::time::Duration;

use conc_core::config::{self, ConfigError};
use conc_core::time::{Clock, CoarseClock, Timeline};
use tokio::sync::Notify;

use super::LeakyBucket;
use crate::gcra::{GcraCell, Params};
use crate::quota::nanos;
use crate::stats::Stats;
use crate::time::default_clock;

/// Builds a [`LeakyBucket`]; see [`LeakyBucket::builder`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct LeakyBucketBuilder<T, C = CoarseClock> {
    capacity: usize,
    interval: Duration,
    burst: u32,
    clock: C,
    item: PhantomData<fn() -> T>,
}

impl<T, C: fmt::Debug> fmt::Debug for LeakyBucketBuilder<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeakyBucketBuilder")
            .field("capacity", &self.capacity)
            .field("interval", &self.interval)
            .field("burst", &self.burst)
            .field("clock", &self.clock)
            .finish()
    }
}

impl<T> LeakyBucket<T, CoarseClock> {
    /// A builder: capacity 1 024 items, one leaves every 100 ms, burst 1, on
    /// the process-wide coarse clock.
    pub fn builder() -> LeakyBucketBuilder<T, CoarseClock> {
        LeakyBucketBuilder {
            capacity: 1_024,
            interval: Duration::from_millis(100),
            burst: 1,
            clock: default_clock(),
            item: PhantomData,
        }
    }
}

impl<T, C: Clock> LeakyBucketBuilder<T, C> {
    /// Most items waiting at once. Defaults to 1 024.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Time between two items leaving. Defaults to 100 ms.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Items that may leave back to back after the bucket has been idle.
    /// Defaults to 1 (perfectly even spacing).
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = burst;
        self
    }

    /// The clock the pacing is measured on. Defaults to the process-wide
    /// [`CoarseClock`].
    pub fn clock<C2: Clock>(self, clock: C2) -> LeakyBucketBuilder<T, C2> {
        LeakyBucketBuilder {
            capacity: self.capacity,
            interval: self.interval,
            burst: self.burst,
            clock,
            item: PhantomData,
        }
    }

    /// Validates the settings and builds the bucket.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `capacity` (zero), `burst` (zero, or so
    /// large that `interval × burst` passes about 584 years) or `interval`
    /// (zero, or past about 584 years).
    pub fn build(self) -> Result<LeakyBucket<T, C>, ConfigError> {
        config::at_least("capacity", self.capacity, 1)?;
        config::at_least("burst", self.burst, 1)?;
        let emission = nanos("interval", self.interval)?;
        let Some(tolerance) = emission.checked_mul(self.burst.into()) else {
            let max = u32::try_from(u64::MAX / emission).unwrap_or(u32::MAX);
            return Err(ConfigError::above("burst", self.burst, max));
        };
        Ok(LeakyBucket {
            queue: Mutex::new(VecDeque::new()),
            capacity: self.capacity,
            pace: GcraCell::new(),
            params: Params { emission, tolerance, burst: self.burst },
            time: Timeline::new(self.clock),
            items: Notify::new(),
            room: Notify::new(),
            stats: Stats::new(),
        })
    }
}
