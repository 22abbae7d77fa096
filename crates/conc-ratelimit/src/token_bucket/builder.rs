//! [`TokenBucketBuilder`]: the capacity, refill, interval, initial level and clock of a
//! [`TokenBucket`].

use std::time::Duration;

use conc_core::config::{self, ConfigError};
use conc_core::time::{Clock, CoarseClock, Timeline};

use super::TokenBucket;
use super::cell::TokenCell;
use crate::quota::nanos;
use crate::stats::Stats;
use crate::time::default_clock;

/// Builds a [`TokenBucket`]; see [`TokenBucket::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct TokenBucketBuilder<C = CoarseClock> {
    capacity: u32,
    refill: u32,
    interval: Duration,
    initial: Option<u32>,
    clock: C,
}

impl TokenBucket<CoarseClock> {
    /// A builder: capacity 1, refill 1 every second, starting full, on the
    /// process-wide coarse clock.
    pub fn builder() -> TokenBucketBuilder<CoarseClock> {
        TokenBucketBuilder {
            capacity: 1,
            refill: 1,
            interval: Duration::from_secs(1),
            initial: None,
            clock: default_clock(),
        }
    }
}

impl<C: Clock> TokenBucketBuilder<C> {
    /// Most tokens the bucket holds, and so the most one call can take.
    /// Defaults to 1.
    pub fn capacity(mut self, capacity: u32) -> Self {
        self.capacity = capacity;
        self
    }

    /// Tokens added every `interval`. Defaults to 1.
    pub fn refill(mut self, refill: u32) -> Self {
        self.refill = refill;
        self
    }

    /// Time between refills. Defaults to one second.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Tokens in the bucket when it is built. Defaults to `capacity` (full).
    pub fn initial(mut self, tokens: u32) -> Self {
        self.initial = Some(tokens);
        self
    }

    /// The clock refills are counted on. Defaults to the process-wide
    /// [`CoarseClock`].
    pub fn clock<C2: Clock>(self, clock: C2) -> TokenBucketBuilder<C2> {
        TokenBucketBuilder {
            capacity: self.capacity,
            refill: self.refill,
            interval: self.interval,
            initial: self.initial,
            clock,
        }
    }

    /// Validates the settings and builds the bucket.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `capacity` or `refill` (zero), `interval`
    /// (zero, or past about 584 years) or `initial` (above `capacity`).
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_ratelimit::TokenBucket;
    ///
    /// let err = TokenBucket::builder().capacity(5).initial(6).build().unwrap_err();
    /// assert_eq!(err.to_string(), "invalid `initial` 6: must be at most 5");
    /// ```
    pub fn build(self) -> Result<TokenBucket<C>, ConfigError> {
        config::at_least("capacity", self.capacity, 1)?;
        config::at_least("refill", self.refill, 1)?;
        let interval = nanos("interval", self.interval)?;
        let initial =
            config::at_most("initial", self.initial.unwrap_or(self.capacity), self.capacity)?;
        Ok(TokenBucket {
            cell: TokenCell::new(u64::from(self.capacity - initial)),
            capacity: self.capacity.into(),
            refill: self.refill.into(),
            interval,
            time: Timeline::new(self.clock),
            stats: Stats::new(),
        })
    }
}
