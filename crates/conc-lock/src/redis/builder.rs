//! [`RedisBackendBuilder`]: connection and key options of a [`RedisBackend`].

use std::time::Duration;

use conc_core::config::{self, ConfigError};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::RedisBackend;
use crate::LockError;

/// The key prefix used unless [`RedisBackendBuilder::key_prefix`] sets another.
pub(super) const DEFAULT_KEY_PREFIX: &str = "conc:lock:";
const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_RECONNECT_RETRIES: usize = 3;
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(100);
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(1);
/// The longest response or connection timeout accepted: one hour.
const MAX_TIMEOUT: Duration = Duration::from_secs(3_600);
/// The most reconnection attempts accepted after a dropped connection.
const MAX_RECONNECT_RETRIES: usize = 1_000;

/// Options for a [`RedisBackend`]; made by [`RedisBackend::builder`],
/// finished by [`connect`](RedisBackendBuilder::connect).
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use conc_lock::{LockStore, RedisBackend};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_lock::LockError> {
/// let backend = RedisBackend::builder("redis://127.0.0.1:6379/")
///     .key_prefix("billing:lock:")
///     .response_timeout(Duration::from_millis(250))
///     .connect()
///     .await?;
/// let store = LockStore::new(backend);
/// # drop(store);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `connect` is called"]
pub struct RedisBackendBuilder {
    url: String,
    key_prefix: String,
    response_timeout: Duration,
    connection_timeout: Duration,
    reconnect_retries: usize,
}

impl RedisBackendBuilder {
    pub(super) fn new(url: String) -> Self {
        Self {
            url,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            connection_timeout: DEFAULT_CONNECTION_TIMEOUT,
            reconnect_retries: DEFAULT_RECONNECT_RETRIES,
        }
    }

    /// Sets the text every key starts with, so several applications (or
    /// tests) can share one Redis database. It must not contain `{` or `}`:
    /// the backend puts the hash tag right after it.
    ///
    /// Defaults to `"conc:lock:"`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use conc_lock::RedisBackend;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_lock::LockError> {
    /// let backend = RedisBackend::builder("redis://127.0.0.1:6379/")
    ///     .key_prefix("shop:lock:")
    ///     .connect()
    ///     .await?;
    /// assert_eq!(backend.key_prefix(), "shop:lock:");
    /// # Ok(()) }
    /// ```
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Sets how long a command waits for the server's answer before it fails
    /// with [`LockError::Backend`]; it bounds how long a lock call can hang
    /// on a stalled server. A command that timed out may still run on the
    /// server later (an acquire then holds the lock until its time to live
    /// runs out).
    ///
    /// Defaults to 500 ms. Must be greater than zero and at most one hour.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use conc_lock::RedisBackend;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_lock::LockError> {
    /// let backend = RedisBackend::builder("redis://127.0.0.1:6379/")
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

    /// Sets how long one attempt to open a connection may take.
    ///
    /// Defaults to 1 s. Must be greater than zero and at most one hour.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use conc_lock::RedisBackend;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_lock::LockError> {
    /// let backend = RedisBackend::builder("redis://10.0.0.7:6379/")
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

    /// Sets how many times a failed connection attempt is retried (after
    /// 100 ms, doubling up to 1 s, with jitter) before the calls waiting for
    /// it fail with [`LockError::Backend`]. The backend keeps no call waiting
    /// longer than that: the next call after a failed reconnection starts a
    /// new one. The same applies to the first connection in
    /// [`connect`](RedisBackendBuilder::connect).
    ///
    /// Defaults to 3 (so a call made while the server is down fails after
    /// about a second at most, plus the connection timeouts). At most 1 000.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use conc_lock::RedisBackend;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_lock::LockError> {
    /// // Fail fast: one attempt per call while the server is away.
    /// let backend = RedisBackend::builder("redis://127.0.0.1:6379/")
    ///     .reconnect_retries(0)
    ///     .connect()
    ///     .await?;
    /// # drop(backend);
    /// # Ok(()) }
    /// ```
    pub fn reconnect_retries(mut self, retries: usize) -> Self {
        self.reconnect_retries = retries;
        self
    }

    /// Checks the options, connects to the server and returns the backend.
    ///
    /// # Errors
    ///
    /// [`LockError::Backend`] when an option is invalid (the message names
    /// it), the URL does not parse, or the server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use conc_lock::RedisBackend;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_lock::LockError> {
    /// let backend = RedisBackend::builder("redis://127.0.0.1:6379/").connect().await?;
    /// # drop(backend);
    /// # Ok(()) }
    /// ```
    pub async fn connect(self) -> Result<RedisBackend, LockError> {
        validate_prefix(&self.key_prefix)?;
        for (field, timeout) in [
            ("response_timeout", self.response_timeout),
            ("connection_timeout", self.connection_timeout),
        ] {
            config::positive(field, timeout)?;
            config::at_most(field, timeout, MAX_TIMEOUT)?;
        }
        config::at_most("reconnect_retries", self.reconnect_retries, MAX_RECONNECT_RETRIES)?;
        let client = redis::Client::open(self.url.as_str()).map_err(LockError::backend)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(self.response_timeout))
            .set_connection_timeout(Some(self.connection_timeout))
            .set_number_of_retries(self.reconnect_retries)
            .set_min_delay(RECONNECT_MIN_DELAY)
            .set_max_delay(RECONNECT_MAX_DELAY);
        let manager =
            ConnectionManager::new_with_config(client, config).await.map_err(LockError::backend)?;
        Ok(RedisBackend::with_parts(manager, self.key_prefix.into()))
    }
}

/// Checks that a key prefix leaves the hash tag to the backend.
pub(super) fn validate_prefix(prefix: &str) -> Result<(), LockError> {
    if prefix.contains(['{', '}', '\0']) {
        let reason = "must not contain `{`, `}` (the backend adds the hash tag) or a NUL byte";
        return Err(ConfigError::new("key_prefix", prefix, reason).into());
    }
    Ok(())
}
