//! [`JobContext`]: what a running job knows about itself (id, attempt,
//! lease) and can do (report progress, save a checkpoint, ask to be
//! released, notice it should stop).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use conc_core::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

use crate::id::JobId;
use crate::queue::{Lease, LeaseToken, QueueError, Transition};

/// A handler noticed it was asked to stop (the worker is stopping, the
/// attempt timed out, or the lease was lost). Return it (with `?`) to end the
/// attempt; the worker decides what happens to the job from why it asked.
///
/// # Examples
///
/// ```
/// use conc_bus::Cancelled;
///
/// assert_eq!(Cancelled.to_string(), "the job was asked to stop");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, thiserror::Error)]
#[error("the job was asked to stop")]
pub struct Cancelled;

/// A one-way cancellation signal shared by clones.
#[derive(Clone, Default)]
pub(crate) struct Cancellation {
    state: Arc<CancelState>,
}

#[derive(Default)]
struct CancelState {
    cancelled: AtomicBool,
    notify: Notify,
}

impl Cancellation {
    /// Signals every waiter; later calls do nothing.
    pub(crate) fn cancel(&self) {
        if !self.state.cancelled.swap(true, Ordering::AcqRel) {
            self.state.notify.notify_waiters();
        }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.state.cancelled.load(Ordering::Acquire)
    }

    /// Resolves once cancelled.
    pub(crate) async fn cancelled(&self) {
        loop {
            let notified = self.state.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

/// Where a context's writes go: the backend the job was reserved from, or a
/// test's recorder.
pub(crate) trait ContextSink: Send + Sync + 'static {
    /// Applies `transition` under `lease`.
    fn save(
        &self,
        lease: Lease,
        transition: Transition,
    ) -> BoxFuture<'static, Result<(), QueueError>>;
}

/// What a running job knows about itself and can do.
///
/// Cheap to clone; clones are the same context.
///
/// # Examples
///
/// ```
/// use conc_bus::{JobContext, JobError};
///
/// async fn import(rows: Vec<u32>, ctx: JobContext) -> Result<(), JobError> {
///     let start: usize = ctx.resume_from().unwrap_or(0);
///     for (i, _row) in rows.iter().enumerate().skip(start) {
///         ctx.stop_if_cancelled()?;
///         if i % 100 == 0 {
///             ctx.checkpoint(&i).await?; // the next attempt resumes here
///             ctx.progress((i * 100 / rows.len()) as u8).await?;
///         }
///     }
///     Ok(())
/// }
/// # let _ = import;
/// ```
#[derive(Clone)]
pub struct JobContext {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    attempt: u32,
    lease: Lease,
    checkpoint: Mutex<Option<String>>,
    release: Mutex<Option<Duration>>,
    cancel: Cancellation,
    sink: Arc<dyn ContextSink>,
    flow: Option<Box<super::JobFlow>>,
    edits: Mutex<ChainEdits>,
    /// How many batch adds this attempt made (each add's ids derive from it).
    adds: std::sync::atomic::AtomicU32,
}

/// Links a running job adds to its chain, sent with its acknowledgement.
#[derive(Debug, Default)]
pub(crate) struct ChainEdits {
    pub(crate) prepend: Vec<super::Envelope>,
    pub(crate) append: Vec<super::Envelope>,
}

impl JobContext {
    pub(crate) fn new(
        name: String,
        attempt: u32,
        lease: Lease,
        checkpoint: Option<String>,
        cancel: Cancellation,
        sink: Arc<dyn ContextSink>,
    ) -> Self {
        let inner = Inner {
            name,
            attempt,
            lease,
            checkpoint: Mutex::new(checkpoint),
            release: Mutex::new(None),
            cancel,
            sink,
            flow: None,
            edits: Mutex::new(ChainEdits::default()),
            adds: std::sync::atomic::AtomicU32::new(0),
        };
        Self { inner: Arc::new(inner) }
    }

    /// The context with the workflow state of the job's envelope.
    pub(crate) fn with_flow(mut self, flow: Option<Box<super::JobFlow>>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.flow = flow;
        }
        self
    }

    /// The chain edits made so far, taken.
    pub(crate) fn take_chain_edits(&self) -> ChainEdits {
        std::mem::take(&mut *self.inner.edits.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The number of this attempt's next batch add: the `n`th add of every
    /// attempt derives the same ids, so an attempt that runs again adds
    /// nothing new.
    pub(crate) fn next_add(&self) -> u32 {
        self.inner.adds.fetch_add(1, Ordering::Relaxed)
    }

    /// The names of the jobs prepended and appended so far.
    pub(crate) fn chain_edit_names(&self) -> (Vec<String>, Vec<String>) {
        let edits = self.inner.edits.lock().unwrap_or_else(PoisonError::into_inner);
        let names = |list: &[super::Envelope]| list.iter().map(|e| e.name.clone()).collect();
        (names(&edits.prepend), names(&edits.append))
    }

    /// The batch this job is a member of (or a callback of).
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::testing::FakeContext;
    ///
    /// assert!(FakeContext::new().context().batch_id().is_none());
    /// ```
    pub fn batch_id(&self) -> Option<crate::batch::BatchId> {
        let flow = self.inner.flow.as_deref()?;
        flow.batch.map(|member| member.batch).or_else(|| flow.trigger.as_ref()?.batch)
    }

    /// What dispatched this job when it is a callback (of a batch, or a
    /// chain's `catch`): which callback, batch, job and error.
    pub fn trigger(&self) -> Option<&super::Trigger> {
        self.inner.flow.as_deref()?.trigger.as_ref()
    }

    /// Runs `job` right after this one succeeds, before the rest of its
    /// chain (in the order of the calls). Sent with the acknowledgement: if
    /// this attempt fails, nothing is added.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Encode`](super::DecodeError::Encode) when `job` does
    /// not serialize.
    #[allow(clippy::needless_pass_by_value, reason = "jobs are taken as a dispatch takes them")]
    pub fn prepend_to_chain<J: super::Job>(&self, job: J) -> Result<(), super::DecodeError> {
        let envelope = super::Envelope::new(&job, &J::options(), 0)?;
        self.inner.edits.lock().unwrap_or_else(PoisonError::into_inner).prepend.push(envelope);
        Ok(())
    }

    /// Runs `job` at the end of this job's chain (starting one when it has
    /// none), once this one succeeds.
    ///
    /// # Errors
    ///
    /// As [`prepend_to_chain`](Self::prepend_to_chain).
    #[allow(clippy::needless_pass_by_value, reason = "jobs are taken as a dispatch takes them")]
    pub fn append_to_chain<J: super::Job>(&self, job: J) -> Result<(), super::DecodeError> {
        let envelope = super::Envelope::new(&job, &J::options(), 0)?;
        self.inner.edits.lock().unwrap_or_else(PoisonError::into_inner).append.push(envelope);
        Ok(())
    }

    /// The job's id.
    pub fn id(&self) -> JobId {
        self.inner.lease.job
    }

    /// The job's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The queue it was reserved from.
    pub fn queue(&self) -> &str {
        &self.inner.lease.queue
    }

    /// Which attempt this is: 1 for the first run. Attempts are counted when
    /// the job is reserved, so one that crashed its worker counts too.
    pub fn attempt(&self) -> u32 {
        self.inner.attempt
    }

    /// This reservation's token: a fencing token for side effects (a later
    /// reservation of the job always has a greater one).
    pub fn lease_token(&self) -> LeaseToken {
        self.inner.lease.token
    }

    /// A key that is the same for every attempt of this job and differs
    /// between jobs: `name:id`. Give it to the systems a handler writes to
    /// (a payment provider's idempotency key, a unique column) so a job that
    /// runs twice (delivery is at least once) has its effect once.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{JobContext, JobError};
    ///
    /// async fn charge(_: (), ctx: JobContext) -> Result<(), JobError> {
    ///     let key = ctx.idempotency_key();
    ///     assert!(key.starts_with(ctx.name()));
    ///     // payments.charge(amount, Idempotency-Key: key)
    ///     Ok(())
    /// }
    /// # let _ = charge;
    /// ```
    pub fn idempotency_key(&self) -> String {
        format!("{}:{}", self.inner.name, self.id())
    }

    /// The idempotency key of one step of this job (`name:id:step`), for a
    /// handler with several side effects.
    pub fn idempotency_key_for(&self, step: &str) -> String {
        format!("{}:{}:{step}", self.inner.name, self.id())
    }

    /// The lease this attempt runs under.
    pub fn lease(&self) -> &Lease {
        &self.inner.lease
    }

    /// Whether the job was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }

    /// Resolves once the job is asked to stop: select on it around long waits.
    pub async fn cancelled(&self) {
        self.inner.cancel.cancelled().await;
    }

    /// `Err(Cancelled)` once the job was asked to stop: put `?` after it
    /// between steps.
    pub fn stop_if_cancelled(&self) -> Result<(), Cancelled> {
        if self.is_cancelled() { Err(Cancelled) } else { Ok(()) }
    }

    /// Asks for the job to be put back, available after `delay`, when the
    /// handler returns `Ok` (like returning [`JobError::release`](crate::JobError::release)).
    pub fn release(&self, delay: Duration) {
        *self.inner.release.lock().unwrap_or_else(PoisonError::into_inner) = Some(delay);
    }

    /// The release asked for with [`release`](Self::release), if any.
    pub fn released(&self) -> Option<Duration> {
        *self.inner.release.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the job's progress, 0 to 100 (higher values count as 100).
    ///
    /// # Errors
    ///
    /// [`QueueError::LeaseLost`] when this attempt no longer holds the job.
    pub async fn progress(&self, percent: u8) -> Result<(), QueueError> {
        let lease = self.inner.lease.clone();
        self.inner.sink.save(lease, Transition::Progress(percent.min(100))).await
    }

    /// Saves `state` with the job: if this attempt fails or its worker dies,
    /// the next attempt reads it back with [`resume_from`](Self::resume_from).
    ///
    /// # Errors
    ///
    /// [`QueueError::LeaseLost`] when this attempt no longer holds the job;
    /// [`QueueError::Corrupt`] when `state` does not serialize.
    pub async fn checkpoint<T: Serialize + ?Sized>(&self, state: &T) -> Result<(), QueueError> {
        let json = serde_json::to_string(state).map_err(|error| {
            QueueError::Corrupt(format!("checkpoint does not serialize: {error}"))
        })?;
        let lease = self.inner.lease.clone();
        self.inner.sink.save(lease, Transition::Checkpoint(json.clone())).await?;
        *self.inner.checkpoint.lock().unwrap_or_else(PoisonError::into_inner) = Some(json);
        Ok(())
    }

    /// The last checkpoint saved by this attempt or an earlier one, if it
    /// reads as a `T`.
    pub fn resume_from<T: DeserializeOwned>(&self) -> Option<T> {
        let checkpoint = self.inner.checkpoint.lock().unwrap_or_else(PoisonError::into_inner);
        checkpoint.as_deref().and_then(|json| serde_json::from_str(json).ok())
    }
}

impl fmt::Debug for JobContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobContext")
            .field("id", &self.id())
            .field("name", &self.inner.name)
            .field("queue", &self.queue())
            .field("attempt", &self.inner.attempt)
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}
