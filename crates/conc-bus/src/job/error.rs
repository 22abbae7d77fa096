//! [`JobError`]: how a handler says an attempt went; [`DecodeError`]: a
//! payload that cannot be turned into (or out of) its job type.

use std::fmt;
use std::time::Duration;

use conc_core::BoxError;

/// How a job's attempt ended when it did not succeed.
///
/// - [`JobError::retry`] (and `?` on any error): the attempt failed; the job
///   is tried again after its backoff while attempts (and exceptions) remain,
///   then stored as failed.
/// - [`JobError::fatal`]: the job cannot succeed; it goes straight to the
///   failed store (BullMQ's `UnrecoverableError`, Laravel's `fail()`).
/// - [`JobError::release`]: not a failure; the job goes back to its queue and
///   becomes available after the delay. The attempt still counts against
///   `max_attempts`, but not against `max_exceptions`.
///
/// `JobError` is not itself a `std::error::Error`, so that `?` turns any error
/// into a retryable failure.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_bus::JobError;
///
/// fn parse(input: &str) -> Result<u32, JobError> {
///     Ok(input.parse::<u32>()?) // a parse error becomes a retryable failure
/// }
/// assert!(parse("x").unwrap_err().is_retry());
/// assert!(JobError::fatal("card declined").is_fatal());
/// assert_eq!(JobError::release(Duration::from_secs(5)).release_delay(), Some(Duration::from_secs(5)));
/// ```
#[non_exhaustive]
pub enum JobError {
    /// The attempt failed and may be retried.
    Retry(BoxError),
    /// The job cannot succeed; it is stored as failed without more attempts.
    Fatal(BoxError),
    /// The job is put back and becomes available after this delay.
    Release(Duration),
}

impl JobError {
    /// A retryable failure with this error.
    pub fn retry(error: impl Into<BoxError>) -> Self {
        Self::Retry(error.into())
    }

    /// A failure that no retry can fix.
    pub fn fatal(error: impl Into<BoxError>) -> Self {
        Self::Fatal(error.into())
    }

    /// Puts the job back, available again after `delay`.
    pub fn release(delay: Duration) -> Self {
        Self::Release(delay)
    }

    /// Whether it is a retryable failure.
    pub fn is_retry(&self) -> bool {
        matches!(self, Self::Retry(_))
    }

    /// Whether it is a fatal failure.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::Fatal(_))
    }

    /// The delay of a release.
    pub fn release_delay(&self) -> Option<Duration> {
        match self {
            Self::Release(delay) => Some(*delay),
            _ => None,
        }
    }
}

impl<E: Into<BoxError>> From<E> for JobError {
    fn from(error: E) -> Self {
        Self::Retry(error.into())
    }
}

impl fmt::Debug for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Retry(error) => f.debug_tuple("Retry").field(error).finish(),
            Self::Fatal(error) => f.debug_tuple("Fatal").field(error).finish(),
            Self::Release(delay) => f.debug_tuple("Release").field(delay).finish(),
        }
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Retry(error) => write!(f, "{}", chain(error.as_ref())),
            Self::Fatal(error) => write!(f, "fatal: {}", chain(error.as_ref())),
            Self::Release(delay) => write!(f, "released for {delay:?}"),
        }
    }
}

/// An error and its sources, joined by `: `.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(next) = source {
        text.push_str(": ");
        text.push_str(&next.to_string());
        source = next.source();
    }
    text
}

/// A payload that could not be turned into its job type, or a job that could
/// not be turned into a payload. A job that cannot be decoded goes to the
/// failed store with this error; nothing panics.
///
/// # Examples
///
/// ```
/// use conc_bus::DecodeError;
///
/// let err = DecodeError::UnknownVersion { name: "resize".into(), version: 7, current: 2 };
/// assert_eq!(err.to_string(), "job `resize` has no decoder for payload version 7 (current version 2)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// No handler is registered for the job's name.
    #[error("no handler is registered for job `{name}`")]
    UnknownJob {
        /// The job's name.
        name: String,
    },
    /// The job asks for a named middleware the worker's handlers lack.
    #[error(
        "job `{name}` runs through middleware `{middleware}`, which this worker's handlers do not \
         register (JobHandlers::named_layer)"
    )]
    UnknownMiddleware {
        /// The job's name.
        name: String,
        /// The middleware's name.
        middleware: String,
    },
    /// The payload's version is neither the current one nor an upcast one.
    #[error(
        "job `{name}` has no decoder for payload version {version} (current version {current})"
    )]
    UnknownVersion {
        /// The job's name.
        name: String,
        /// The payload's version.
        version: u32,
        /// The version the handler takes.
        current: u32,
    },
    /// The payload does not deserialize as its job type.
    #[error("payload of job `{name}` version {version} does not decode: {message}")]
    Payload {
        /// The job's name.
        name: String,
        /// The payload's version.
        version: u32,
        /// The deserializer's message.
        message: String,
    },
    /// A sealed payload could not be opened: the keyring lacks its key, or
    /// the ciphertext failed authentication (tampered with, or sealed for
    /// another job).
    #[error("job `{name}` sealed with key `{key_id}` cannot be opened: {message}")]
    Sealed {
        /// The job's name.
        name: String,
        /// The id of the key the payload names.
        key_id: String,
        /// Why it could not be opened.
        message: String,
    },
    /// The job does not serialize.
    #[error("job `{name}` does not serialize: {message}")]
    Encode {
        /// The job's name.
        name: String,
        /// The serializer's message.
        message: String,
    },
    /// The payload serialized, but does not read back as the same job (a test
    /// with serialize-and-restore on).
    #[error("job `{name}` does not survive a round trip through its payload: {message}")]
    RoundTrip {
        /// The job's name.
        name: String,
        /// What differed or failed.
        message: String,
    },
}
