//! The fan-out's settings and their builder.

use std::sync::Arc;
use std::time::Duration;

use conc_core::config::{self, ConfigError};
use conc_core::item::ErrorPolicy;

use super::FanOut;
use super::balance::Balance;
use super::metrics::FanStats;
use crate::recovery::Recovery;

/// The most workers a fan-out takes.
pub(crate) const MAX_WORKERS: usize = 65_536;
/// The largest batch.
pub(crate) const MAX_BATCH: usize = 65_536;
/// The most batches queued per worker.
pub(crate) const MAX_QUEUE: usize = 65_536;
/// The most items one run holds: what tokio's semaphore counts.
const MAX_WINDOW: usize = usize::MAX >> 3;

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) workers: usize,
    pub(crate) balance: Balance,
    pub(crate) ordered: bool,
    pub(crate) batch: usize,
    pub(crate) queue: usize,
    pub(crate) timeout: Option<Duration>,
    pub(crate) policy: ErrorPolicy,
}

impl Config {
    /// The most items in flight in one run (queued, running, and finished
    /// but not yet taken): `workers × batch × (queue + 2)`, checked by
    /// [`check`](Self::check) to fit tokio's semaphore.
    pub(crate) fn window(&self) -> usize {
        self.checked_window().unwrap_or(MAX_WINDOW)
    }

    fn checked_window(&self) -> Option<usize> {
        self.workers
            .checked_mul(self.batch)?
            .checked_mul(self.queue.checked_add(2)?)
            .filter(|&window| window <= MAX_WINDOW)
    }

    fn check(&self) -> Result<(), ConfigError> {
        config::at_least("workers", self.workers, 1)?;
        config::at_most("workers", self.workers, MAX_WORKERS)?;
        config::at_least("batch", self.batch, 1)?;
        config::at_most("batch", self.batch, MAX_BATCH)?;
        config::at_least("queue", self.queue, 1)?;
        config::at_most("queue", self.queue, MAX_QUEUE)?;
        if self.checked_window().is_none() {
            // Only on targets whose `usize` is narrower than 64 bits.
            let reason = format!("must keep workers × batch × (queue + 2) at most {MAX_WINDOW}");
            return Err(ConfigError::new("queue", self.queue, reason));
        }
        if let Some(timeout) = self.timeout {
            config::positive("timeout", timeout)?;
        }
        Ok(())
    }
}

/// Configures a [`FanOut`] for items of type `In`; settings are checked by
/// [`build`](Self::build).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_fan::{Balance, ErrorPolicy, FanOut};
///
/// let fan_out = FanOut::builder()
///     .workers(8)
///     .balance(Balance::LeastLoaded)
///     .batch(16)
///     .queue(4)
///     .unordered()
///     .timeout(Duration::from_secs(1))
///     .on_error(ErrorPolicy::Skip)
///     .build(|n: u64| async move { Ok::<_, std::io::Error>(n + 1) });
/// assert!(fan_out.is_ok());
///
/// let refused = FanOut::builder().workers(0).build(|n: u64| async move { Ok::<_, std::io::Error>(n) });
/// assert_eq!(refused.unwrap_err().to_string(), "invalid `workers` 0: must be at least 1");
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct FanOutBuilder<In> {
    config: Config,
    recovery: Option<Recovery<In>>,
}

// By hand: the item type needs neither `Clone` nor `Debug`.
impl<In> Clone for FanOutBuilder<In> {
    fn clone(&self) -> Self {
        Self { config: self.config.clone(), recovery: self.recovery.clone() }
    }
}

impl<In> std::fmt::Debug for FanOutBuilder<In> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanOutBuilder")
            .field("config", &self.config)
            .field("recovery", &self.recovery)
            .finish()
    }
}

impl<In> FanOut<In, ()> {
    /// A builder with the defaults: 4 workers, round robin, ordered, batches
    /// of 32, 2 batches queued per worker, no timeout, no recovery, fail on
    /// error. The item type is the processor's input, given to
    /// [`build`](FanOutBuilder::build).
    pub fn builder() -> FanOutBuilder<In> {
        FanOutBuilder {
            config: Config {
                workers: 4,
                balance: Balance::RoundRobin,
                ordered: true,
                batch: 32,
                queue: 2,
                timeout: None,
                policy: ErrorPolicy::Fail,
            },
            recovery: None,
        }
    }
}

impl<In> FanOutBuilder<In> {
    /// How many worker tasks share the items. Defaults to 4; must be between
    /// 1 and 65,536.
    pub fn workers(mut self, workers: usize) -> Self {
        self.config.workers = workers;
        self
    }

    /// How the next worker is picked. Defaults to [`Balance::RoundRobin`].
    pub fn balance(mut self, balance: Balance) -> Self {
        self.config.balance = balance;
        self
    }

    /// Results in input order (the default).
    pub fn ordered(mut self) -> Self {
        self.config.ordered = true;
        self
    }

    /// Results as they finish.
    pub fn unordered(mut self) -> Self {
        self.config.ordered = false;
        self
    }

    /// The most items handed to a worker at once. Defaults to 32; must be
    /// between 1 and 65,536. A batch is sent as soon as the source has
    /// nothing more ready, so batching adds no wait; it divides the hand-off
    /// cost under load.
    pub fn batch(mut self, items: usize) -> Self {
        self.config.batch = items;
        self
    }

    /// How many batches may wait in each worker's queue. Defaults to 2; must
    /// be between 1 and 65,536.
    pub fn queue(mut self, batches: usize) -> Self {
        self.config.queue = batches;
        self
    }

    /// Gives each attempt at most `timeout`; a slower one fails with
    /// [`ItemError::TimedOut`](crate::ItemError::TimedOut). Unlimited by
    /// default; must be longer than zero. A timeout too long to be reached on
    /// the clock ([`Duration::MAX`]) never fires.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = Some(timeout);
        self
    }

    /// Retries failed items and keeps the ones given up on, per `recovery`
    /// (see [`Recovery`]). Only an item that failed its last attempt and
    /// has no dead letter sink reaches the [`ErrorPolicy`]. No recovery by
    /// default. The recovery's item type is the fan-out's input type, so
    /// one for another type does not compile.
    ///
    /// An item waiting for its next attempt is set aside by its worker, which
    /// goes on with the items after it and runs the retry when its delay is
    /// up (still one attempt at a time per worker). The item stays in its
    /// worker's load until it is done, and in input order the items after it
    /// wait in the reorder window.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use conc_core::backoff::Backoff;
    /// use conc_fan::{DeadLetterQueue, FanOut, Origin, Recovery};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dead = DeadLetterQueue::new(1_000);
    /// let fetch = FanOut::builder()
    ///     .workers(8)
    ///     .recover(
    ///         Recovery::new()
    ///             .retry(Backoff::exponential(Duration::from_millis(50)).max_retries(3).build()?)
    ///             .dead_letter(dead.clone()),
    ///     )
    ///     .build(|id: u32| async move {
    ///         if id == 13 { Err(std::io::Error::other("unlucky")) } else { Ok(id) }
    ///     })?;
    /// let got = fetch.process_batch((10..15).collect()).await;
    /// assert!(got[3].is_err());
    /// let letter = &dead.take()[0];
    /// assert_eq!((letter.item, letter.attempts), (13, 4));
    /// assert!(matches!(letter.origin, Origin::Worker(_)));
    /// # Ok(()) }
    /// ```
    ///
    /// A recovery for another item type is refused by the compiler:
    ///
    /// ```compile_fail,E0631
    /// use conc_fan::{FanOut, Recovery};
    ///
    /// let for_strings: Recovery<String> = Recovery::new();
    /// let _ = FanOut::builder()
    ///     .recover(for_strings)
    ///     .build(|n: u32| async move { Ok::<_, std::io::Error>(n) });
    /// ```
    pub fn recover(mut self, recovery: Recovery<In>) -> Self {
        self.recovery = Some(recovery);
        self
    }

    /// What the output stream does with a failed item. Defaults to [`ErrorPolicy::Fail`].
    pub fn on_error(mut self, policy: ErrorPolicy) -> Self {
        self.config.policy = policy;
        self
    }

    /// Checks the settings and builds a fan-out running `f` on each item.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first setting out of range: `workers`,
    /// `batch` or `queue` below 1 or above 65,536, or a zero `timeout`.
    pub fn build<F, Fut>(self, f: F) -> Result<FanOut<In, F>, ConfigError>
    where
        F: Fn(In) -> Fut,
    {
        self.config.check()?;
        let stats = Arc::new(FanStats::new(self.config.workers));
        Ok(FanOut {
            config: Arc::new(self.config),
            recovery: self.recovery.map(Arc::new),
            f: Arc::new(f),
            stats,
        })
    }
}
