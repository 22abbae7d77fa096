//! [`Envelope`]: a job as every backend stores it — the payload and
//! everything about it that must outlive the process that pushed it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::options::JobOptions;
use crate::clock::{Millis, millis};
use crate::id::JobId;

/// The most attempt records an envelope keeps: older ones are dropped, the
/// count of attempts is kept apart.
pub const MAX_HISTORY: usize = 20;

/// One failed or released attempt, kept with the job for the failed store
/// and the dashboard.
///
/// # Examples
///
/// ```
/// use conc_bus::AttemptRecord;
///
/// let record = AttemptRecord::new(2, 1_700_000_000_000, "timed out after 5s");
/// assert_eq!(record.attempt, 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AttemptRecord {
    /// The attempt (1 for the first run).
    pub attempt: u32,
    /// When it ended, in Unix milliseconds.
    pub at: u64,
    /// What went wrong, with the error's chain of sources.
    pub error: String,
}

impl AttemptRecord {
    /// Attempt `attempt`, ended at `at` (Unix ms) with `error`.
    pub fn new(attempt: u32, at: u64, error: impl Into<String>) -> Self {
        Self { attempt, at, error: error.into() }
    }
}

/// A job as the backends store it: its id, name and payload version, the
/// serialized payload, the settings that travel with it, and what the
/// attempts so far left behind (the count of failed attempts, their errors, a
/// checkpoint, a progress figure).
///
/// Backends keep the envelope as it was pushed and change only the
/// bookkeeping fields through token-checked transitions; `attempts` is the
/// backend's count of reservations, given with each reservation.
///
/// # Examples
///
/// ```
/// use conc_bus::{Envelope, Job, JobOptions};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Ping;
/// impl Job for Ping { const NAME: &'static str = "ping"; }
///
/// let envelope = Envelope::new(&Ping, &JobOptions::new().priority(3), 1_700_000_000_000)?;
/// assert_eq!(envelope.name, "ping");
/// assert_eq!(envelope.priority, 3);
/// assert_eq!(envelope.payload, "null");
/// # Ok::<(), conc_bus::DecodeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Envelope {
    /// The job's id.
    pub id: JobId,
    /// The job type's [`NAME`](crate::Job::NAME).
    pub name: String,
    /// The payload's [`VERSION`](crate::Job::VERSION).
    pub version: u32,
    /// The queue it was pushed to.
    pub queue: String,
    /// The payload, as JSON.
    pub payload: String,
    /// Its priority in the queue, 0 to [`MAX_PRIORITY`](crate::MAX_PRIORITY).
    pub priority: u8,
    /// When it was pushed, in Unix milliseconds.
    pub created_at: u64,
    /// How many reservations it may have, the first one included.
    pub max_attempts: u32,
    /// How many failed attempts end it, apart from `max_attempts`.
    pub max_exceptions: Option<u32>,
    /// The retry delays set for this dispatch, in milliseconds (the job
    /// type's backoff applies when empty).
    pub backoff_ms: Vec<u64>,
    /// How long one attempt may run, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Whether a timed-out attempt fails the job at once.
    pub fail_on_timeout: bool,
    /// No attempt starts after this Unix millisecond.
    pub retry_until: Option<u64>,
    /// Failed attempts so far (errors, panics, timeouts; not releases).
    pub exceptions: u32,
    /// The last attempts' errors, newest last, at most [`MAX_HISTORY`].
    pub history: Vec<AttemptRecord>,
    /// The state a previous attempt saved with
    /// [`JobContext::checkpoint`](crate::JobContext::checkpoint), as JSON.
    pub checkpoint: Option<String>,
    /// The last progress the job reported, 0 to 100.
    pub progress: Option<u8>,
    /// The workflow the job belongs to (batch, chain, callback, admission);
    /// `None` for a plain job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<Box<super::JobFlow>>,
    /// Whether the payload travels sealed ([`JobOptions::encrypted`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub encrypted: bool,
    /// The id of the key that sealed `payload` (which then holds the sealed
    /// bytes, not JSON); `None` while the payload is plain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The named middleware it runs through ([`JobOptions::through`]), in
    /// order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub middleware: Vec<String>,
}

impl Envelope {
    /// The envelope of `job` pushed with `options` at `now` (Unix ms).
    ///
    /// # Errors
    ///
    /// [`DecodeError::Encode`](super::DecodeError::Encode) when the payload
    /// does not serialize.
    pub fn new<J: super::Job>(
        job: &J,
        options: &JobOptions,
        now: u64,
    ) -> Result<Self, super::DecodeError> {
        let payload = serde_json::to_string(job).map_err(|error| super::DecodeError::Encode {
            name: J::NAME.to_owned(),
            message: error.to_string(),
        })?;
        Ok(Self::raw(JobId::new(), J::NAME, J::VERSION, payload, options, now))
    }

    /// An envelope around an already serialized payload.
    pub(crate) fn raw(
        id: JobId,
        name: &str,
        version: u32,
        payload: String,
        options: &JobOptions,
        now: Millis,
    ) -> Self {
        let backoff_ms = match &options.backoff {
            Some(super::JobBackoff::Delays(delays)) => delays.iter().map(|d| millis(*d)).collect(),
            _ => Vec::new(),
        };
        Self {
            id,
            name: name.to_owned(),
            version,
            queue: options.queue_name().to_owned(),
            payload,
            priority: options.priority,
            created_at: now,
            max_attempts: options.max_attempts,
            max_exceptions: options.max_exceptions,
            backoff_ms,
            timeout_ms: options.timeout.map(millis),
            fail_on_timeout: options.fail_on_timeout,
            retry_until: options
                .retry_until
                .map(|deadline| deadline.duration_since(std::time::UNIX_EPOCH).map_or(0, millis)),
            exceptions: 0,
            history: Vec::new(),
            checkpoint: None,
            progress: None,
            flow: None,
            encrypted: options.encrypted,
            key_id: None,
            middleware: options.middleware.clone(),
        }
    }

    /// Whether the payload is sealed now (it carries the id of its key).
    pub fn is_sealed(&self) -> bool {
        self.key_id.is_some()
    }

    /// The name of the first job in this envelope (itself, a link of its
    /// chain, or its chain's catch job) marked encrypted and not sealed yet.
    pub(crate) fn unsealed(&self) -> Option<String> {
        if self.encrypted && self.key_id.is_none() {
            return Some(self.name.clone());
        }
        let flow = self.flow.as_deref()?;
        flow.chain.iter().chain(flow.chain_catch.as_deref()).find_map(Self::unsealed)
    }

    /// The per-attempt timeout, if any.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout_ms.map(Duration::from_millis)
    }

    /// The job's workflow state, created empty when it has none.
    pub fn flow_mut(&mut self) -> &mut super::JobFlow {
        self.flow.get_or_insert_with(Box::default)
    }

    /// Records a failed or released attempt, keeping at most [`MAX_HISTORY`].
    pub(crate) fn record(&mut self, record: AttemptRecord) {
        if self.history.len() == MAX_HISTORY {
            self.history.remove(0);
        }
        self.history.push(record);
    }
}
