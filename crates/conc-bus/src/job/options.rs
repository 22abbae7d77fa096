//! [`JobOptions`]: where a job runs, when, how often it may be tried and how
//! long it may take; [`JobBackoff`]: the wait before each retry.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use conc_core::backoff::Backoff;
use conc_core::config::{self, ConfigError};

/// The queue a job goes to when nothing names another: `"default"`.
pub const DEFAULT_QUEUE: &str = "default";

/// The highest priority: priorities run from 0 (the default, lowest) to 9.
/// Within a queue, a higher priority is reserved first; equal priorities run
/// in the order they became available.
pub const MAX_PRIORITY: u8 = 9;

/// The longest queue name, in bytes.
pub const MAX_QUEUE_NAME: usize = 128;

/// The wait before each retry of a failed job.
///
/// Either a list of delays, one per retry, whose last value repeats (Laravel's
/// `backoff` array: `[1, 5, 10]` waits 1 s, 5 s, then 10 s for every later
/// retry), or any [`Backoff`] policy of conc-core (exponential with jitter,
/// …). Only a list can be set on one dispatch and stored with the job; a
/// policy is set on the job type ([`Job::options`](crate::Job::options)).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_bus::JobBackoff;
///
/// let backoff = JobBackoff::from([1, 5, 10].map(Duration::from_secs));
/// let waits: Vec<u64> = (1..=4).map(|retry| backoff.delay(retry).as_secs()).collect();
/// assert_eq!(waits, [1, 5, 10, 10]);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum JobBackoff {
    /// One delay per retry; the last repeats.
    Delays(Vec<Duration>),
    /// A conc-core backoff policy; its retry limit is ignored (the job's
    /// `max_attempts` decides).
    Policy(Backoff),
}

impl JobBackoff {
    /// The wait before retry number `retry` (1 for the first retry).
    pub fn delay(&self, retry: u32) -> Duration {
        let index = retry.saturating_sub(1);
        match self {
            Self::Delays(delays) => delays
                .get(index as usize)
                .or_else(|| delays.last())
                .copied()
                .unwrap_or(Duration::ZERO),
            Self::Policy(backoff) => {
                backoff.delays_from(index, None).next().unwrap_or_else(|| backoff.base_delay(index))
            }
        }
    }

    fn check(&self, field: &'static str) -> Result<(), ConfigError> {
        match self {
            Self::Delays(delays) if delays.is_empty() => {
                Err(ConfigError::new(field, delays, "must hold at least one delay"))
            }
            _ => Ok(()),
        }
    }
}

impl From<Vec<Duration>> for JobBackoff {
    fn from(delays: Vec<Duration>) -> Self {
        Self::Delays(delays)
    }
}

impl<const N: usize> From<[Duration; N]> for JobBackoff {
    fn from(delays: [Duration; N]) -> Self {
        Self::Delays(delays.to_vec())
    }
}

impl From<Backoff> for JobBackoff {
    fn from(backoff: Backoff) -> Self {
        Self::Policy(backoff)
    }
}

/// Where a job runs, when, how often it may be tried and how long it may take.
///
/// A job type sets its defaults in [`Job::options`](crate::Job::options); each
/// dispatch may override any of them. The settings are checked when the job
/// is pushed: a bad one refuses the push with a [`ConfigError`] naming it, and
/// the job is handed back.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_bus::JobOptions;
///
/// let options = JobOptions::new()
///     .queue("reports")
///     .delay(Duration::from_secs(30))
///     .max_attempts(4)
///     .max_exceptions(2)
///     .timeout(Duration::from_secs(120))
///     .fail_on_timeout(true);
/// assert_eq!(options.queue_name(), "reports");
/// assert!(options.check().is_ok());
/// assert!(JobOptions::new().max_attempts(0).check().is_err());
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct JobOptions {
    pub(crate) queue: Option<Cow<'static, str>>,
    pub(crate) delay: Duration,
    pub(crate) priority: u8,
    pub(crate) max_attempts: u32,
    pub(crate) backoff: Option<JobBackoff>,
    pub(crate) max_exceptions: Option<u32>,
    pub(crate) retry_until: Option<SystemTime>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) fail_on_timeout: bool,
    pub(crate) encrypted: bool,
    pub(crate) middleware: Vec<String>,
}

impl Default for JobOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// The delays of the default backoff: 1 s, 10 s, then 60 s for every later retry.
pub(crate) const DEFAULT_BACKOFF: [Duration; 3] =
    [Duration::from_secs(1), Duration::from_secs(10), Duration::from_secs(60)];

impl JobOptions {
    /// The defaults: queue `"default"`, no delay, priority 0, 3 attempts,
    /// backoff 1 s, 10 s, 60 s (repeating), no separate exception limit, no
    /// deadline, no timeout.
    pub fn new() -> Self {
        Self {
            queue: None,
            delay: Duration::ZERO,
            priority: 0,
            max_attempts: 3,
            backoff: None,
            max_exceptions: None,
            retry_until: None,
            timeout: None,
            fail_on_timeout: false,
            encrypted: false,
            middleware: Vec::new(),
        }
    }

    /// Runs the job through the named middleware `name` too: a layer the
    /// workers register under that name with
    /// [`JobHandlers::named_layer`](crate::JobHandlers::named_layer). The name
    /// travels with the job, so the dispatch (or the job type, or a batch with
    /// [`PendingBatch::through`](crate::batch::PendingBatch::through)) chooses
    /// the middleware and every worker applies the same. Named layers run
    /// inside the handlers' own layers, in the order named; a name is 1 to
    /// [`MAX_MIDDLEWARE_NAME`] bytes, and a name given twice runs once. A
    /// worker that has no layer of that name sends the job to the failed
    /// store ([`DecodeError::UnknownMiddleware`](crate::DecodeError::UnknownMiddleware)).
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::JobOptions;
    ///
    /// let options = JobOptions::new().through("partner-api").through("audit");
    /// assert_eq!(options.middleware(), ["partner-api", "audit"]);
    /// assert!(JobOptions::new().through("").check().is_err());
    /// ```
    pub fn through(mut self, name: impl Into<String>) -> Self {
        push_middleware(&mut self.middleware, name.into());
        self
    }

    /// The names of the middleware the job runs through, in order.
    pub fn middleware(&self) -> &[String] {
        &self.middleware
    }

    /// Whether the payload travels sealed (feature `encryption`): a queue
    /// front with a [`Keyring`](crate::encryption::Keyring) encrypts it at
    /// push, and workers whose handlers hold the key open it before the
    /// handler runs. The queue, attempts and other settings stay readable.
    /// A queue front without a keyring refuses the push. Defaults to `false`.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::JobOptions;
    ///
    /// assert!(JobOptions::new().encrypted(true).is_encrypted());
    /// assert!(!JobOptions::new().is_encrypted());
    /// ```
    pub fn encrypted(mut self, encrypted: bool) -> Self {
        self.encrypted = encrypted;
        self
    }

    /// Whether the payload is to travel sealed.
    pub fn is_encrypted(&self) -> bool {
        self.encrypted
    }

    /// The queue the job goes to. Defaults to [`DEFAULT_QUEUE`]. A name is 1 to
    /// [`MAX_QUEUE_NAME`] bytes with no control characters.
    pub fn queue(mut self, queue: impl Into<Cow<'static, str>>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// The queue's name.
    pub fn queue_name(&self) -> &str {
        self.queue.as_deref().unwrap_or(DEFAULT_QUEUE)
    }

    /// How long after the push the job becomes available. Defaults to none.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The job's priority within its queue, 0 to [`MAX_PRIORITY`]; higher runs
    /// first. Defaults to 0.
    pub fn priority(mut self, priority: u8) -> Self {
        self.priority = priority;
        self
    }

    /// How many times the job may be reserved, the first run included; an
    /// attempt that crashed its worker counts too. Defaults to 3; at least 1.
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// The wait before each retry. Defaults to 1 s, 10 s, then 60 s.
    pub fn backoff(mut self, backoff: impl Into<JobBackoff>) -> Self {
        self.backoff = Some(backoff.into());
        self
    }

    /// How many failed attempts (errors, panics, timeouts) end the job, apart
    /// from `max_attempts`: releases do not count. Defaults to none (only
    /// `max_attempts` limits the job); at least 1.
    pub fn max_exceptions(mut self, max_exceptions: u32) -> Self {
        self.max_exceptions = Some(max_exceptions);
        self
    }

    /// A deadline after which the job is not tried again, however many
    /// attempts remain. Defaults to none.
    pub fn retry_until(mut self, deadline: SystemTime) -> Self {
        self.retry_until = Some(deadline);
        self
    }

    /// How long one attempt may run before its handler is cancelled and the
    /// attempt fails as timed out. Defaults to none; longer than zero.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Whether a timed-out attempt fails the job at once instead of being
    /// retried. Defaults to false.
    pub fn fail_on_timeout(mut self, fail: bool) -> Self {
        self.fail_on_timeout = fail;
        self
    }

    /// Checks every setting, naming the first bad one.
    pub fn check(&self) -> Result<(), ConfigError> {
        check_queue_name(self.queue_name())?;
        config::at_most("priority", self.priority, MAX_PRIORITY)?;
        config::at_least("max_attempts", self.max_attempts, 1)?;
        if let Some(max_exceptions) = self.max_exceptions {
            config::at_least("max_exceptions", max_exceptions, 1)?;
        }
        if let Some(timeout) = self.timeout {
            config::positive("timeout", timeout)?;
        }
        if let Some(backoff) = &self.backoff {
            backoff.check("backoff")?;
        }
        for name in &self.middleware {
            check_middleware_name(name)?;
        }
        Ok(())
    }

    /// The backoff to use: the one set, or the default.
    pub(crate) fn backoff_or_default(&self) -> JobBackoff {
        self.backoff.clone().unwrap_or_else(|| JobBackoff::from(DEFAULT_BACKOFF))
    }
}

/// The longest name of a named middleware, in bytes.
pub const MAX_MIDDLEWARE_NAME: usize = 128;

/// Adds `name` to `names` unless it is there already.
pub(crate) fn push_middleware(names: &mut Vec<String>, name: String) {
    if !names.contains(&name) {
        names.push(name);
    }
}

/// `name` when it can name a middleware: 1 to [`MAX_MIDDLEWARE_NAME`] bytes.
pub(crate) fn check_middleware_name(name: &str) -> Result<&str, ConfigError> {
    config::name("middleware", name)?;
    if name.len() > MAX_MIDDLEWARE_NAME {
        return Err(ConfigError::new(
            "middleware",
            name,
            format!("must be at most {MAX_MIDDLEWARE_NAME} bytes"),
        ));
    }
    Ok(name)
}

/// `name` when it can name a queue: 1 to [`MAX_QUEUE_NAME`] bytes, no control
/// characters.
pub(crate) fn check_queue_name(name: &str) -> Result<&str, ConfigError> {
    config::name("queue", name)?;
    if name.len() > MAX_QUEUE_NAME {
        return Err(ConfigError::new(
            "queue",
            name,
            format!("must be at most {MAX_QUEUE_NAME} bytes"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ConfigError::new("queue", name, "must not contain control characters"));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_as_documented() {
        let options = JobOptions::new();
        assert_eq!(options.queue_name(), "default");
        assert_eq!(options.max_attempts, 3);
        assert_eq!(options.priority, 0);
        assert_eq!(options.delay, Duration::ZERO);
        assert_eq!(options.timeout, None);
        assert!(!options.fail_on_timeout);
        let backoff = options.backoff_or_default();
        let waits: Vec<_> = (1..=5).map(|r| backoff.delay(r).as_secs()).collect();
        assert_eq!(waits, [1, 10, 60, 60, 60]);
    }

    #[test]
    fn bad_settings_name_their_field() {
        let cases = [
            (JobOptions::new().queue(""), "queue"),
            (JobOptions::new().queue("a\nb"), "queue"),
            (JobOptions::new().queue("x".repeat(129)), "queue"),
            (JobOptions::new().priority(10), "priority"),
            (JobOptions::new().max_attempts(0), "max_attempts"),
            (JobOptions::new().max_exceptions(0), "max_exceptions"),
            (JobOptions::new().timeout(Duration::ZERO), "timeout"),
            (JobOptions::new().backoff(Vec::new()), "backoff"),
        ];
        for (options, field) in cases {
            assert_eq!(options.check().unwrap_err().field, field);
        }
        assert!(JobOptions::new().queue("x".repeat(128)).priority(9).check().is_ok());
    }

    #[test]
    fn a_policy_backoff_uses_its_base_delays() {
        let policy = Backoff::exponential(Duration::from_secs(1)).build().unwrap();
        let backoff = JobBackoff::from(policy);
        assert_eq!(backoff.delay(1), Duration::from_secs(1));
        assert_eq!(backoff.delay(3), Duration::from_secs(4));
    }
}
