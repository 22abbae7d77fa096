//! A stage: a named processor with its concurrency, buffer, output order and
//! error policy.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use conc_core::BoxError;
use conc_core::backoff::Backoff;
use conc_core::config::{self, ConfigError};
use conc_core::item::{DeadLetter, DeadLetterSink, ErrorPolicy, ItemError, Origin};
use futures::FutureExt;
use futures::stream::BoxStream;

use crate::error::PipelineError;
use crate::metrics::StageStats;
use crate::processor::{AsyncMap, AsyncTry, Blocking, Processor};
use crate::slot::{Gone, Slot, State};
use crate::window::StageStream;

/// The most items a stage runs at once.
const MAX_CONCURRENCY: usize = 65_536;
/// The most finished items a stage holds for the next one.
const MAX_BUFFER: usize = 1 << 20;
/// The most items a spawned stage hands over at once.
const MAX_HAND_OFF_BATCH: usize = 65_536;

/// A stage's settings, checked by [`PipelineBuilder::build`](crate::PipelineBuilder::build).
#[derive(Debug, Clone)]
pub(crate) struct StageConfig {
    pub(crate) name: Arc<str>,
    pub(crate) concurrency: usize,
    pub(crate) buffer: usize,
    pub(crate) ordered: bool,
    pub(crate) spawn: bool,
    pub(crate) hand_off_batch: usize,
    pub(crate) timeout: Option<Duration>,
}

impl StageConfig {
    /// Checks the settings of the stage at `position` (from 1): its name,
    /// then each setting, named `stage `name` setting`.
    pub(crate) fn check(&self, position: usize) -> Result<(), ConfigError> {
        config::name("name", &self.name).map_err(|e| e.within(format!("stage {position}")))?;
        let within = |error: ConfigError| error.within(format!("stage `{}`", self.name));
        config::at_least("concurrency", self.concurrency, 1).map_err(within)?;
        config::at_most("concurrency", self.concurrency, MAX_CONCURRENCY).map_err(within)?;
        config::at_most("buffer", self.buffer, MAX_BUFFER).map_err(within)?;
        config::at_least("hand_off_batch", self.hand_off_batch, 1).map_err(within)?;
        config::at_most("hand_off_batch", self.hand_off_batch, MAX_HAND_OFF_BATCH)
            .map_err(within)?;
        if let Some(timeout) = self.timeout {
            config::positive("timeout", timeout).map_err(within)?;
        }
        Ok(())
    }
}

/// Everything an item's attempts need besides the processor.
pub(crate) struct StageCtx<In> {
    pub(crate) config: StageConfig,
    pub(crate) policy: ErrorPolicy,
    pub(crate) retry: Option<Backoff>,
    /// Set when retries or a dead letter sink need the item after a failure.
    pub(crate) cloner: Option<fn(&In) -> In>,
    pub(crate) dead_letter: Option<Arc<dyn DeadLetterSink<In>>>,
    pub(crate) stats: Arc<StageStats>,
}

pub(crate) type Transform<In, Out> =
    Arc<dyn Fn(BoxStream<'static, Slot<In>>) -> BoxStream<'static, Slot<Out>> + Send + Sync>;

type Make<In, Out> = Box<dyn FnOnce(StageCtx<In>) -> Transform<In, Out> + Send>;

/// One stage of a [`Pipeline`](crate::Pipeline): a named processor from `In`
/// to `Out`, with its settings.
///
/// The shorthand builder methods ([`stage`](crate::PipelineBuilder::stage),
/// [`map`](crate::PipelineBuilder::map), [`blocking`](crate::PipelineBuilder::blocking))
/// cover the common case; build a `Stage` and pass it to
/// [`then`](crate::PipelineBuilder::then) to set the rest.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::backoff::Backoff;
/// use conc_pipeline::{ErrorPolicy, Pipeline, Stage};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let fetch = Stage::new("fetch", |id: u32| async move {
///     if id == 13 { Err("unlucky") } else { Ok(format!("page {id}")) }
/// })
/// .concurrency(8)
/// .buffer(32)
/// .unordered()
/// .timeout(Duration::from_secs(5))
/// .retry(Backoff::exponential(Duration::from_millis(10)).max_retries(2).build()?)
/// .on_error(ErrorPolicy::Skip);
///
/// let pipeline = Pipeline::builder().then(fetch).build()?;
/// assert_eq!(pipeline.process(1).await?, Some("page 1".to_owned()));
/// assert_eq!(pipeline.process(13).await?, None); // skipped after two retries
/// # Ok(()) }
/// ```
#[must_use = "a stage does nothing until it is added to a pipeline"]
pub struct Stage<In, Out> {
    pub(crate) config: StageConfig,
    policy: ErrorPolicy,
    retry: Option<Backoff>,
    cloner: Option<fn(&In) -> In>,
    dead_letter: Option<Arc<dyn DeadLetterSink<In>>>,
    make: Make<In, Out>,
}

impl<In, Out> fmt::Debug for Stage<In, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stage")
            .field("config", &self.config)
            .field("policy", &self.policy)
            .field("retry", &self.retry)
            .field("dead_letter", &self.dead_letter.is_some())
            .finish_non_exhaustive()
    }
}

impl<In: Send + 'static, Out: Send + 'static> Stage<In, Out> {
    fn with_processor<P>(name: impl Into<Arc<str>>, processor: P) -> Self
    where
        P: Processor<In, Out = Out>,
    {
        Self {
            config: StageConfig {
                name: name.into(),
                concurrency: 1,
                buffer: 0,
                ordered: true,
                spawn: false,
                hand_off_batch: 32,
                timeout: None,
            },
            policy: ErrorPolicy::Fail,
            retry: None,
            cloner: None,
            dead_letter: None,
            make: Box::new(move |ctx| transform(ctx, processor)),
        }
    }

    /// A stage running the async, fallible `f` on each item.
    pub fn new<F, Fut, E>(name: impl Into<Arc<str>>, f: F) -> Self
    where
        F: Fn(In) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Out, E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        Self::with_processor(name, AsyncTry(f))
    }

    /// A stage running the async, infallible `f` on each item.
    pub fn map<F, Fut>(name: impl Into<Arc<str>>, f: F) -> Self
    where
        F: Fn(In) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Out> + Send + 'static,
    {
        Self::with_processor(name, AsyncMap(f))
    }

    /// A stage running the blocking, fallible `f` on each item, on tokio's
    /// blocking thread pool (`spawn_blocking`). A call that has started runs
    /// to its end even if the pipeline is dropped; its output is discarded.
    pub fn blocking<F, E>(name: impl Into<Arc<str>>, f: F) -> Self
    where
        F: Fn(In) -> Result<Out, E> + Send + Sync + 'static,
        E: Into<BoxError> + 'static,
    {
        Self::with_processor(name, Blocking(Arc::new(f)))
    }
}

impl<In, Out> Stage<In, Out> {
    /// The stage's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// How many items the stage processes at once. Defaults to 1; must be
    /// between 1 and 65,536.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.config.concurrency = concurrency;
        self
    }

    /// How many finished items the stage may hold for the next stage.
    /// Defaults to 0; must be at most 1,048,576.
    ///
    /// In ordered mode these are items finished behind a slower one: with a
    /// buffer the stage keeps working past a slow item until `buffer` items
    /// wait behind it (the reorder window is `concurrency + buffer`). For a
    /// [`spawn`](Self::spawn)ed stage it is also the capacity of the hand-off
    /// queue to the next stage.
    pub fn buffer(mut self, buffer: usize) -> Self {
        self.config.buffer = buffer;
        self
    }

    /// Emits items in input order (the default).
    pub fn ordered(mut self) -> Self {
        self.config.ordered = true;
        self
    }

    /// Emits items as they finish, so one slow item holds back no other.
    pub fn unordered(mut self) -> Self {
        self.config.ordered = false;
        self
    }

    /// Runs this stage, and everything before it, on its own tokio task,
    /// handing items to the next stage through a bounded queue.
    ///
    /// Without it the stages run inside the consumer's `poll` (no task, no
    /// channel): cheapest, but the stage makes progress only while the
    /// consumer polls. Spawn a stage to run it in parallel with the stages
    /// after it and with a consumer that is busy between items. Dropping the
    /// output stream aborts the task. Not spawned by default.
    pub fn spawn(mut self) -> Self {
        self.config.spawn = true;
        self
    }

    /// How many items a spawned stage hands over at once. Defaults to 32;
    /// must be between 1 and 65,536.
    ///
    /// The task sends what it has as soon as the stage has nothing more ready,
    /// so batching adds no wait: under load it turns up to this many queue
    /// operations into one. The hand-off queue holds at most
    /// `max(1, buffer, hand_off_batch)` items (a batch is never split). The
    /// next stage is woken once nothing more is ready, or every 32 items
    /// while more keep coming.
    pub fn hand_off_batch(mut self, items: usize) -> Self {
        self.config.hand_off_batch = items;
        self
    }

    /// Gives each attempt at most `timeout`; a slower attempt is dropped and
    /// fails with [`ItemError::TimedOut`]. Unlimited by default; must be
    /// longer than zero. A timeout too long to be reached on the clock
    /// ([`Duration::MAX`]) never fires.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = Some(timeout);
        self
    }

    /// What to do with an item that failed (after any retries). Defaults to
    /// [`ErrorPolicy::Fail`].
    pub fn on_error(mut self, policy: ErrorPolicy) -> Self {
        self.policy = policy;
        self
    }
}

impl<In: Clone, Out> Stage<In, Out> {
    /// Retries a failed item with the same input on `backoff`'s schedule
    /// (waits on tokio's clock), keeping its place in ordered output. When the
    /// schedule runs out, the error policy or dead letter sink applies. A
    /// delay too long to be reached on the clock (an exponential schedule
    /// without `max_delay` saturates at [`Duration::MAX`]) ends the retries
    /// as if the schedule were over. No retries by default.
    ///
    /// Each attempt gets a clone of the item, so the item type must be `Clone`
    /// (wrap large items in an `Arc`).
    pub fn retry(mut self, backoff: Backoff) -> Self {
        self.retry = Some(backoff);
        self.cloner = Some(<In as Clone>::clone);
        self
    }

    /// Sends items the stage gives up on to `sink`, with their error, and goes
    /// on with the others. Takes precedence over the [`ErrorPolicy`]. No sink
    /// by default. The sink's `send` runs on the task polling the stage and
    /// must not block.
    ///
    /// The stage keeps a clone of each item while it is processed, so the
    /// item type must be `Clone`.
    pub fn dead_letter(mut self, sink: impl DeadLetterSink<In>) -> Self {
        self.dead_letter = Some(Arc::new(sink));
        self.cloner = Some(<In as Clone>::clone);
        self
    }
}

impl<In, Out> Stage<In, Out> {
    /// Turns the stage into its transform, recording its counters in `stats`.
    pub(crate) fn into_transform(self, stats: Arc<StageStats>) -> Transform<In, Out> {
        let ctx = StageCtx {
            config: self.config,
            policy: self.policy,
            retry: self.retry,
            cloner: self.cloner,
            dead_letter: self.dead_letter,
            stats,
        };
        (self.make)(ctx)
    }
}

/// A stage's processor and settings, shared by its runs.
pub(crate) struct Shared<In, P> {
    pub(crate) ctx: StageCtx<In>,
    pub(crate) processor: P,
}

fn transform<In, P>(ctx: StageCtx<In>, processor: P) -> Transform<In, P::Out>
where
    In: Send + 'static,
    P: Processor<In>,
{
    let shared = Arc::new(Shared { ctx, processor });
    Arc::new(move |upstream| Box::pin(StageStream::new(upstream, Arc::clone(&shared))))
}

impl<In: Send + 'static, P: Processor<In>> Shared<In, P> {
    /// Whether a failed item needs the slow path (a retry or a dead letter).
    pub(crate) fn recovers(&self) -> bool {
        self.ctx.cloner.is_some()
    }

    /// A copy of the item for a retry or a dead letter, when either is set.
    pub(crate) fn keep(&self, item: &In) -> Option<In> {
        self.ctx.cloner.map(|clone| clone(item))
    }

    /// Starts the first attempt: the processor's future, or the error of a
    /// panic in the processor's synchronous part.
    pub(crate) fn begin(&self, item: In) -> Result<P::Fut, ItemError> {
        std::panic::catch_unwind(AssertUnwindSafe(|| self.processor.call(item)))
            .map_err(|panic| ItemError::from_panic(&*panic))
    }

    /// One whole attempt, with the timeout and panics caught.
    async fn attempt(&self, item: In) -> Result<P::Out, ItemError> {
        let attempt = AssertUnwindSafe(async { self.processor.call(item).await }).catch_unwind();
        let result = match self.ctx.config.timeout {
            None => attempt.await,
            Some(limit) => tokio::time::timeout(limit, attempt)
                .await
                .unwrap_or(Ok(Err(ItemError::TimedOut(limit)))),
        };
        result.unwrap_or_else(|panic| Err(ItemError::from_panic(&*panic)))
    }

    /// What becomes of an item the stage gives up on: a dead letter, a skip
    /// or the end of the run.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site each; a struct would only rename them"
    )]
    pub(crate) fn give_up(
        &self,
        index: u64,
        kept: Option<In>,
        error: ItemError,
        attempts: u32,
        first_failure: tokio::time::Instant,
        last_failure: tokio::time::Instant,
        started: Option<std::time::Instant>,
    ) -> Slot<P::Out> {
        let ctx = &self.ctx;
        ctx.stats.failed(started);
        let stage = Arc::clone(&ctx.config.name);
        if let (Some(sink), Some(item)) = (&ctx.dead_letter, kept) {
            tracing::warn!(stage = %stage, attempts, %error, "item sent to the dead letter sink");
            ctx.stats.dead_lettered();
            sink.send(DeadLetter::new(
                item,
                error,
                Origin::Stage(Arc::clone(&stage)),
                attempts,
                first_failure.into_std(),
                last_failure.into_std(),
            ));
            return Slot::gone(index, Gone::DeadLettered(stage));
        }
        if ctx.policy == ErrorPolicy::Skip {
            tracing::warn!(stage = %stage, attempts, %error, "item skipped");
            ctx.stats.skipped();
            return Slot::gone(index, Gone::Skipped(Box::new((stage, attempts, error))));
        }
        // `Fail`, and any policy added later: ending the run loses nothing silently.
        tracing::error!(stage = %stage, attempts, %error, "stage failed; ending the run");
        let error = PipelineError::Stage { stage, attempts, error };
        Slot::gone(index, Gone::Failed(Box::new(error)))
    }
}

/// Every attempt of an item whose stage has a timeout (the first attempt
/// cannot take the unboxed fast path then).
pub(crate) async fn run_timed<In, P>(
    shared: Arc<Shared<In, P>>,
    index: u64,
    item: In,
    started: Option<std::time::Instant>,
) -> Slot<P::Out>
where
    In: Send + 'static,
    P: Processor<In>,
{
    let kept = shared.keep(&item);
    match shared.attempt(item).await {
        Ok(out) => {
            shared.ctx.stats.processed(started);
            Slot { index, state: State::Item(out) }
        }
        Err(error) => recover(shared, index, kept, error, started).await,
    }
}

/// The slow path after a first failed attempt: retries on the backoff
/// schedule (tokio's clock), then [`Shared::give_up`].
pub(crate) async fn recover<In, P>(
    shared: Arc<Shared<In, P>>,
    index: u64,
    mut kept: Option<In>,
    mut error: ItemError,
    started: Option<std::time::Instant>,
) -> Slot<P::Out>
where
    In: Send + 'static,
    P: Processor<In>,
{
    let first_failure = tokio::time::Instant::now();
    let mut last_failure = first_failure;
    let mut attempts = 1_u32;
    let mut delays = shared.ctx.retry.as_ref().map(Backoff::delays);
    loop {
        // A delay too long to add to the clock would never come due: give up
        // now, as after the last retry, rather than hold the item forever.
        if let Some(delay) = delays.as_mut().and_then(Iterator::next)
            && let Some(at) = tokio::time::Instant::now().checked_add(delay)
            && let Some(item) = kept.take()
        {
            shared.ctx.stats.retried();
            tracing::debug!(stage = %shared.ctx.config.name, attempts, ?delay, %error, "retrying item");
            tokio::time::sleep_until(at).await;
            kept = shared.keep(&item);
            attempts += 1;
            match shared.attempt(item).await {
                Ok(out) => {
                    shared.ctx.stats.processed(started);
                    return Slot { index, state: State::Item(out) };
                }
                Err(next) => {
                    error = next;
                    last_failure = tokio::time::Instant::now();
                    continue;
                }
            }
        }
        return shared.give_up(index, kept, error, attempts, first_failure, last_failure, started);
    }
}
