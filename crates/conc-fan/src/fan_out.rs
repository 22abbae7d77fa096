//! Fan-out: items spread over N worker tasks, results in input order or as they finish.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use conc_core::BoxError;
use conc_core::metrics::FAN_ITEMS_DISPATCHED;
use futures::{FutureExt, Stream, StreamExt};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::dead_letter::{Attempt, ErasedRecovery, Recovery, Waiting, attempt, retry};
use crate::error::{BuildError, FanError, StartError};

/// A balancing function: the workers' loads in, a worker index out.
pub type PickWorker = Arc<dyn Fn(&[usize]) -> usize + Send + Sync>;

/// How a [`FanOut`] picks the worker for the next batch.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum Balance {
    /// Each worker in turn: over `n` batches every worker gets ⌊n/k⌋ or ⌈n/k⌉.
    #[default]
    RoundRobin,
    /// The worker with the fewest items queued or running (the lowest index
    /// among equals), so a slow worker gets less work.
    LeastLoaded,
    /// A function of the workers' current loads (items queued or running)
    /// returning a worker index, taken modulo the number of workers.
    Custom(PickWorker),
}

impl fmt::Debug for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RoundRobin => f.write_str("RoundRobin"),
            Self::LeastLoaded => f.write_str("LeastLoaded"),
            Self::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// What a fan-out stream does with a failed item that was not retried to
/// success or dead-lettered by a [`Recovery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ErrorPolicy {
    /// Yield the error and end the stream, stopping the workers.
    #[default]
    Fail,
    /// Drop the item, log it at `warn`, count it, and go on.
    Skip,
}

#[derive(Debug, Clone)]
struct Config {
    workers: usize,
    balance: Balance,
    ordered: bool,
    batch: usize,
    queue: usize,
    timeout: Option<Duration>,
    policy: ErrorPolicy,
    recovery: Option<ErasedRecovery>,
}

/// Configures a [`FanOut`]; settings are checked by [`build`](Self::build).
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct FanOutBuilder {
    config: Config,
}

impl FanOutBuilder {
    /// How many worker tasks share the items. Defaults to 4; must be at least 1.
    pub fn workers(mut self, workers: usize) -> Self {
        self.config.workers = workers;
        self
    }

    /// How the next worker is picked. Defaults to [`Balance::RoundRobin`].
    pub fn balance(mut self, balance: Balance) -> Self {
        self.config.balance = balance;
        self
    }

    /// Results in input order (the default).
    pub fn ordered(mut self) -> Self {
        self.config.ordered = true;
        self
    }

    /// Results as they finish.
    pub fn unordered(mut self) -> Self {
        self.config.ordered = false;
        self
    }

    /// The most items handed to a worker at once. Defaults to 32; must be at
    /// least 1. A batch is sent as soon as the source has nothing more ready,
    /// so batching adds no wait; it divides the hand-off cost under load.
    pub fn batch(mut self, items: usize) -> Self {
        self.config.batch = items;
        self
    }

    /// How many batches may wait in each worker's queue. Defaults to 2; must be at least 1.
    pub fn queue(mut self, batches: usize) -> Self {
        self.config.queue = batches;
        self
    }

    /// Gives each item at most `timeout`; a slower one fails with
    /// [`FanError::TimedOut`]. Unlimited by default.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = Some(timeout);
        self
    }

    /// Retries failed items and keeps the ones given up on, per `recovery`
    /// (see [`Recovery`]). Only an item that failed its last attempt and
    /// has no dead letter sink reaches the [`ErrorPolicy`]. Call it last: it
    /// returns a builder whose `build` ties the recovery's item type to the
    /// processor's input type.
    ///
    /// An item waiting for its next attempt is set aside by its worker, which
    /// goes on with the items after it and runs the retry when its delay is
    /// up (still one attempt at a time per worker). The item stays in its
    /// worker's load until it is done, and in input order the items after it
    /// wait in the reorder window.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use conc_core::backoff::Backoff;
    /// use conc_fan::{DeadLetterQueue, FanOut, Recovery};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dead = DeadLetterQueue::new(1_000);
    /// let fetch = FanOut::builder()
    ///     .workers(8)
    ///     .recover(
    ///         Recovery::new()
    ///             .retry(Backoff::exponential(Duration::from_millis(50)).max_retries(3).build()?)
    ///             .dead_letter(dead.clone()),
    ///     )
    ///     .build(|id: u32| async move {
    ///         if id == 13 { Err(std::io::Error::other("unlucky")) } else { Ok(id) }
    ///     })?;
    /// let got = fetch.process_batch((10..15).collect()).await;
    /// assert!(got[3].is_err());
    /// let letter = &dead.take()[0];
    /// assert_eq!((letter.item, letter.attempts), (13, 4));
    /// # Ok(()) }
    /// ```
    pub fn recover<In: Send + 'static>(self, recovery: Recovery<In>) -> RecoveringBuilder<In> {
        RecoveringBuilder { builder: self, recovery }
    }

    /// What the output stream does with a failed item. Defaults to [`ErrorPolicy::Fail`].
    pub fn on_error(mut self, policy: ErrorPolicy) -> Self {
        self.config.policy = policy;
        self
    }

    /// Checks the settings and builds a fan-out running `f` on each item.
    pub fn build<F>(self, f: F) -> Result<FanOut<F>, BuildError> {
        let config = self.config;
        if config.workers == 0 {
            return Err(BuildError::ZeroWorkers(0));
        }
        if config.batch == 0 {
            return Err(BuildError::ZeroBatch(0));
        }
        if config.queue == 0 {
            return Err(BuildError::ZeroQueue(0));
        }
        if let Some(timeout) = config.timeout.filter(Duration::is_zero) {
            return Err(BuildError::ZeroTimeout(timeout));
        }
        Ok(FanOut { config: Arc::new(config), f: Arc::new(f) })
    }
}

/// A [`FanOutBuilder`] with a [`Recovery`] for items of type `In`, from
/// [`FanOutBuilder::recover`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct RecoveringBuilder<In> {
    builder: FanOutBuilder,
    recovery: Recovery<In>,
}

impl<In: Send + 'static> RecoveringBuilder<In> {
    /// Checks the settings and builds a fan-out running `f` on each item,
    /// with the recovery.
    pub fn build<F, Fut>(self, f: F) -> Result<FanOut<F>, BuildError>
    where
        F: Fn(In) -> Fut,
    {
        let mut builder = self.builder;
        builder.config.recovery = Some(ErasedRecovery {
            recovery: Arc::new(self.recovery),
            item_type: std::any::type_name::<In>(),
        });
        builder.build(f)
    }
}

/// Spreads items over N worker tasks, each running the async function `F` on
/// one item at a time, and gives the results back in input order or as they
/// finish.
///
/// Items go to workers in batches of up to [`batch`](FanOutBuilder::batch),
/// through a bounded queue per worker. The items in flight (queued, running,
/// and finished but not yet taken by the consumer) never exceed
/// `workers × batch × (queue + 2)`, so a slow consumer slows the source.
/// Dropping the output stream aborts every worker.
///
/// # Examples
///
/// ```
/// use conc_fan::{Balance, FanOut};
/// use futures::StreamExt;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_fan::BuildError> {
/// let fan_out = FanOut::builder()
///     .workers(4)
///     .balance(Balance::LeastLoaded)
///     .build(|n: u64| async move { Ok::<_, std::io::Error>(n * n) })?;
/// let squares: Vec<u64> =
///     fan_out.process_stream(futures::stream::iter(0..5)).map(Result::unwrap).collect().await;
/// assert_eq!(squares, [0, 1, 4, 9, 16]); // input order by default
/// # Ok(()) }
/// ```
pub struct FanOut<F> {
    config: Arc<Config>,
    f: Arc<F>,
}

impl<F> Clone for FanOut<F> {
    fn clone(&self) -> Self {
        Self { config: Arc::clone(&self.config), f: Arc::clone(&self.f) }
    }
}

impl<F> fmt::Debug for FanOut<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FanOut").field("config", &self.config).finish_non_exhaustive()
    }
}

impl FanOut<()> {
    /// A builder with the defaults: 4 workers, round robin, ordered, batches
    /// of 32, 2 batches queued per worker, no timeout, fail on error.
    pub fn builder() -> FanOutBuilder {
        FanOutBuilder {
            config: Config {
                workers: 4,
                balance: Balance::RoundRobin,
                ordered: true,
                batch: 32,
                queue: 2,
                timeout: None,
                policy: ErrorPolicy::Fail,
                recovery: None,
            },
        }
    }
}

/// One worker's load, from [`FanOutStream::loads`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerLoad {
    /// Items queued for it or running on it now (updated once per batch).
    pub pending: usize,
    /// Items it has finished.
    pub processed: u64,
}

/// One worker's counters, on their own cache lines so workers do not share one.
#[derive(Debug, Default)]
#[repr(align(128))]
struct WorkerStats {
    pending: AtomicUsize,
    processed: AtomicU64,
}

type Results<Out> = Vec<(u64, Result<Out, FanError>)>;

impl<F> FanOut<F> {
    /// Runs every item of `source` through the workers. The stream yields
    /// `Ok(output)` per item, in input order unless built
    /// [`unordered`](FanOutBuilder::unordered). A failed item is first
    /// retried and dead-lettered per the [`Recovery`], if one is set (a
    /// dead-lettered item is left out of the stream); otherwise it yields its
    /// error and ends the stream under [`ErrorPolicy::Fail`], or is dropped
    /// under [`ErrorPolicy::Skip`]. Needs a tokio runtime.
    ///
    /// A fan-out that cannot start (no tokio runtime, or a [`Recovery`] for
    /// another item type) yields [`FanError::NoRuntime`] or
    /// [`FanError::RecoveryType`] and ends, dropping `source`; use
    /// [`try_process_stream`](Self::try_process_stream) to get `source` back
    /// instead.
    pub fn process_stream<In, Out, E, Fut, S>(&self, source: S) -> FanOutStream<Out>
    where
        F: Fn(In) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Out, E>> + Send + 'static,
        E: Into<BoxError>,
        In: Send + 'static,
        Out: Send + 'static,
        S: Stream<Item = In> + Send + 'static,
    {
        self.try_process_stream(source).unwrap_or_else(|rejected| {
            FanOutStream::new(Arc::clone(&self.config)).failed_at_start(rejected.error)
        })
    }

    /// Like [`process_stream`](Self::process_stream), but a fan-out that
    /// cannot start hands `source` back, untouched, in a [`StartError`]
    /// whose `error` is [`FanError::NoRuntime`] or [`FanError::RecoveryType`].
    ///
    /// # Errors
    ///
    /// [`StartError`] when called outside a tokio runtime or when the
    /// [`Recovery`] was set for another item type.
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
    /// let items: Vec<u32> = futures::executor::block_on(rejected.input.collect());
    /// assert_eq!(items, [0, 1, 2]);
    /// ```
    pub fn try_process_stream<In, Out, E, Fut, S>(
        &self,
        source: S,
    ) -> Result<FanOutStream<Out>, StartError<S>>
    where
        F: Fn(In) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Out, E>> + Send + 'static,
        E: Into<BoxError>,
        In: Send + 'static,
        Out: Send + 'static,
        S: Stream<Item = In> + Send + 'static,
    {
        let config = Arc::clone(&self.config);
        let mut recovery = None;
        if let Some(erased) = &config.recovery {
            let Ok(typed) = Arc::clone(&erased.recovery).downcast::<Recovery<In>>() else {
                let error = FanError::RecoveryType {
                    recovery: erased.item_type,
                    input: std::any::type_name::<In>(),
                };
                return Err(StartError { error, input: source });
            };
            recovery = Some(typed);
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err(StartError { error: FanError::NoRuntime, input: source });
        };
        let mut stream = FanOutStream::new(Arc::clone(&config));
        let stats = Arc::clone(&stream.stats);
        let permits = Arc::clone(&stream.permits);
        let (out_tx, out_rx) = mpsc::channel::<Results<Out>>(config.workers * 2);
        let mut senders = Vec::with_capacity(config.workers);
        for worker in 0..config.workers {
            let (tx, mut rx) = mpsc::channel::<Vec<(u64, In)>>(config.queue);
            senders.push(tx);
            let out = out_tx.clone();
            let f = Arc::clone(&self.f);
            let stats = Arc::clone(&stats);
            let timeout = config.timeout;
            if let Some(recovery) = recovery.clone() {
                let worker = RecoveringWorker { worker, f, stats, out, recovery, timeout };
                stream.tasks.push(runtime.spawn(async move { worker.run(rx).await }));
                continue;
            }
            stream.tasks.push(runtime.spawn(async move {
                while let Some(batch) = rx.recv().await {
                    let count = batch.len();
                    let mut results = Vec::with_capacity(count);
                    for (seq, item) in batch {
                        results.push((seq, run_one(&*f, item, worker, timeout).await));
                    }
                    // Loads move once per batch, not once per item.
                    stats[worker].pending.fetch_sub(count, Relaxed);
                    stats[worker].processed.fetch_add(count as u64, Relaxed);
                    if out.send(results).await.is_err() {
                        return;
                    }
                }
            }));
        }
        drop(out_tx);
        stream.tasks.push(runtime.spawn(dispatch(source, senders, permits, stats, config)));
        stream.rx = Some(out_rx);
        Ok(stream)
    }

    /// Runs a batch through the workers and returns one result per input, in
    /// input order. Every item is processed whatever the error policy.
    pub async fn process_batch<In, Out, E, Fut>(&self, items: Vec<In>) -> Vec<Result<Out, FanError>>
    where
        F: Fn(In) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Out, E>> + Send + 'static,
        E: Into<BoxError>,
        In: Send + 'static,
        Out: Send + 'static,
    {
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

/// A worker with a [`Recovery`]: an item waiting for its next attempt is set
/// aside, so the items after it on the same worker go on meanwhile.
struct RecoveringWorker<F, In, Out> {
    worker: usize,
    f: Arc<F>,
    stats: Arc<[WorkerStats]>,
    out: mpsc::Sender<Results<Out>>,
    recovery: Arc<Recovery<In>>,
    timeout: Option<Duration>,
}

impl<F, In, Out, E, Fut> RecoveringWorker<F, In, Out>
where
    F: Fn(In) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Out, E>> + Send + 'static,
    E: Into<BoxError>,
    In: Send + 'static,
    Out: Send + 'static,
{
    async fn run(self, mut rx: mpsc::Receiver<Vec<(u64, In)>>) {
        let Self { worker, f, stats, out, recovery, timeout } = self;
        let mut waiting: Vec<Waiting<In>> = Vec::new();
        let mut current = Vec::new().into_iter();
        let mut results: Results<Out> = Vec::new();
        let mut open = true;
        loop {
            // A due retry goes first, also between the items of a batch.
            let next_at = waiting.iter().map(|w| w.at).min();
            if let Some(at) = next_at.filter(|&at| at <= tokio::time::Instant::now()) {
                let index = waiting.iter().position(|w| w.at == at).unwrap_or_default();
                let due = waiting.swap_remove(index);
                match retry(&*f, due, worker, timeout, &recovery).await {
                    Attempt::Again(again) => waiting.push(again),
                    Attempt::Done(seq, result) => {
                        stats[worker].pending.fetch_sub(1, Relaxed);
                        stats[worker].processed.fetch_add(1, Relaxed);
                        if out.send(vec![(seq, result)]).await.is_err() {
                            return;
                        }
                    }
                }
                continue;
            }
            if let Some((seq, item)) = current.next() {
                match attempt(&*f, seq, item, worker, timeout, &recovery).await {
                    Attempt::Done(seq, result) => results.push((seq, result)),
                    Attempt::Again(again) => waiting.push(again),
                }
                if current.len() == 0 && !results.is_empty() {
                    // Items set aside stay pending until they are done.
                    stats[worker].pending.fetch_sub(results.len(), Relaxed);
                    stats[worker].processed.fetch_add(results.len() as u64, Relaxed);
                    if out.send(std::mem::take(&mut results)).await.is_err() {
                        return;
                    }
                }
                continue;
            }
            if !open && waiting.is_empty() {
                return;
            }
            let mut sleep = next_at.map(|at| Box::pin(tokio::time::sleep_until(at)));
            let batch = futures::future::poll_fn(|cx| {
                if open && let Poll::Ready(batch) = rx.poll_recv(cx) {
                    return Poll::Ready(Some(batch));
                }
                if let Some(sleep) = sleep.as_mut()
                    && sleep.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(None);
                }
                Poll::Pending
            })
            .await;
            match batch {
                None => {}
                Some(None) => open = false,
                Some(Some(batch)) => {
                    results = Vec::with_capacity(batch.len());
                    current = batch.into_iter();
                }
            }
        }
    }
}

pub(crate) async fn run_one<In, Out, E, Fut, F>(
    f: &F,
    item: In,
    worker: usize,
    timeout: Option<Duration>,
) -> Result<Out, FanError>
where
    F: Fn(In) -> Fut,
    Fut: Future<Output = Result<Out, E>>,
    E: Into<BoxError>,
{
    let attempt = AssertUnwindSafe(async { f(item).await }).catch_unwind();
    let outcome = match timeout {
        None => attempt.await,
        Some(after) => match tokio::time::timeout(after, attempt).await {
            Ok(outcome) => outcome,
            Err(_) => return Err(FanError::TimedOut { worker, after }),
        },
    };
    match outcome {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(error)) => Err(FanError::Failed { worker, error: error.into() }),
        Err(panic) => Err(FanError::panicked(worker, &*panic)),
    }
}

async fn dispatch<In, S>(
    source: S,
    senders: Vec<mpsc::Sender<Vec<(u64, In)>>>,
    permits: Arc<Semaphore>,
    stats: Arc<[WorkerStats]>,
    config: Arc<Config>,
) where
    S: Stream<Item = In> + Send,
{
    let mut source = std::pin::pin!(source);
    let counter = metrics::counter!(FAN_ITEMS_DISPATCHED);
    let batch = config.batch;
    let mut seq = 0_u64;
    let mut turn = 0;
    let mut loads = vec![0; senders.len()];
    loop {
        let Ok(permit) = permits.acquire_many(batch as u32).await else { return };
        permit.forget();
        let Some(first) = source.next().await else { return };
        let mut items = Vec::with_capacity(batch);
        items.push((seq, first));
        seq += 1;
        let mut ended = false;
        while items.len() < batch {
            match futures::poll!(source.next()) {
                Poll::Ready(Some(item)) => {
                    items.push((seq, item));
                    seq += 1;
                }
                Poll::Ready(None) => {
                    ended = true;
                    break;
                }
                Poll::Pending => break,
            }
        }
        permits.add_permits(batch - items.len());
        let worker = match &config.balance {
            Balance::RoundRobin => {
                turn = (turn + 1) % senders.len();
                turn
            }
            Balance::LeastLoaded => {
                // Lowest load wins; ties rotate, so equal workers share.
                turn = (turn + 1) % senders.len();
                let mut best = turn;
                let mut least = usize::MAX;
                for offset in 0..senders.len() {
                    let worker = (turn + offset) % senders.len();
                    let load = stats[worker].pending.load(Relaxed);
                    if load < least {
                        (best, least) = (worker, load);
                    }
                }
                best
            }
            Balance::Custom(pick) => {
                for (load, stats) in loads.iter_mut().zip(stats.iter()) {
                    *load = stats.pending.load(Relaxed);
                }
                pick(&loads) % senders.len()
            }
        };
        let count = items.len();
        counter.increment(count as u64);
        let mut worker = worker;
        let mut items = items;
        if matches!(config.balance, Balance::LeastLoaded) {
            // Never wait on a full queue while another worker has room.
            // Loads go up before the send, so a worker never takes them below zero.
            stats[worker].pending.fetch_add(count, Relaxed);
            match senders[worker].try_send(items) {
                Ok(()) => {
                    if ended {
                        return;
                    }
                    continue;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return,
                Err(mpsc::error::TrySendError::Full(back)) => {
                    stats[worker].pending.fetch_sub(count, Relaxed);
                    items = back;
                }
            }
            let mut others: Vec<usize> = (0..senders.len()).filter(|&w| w != worker).collect();
            others.sort_by_key(|&w| stats[w].pending.load(Relaxed));
            for other in others {
                stats[other].pending.fetch_add(count, Relaxed);
                match senders[other].try_send(items) {
                    Ok(()) => {
                        items = Vec::new();
                        worker = usize::MAX;
                        break;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                    Err(mpsc::error::TrySendError::Full(back)) => {
                        stats[other].pending.fetch_sub(count, Relaxed);
                        items = back;
                    }
                }
            }
            if worker != usize::MAX {
                // Every queue is full: wait for whichever frees first.
                let waits = senders.iter().map(|sender| Box::pin(sender.reserve()));
                let (reserved, freed, _) = futures::future::select_all(waits).await;
                let Ok(permit) = reserved else { return };
                stats[freed].pending.fetch_add(count, Relaxed);
                permit.send(items);
            }
            if ended {
                return;
            }
            continue;
        }
        stats[worker].pending.fetch_add(count, Relaxed);
        if senders[worker].send(items).await.is_err() || ended {
            return;
        }
    }
}

/// The output of [`FanOut::process_stream`]. Dropping it aborts every worker.
#[must_use = "streams do nothing unless polled"]
pub struct FanOutStream<Out> {
    rx: Option<mpsc::Receiver<Results<Out>>>,
    current: std::vec::IntoIter<(u64, Result<Out, FanError>)>,
    reorder: VecDeque<Option<Result<Out, FanError>>>,
    head: u64,
    permits: Arc<Semaphore>,
    to_release: usize,
    tasks: Vec<JoinHandle<()>>,
    stats: Arc<[WorkerStats]>,
    config: Arc<Config>,
    finished: bool,
    skipped: u64,
    dead_lettered: u64,
}

impl<Out> fmt::Debug for FanOutStream<Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FanOutStream")
            .field("loads", &self.loads())
            .field("skipped", &self.skipped)
            .field("dead_lettered", &self.dead_lettered)
            .finish_non_exhaustive()
    }
}

// Nothing in it is pinned.
impl<Out> Unpin for FanOutStream<Out> {}

impl<Out> Drop for FanOutStream<Out> {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl<Out> FanOutStream<Out> {
    /// Each worker's load now: items queued or running, and items finished.
    pub fn loads(&self) -> Vec<WorkerLoad> {
        self.stats
            .iter()
            .map(|s| WorkerLoad {
                pending: s.pending.load(Relaxed),
                processed: s.processed.load(Relaxed),
            })
            .collect()
    }

    /// Failed items dropped under [`ErrorPolicy::Skip`] so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Items sent to the dead letter sink so far (see [`Recovery::dead_letter`]).
    pub fn dead_lettered(&self) -> u64 {
        self.dead_lettered
    }

    /// A stream not started yet, with fresh counters and an empty window.
    fn new(config: Arc<Config>) -> Self {
        let stats: Arc<[WorkerStats]> =
            (0..config.workers).map(|_| WorkerStats::default()).collect();
        let window = config.workers * config.batch * (config.queue + 2);
        Self {
            rx: None,
            current: Vec::new().into_iter(),
            reorder: VecDeque::new(),
            head: 0,
            permits: Arc::new(Semaphore::new(window)),
            to_release: 0,
            tasks: Vec::new(),
            stats,
            config,
            finished: false,
            skipped: 0,
            dead_lettered: 0,
        }
    }

    /// A stream that yields `error` and ends.
    fn failed_at_start(mut self, error: FanError) -> Self {
        let (tx, rx) = mpsc::channel(1);
        let _ = tx.try_send(vec![(0, Err(error))]);
        self.rx = Some(rx);
        self
    }

    fn release(&mut self, items: usize) {
        self.to_release += items;
        if self.to_release >= self.config.batch {
            self.permits.add_permits(self.to_release);
            self.to_release = 0;
        }
    }

    fn stop(&mut self) {
        self.finished = true;
        self.rx = None;
        for task in &self.tasks {
            task.abort();
        }
    }

    /// The next `(input index, result)`, in the configured order, without
    /// applying the error policy.
    fn poll_raw(&mut self, cx: &mut Context<'_>) -> Poll<Option<(u64, Result<Out, FanError>)>> {
        loop {
            if self.config.ordered {
                if matches!(self.reorder.front(), Some(Some(_))) {
                    let seq = self.head;
                    self.head += 1;
                    self.release(1);
                    return Poll::Ready(self.reorder.pop_front().flatten().map(|r| (seq, r)));
                }
            } else if let Some(next) = self.current.next() {
                self.release(1);
                return Poll::Ready(Some(next));
            }
            let Some(rx) = self.rx.as_mut() else { return Poll::Ready(None) };
            match rx.poll_recv(cx) {
                Poll::Ready(Some(results)) => {
                    if self.config.ordered {
                        for (seq, result) in results {
                            let at = usize::try_from(seq.saturating_sub(self.head))
                                .unwrap_or(usize::MAX);
                            if self.reorder.len() <= at {
                                self.reorder.resize_with(at + 1, || None);
                            }
                            self.reorder[at] = Some(result);
                        }
                    } else {
                        self.current = results.into_iter();
                    }
                }
                Poll::Ready(None) => {
                    self.rx = None;
                    if self.reorder.is_empty() {
                        return Poll::Ready(None);
                    }
                    // A hole that will never fill: a worker died.
                    self.reorder.clear();
                    return Poll::Ready(Some((self.head, Err(FanError::WorkerLost))));
                }
                Poll::Pending => {
                    if self.to_release > 0 {
                        self.permits.add_permits(self.to_release);
                        self.to_release = 0;
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    async fn next_raw(&mut self) -> Option<(u64, Result<Out, FanError>)> {
        futures::future::poll_fn(|cx| self.poll_raw(cx)).await
    }
}

impl<Out> Stream for FanOutStream<Out> {
    type Item = Result<Out, FanError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.finished {
                return Poll::Ready(None);
            }
            match this.poll_raw(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    this.finished = true;
                    return Poll::Ready(None);
                }
                Poll::Ready(Some((_, Ok(out)))) => return Poll::Ready(Some(Ok(out))),
                Poll::Ready(Some((_, Err(FanError::DeadLettered { .. })))) => {
                    this.dead_lettered += 1;
                }
                Poll::Ready(Some((seq, Err(error)))) => match this.config.policy {
                    ErrorPolicy::Skip
                        if !matches!(
                            error,
                            FanError::NoRuntime
                                | FanError::WorkerLost
                                | FanError::RecoveryType { .. }
                        ) =>
                    {
                        tracing::warn!(item = seq, %error, "fan-out item skipped");
                        this.skipped += 1;
                    }
                    _ => {
                        tracing::error!(item = seq, %error, "fan-out failed; stopping the workers");
                        this.stop();
                        return Poll::Ready(Some(Err(error)));
                    }
                },
            }
        }
    }
}
