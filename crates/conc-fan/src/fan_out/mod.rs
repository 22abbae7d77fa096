//! Fan-out: items spread over N worker tasks, results in input order or as
//! they finish.
//!
//! A run has three parts, each in its own file: the [dispatcher](dispatch)
//! task pulls the source in batches and hands them to the worker the
//! [balancer](balance) picks; the [workers](worker) run the items, retrying
//! them per the [`Recovery`]; the [output stream](stream) puts the results
//! back in order and applies the [`ErrorPolicy`](crate::ErrorPolicy).

mod balance;
mod builder;
mod dispatch;
pub(crate) mod metrics;
mod stream;
pub(crate) mod worker;

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use conc_core::BoxError;
use conc_core::item::StartError;
use conc_core::metrics::MetricsSource;
use futures::Stream;
use tokio::sync::mpsc;

pub use self::balance::{Balance, PickWorker};
pub use self::builder::FanOutBuilder;
pub use self::metrics::{FanOutMetrics, WorkerLoad};
pub use self::stream::FanOutStream;

use self::balance::Balancer;
use self::builder::Config;
use self::dispatch::Dispatcher;
use self::metrics::{Facade, FanStats, Recorder};
use self::worker::{Batch, Worker};
use crate::error::FanError;
use crate::recovery::Recovery;

/// Spreads items of type `In` over N worker tasks, each running the async
/// function `F` on one item at a time, and gives the results back in input
/// order or as they finish.
///
/// Items go to workers in batches of up to [`batch`](FanOutBuilder::batch),
/// through a bounded queue per worker. The items in flight (queued, running,
/// and finished but not yet taken by the consumer) never exceed
/// `workers × batch × (queue + 2)`, so a slow consumer slows the source.
/// Dropping the output stream aborts every worker. A fan-out is a reusable
/// configuration: each run has its own workers, and [`metrics`](Self::metrics)
/// counts over every run.
///
/// # Examples
///
/// ```
/// use conc_fan::{Balance, FanOut};
/// use futures::StreamExt;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::config::ConfigError> {
/// let fan_out = FanOut::builder()
///     .workers(4)
///     .balance(Balance::LeastLoaded)
///     .build(|n: u64| async move { Ok::<_, std::io::Error>(n * n) })?;
/// let squares: Vec<u64> =
///     fan_out.process_stream(futures::stream::iter(0..5)).map(Result::unwrap).collect().await;
/// assert_eq!(squares, [0, 1, 4, 9, 16]); // input order by default
/// # Ok(()) }
/// ```
pub struct FanOut<In, F> {
    config: Arc<Config>,
    recovery: Option<Arc<Recovery<In>>>,
    f: Arc<F>,
    stats: Arc<FanStats>,
}

impl<In, F> Clone for FanOut<In, F> {
    fn clone(&self) -> Self {
        Self {
            config: Arc::clone(&self.config),
            recovery: self.recovery.clone(),
            f: Arc::clone(&self.f),
            stats: Arc::clone(&self.stats),
        }
    }
}

impl<In, F> fmt::Debug for FanOut<In, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FanOut")
            .field("config", &self.config)
            .field("recovery", &self.recovery)
            .finish_non_exhaustive()
    }
}

impl<In, F> FanOut<In, F> {
    /// A snapshot of the counters over every run since the fan-out was built
    /// (or last reset): items dispatched, processed, failed, retried,
    /// dead-lettered and skipped. Clones share them.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_fan::FanOut;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::config::ConfigError> {
    /// let double = FanOut::builder().build(|n: u32| async move { Ok::<_, std::io::Error>(n * 2) })?;
    /// let _ = double.process_batch(vec![1, 2, 3]).await;
    /// assert_eq!(double.metrics().processed, 3);
    /// double.reset_metrics();
    /// assert_eq!(double.metrics().processed, 0);
    /// # Ok(()) }
    /// ```
    pub fn metrics(&self) -> FanOutMetrics {
        self.stats.snapshot()
    }

    /// Sets every counter of [`metrics`](Self::metrics) back to zero.
    pub fn reset_metrics(&self) {
        self.stats.reset();
    }
}

impl<In, F> MetricsSource for FanOut<In, F> {
    type Snapshot = FanOutMetrics;

    fn metrics(&self) -> FanOutMetrics {
        FanOut::metrics(self)
    }

    fn reset_metrics(&self) {
        FanOut::reset_metrics(self);
    }
}

impl<In, F, Out, E, Fut> FanOut<In, F>
where
    F: Fn(In) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Out, E>> + Send + 'static,
    E: Into<BoxError> + 'static,
    In: Send + 'static,
    Out: Send + 'static,
{
    /// Runs every item of `source` through the workers. The stream yields
    /// `Ok(output)` per item, in input order unless built
    /// [`unordered`](FanOutBuilder::unordered). A failed item is first
    /// retried and dead-lettered per the [`Recovery`], if one is set (a
    /// dead-lettered item is left out of the stream); otherwise it yields its
    /// error and ends the stream under
    /// [`ErrorPolicy::Fail`](crate::ErrorPolicy::Fail), or is dropped under
    /// [`ErrorPolicy::Skip`](crate::ErrorPolicy::Skip). Needs a tokio runtime.
    ///
    /// Outside a tokio runtime the stream yields [`FanError::NoRuntime`] and
    /// ends, dropping `source`; use [`try_process_stream`](Self::try_process_stream)
    /// to get `source` back instead.
    pub fn process_stream<S>(&self, source: S) -> FanOutStream<Out>
    where
        S: Stream<Item = In> + Send + 'static,
    {
        self.try_process_stream(source).unwrap_or_else(|rejected| {
            FanOutStream::new(Arc::clone(&self.config), Arc::clone(&self.stats))
                .failed_at_start(rejected.error)
        })
    }

    /// Like [`process_stream`](Self::process_stream), but a fan-out that
    /// cannot start hands `source` back, untouched, in a [`StartError`].
    ///
    /// # Errors
    ///
    /// [`StartError`] with [`FanError::NoRuntime`] when called outside a
    /// tokio runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_fan::{FanError, FanOut};
    /// use futures::StreamExt;
    ///
    /// let double = FanOut::builder()
    ///     .build(|n: u32| async move { Ok::<_, std::io::Error>(n * 2) })
    ///     .unwrap();
    /// // No tokio runtime here: the items come back.
    /// let rejected = double.try_process_stream(futures::stream::iter(0..3)).unwrap_err();
    /// assert!(matches!(rejected.error, FanError::NoRuntime));
    /// let items: Vec<u32> = futures::executor::block_on(rejected.into_input().collect());
    /// assert_eq!(items, [0, 1, 2]);
    /// ```
    pub fn try_process_stream<S>(
        &self,
        source: S,
    ) -> Result<FanOutStream<Out>, StartError<S, FanError>>
    where
        S: Stream<Item = In> + Send + 'static,
    {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err(StartError::new(FanError::NoRuntime, source));
        };
        let config = &self.config;
        let mut stream = FanOutStream::new(Arc::clone(config), Arc::clone(&self.stats));
        let facade = Facade::register();
        // Unbounded: the run's window of permits bounds what is in flight,
        // so a worker never waits to hand its results over.
        let (out, rx) = conc_core::handoff::channel(usize::MAX);
        let mut senders = Vec::with_capacity(config.workers);
        for index in 0..config.workers {
            let (tx, batches) = mpsc::channel::<Batch<In>>(config.queue);
            senders.push(tx);
            let recorder = Recorder::new(
                index,
                Arc::clone(&stream.run),
                Arc::clone(&self.stats),
                facade.clone(),
            );
            let worker = Worker {
                f: Arc::clone(&self.f),
                timeout: config.timeout,
                recovery: self.recovery.clone(),
                recorder,
                out: out.clone(),
            };
            stream.tasks.push(runtime.spawn(worker.run(batches)));
        }
        let dispatcher = Dispatcher {
            senders,
            permits: Arc::clone(&stream.permits),
            run: Arc::clone(&stream.run),
            balancer: Balancer::new(config.balance.clone(), Arc::clone(&stream.run)),
            batch: config.batch,
            stats: Arc::clone(&self.stats),
            counter: facade.dispatched,
            out,
            seq: 0,
        };
        stream.tasks.push(runtime.spawn(dispatcher.run(source)));
        stream.rx = Some(rx);
        Ok(stream)
    }

    /// Runs a batch through the workers and returns one result per input, in
    /// input order. Every item is processed whatever the error policy; a
    /// dead-lettered item's slot holds [`FanError::DeadLettered`].
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_fan::{FanError, FanOut};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::config::ConfigError> {
    /// let halve = FanOut::builder()
    ///     .build(|n: u32| async move { if n % 2 == 0 { Ok(n / 2) } else { Err("odd") } })?;
    /// let results = halve.process_batch(vec![4, 5, 6]).await;
    /// assert_eq!(*results[0].as_ref().unwrap(), 2);
    /// assert!(matches!(results[1], Err(FanError::Worker { .. })));
    /// assert_eq!(*results[2].as_ref().unwrap(), 3);
    /// # Ok(()) }
    /// ```
    pub async fn process_batch(&self, items: Vec<In>) -> Vec<Result<Out, FanError>> {
        let len = items.len();
        let mut stream = self.process_stream(futures::stream::iter(items));
        let mut results: Vec<Option<Result<Out, FanError>>> =
            std::iter::repeat_with(|| None).take(len).collect();
        while let Some((seq, result)) = stream.next_raw().await {
            match usize::try_from(seq).ok().and_then(|i| results.get_mut(i)) {
                Some(slot) => *slot = Some(result),
                None => break,
            }
        }
        results.into_iter().map(|r| r.unwrap_or(Err(FanError::WorkerLost))).collect()
    }
}
