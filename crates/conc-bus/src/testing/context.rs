//! The job-interaction fake: [`FakeContext`], a [`JobContext`] made for a
//! test that records what the handler did with it, and [`HandlerOutcome`],
//! the handler's result as a worker would act on it.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use conc_core::config::{self, ConfigError};
use conc_core::{BoxError, BoxFuture};
use futures::FutureExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::id::JobId;
use crate::job::error::chain;
use crate::job::{Cancellation, ContextSink, DEFAULT_QUEUE, Job, JobContext, JobError};
use crate::queue::{Lease, LeaseLost, LeaseToken, QueueError, Transition};

/// What the handler saved through its context.
#[derive(Default)]
struct Saved {
    progress: Vec<u8>,
    checkpoints: Vec<String>,
}

/// The sink of a fake context: records, refuses once the lease is "lost",
/// cancels after the n-th checkpoint when asked.
struct Interactions {
    saved: Mutex<Saved>,
    lease_lost: AtomicBool,
    cancel: Cancellation,
    cancel_after_checkpoints: Option<usize>,
}

impl Interactions {
    fn saved(&self) -> MutexGuard<'_, Saved> {
        self.saved.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ContextSink for Interactions {
    fn save(
        &self,
        lease: Lease,
        transition: Transition,
    ) -> BoxFuture<'static, Result<(), QueueError>> {
        let result = if self.lease_lost.load(Ordering::Acquire) {
            Err(QueueError::LeaseLost(LeaseLost::new(lease.job)))
        } else {
            let mut saved = self.saved();
            match transition {
                Transition::Progress(percent) => saved.progress.push(percent),
                Transition::Checkpoint(state) => {
                    saved.checkpoints.push(state);
                    if self.cancel_after_checkpoints.is_some_and(|n| saved.checkpoints.len() >= n) {
                        self.cancel.cancel();
                    }
                }
                _ => {}
            }
            Ok(())
        };
        Box::pin(std::future::ready(result))
    }
}

/// A [`JobContext`] made for a unit test of a handler, without a queue or a
/// worker: the test chooses the job's id, name, queue, attempt and the
/// checkpoint the attempt resumes from; the fake records the progress and
/// checkpoints the handler saves and the release it asks for, and lets the
/// test cancel the attempt or take its lease away. [`outcome`](Self::outcome)
/// (or [`run`](Self::run)) turns the handler's result into what a worker
/// would do with the job.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_bus::{JobContext, JobError};
/// use conc_bus::testing::FakeContext;
///
/// async fn sync_account(account: u32, ctx: JobContext) -> Result<(), JobError> {
///     if account == 0 {
///         return Err(JobError::fatal("account 0 does not exist"));
///     }
///     if ctx.attempt() == 1 {
///         ctx.release(Duration::from_secs(30)); // the remote asked us to wait
///         return Ok(());
///     }
///     ctx.progress(100).await?;
///     Ok(())
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let fake = FakeContext::new();
/// fake.run(sync_account(7, fake.context())).await.assert_released_after(Duration::from_secs(30));
///
/// let second = fake.next_attempt();
/// second.run(sync_account(7, second.context())).await.assert_succeeded();
/// second.assert_progress(&[100]);
///
/// fake.run(sync_account(0, fake.context())).await.assert_failed_fatally();
/// # Ok(()) }
/// ```
pub struct FakeContext {
    ctx: JobContext,
    interactions: Arc<Interactions>,
    spec: Spec,
}

/// What a fake context was made with.
#[derive(Debug, Clone)]
struct Spec {
    id: JobId,
    name: String,
    queue: String,
    attempt: u32,
    token: u64,
    checkpoint: Option<String>,
    cancel_after_checkpoints: Option<usize>,
    flow: Option<Box<crate::job::JobFlow>>,
}

impl fmt::Debug for FakeContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let saved = self.interactions.saved();
        f.debug_struct("FakeContext")
            .field("context", &self.ctx)
            .field("progress", &saved.progress)
            .field("checkpoints", &saved.checkpoints)
            .field("released", &self.ctx.released())
            .field("lease_lost", &self.interactions.lease_lost.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

impl Default for FakeContext {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeContext {
    /// A fake context for attempt 1 of a job named `job` on queue
    /// `"default"`, with a fresh id and no checkpoint.
    pub fn new() -> Self {
        Self::from_spec(Spec {
            id: JobId::new(),
            name: "job".to_owned(),
            queue: DEFAULT_QUEUE.to_owned(),
            attempt: 1,
            token: 1,
            checkpoint: None,
            cancel_after_checkpoints: None,
            flow: None,
        })
    }

    /// A builder to choose the job, the attempt and the checkpoint.
    pub fn builder() -> FakeContextBuilder {
        FakeContextBuilder {
            id: None,
            name: Cow::Borrowed("job"),
            queue: Cow::Borrowed(DEFAULT_QUEUE),
            attempt: 1,
            token: 1,
            checkpoint: None,
            cancel_after_checkpoints: None,
            flow: None,
        }
    }

    fn from_spec(spec: Spec) -> Self {
        let cancel = Cancellation::default();
        let interactions = Arc::new(Interactions {
            saved: Mutex::new(Saved::default()),
            lease_lost: AtomicBool::new(false),
            cancel: cancel.clone(),
            cancel_after_checkpoints: spec.cancel_after_checkpoints,
        });
        let lease = Lease::new(spec.id, spec.queue.clone(), LeaseToken::new(spec.token), u64::MAX);
        let sink: Arc<dyn ContextSink> = interactions.clone();
        let ctx = JobContext::new(
            spec.name.clone(),
            spec.attempt,
            lease,
            spec.checkpoint.clone(),
            cancel,
            sink,
        )
        .with_flow(spec.flow.clone());
        Self { ctx, interactions, spec }
    }

    /// The context to hand to the handler (clones are the same context).
    pub fn context(&self) -> JobContext {
        self.ctx.clone()
    }

    /// Asks the attempt to stop, as a stopping worker or a timeout does: the
    /// context's [`cancelled`](JobContext::cancelled) resolves and
    /// [`stop_if_cancelled`](JobContext::stop_if_cancelled) answers `Err`.
    pub fn cancel(&self) {
        self.interactions.cancel.cancel();
    }

    /// Takes the lease away, as when it expired and another worker took the
    /// job: from now on progress and checkpoints are refused with
    /// [`QueueError::LeaseLost`] and not recorded.
    pub fn lose_lease(&self) {
        self.interactions.lease_lost.store(true, Ordering::Release);
    }

    /// The progress values the handler reported, in order.
    pub fn progress(&self) -> Vec<u8> {
        self.interactions.saved().progress.clone()
    }

    /// The checkpoints the handler saved that read as a `T`, in order.
    pub fn checkpoints<T: DeserializeOwned>(&self) -> Vec<T> {
        let saved = self.interactions.saved();
        saved.checkpoints.iter().filter_map(|json| serde_json::from_str(json).ok()).collect()
    }

    /// The last checkpoint the handler saved, if it reads as a `T`.
    pub fn last_checkpoint<T: DeserializeOwned>(&self) -> Option<T> {
        let saved = self.interactions.saved();
        saved.checkpoints.last().and_then(|json| serde_json::from_str(json).ok())
    }

    /// The release the handler asked for with [`JobContext::release`], if any.
    pub fn released(&self) -> Option<Duration> {
        self.ctx.released()
    }

    /// The names of the jobs the handler put before and after the rest of
    /// its chain ([`JobContext::prepend_to_chain`],
    /// [`JobContext::append_to_chain`]), in order.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::testing::FakeContext;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Notify;
    /// # impl conc_bus::Job for Notify { const NAME: &'static str = "notify"; }
    ///
    /// let fake = FakeContext::new();
    /// fake.context().append_to_chain(Notify)?;
    /// assert_eq!(fake.chained(), (vec![], vec!["notify".to_owned()]));
    /// # Ok::<(), conc_bus::DecodeError>(())
    /// ```
    pub fn chained(&self) -> (Vec<String>, Vec<String>) {
        self.ctx.chain_edit_names()
    }

    /// A fake context for the job's next attempt: the same job, the attempt
    /// and lease token one higher, resuming from the last checkpoint this
    /// attempt saved (or the one it resumed from), with nothing recorded and
    /// nothing cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{JobContext, JobError};
    /// use conc_bus::testing::FakeContext;
    ///
    /// async fn import(rows: u32, ctx: JobContext) -> Result<(), JobError> {
    ///     let start: u32 = ctx.resume_from().unwrap_or(0);
    ///     for row in start..rows {
    ///         ctx.stop_if_cancelled()?;
    ///         ctx.checkpoint(&(row + 1)).await?;
    ///     }
    ///     Ok(())
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let first = FakeContext::builder().cancel_after_checkpoints(3).build()?;
    /// first.run(import(10, first.context())).await.assert_failed(); // cancelled after row 3
    /// assert_eq!(first.last_checkpoint::<u32>(), Some(3));
    ///
    /// let second = first.next_attempt();
    /// assert_eq!(second.context().attempt(), 2);
    /// second.run(import(10, second.context())).await.assert_succeeded();
    /// assert_eq!(second.checkpoints::<u32>(), (4..=10).collect::<Vec<_>>()); // resumed at row 4
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn next_attempt(&self) -> FakeContext {
        let last = self.interactions.saved().checkpoints.last().cloned();
        let spec = Spec {
            attempt: self.spec.attempt.saturating_add(1),
            token: self.spec.token.saturating_add(1),
            checkpoint: last.or_else(|| self.spec.checkpoint.clone()),
            cancel_after_checkpoints: None,
            ..self.spec.clone()
        };
        Self::from_spec(spec)
    }

    /// What a worker would do with the job after the handler returned
    /// `result` on this context (a release asked with
    /// [`JobContext::release`] counts when the handler returned `Ok`).
    pub fn outcome(&self, result: Result<(), JobError>) -> HandlerOutcome {
        match result {
            Ok(()) => match self.ctx.released() {
                Some(delay) => HandlerOutcome::Released(delay),
                None => HandlerOutcome::Succeeded,
            },
            Err(JobError::Release(delay)) => HandlerOutcome::Released(delay),
            Err(JobError::Retry(error)) => HandlerOutcome::Failed(error),
            Err(JobError::Fatal(error)) => HandlerOutcome::Fatal(error),
        }
    }

    /// Runs the handler's future to its end, a panic caught as a worker
    /// catches it, and answers its [`outcome`](Self::outcome).
    pub async fn run<F>(&self, handler: F) -> HandlerOutcome
    where
        F: Future<Output = Result<(), JobError>>,
    {
        match AssertUnwindSafe(handler).catch_unwind().await {
            Ok(result) => self.outcome(result),
            Err(panic) => {
                HandlerOutcome::Panicked(conc_core::driver::panic_message(panic.as_ref()))
            }
        }
    }

    /// Asserts the handler reported exactly these progress values, in order.
    ///
    /// # Panics
    ///
    /// When it reported others, showing them.
    #[track_caller]
    pub fn assert_progress(&self, expected: &[u8]) {
        let progress = self.progress();
        assert!(
            progress == expected,
            "expected the handler to report progress {expected:?}, but it reported {progress:?}"
        );
    }

    /// Asserts the last checkpoint the handler saved reads as `expected`.
    ///
    /// # Panics
    ///
    /// When it saved none, or another, showing what it saved.
    #[track_caller]
    pub fn assert_checkpoint<T>(&self, expected: &T)
    where
        T: DeserializeOwned + PartialEq + fmt::Debug,
    {
        let saved = self.interactions.saved().checkpoints.clone();
        let last = saved.last().and_then(|json| serde_json::from_str::<T>(json).ok());
        assert!(
            last.as_ref() == Some(expected),
            "expected the last checkpoint to be {expected:?}, but the handler saved {}",
            if saved.is_empty() { "none".to_owned() } else { saved.join(", ") }
        );
    }

    /// Asserts the handler saved no checkpoint.
    ///
    /// # Panics
    ///
    /// When it saved one, showing them.
    #[track_caller]
    pub fn assert_no_checkpoint(&self) {
        let saved = self.interactions.saved().checkpoints.clone();
        assert!(
            saved.is_empty(),
            "expected no checkpoint, but the handler saved {}",
            saved.join(", ")
        );
    }
}

/// Configures a [`FakeContext`].
///
/// # Examples
///
/// ```
/// use conc_bus::{Job, JobContext, JobId};
/// use conc_bus::testing::FakeContext;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Export { rows: u32 }
/// impl Job for Export { const NAME: &'static str = "export"; }
///
/// let fake = FakeContext::builder()
///     .job::<Export>()
///     .id(JobId::from_u128(42))
///     .attempt(3)
///     .checkpoint(&1_000_u32) // what an earlier attempt saved
///     .build()?;
/// let ctx: JobContext = fake.context();
/// assert_eq!((ctx.name(), ctx.attempt(), ctx.queue()), ("export", 3, "default"));
/// assert_eq!(ctx.resume_from::<u32>(), Some(1_000));
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct FakeContextBuilder {
    id: Option<JobId>,
    name: Cow<'static, str>,
    queue: Cow<'static, str>,
    attempt: u32,
    token: u64,
    checkpoint: Option<Result<String, String>>,
    cancel_after_checkpoints: Option<usize>,
    flow: Option<Box<crate::job::JobFlow>>,
}

impl FakeContextBuilder {
    /// The job's id. Defaults to a fresh one.
    pub fn id(mut self, id: JobId) -> Self {
        self.id = Some(id);
        self
    }

    /// The job's name. Defaults to `"job"`.
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = name.into();
        self
    }

    /// The job's name and queue, from `J`'s [`NAME`](Job::NAME) and options.
    pub fn job<J: Job>(mut self) -> Self {
        self.name = Cow::Borrowed(J::NAME);
        self.queue = Cow::Owned(J::options().queue_name().to_owned());
        self
    }

    /// The queue the job was reserved from. Defaults to `"default"`.
    pub fn queue(mut self, queue: impl Into<Cow<'static, str>>) -> Self {
        self.queue = queue.into();
        self
    }

    /// Which attempt this is. Defaults to 1; at least 1.
    pub fn attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt;
        self
    }

    /// The lease token the context carries. Defaults to 1.
    pub fn lease_token(mut self, token: u64) -> Self {
        self.token = token;
        self
    }

    /// The checkpoint an earlier attempt saved, which this one reads with
    /// [`JobContext::resume_from`]. Defaults to none.
    pub fn checkpoint<T: Serialize + ?Sized>(mut self, state: &T) -> Self {
        self.checkpoint = Some(serde_json::to_string(state).map_err(|error| error.to_string()));
        self
    }

    /// Cancels the attempt as soon as the handler has saved `n` checkpoints,
    /// to test how it stops mid-way and how the next attempt resumes.
    /// Defaults to never; at least 1.
    pub fn cancel_after_checkpoints(mut self, n: usize) -> Self {
        self.cancel_after_checkpoints = Some(n);
        self
    }

    /// Makes the job a member of batch `id` (for
    /// [`JobContext::batch_id`] and adding to the batch). Defaults to none.
    pub fn batch(mut self, id: crate::batch::BatchId) -> Self {
        // The member is the job itself (its id is set at `build`).
        let member = crate::job::BatchMember::new(id, JobId::from_u128(0));
        self.flow.get_or_insert_with(Box::default).batch = Some(member);
        self
    }

    /// Makes the job a callback dispatched by `trigger` (read with
    /// [`JobContext::trigger`]). Defaults to none.
    pub fn trigger(mut self, trigger: crate::job::Trigger) -> Self {
        self.flow.get_or_insert_with(Box::default).trigger = Some(trigger);
        self
    }

    /// The fake context.
    pub fn build(self) -> Result<FakeContext, ConfigError> {
        config::name("name", &self.name)?;
        crate::job::check_queue_name(&self.queue)?;
        config::at_least("attempt", self.attempt, 1)?;
        if let Some(n) = self.cancel_after_checkpoints {
            config::at_least("cancel_after_checkpoints", n, 1)?;
        }
        let checkpoint = match self.checkpoint {
            None => None,
            Some(Ok(json)) => Some(json),
            Some(Err(error)) => {
                return Err(ConfigError::new(
                    "checkpoint",
                    "(unserializable)",
                    format!("must serialize: {error}"),
                ));
            }
        };
        let id = self.id.unwrap_or_default();
        let mut flow = self.flow;
        if let Some(member) = flow.as_deref_mut().and_then(|f| f.batch.as_mut()) {
            member.member = id;
        }
        Ok(FakeContext::from_spec(Spec {
            id,
            name: self.name.into_owned(),
            queue: self.queue.into_owned(),
            attempt: self.attempt,
            token: self.token,
            checkpoint,
            cancel_after_checkpoints: self.cancel_after_checkpoints,
            flow,
        }))
    }
}

/// What a worker would do with a job after its handler returned: the
/// handler's result read the way the worker reads it, with assertions for
/// tests. Made by [`FakeContext::outcome`] and [`FakeContext::run`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_bus::JobError;
/// use conc_bus::testing::{FakeContext, HandlerOutcome};
///
/// let fake = FakeContext::new();
/// let outcome = fake.outcome(Err(JobError::retry("smtp timed out")));
/// outcome.assert_failed_with(|e| e.to_string().contains("smtp"));
/// assert_eq!(outcome.to_string(), "failed (retryable): smtp timed out");
///
/// fake.context().release(Duration::from_secs(5));
/// assert!(matches!(fake.outcome(Ok(())), HandlerOutcome::Released(d) if d == Duration::from_secs(5)));
/// ```
#[derive(Debug)]
#[must_use = "an outcome is there to be checked"]
#[non_exhaustive]
pub enum HandlerOutcome {
    /// The job succeeded: a worker acknowledges (deletes) it.
    Succeeded,
    /// The job goes back to its queue, available after this delay.
    Released(Duration),
    /// The attempt failed: the job is retried while its limits allow.
    Failed(BoxError),
    /// The job fails for good: a worker stores it as failed at once.
    Fatal(BoxError),
    /// The handler panicked (a worker retries it like a failure).
    Panicked(String),
}

impl fmt::Display for HandlerOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Succeeded => f.write_str("succeeded"),
            Self::Released(delay) => write!(f, "was released for {delay:?}"),
            Self::Failed(error) => write!(f, "failed (retryable): {}", chain(error.as_ref())),
            Self::Fatal(error) => write!(f, "failed fatally: {}", chain(error.as_ref())),
            Self::Panicked(message) => write!(f, "panicked: {message}"),
        }
    }
}

impl HandlerOutcome {
    /// Asserts the job succeeded (a worker would acknowledge and delete it).
    ///
    /// # Panics
    ///
    /// Otherwise, saying what happened.
    #[track_caller]
    pub fn assert_succeeded(&self) {
        assert!(matches!(self, Self::Succeeded), "expected the job to succeed, but it {self}");
    }

    /// Asserts the job was released (put back), after any delay.
    ///
    /// # Panics
    ///
    /// Otherwise, saying what happened.
    #[track_caller]
    pub fn assert_released(&self) {
        assert!(
            matches!(self, Self::Released(_)),
            "expected the job to be released, but it {self}"
        );
    }

    /// Asserts the job was released with exactly `delay`.
    ///
    /// # Panics
    ///
    /// Otherwise, saying what happened.
    #[track_caller]
    pub fn assert_released_after(&self, delay: Duration) {
        assert!(
            matches!(self, Self::Released(d) if *d == delay),
            "expected the job to be released for {delay:?}, but it {self}"
        );
    }

    /// Asserts the attempt failed and may be retried (an error or a panic).
    ///
    /// # Panics
    ///
    /// Otherwise, saying what happened.
    #[track_caller]
    pub fn assert_failed(&self) {
        assert!(
            matches!(self, Self::Failed(_) | Self::Panicked(_)),
            "expected the attempt to fail (retryable), but it {self}"
        );
    }

    /// Asserts the attempt failed, retryable, with an error `predicate` accepts.
    ///
    /// # Panics
    ///
    /// Otherwise, saying what happened.
    #[track_caller]
    pub fn assert_failed_with(
        &self,
        predicate: impl FnOnce(&(dyn std::error::Error + Send + Sync + 'static)) -> bool,
    ) {
        match self {
            Self::Failed(error) => assert!(
                predicate(error.as_ref()),
                "expected the attempt to fail with an error matching the predicate, but it {self}"
            ),
            _ => panic!("expected the attempt to fail (retryable), but it {self}"),
        }
    }

    /// Asserts the job failed fatally (straight to the failed store).
    ///
    /// # Panics
    ///
    /// Otherwise, saying what happened.
    #[track_caller]
    pub fn assert_failed_fatally(&self) {
        assert!(matches!(self, Self::Fatal(_)), "expected the job to fail fatally, but it {self}");
    }

    /// Asserts the job failed fatally with an error `predicate` accepts.
    ///
    /// # Panics
    ///
    /// Otherwise, saying what happened.
    #[track_caller]
    pub fn assert_failed_fatally_with(
        &self,
        predicate: impl FnOnce(&(dyn std::error::Error + Send + Sync + 'static)) -> bool,
    ) {
        match self {
            Self::Fatal(error) => assert!(
                predicate(error.as_ref()),
                "expected the job to fail fatally with an error matching the predicate, but it \
                 {self}"
            ),
            _ => panic!("expected the job to fail fatally, but it {self}"),
        }
    }

    /// Asserts the job did not fail: it succeeded or was released.
    ///
    /// # Panics
    ///
    /// Otherwise, saying what happened.
    #[track_caller]
    pub fn assert_not_failed(&self) {
        assert!(
            matches!(self, Self::Succeeded | Self::Released(_)),
            "expected the job not to fail, but it {self}"
        );
    }
}
