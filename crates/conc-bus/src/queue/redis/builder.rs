//! [`RedisQueueBuilder`]: connection, key, failed-store and batch-sweep
//! settings of a [`RedisQueue`], and connecting.

use std::sync::Arc;
use std::time::Duration;

use conc_core::config::{self, ConfigError};
use conc_core::time::Clock;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{RedisQueue, Settings, Time, keys, reply};
use crate::clock::{WallClock, millis};
use crate::queue::error::QueueError;
use crate::queue::memory::{DEFAULT_FAILED_MAX_AGE, DEFAULT_FAILED_MAX_JOBS};

const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_RECONNECT_RETRIES: usize = 3;
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(100);
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(1);
/// The longest response or connection timeout accepted: one hour.
const MAX_TIMEOUT: Duration = Duration::from_secs(3_600);
/// The most reconnection attempts accepted after a dropped connection.
const MAX_RECONNECT_RETRIES: usize = 1_000;
/// How many members of a cancelled batch one script call sweeps at most, by
/// default.
pub(super) const DEFAULT_SWEEP_CHUNK: usize = 1_000;
/// The largest sweep chunk accepted.
const MAX_SWEEP_CHUNK: usize = 100_000;

/// Settings for a [`RedisQueue`], made by [`RedisQueue::builder`];
/// [`connect`](Self::connect) connects.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use conc_bus::RedisQueue;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_bus::QueueError> {
/// let backend = RedisQueue::builder("redis://127.0.0.1:6379/")
///     .key_prefix("billing:jobs:")
///     .response_timeout(Duration::from_millis(500))
///     .failed_retention(1_000, Duration::from_secs(7 * 24 * 3600))
///     .connect()
///     .await?;
/// # drop(backend);
/// # Ok(()) }
/// ```
#[must_use = "a builder does nothing until `connect` is called"]
pub struct RedisQueueBuilder {
    url: String,
    key_prefix: String,
    response_timeout: Duration,
    connection_timeout: Duration,
    reconnect_retries: usize,
    clock: Option<Arc<dyn Clock>>,
    failed_max_jobs: usize,
    failed_max_age: Duration,
    sweep_chunk: usize,
}

impl std::fmt::Debug for RedisQueueBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueueBuilder")
            .field("key_prefix", &self.key_prefix)
            .field("response_timeout", &self.response_timeout)
            .field("connection_timeout", &self.connection_timeout)
            .field("reconnect_retries", &self.reconnect_retries)
            .field("clock", &self.clock.as_ref().map_or("server", |_| "client"))
            .field("failed_max_jobs", &self.failed_max_jobs)
            .field("failed_max_age", &self.failed_max_age)
            .field("sweep_chunk", &self.sweep_chunk)
            .finish_non_exhaustive()
    }
}

impl RedisQueueBuilder {
    pub(super) fn new(url: String) -> Self {
        Self {
            url,
            key_prefix: keys::DEFAULT_PREFIX.to_owned(),
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            connection_timeout: DEFAULT_CONNECTION_TIMEOUT,
            reconnect_retries: DEFAULT_RECONNECT_RETRIES,
            clock: None,
            failed_max_jobs: DEFAULT_FAILED_MAX_JOBS,
            failed_max_age: DEFAULT_FAILED_MAX_AGE,
            sweep_chunk: DEFAULT_SWEEP_CHUNK,
        }
    }

    /// The text every key starts with, so several applications (or tests)
    /// can share one Redis database. It must not contain `{`, `}` (the queue
    /// adds the hash tag right after it) or a NUL byte. Defaults to
    /// `"conc:bus:"`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use conc_bus::RedisQueue;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_bus::QueueError> {
    /// let backend = RedisQueue::builder("redis://127.0.0.1:6379/").key_prefix("shop:jobs:").connect().await?;
    /// assert_eq!(backend.queue_keys("mail"), "shop:jobs:{mail}:");
    /// # Ok(()) }
    /// ```
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// How long a command waits for the server's answer before it fails with
    /// [`QueueError::Backend`]; it bounds how long a call hangs on a stalled
    /// server. (The blocking wait of an idle worker uses its own connection,
    /// whose timeout is the wait plus this.) Defaults to 1 s; more than zero,
    /// at most one hour.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use conc_bus::RedisQueue;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_bus::QueueError> {
    /// let backend = RedisQueue::builder("redis://127.0.0.1:6379/")
    ///     .response_timeout(Duration::from_secs(2))
    ///     .connect()
    ///     .await?;
    /// # drop(backend);
    /// # Ok(()) }
    /// ```
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// How long one attempt to open a connection may take. Defaults to 1 s;
    /// more than zero, at most one hour.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use conc_bus::RedisQueue;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_bus::QueueError> {
    /// let backend = RedisQueue::builder("redis://10.0.0.7:6379/")
    ///     .connection_timeout(Duration::from_millis(300))
    ///     .connect()
    ///     .await?;
    /// # drop(backend);
    /// # Ok(()) }
    /// ```
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// How many times a failed connection attempt is retried (after 100 ms,
    /// doubling up to 1 s) before the calls waiting for it fail with
    /// [`QueueError::Backend`]; the next call starts a new round. A worker
    /// retries failed calls on its own, with its `backend_retry` backoff.
    /// Defaults to 3; at most 1,000.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use conc_bus::RedisQueue;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_bus::QueueError> {
    /// let backend = RedisQueue::builder("redis://127.0.0.1:6379/").reconnect_retries(0).connect().await?;
    /// # drop(backend);
    /// # Ok(()) }
    /// ```
    pub fn reconnect_retries(mut self, retries: usize) -> Self {
        self.reconnect_retries = retries;
        self
    }

    /// A clock to read every time from instead of the server's `TIME`: the
    /// scripts are handed its time as Unix milliseconds. For tests, which
    /// move a `ManualClock` to expire leases and delays without waiting;
    /// processes sharing a queue must all keep the default. Defaults to the
    /// server's clock.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use conc_bus::{QueueBackend, RedisQueue};
    /// use conc_core::time::ManualClock;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_bus::QueueError> {
    /// let clock = ManualClock::new();
    /// let backend = RedisQueue::builder("redis://127.0.0.1:6379/").clock(clock.clone()).connect().await?;
    /// let before = backend.now();
    /// clock.advance(Duration::from_secs(30)); // leases expire without waiting
    /// assert_eq!(backend.now(), before + 30_000);
    /// # Ok(()) }
    /// ```
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// How many failed jobs each queue keeps, and for how long: past either
    /// bound the oldest failures of the queue are dropped when new ones
    /// arrive (at most 256 per call). Redis applies the bounds per queue,
    /// where the other backends count every queue together. Defaults to
    /// [`DEFAULT_FAILED_MAX_JOBS`](crate::queue::DEFAULT_FAILED_MAX_JOBS) and
    /// [`DEFAULT_FAILED_MAX_AGE`](crate::queue::DEFAULT_FAILED_MAX_AGE); at
    /// least one job and one millisecond.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use conc_bus::{QueueError, RedisQueue};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_bus::QueueError> {
    /// let url = "redis://127.0.0.1:6379/";
    /// let week = Duration::from_secs(7 * 24 * 3600);
    /// let backend = RedisQueue::builder(url).failed_retention(1_000, week).connect().await?;
    /// # drop(backend);
    /// let refused = RedisQueue::builder(url).failed_retention(0, week).connect().await;
    /// assert!(matches!(refused, Err(QueueError::Config(_))));
    /// # Ok(()) }
    /// ```
    pub fn failed_retention(mut self, max_jobs: usize, max_age: Duration) -> Self {
        self.failed_max_jobs = max_jobs;
        self.failed_max_age = max_age;
        self
    }

    /// How many members of a cancelled (failed, timed out) batch one script
    /// call looks at, at most, when it takes the waiting ones out of their
    /// queues. Cancelling marks the batch at once; its waiting members are
    /// then swept a chunk per call (by the cancelling caller, and by the
    /// reservations of every process for a sweep a settlement or a timeout
    /// started), so no call keeps Redis busy for long whatever the batch's
    /// size. Kept by each batch when it is created. Defaults to 1,000; at
    /// least 1 and at most 100,000.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use conc_bus::{QueueError, RedisQueue};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_bus::QueueError> {
    /// let url = "redis://127.0.0.1:6379/";
    /// let backend = RedisQueue::builder(url).sweep_chunk(500).connect().await?;
    /// # drop(backend);
    /// let refused = RedisQueue::builder(url).sweep_chunk(0).connect().await;
    /// assert!(matches!(refused, Err(QueueError::Config(_))));
    /// # Ok(()) }
    /// ```
    pub fn sweep_chunk(mut self, members: usize) -> Self {
        self.sweep_chunk = members;
        self
    }

    /// Checks the settings, connects, reads the server's clock once, and
    /// returns the queue.
    ///
    /// # Errors
    ///
    /// [`QueueError::Config`] for a refused setting (the message names it);
    /// [`QueueError::Backend`] when the URL does not parse or the server
    /// cannot be reached.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use conc_bus::RedisQueue;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_bus::QueueError> {
    /// let backend = RedisQueue::builder("redis://127.0.0.1:6379/").connect().await?;
    /// # drop(backend);
    /// # Ok(()) }
    /// ```
    pub async fn connect(self) -> Result<RedisQueue, QueueError> {
        validate_prefix(&self.key_prefix)?;
        for (field, timeout) in [
            ("response_timeout", self.response_timeout),
            ("connection_timeout", self.connection_timeout),
        ] {
            config::positive(field, timeout)?;
            config::at_most(field, timeout, MAX_TIMEOUT)?;
        }
        config::at_most("reconnect_retries", self.reconnect_retries, MAX_RECONNECT_RETRIES)?;
        config::at_least("failed_max_jobs", self.failed_max_jobs, 1)?;
        config::at_least("failed_max_age", self.failed_max_age, Duration::from_millis(1))?;
        config::at_least("sweep_chunk", self.sweep_chunk, 1)?;
        config::at_most("sweep_chunk", self.sweep_chunk, MAX_SWEEP_CHUNK)?;
        let client = redis::Client::open(self.url.as_str()).map_err(reply::backend)?;
        let manager_config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(self.response_timeout))
            .set_connection_timeout(Some(self.connection_timeout))
            .set_number_of_retries(self.reconnect_retries)
            .set_min_delay(RECONNECT_MIN_DELAY)
            .set_max_delay(RECONNECT_MAX_DELAY);
        let mut manager = ConnectionManager::new_with_config(client.clone(), manager_config)
            .await
            .map_err(reply::backend)?;
        let time = if let Some(clock) = self.clock {
            Time::Client(WallClock::new(clock))
        } else {
            let time = Time::server();
            let (seconds, micros): (u64, u64) =
                redis::cmd("TIME").query_async(&mut manager).await.map_err(reply::backend)?;
            time.observe(seconds.saturating_mul(1_000).saturating_add(micros / 1_000));
            time
        };
        let mut settings = default_settings(&self.key_prefix);
        settings.failed_max_jobs = self.failed_max_jobs as u64;
        settings.failed_max_age_ms = millis(self.failed_max_age);
        settings.connection_timeout = self.connection_timeout;
        settings.sweep_chunk = self.sweep_chunk as u64;
        Ok(RedisQueue::from_parts(client, manager, settings, time))
    }
}

/// The settings of a queue under `prefix` (valid) with every other default.
pub(super) fn default_settings(prefix: &str) -> Settings {
    Settings {
        prefix: prefix.into(),
        registry: keys::registry(prefix).into(),
        failed_max_jobs: DEFAULT_FAILED_MAX_JOBS as u64,
        failed_max_age_ms: millis(DEFAULT_FAILED_MAX_AGE),
        connection_timeout: DEFAULT_CONNECTION_TIMEOUT,
        sweep_chunk: DEFAULT_SWEEP_CHUNK as u64,
    }
}

/// Checks that a key prefix leaves the hash tag to the queue.
pub(super) fn validate_prefix(prefix: &str) -> Result<(), ConfigError> {
    if prefix.contains(['{', '}', '\0']) {
        let reason = "must not contain `{`, `}` (the queue adds the hash tag) or a NUL byte";
        return Err(ConfigError::new("key_prefix", prefix, reason));
    }
    Ok(())
}
