//! The typed builder and the built pipeline.

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use conc_core::BoxError;
use conc_core::config::ConfigError;
use conc_core::item::StartError;
use conc_core::metrics::MetricsSource;
use futures::stream::{AbortHandle, BoxStream};
use futures::{Stream, StreamExt};

use crate::error::PipelineError;
use crate::handoff::spawn_boundary;
use crate::metrics::{PipelineMetrics, StageStats};
use crate::slot::{Gone, Outcome, Slot, State};
use crate::stage::{Stage, StageConfig, Transform};

/// A built pipeline from `In` to `Out`: cheap to clone, and every call runs
/// its own pass through the stages.
///
/// # Examples
///
/// ```
/// use futures::StreamExt;
/// use conc_pipeline::Pipeline;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pipeline = Pipeline::builder()
///     .stage("parse", 4, 16, |line: &'static str| async move { line.trim().parse::<u64>() })
///     .filter(|n| n % 2 == 1)
///     .map("square", 4, 16, |n: u64| async move { n * n })
///     .build()?;
///
/// let squares: Vec<u64> = pipeline
///     .process_stream(futures::stream::iter([" 1", "2", "3 ", "5"]))
///     .map(|item| item.expect("all parse"))
///     .collect()
///     .await;
/// assert_eq!(squares, [1, 9, 25]);
/// # Ok(()) }
/// ```
pub struct Pipeline<In, Out = In> {
    transform: Transform<In, Out>,
    stats: Arc<[Arc<StageStats>]>,
    /// The first [spawned](Stage::spawn) stage, which needs a tokio runtime.
    spawned: Option<Arc<str>>,
}

impl<In, Out> Clone for Pipeline<In, Out> {
    fn clone(&self) -> Self {
        Self {
            transform: Arc::clone(&self.transform),
            stats: Arc::clone(&self.stats),
            spawned: self.spawned.clone(),
        }
    }
}

impl<In, Out> fmt::Debug for Pipeline<In, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.stats.iter().map(|s| s.name()).collect();
        f.debug_struct("Pipeline").field("stages", &names).finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Pipeline<T, T> {
    /// Starts a pipeline whose input type is `T` (inferred from the first
    /// stage), with no stage: built as is, it passes items through.
    pub fn builder() -> PipelineBuilder<T, T> {
        PipelineBuilder {
            transform: Arc::new(|stream| stream),
            configs: Vec::new(),
            stats: Vec::new(),
            last: Arc::from("source"),
        }
    }
}

/// Builds a [`Pipeline`] stage by stage; each stage's input type is the
/// previous stage's output type, checked at compile time. Settings are
/// validated by [`build`](Self::build).
///
/// # Examples
///
/// ```
/// use conc_pipeline::Pipeline;
///
/// let pipeline = Pipeline::builder()
///     .map("trim", 1, 0, |s: String| async move { s.trim().to_owned() })
///     .filter(|s| !s.is_empty())
///     .build();
/// assert!(pipeline.is_ok());
/// ```
///
/// A stage whose input is not the previous stage's output does not compile:
///
/// ```compile_fail,E0631
/// use conc_pipeline::Pipeline;
///
/// let _ = Pipeline::builder()
///     .map("length", 1, 0, |s: String| async move { s.len() })
///     .map("shout", 1, 0, |s: String| async move { s.to_uppercase() }) // gets a usize
///     .build();
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct PipelineBuilder<In, Out> {
    transform: Transform<In, Out>,
    configs: Vec<StageConfig>,
    stats: Vec<Arc<StageStats>>,
    last: Arc<str>,
}

impl<In, Out> fmt::Debug for PipelineBuilder<In, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelineBuilder").field("stages", &self.configs).finish_non_exhaustive()
    }
}

impl<In: Send + 'static, Out: Send + 'static> PipelineBuilder<In, Out> {
    /// Appends a stage built with [`Stage`]'s setters.
    pub fn then<Next: Send + 'static>(self, stage: Stage<Out, Next>) -> PipelineBuilder<In, Next> {
        let config = stage.config.clone();
        let stats = Arc::new(StageStats::new(Arc::clone(&config.name)));
        let this_stage = stage.into_transform(Arc::clone(&stats));
        let previous = self.transform;
        let (spawn, name, buffer, batch) =
            (config.spawn, Arc::clone(&config.name), config.buffer, config.hand_off_batch);
        let transform: Transform<In, Next> = Arc::new(move |source| {
            let out = this_stage(previous(source));
            if spawn { spawn_boundary(Arc::clone(&name), out, buffer, batch) } else { out }
        });
        let mut configs = self.configs;
        let mut all_stats = self.stats;
        let last = Arc::clone(&config.name);
        configs.push(config);
        all_stats.push(stats);
        PipelineBuilder { transform, configs, stats: all_stats, last }
    }

    /// Appends a stage running the async, fallible `f` on up to `concurrency`
    /// items at once, in order, holding up to `buffer` finished items (see
    /// [`Stage::buffer`]). An error fails the run; use [`then`](Self::then)
    /// with a [`Stage`] for other policies.
    pub fn stage<Next, F, Fut, E>(
        self,
        name: impl Into<Arc<str>>,
        concurrency: usize,
        buffer: usize,
        f: F,
    ) -> PipelineBuilder<In, Next>
    where
        Next: Send + 'static,
        F: Fn(Out) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Next, E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        self.then(Stage::new(name, f).concurrency(concurrency).buffer(buffer))
    }

    /// Appends a stage running the async, infallible `f`; otherwise as [`stage`](Self::stage).
    pub fn map<Next, F, Fut>(
        self,
        name: impl Into<Arc<str>>,
        concurrency: usize,
        buffer: usize,
        f: F,
    ) -> PipelineBuilder<In, Next>
    where
        Next: Send + 'static,
        F: Fn(Out) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Next> + Send + 'static,
    {
        self.then(Stage::map(name, f).concurrency(concurrency).buffer(buffer))
    }

    /// Appends a stage running the blocking, fallible `f` on tokio's blocking
    /// pool; otherwise as [`stage`](Self::stage).
    pub fn blocking<Next, F, E>(
        self,
        name: impl Into<Arc<str>>,
        concurrency: usize,
        buffer: usize,
        f: F,
    ) -> PipelineBuilder<In, Next>
    where
        Next: Send + 'static,
        F: Fn(Out) -> Result<Next, E> + Send + Sync + 'static,
        E: Into<BoxError> + 'static,
    {
        self.then(Stage::blocking(name, f).concurrency(concurrency).buffer(buffer))
    }

    /// Drops the items for which `keep` returns `false`. Dropped items leave
    /// no gap: ordered stages after it do not wait for them. A panic in
    /// `keep` fails the run.
    pub fn filter<P>(self, keep: P) -> Self
    where
        P: Fn(&Out) -> bool + Send + Sync + 'static,
    {
        let previous = self.transform;
        let after = Arc::clone(&self.last);
        let keep = Arc::new(keep);
        let transform: Transform<In, Out> = Arc::new(move |source| {
            let after = Arc::clone(&after);
            let keep = Arc::clone(&keep);
            previous(source)
                .map(move |slot| match slot.state {
                    State::Item(item) => {
                        match std::panic::catch_unwind(AssertUnwindSafe(|| keep(&item))) {
                            Ok(true) => Slot { index: slot.index, state: State::Item(item) },
                            Ok(false) => Slot::gone(slot.index, Gone::Filtered(Arc::clone(&after))),
                            Err(panic) => {
                                let message = conc_core::driver::panic_message(&*panic);
                                let error = PipelineError::FilterPanicked {
                                    stage: Arc::clone(&after),
                                    message,
                                };
                                Slot::gone(slot.index, Gone::Failed(Box::new(error)))
                            }
                        }
                    }
                    gone @ State::Gone(_) => Slot { index: slot.index, state: gone },
                })
                .boxed()
        });
        PipelineBuilder { transform, ..self }
    }

    /// Checks every stage's settings and builds the pipeline.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for the first stage with a bad setting, naming the
    /// stage in its field (``stage `parse` concurrency``): an empty name, a
    /// name with a NUL byte or used twice (named by the stage's position,
    /// `stage 2 name`), `concurrency` or `hand_off_batch` below 1 or above
    /// 65,536, `buffer` above 1,048,576, or a zero `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_pipeline::{Pipeline, Stage};
    ///
    /// let err = Pipeline::builder()
    ///     .then(Stage::map("parse", |n: u32| async move { n }).concurrency(0))
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.field, "stage `parse` concurrency");
    /// assert_eq!(err.to_string(), "invalid `stage `parse` concurrency` 0: must be at least 1");
    /// ```
    pub fn build(self) -> Result<Pipeline<In, Out>, ConfigError> {
        let mut names = HashSet::new();
        for (position, config) in (1..).zip(&self.configs) {
            config.check(position)?;
            if !names.insert(Arc::clone(&config.name)) {
                let reason = "must be unique: metrics and errors tell stages apart by name";
                let error = ConfigError::new("name", &*config.name, reason);
                return Err(error.within(format!("stage {position}")));
            }
        }
        let spawned = self.configs.iter().find(|c| c.spawn).map(|c| Arc::clone(&c.name));
        Ok(Pipeline { transform: self.transform, stats: self.stats.into(), spawned })
    }
}

impl<In: Send + 'static, Out: Send + 'static> Pipeline<In, Out> {
    fn run<S>(&self, source: S) -> BoxStream<'static, Slot<Out>>
    where
        S: Stream<Item = In> + Send + 'static,
    {
        let slots = source
            .enumerate()
            .map(|(index, item)| Slot { index: index as u64, state: State::Item(item) });
        (self.transform)(slots.boxed())
    }

    /// Runs every item of `source` through the stages and returns the
    /// outputs as a stream, each `Ok`, or one `Err` that ends it (a stage with
    /// [`ErrorPolicy::Fail`](crate::ErrorPolicy::Fail) failed). Filtered,
    /// skipped and dead-lettered items do not appear.
    ///
    /// Nothing runs until the stream is polled. Memory stays bounded: each
    /// stage holds at most its window of items, so a slow consumer slows the
    /// source. Dropping the stream cancels every stage, spawned ones
    /// included; [`PipelineStream::drain`] stops the source and lets what is
    /// in flight finish.
    ///
    /// A pipeline with a [spawned](Stage::spawn) stage needs a tokio runtime;
    /// outside one the stream yields [`PipelineError::NoRuntime`] and ends,
    /// dropping `source`. Use [`try_process_stream`](Self::try_process_stream)
    /// to get `source` back instead.
    pub fn process_stream<S>(&self, source: S) -> PipelineStream<Out>
    where
        S: Stream<Item = In> + Send + 'static,
    {
        let (source, drain) = futures::stream::abortable(source);
        PipelineStream { inner: Some(self.run(source)), drain }
    }

    /// Like [`process_stream`](Self::process_stream), but a pipeline that
    /// cannot start hands `source` back, untouched, in a [`StartError`].
    ///
    /// # Errors
    ///
    /// [`StartError`] with [`PipelineError::NoRuntime`] naming the first
    /// spawned stage, when a stage is [spawned](Stage::spawn) and there is no
    /// tokio runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_pipeline::{Pipeline, PipelineError, Stage};
    /// use futures::StreamExt;
    ///
    /// let pipeline = Pipeline::builder()
    ///     .then(Stage::map("double", |n: u32| async move { n * 2 }).spawn())
    ///     .build()
    ///     .unwrap();
    /// // No tokio runtime here: the items come back.
    /// let rejected = pipeline.try_process_stream(futures::stream::iter(0..3)).unwrap_err();
    /// assert!(matches!(rejected.error, PipelineError::NoRuntime { .. }));
    /// let items: Vec<u32> = futures::executor::block_on(rejected.into_input().collect());
    /// assert_eq!(items, [0, 1, 2]);
    /// ```
    pub fn try_process_stream<S>(
        &self,
        source: S,
    ) -> Result<PipelineStream<Out>, StartError<S, PipelineError>>
    where
        S: Stream<Item = In> + Send + 'static,
    {
        if let Some(stage) = &self.spawned
            && tokio::runtime::Handle::try_current().is_err()
        {
            let error = PipelineError::NoRuntime { stage: Arc::clone(stage) };
            return Err(StartError::new(error, source));
        }
        Ok(self.process_stream(source))
    }

    /// Runs one item through the stages: `Ok(Some(output))`, `Ok(None)` if it
    /// was filtered, skipped or dead-lettered, or the error that failed it.
    pub async fn process(&self, item: In) -> Result<Option<Out>, PipelineError> {
        let mut outcomes = self.process_batch(vec![item]).await;
        match outcomes.pop() {
            Some(Outcome::Output(out)) => Ok(Some(out)),
            Some(Outcome::Failed(error)) => Err(error),
            _ => Ok(None),
        }
    }

    /// Runs a batch through the stages and returns exactly one [`Outcome`]
    /// per input, in input order, whatever order the stages finish in.
    pub async fn process_batch(&self, items: Vec<In>) -> Vec<Outcome<Out>> {
        let len = items.len();
        let mut outcomes: Vec<Option<Outcome<Out>>> =
            std::iter::repeat_with(|| None).take(len).collect();
        let mut stream = self.run(futures::stream::iter(items));
        let mut lost = None;
        while let Some(slot) = stream.next().await {
            let failed = matches!(slot.state, State::Gone(Gone::Failed(_)));
            match usize::try_from(slot.index).ok().filter(|&i| i < len) {
                Some(i) => outcomes[i] = Some(slot.state.into()),
                None => lost = Some(Outcome::from(slot.state)),
            }
            if failed {
                break;
            }
        }
        drop(stream);
        outcomes
            .into_iter()
            .map(|outcome| outcome.or_else(|| lost.take()).unwrap_or(Outcome::Cancelled))
            .collect()
    }
}

impl<In, Out> Pipeline<In, Out> {
    /// A snapshot of every stage's counters, queue depth and latency, over
    /// every run since the pipeline was built (or last reset). Clones share
    /// them.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_pipeline::Pipeline;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::config::ConfigError> {
    /// let pipeline = Pipeline::builder().map("double", 2, 0, |n: u32| async move { n * 2 }).build()?;
    /// let _ = pipeline.process_batch(vec![1, 2, 3]).await;
    /// assert_eq!(pipeline.metrics().stage("double").unwrap().processed, 3);
    /// pipeline.reset_metrics();
    /// assert_eq!(pipeline.metrics().stage("double").unwrap().processed, 0);
    /// # Ok(()) }
    /// ```
    pub fn metrics(&self) -> PipelineMetrics {
        PipelineMetrics { stages: self.stats.iter().map(|s| s.snapshot()).collect() }
    }

    /// Resets every stage's counters and latencies; queue depths are kept.
    pub fn reset_metrics(&self) {
        for stats in self.stats.iter() {
            stats.reset();
        }
    }
}

impl<In, Out> MetricsSource for Pipeline<In, Out> {
    type Snapshot = PipelineMetrics;

    fn metrics(&self) -> PipelineMetrics {
        Pipeline::metrics(self)
    }

    fn reset_metrics(&self) {
        Pipeline::reset_metrics(self);
    }
}

/// The output of [`Pipeline::process_stream`]: each output item as `Ok`, or
/// the one error that ended the run.
///
/// # Examples
///
/// ```
/// use conc_pipeline::Pipeline;
/// use futures::StreamExt;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::config::ConfigError> {
/// let pipeline = Pipeline::builder().map("inc", 1, 0, |n: u64| async move { n + 1 }).build()?;
/// let mut out = pipeline.process_stream(futures::stream::iter(0..));
/// assert_eq!(out.next().await.unwrap().unwrap(), 1);
/// out.drain(); // take nothing more from the source
/// let rest: Vec<u64> = out.map(Result::unwrap).collect().await;
/// assert!(rest.len() <= 1, "only what was already pulled: {rest:?}");
/// # Ok(()) }
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct PipelineStream<T> {
    inner: Option<BoxStream<'static, Slot<T>>>,
    drain: AbortHandle,
}

impl<T> fmt::Debug for PipelineStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelineStream")
            .field("finished", &self.inner.is_none())
            .field("draining", &self.drain.is_aborted())
            .finish()
    }
}

impl<T> PipelineStream<T> {
    /// Stops pulling the source; items already pulled finish every stage and
    /// are still yielded, then the stream ends.
    pub fn drain(&self) {
        self.drain.abort();
    }

    /// A handle that calls [`drain`](Self::drain) from elsewhere (a shutdown hook).
    pub fn drain_handle(&self) -> DrainHandle {
        DrainHandle(self.drain.clone())
    }
}

/// Drains a [`PipelineStream`] from another task; see [`PipelineStream::drain`].
///
/// # Examples
///
/// ```
/// use conc_pipeline::Pipeline;
/// use futures::StreamExt;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::config::ConfigError> {
/// let pipeline = Pipeline::builder().map("id", 1, 0, |n: u64| async move { n }).build()?;
/// let out = pipeline.process_stream(futures::stream::iter(0..));
/// let shutdown = out.drain_handle();
/// tokio::spawn(async move { shutdown.drain() }).await.unwrap();
/// assert!(out.count().await <= 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a drain handle does nothing until `drain` is called"]
pub struct DrainHandle(AbortHandle);

impl DrainHandle {
    /// Stops the source; what is in flight finishes.
    pub fn drain(&self) {
        self.0.abort();
    }
}

impl<T> Stream for PipelineStream<T> {
    type Item = Result<T, PipelineError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let Some(inner) = this.inner.as_mut() else { return Poll::Ready(None) };
            // Every input taken, an output or a hole, spends a unit of tokio's
            // cooperative budget: after a run of them the task gives its
            // runtime a turn, so timers fire and the task can be cancelled
            // even when the source is always ready.
            let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
            match inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    this.inner = None;
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(slot)) => match slot.state {
                    State::Item(item) => {
                        coop.made_progress();
                        return Poll::Ready(Some(Ok(item)));
                    }
                    State::Gone(Gone::Failed(error)) => {
                        // Fail fast: drop every stage now.
                        this.inner = None;
                        return Poll::Ready(Some(Err(*error)));
                    }
                    State::Gone(_) => coop.made_progress(),
                },
            }
        }
    }
}
