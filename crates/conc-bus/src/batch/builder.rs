//! [`PendingBatch`]: a batch being put together, and [`BatchJobs`]: members to
//! dispatch with it or add to it later.

use std::borrow::Cow;
use std::time::Duration;

use conc_core::config::ConfigError;

use super::model::{BatchRecord, Callbacks, Fired};
use super::{BatchId, WorkflowError};
use crate::chain::Chain;
use crate::clock::{Millis, millis};
use crate::id::JobId;
use crate::job::{BatchMember, DEFAULT_QUEUE, Envelope, Job, JobOptions, derived_id};
use crate::queue::Pushed;

/// An envelope made from `job` with `options` (stamped when dispatched), and
/// the delay it waits.
pub(crate) fn envelope_of<J: Job>(
    job: &J,
    options: &JobOptions,
) -> Result<(Envelope, Duration), WorkflowError> {
    options.check()?;
    Ok((Envelope::new(job, options, 0)?, options.delay))
}

/// Jobs and chains to make members of a batch: given to [`PendingBatch::jobs`], or
/// added to a running batch with
/// [`Queue::add_to_batch`](crate::Queue::add_to_batch) — from anywhere, or
/// from inside a member with
/// [`Queue::add_to_batch_from`](crate::Queue::add_to_batch_from).
///
/// # Examples
///
/// ```
/// use conc_bus::batch::BatchJobs;
/// use conc_bus::chain::Chain;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize)] struct Resize { page: u32 }
/// # impl conc_bus::Job for Resize { const NAME: &'static str = "resize"; }
///
/// let jobs = BatchJobs::new()
///     .add(Resize { page: 1 })
///     .add_chain(Chain::new(Resize { page: 2 }).then(Resize { page: 3 }));
/// assert_eq!(jobs.len(), 2);
/// ```
#[derive(Debug, Default)]
#[must_use = "jobs do nothing until dispatched"]
pub struct BatchJobs {
    members: Vec<(Envelope, Duration)>,
    error: Option<WorkflowError>,
}

#[allow(
    clippy::needless_pass_by_value,
    clippy::should_implement_trait,
    reason = "jobs are taken as a dispatch takes them; `add` is the batch word users know"
)]
impl BatchJobs {
    /// No jobs yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// `job`, with its type's options.
    pub fn add<J: Job>(self, job: J) -> Self {
        self.add_with(job, &J::options())
    }

    /// `job`, with `options`.
    pub fn add_with<J: Job>(mut self, job: J, options: &JobOptions) -> Self {
        if self.error.is_none() {
            match envelope_of(&job, options) {
                Ok(member) => self.members.push(member),
                Err(error) => self.error = Some(error),
            }
        }
        self
    }

    /// A chain, counted as one member: it succeeds when its last link does
    /// and fails when any link fails for good.
    pub fn add_chain(mut self, chain: Chain) -> Self {
        if self.error.is_none() {
            match chain.into_head() {
                Ok(head) => self.members.push(head),
                Err(error) => self.error = Some(error),
            }
        }
        self
    }

    /// How many members (a chain is one).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The members as pushed into `batch` at `now`, on `queue` when given,
    /// through the batch's named `middleware`; with ids derived from `parent`
    /// when given (so that a member that runs twice adds the same jobs twice,
    /// which the backend skips).
    pub(crate) fn into_pushed(
        self,
        batch: BatchId,
        queue: Option<&str>,
        middleware: &[String],
        parent: Option<JobId>,
        now: Millis,
    ) -> Result<Vec<Pushed>, WorkflowError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let mut out = Vec::with_capacity(self.members.len());
        for (index, (mut envelope, delay)) in self.members.into_iter().enumerate() {
            if let Some(parent) = parent {
                envelope.id = derived_id(parent, 0x1000 + index as u128);
            }
            envelope.created_at = now;
            if let Some(queue) = queue {
                set_queue(&mut envelope, queue);
            }
            if !middleware.is_empty() {
                set_middleware(&mut envelope, middleware);
            }
            envelope.flow_mut().batch = Some(BatchMember::new(batch, envelope.id));
            out.push(Pushed::new(envelope, now.saturating_add(millis(delay))));
        }
        Ok(out)
    }
}

/// Puts `envelope` and the rest of its chain on `queue`.
pub(crate) fn set_queue(envelope: &mut Envelope, queue: &str) {
    queue.clone_into(&mut envelope.queue);
    if let Some(flow) = envelope.flow.as_deref_mut() {
        for link in &mut flow.chain {
            queue.clone_into(&mut link.queue);
        }
        if let Some(catch) = flow.chain_catch.as_deref_mut() {
            queue.clone_into(&mut catch.queue);
        }
    }
}

/// Puts the named `middleware` in front of the names `envelope` and the rest
/// of its chain (its links and its `catch`) carry, each name once.
pub(crate) fn set_middleware(envelope: &mut Envelope, middleware: &[String]) {
    let stamp = |envelope: &mut Envelope| {
        let mut names = middleware.to_vec();
        for name in envelope.middleware.drain(..) {
            crate::job::push_middleware(&mut names, name);
        }
        envelope.middleware = names;
    };
    stamp(envelope);
    if let Some(flow) = envelope.flow.as_deref_mut() {
        flow.chain.iter_mut().for_each(stamp);
        if let Some(catch) = flow.chain_catch.as_deref_mut() {
            stamp(catch);
        }
    }
}

/// A batch being put together: its members, name, queue, failure policy and
/// callback jobs. Dispatch it with
/// [`Queue::dispatch_batch`](crate::Queue::dispatch_batch).
///
/// Callbacks are jobs (so they survive the process and run on any worker):
/// `then` when every member succeeded, `catch` at the first failure,
/// `finally` when every member has an outcome, `progress` after each member.
/// Each is dispatched at most once, by the backend, in the step that records
/// the outcome that fires it. In the handler,
/// [`JobContext::trigger`](crate::JobContext::trigger) says which batch and,
/// for `catch`, which member failed with which error.
///
/// # Examples
///
/// ```
/// use conc_bus::batch::PendingBatch;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize)] struct Resize { page: u32 }
/// # impl conc_bus::Job for Resize { const NAME: &'static str = "resize"; }
/// # #[derive(Serialize, Deserialize)] struct Publish;
/// # impl conc_bus::Job for Publish { const NAME: &'static str = "publish"; }
///
/// let batch = PendingBatch::new()
///     .name("resize book 7")
///     .add(Resize { page: 1 })
///     .add(Resize { page: 2 })
///     .then(Publish)
///     .allow_failures(false);
/// # let _ = batch;
/// ```
#[derive(Debug, Default)]
#[must_use = "a batch does nothing until dispatched"]
pub struct PendingBatch {
    name: Option<String>,
    queue: Option<String>,
    allow_failures: bool,
    jobs: BatchJobs,
    callbacks: Callbacks,
    timeout: Option<Duration>,
    middleware: Vec<String>,
}

#[allow(
    clippy::needless_pass_by_value,
    clippy::should_implement_trait,
    reason = "jobs are taken as a dispatch takes them; `add` is the batch word users know"
)]
impl PendingBatch {
    /// An empty batch: no name, members on their own queues, the first
    /// failure cancels it, no callbacks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Its name, for listings. Defaults to none.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The queue of every member and callback. Defaults to each job's own.
    pub fn on_queue(mut self, queue: impl Into<Cow<'static, str>>) -> Self {
        self.queue = Some(queue.into().into_owned());
        self
    }

    /// Whether members keep running after one fails. Defaults to `false`:
    /// the first failure cancels the batch (its waiting members are dropped
    /// and count as cancelled; running ones are asked to stop).
    pub fn allow_failures(mut self, allow: bool) -> Self {
        self.allow_failures = allow;
        self
    }

    /// Gives the batch a deadline `timeout` after it is dispatched: if it
    /// has not finished by then, its unfinished members are cancelled (the
    /// waiting ones deleted, the running ones asked to stop, each counted as
    /// cancelled at once), `catch` fires (unless a failure fired it before,
    /// with no member and the error `batch timed out`) and `finally` fires,
    /// each once. The backend checks deadlines at every reservation, so a
    /// batch times out at the first worker poll after its deadline.
    /// Defaults to none; a zero timeout is refused at dispatch
    /// ([`WorkflowError::Invalid`], field `timeout`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_bus::batch::PendingBatch;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Resize { page: u32 }
    /// # impl conc_bus::Job for Resize { const NAME: &'static str = "resize"; }
    ///
    /// let batch = PendingBatch::new().add(Resize { page: 1 }).timeout(Duration::from_secs(600));
    /// # let _ = batch;
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Runs every member through the named middleware `name` (batch
    /// middleware): the links of member chains and members added later
    /// included, callbacks not. The name travels with each member and the
    /// workers apply the layer they registered under it with
    /// [`JobHandlers::named_layer`](crate::JobHandlers::named_layer) — for
    /// example one rate limit shared by the whole batch, keyed by its id.
    /// Batch names run before the member's own; a name is 1 to
    /// [`MAX_MIDDLEWARE_NAME`](crate::MAX_MIDDLEWARE_NAME) bytes (refused at
    /// dispatch otherwise, [`WorkflowError::Invalid`], field `middleware`).
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::batch::PendingBatch;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Fetch { page: u32 }
    /// # impl conc_bus::Job for Fetch { const NAME: &'static str = "fetch"; }
    ///
    /// let batch = PendingBatch::new()
    ///     .add(Fetch { page: 1 })
    ///     .add(Fetch { page: 2 })
    ///     .through("partner-api-limit");
    /// # let _ = batch;
    /// ```
    pub fn through(mut self, name: impl Into<String>) -> Self {
        crate::job::push_middleware(&mut self.middleware, name.into());
        self
    }

    /// Adds a member job.
    pub fn add<J: Job>(mut self, job: J) -> Self {
        self.jobs = self.jobs.add(job);
        self
    }

    /// Adds a chain as one member.
    pub fn add_chain(mut self, chain: Chain) -> Self {
        self.jobs = self.jobs.add_chain(chain);
        self
    }

    /// Adds every member of `jobs`.
    pub fn jobs(mut self, jobs: BatchJobs) -> Self {
        if self.jobs.error.is_none() {
            self.jobs.error = jobs.error;
        }
        self.jobs.members.extend(jobs.members);
        self
    }

    /// How many members it has so far (a chain is one).
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Whether it has no members.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// The job dispatched once when every member succeeded.
    pub fn then<J: Job>(mut self, job: J) -> Self {
        self.callbacks.then = self.callback(&job);
        self
    }

    /// The job dispatched once when the first member fails for good.
    pub fn catch<J: Job>(mut self, job: J) -> Self {
        self.callbacks.catch = self.callback(&job);
        self
    }

    /// The job dispatched once when every member has an outcome (succeeded,
    /// failed or cancelled).
    pub fn finally<J: Job>(mut self, job: J) -> Self {
        self.callbacks.finally = self.callback(&job);
        self
    }

    /// The job dispatched once per member, when it succeeds or fails.
    pub fn progress<J: Job>(mut self, job: J) -> Self {
        self.callbacks.progress = self.callback(&job);
        self
    }

    fn callback<J: Job>(&mut self, job: &J) -> Option<Envelope> {
        let options = J::options();
        if options.encrypted {
            // Its id is set when it fires, and the seal binds the id: it
            // could only be stored in clear, so it is refused.
            let error = ConfigError::new(
                "callback",
                J::NAME,
                "must not be marked encrypted: a batch callback is stored before its id is \
                 known, so it cannot be sealed (keep secrets out of callbacks)",
            );
            self.jobs.error.get_or_insert(error.into());
            return None;
        }
        match envelope_of(job, &options) {
            // A callback runs when it fires: its type's delay does not apply.
            Ok((envelope, _delay)) => Some(envelope),
            Err(error) => {
                self.jobs.error.get_or_insert(error);
                None
            }
        }
    }

    /// The batch as stored at `now`, and its members as pushed.
    pub(crate) fn build(self, now: Millis) -> Result<NewBatch, WorkflowError> {
        let deadline = match self.timeout {
            Some(timeout) if timeout.is_zero() => {
                return Err(conc_core::config::ConfigError::new(
                    "timeout",
                    timeout,
                    "must be above zero",
                )
                .into());
            }
            Some(timeout) => Some(now.saturating_add(millis(timeout))),
            None => None,
        };
        for name in &self.middleware {
            crate::job::check_middleware_name(name)?;
        }
        let id = BatchId::new();
        let queue = self.queue.as_deref();
        let members = self.jobs.into_pushed(id, queue, &self.middleware, None, now)?;
        let mut callbacks = self.callbacks;
        for envelope in [
            &mut callbacks.then,
            &mut callbacks.catch,
            &mut callbacks.finally,
            &mut callbacks.progress,
        ]
        .into_iter()
        .flatten()
        {
            if let Some(queue) = queue {
                queue.clone_into(&mut envelope.queue);
            }
        }
        let record = BatchRecord {
            id,
            name: self.name,
            queue: self.queue.unwrap_or_else(|| DEFAULT_QUEUE.to_owned()),
            allow_failures: self.allow_failures,
            created_at: now,
            cancelled_at: None,
            finished_at: None,
            callbacks,
            fired: Fired::default(),
            counts: None,
            deadline,
            timed_out_at: None,
            recoveries: 0,
            recovered: 0,
            middleware: self.middleware,
        };
        Ok(NewBatch { record, members })
    }
}

/// A batch ready for [`WorkflowBackend::create_batch`](crate::queue::WorkflowBackend::create_batch):
/// made by [`Queue::dispatch_batch`](crate::Queue::dispatch_batch).
///
/// # Examples
///
/// ```
/// fn id(batch: &conc_bus::batch::NewBatch) -> conc_bus::batch::BatchId {
///     batch.id()
/// }
/// # let _ = id;
/// ```
#[derive(Debug)]
pub struct NewBatch {
    pub(crate) record: BatchRecord,
    pub(crate) members: Vec<Pushed>,
}

impl NewBatch {
    /// The batch's id.
    pub fn id(&self) -> BatchId {
        self.record.id
    }

    /// Its members, as they will be pushed.
    pub fn members(&self) -> &[Pushed] {
        &self.members
    }
}
