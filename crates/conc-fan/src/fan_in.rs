//! Fan-in: many streams merged into one, inputs added and removed while it runs.

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use conc_core::metrics::{
    FAN_ITEMS_MERGED, MetricEntry, MetricValue, MetricsSnapshot, MetricsSource,
};
use conc_core::ready::ReadyQueue;
use futures::Stream;
use futures::stream::BoxStream;

use crate::strategy::{InputKey, MergeStrategy, RoundRobin};

/// The slot whose wake-up means "a handle queued commands".
const CONTROL: usize = 0;

/// The shared count (and the facade's counter) moves once per this many items.
const METRIC_BATCH: u64 = 64;

/// How many times one `poll_next` drains the woken inputs and polls them
/// without finding an item before it yields.
const MAX_PASSES: u32 = 32;

struct Input<T> {
    stream: BoxStream<'static, T>,
    waker: Waker,
    generation: u64,
    priority: u32,
    /// Handed to the strategy and not yet taken back.
    queued: bool,
}

enum Command<T> {
    Add(InputKey, BoxStream<'static, T>, u32),
    Remove(InputKey),
}

struct Control<T> {
    commands: Mutex<ControlState<T>>,
    queue: Arc<ReadyQueue>,
    /// Items merged and published (see `METRIC_BATCH`).
    merged: AtomicU64,
    /// Inputs now.
    inputs: AtomicUsize,
}

struct ControlState<T> {
    commands: Vec<Command<T>>,
    next_generation: u64,
}

/// Merges any number of streams into one, taking items in the order a
/// [`MergeStrategy`] decides ([`RoundRobin`] by default).
///
/// Each input is polled only when its own waker has fired (or it has just
/// given an item): the fan-in keeps a queue of ready inputs fed by per-input
/// wakers, so the cost per item does not grow with the number of inputs,
/// unlike a merge that scans every input on every poll. The fan-in holds no
/// items of its own: each item goes from its input straight to the consumer,
/// so a slow consumer slows every input and memory stays bounded.
///
/// Inputs can be added and removed while it runs, directly or from other
/// tasks through a [`FanInHandle`]. The stream ends when it has no inputs
/// left and no handle exists that could add one.
///
/// It spends a unit of tokio's cooperative budget per item, so after a run of
/// items it returns `Pending` once and its runtime runs timers and IO: an
/// always-ready input cannot starve inputs woken by them, on a current-thread
/// runtime too.
///
/// # Examples
///
/// ```
/// use conc_fan::FanIn;
/// use futures::StreamExt;
///
/// # futures::executor::block_on(async {
/// let mut fan_in = FanIn::new();
/// fan_in.add(futures::stream::iter([1, 2, 3]));
/// fan_in.add(futures::stream::iter([10, 20]));
/// let items: Vec<i32> = fan_in.collect().await;
/// assert_eq!(items, [1, 10, 2, 20, 3]);
/// # });
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct FanIn<T> {
    inputs: Vec<Option<Input<T>>>,
    free: Vec<usize>,
    len: usize,
    /// Inputs not handed to the strategy: the ones whose wakers may fire.
    waiting: usize,
    strategy: Box<dyn MergeStrategy>,
    control: Arc<Control<T>>,
    woken: Vec<usize>,
    /// Items merged and not yet published to `control.merged`.
    unpublished: u64,
    counter: metrics::Counter,
}

impl<T> fmt::Debug for FanIn<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FanIn")
            .field("inputs", &self.len)
            .field("merged", &(self.control.merged.load(Relaxed) + self.unpublished))
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Default for FanIn<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Send + 'static> FanIn<T> {
    /// An empty fan-in that merges round robin.
    pub fn new() -> Self {
        Self::with_strategy(RoundRobin::default())
    }

    /// An empty fan-in that merges with `strategy`.
    pub fn with_strategy(strategy: impl MergeStrategy) -> Self {
        let queue = ReadyQueue::new();
        // Slot 0 is the control slot: handles wake it.
        drop(queue.waker(CONTROL));
        Self {
            inputs: vec![None],
            free: Vec::new(),
            len: 0,
            waiting: 0,
            strategy: Box::new(strategy),
            control: Arc::new(Control {
                commands: Mutex::new(ControlState { commands: Vec::new(), next_generation: 1 }),
                queue,
                merged: AtomicU64::new(0),
                inputs: AtomicUsize::new(0),
            }),
            woken: Vec::new(),
            unpublished: 0,
            counter: metrics::counter!(FAN_ITEMS_MERGED),
        }
    }

    /// Adds an input with priority 0.
    pub fn add<S>(&mut self, stream: S) -> InputKey
    where
        S: Stream<Item = T> + Send + 'static,
    {
        self.add_with_priority(stream, 0)
    }

    /// Adds an input with a priority (higher goes first under
    /// [`Priority`](crate::Priority); other strategies may ignore it).
    pub fn add_with_priority<S>(&mut self, stream: S, priority: u32) -> InputKey
    where
        S: Stream<Item = T> + Send + 'static,
    {
        let generation = self.control.next_generation();
        self.insert(generation, Box::pin(stream), priority)
    }

    fn insert(
        &mut self,
        generation: u64,
        stream: BoxStream<'static, T>,
        priority: u32,
    ) -> InputKey {
        let slot = if let Some(slot) = self.free.pop() {
            slot
        } else {
            self.inputs.push(None);
            self.inputs.len() - 1
        };
        let key = InputKey { slot, generation };
        let waker = self.control.queue.waker(slot);
        self.inputs[slot] = Some(Input { stream, waker, generation, priority, queued: true });
        self.len += 1;
        self.control.inputs.store(self.len, Relaxed);
        self.strategy.ready(key, priority);
        key
    }

    /// Removes an input and hands its stream back, or `None` if it has
    /// already ended or been removed. Items it had not given stay in it.
    pub fn remove(&mut self, key: InputKey) -> Option<BoxStream<'static, T>> {
        let matches = |slot: &Option<Input<T>>| {
            slot.as_ref().is_some_and(|input| input.generation == key.generation)
        };
        let slot = if self.inputs.get(key.slot).is_some_and(matches) {
            key.slot
        } else {
            // A key from a handle names its input by generation only.
            self.inputs.iter().position(matches)?
        };
        let input = self.inputs[slot].take()?;
        if !input.queued {
            self.waiting -= 1;
        }
        self.len -= 1;
        self.control.inputs.store(self.len, Relaxed);
        self.free.push(slot);
        Some(input.stream)
    }

    /// A handle to add and remove inputs from other tasks.
    pub fn handle(&self) -> FanInHandle<T> {
        FanInHandle { control: Arc::clone(&self.control) }
    }

    /// How many inputs it has now.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no inputs now.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Items merged since it was created (or its metrics were last reset).
    pub fn merged(&self) -> u64 {
        self.control.merged.load(Relaxed) + self.unpublished
    }

    /// A snapshot of its inputs and the items merged; see [`FanInMetrics`].
    pub fn metrics(&self) -> FanInMetrics {
        FanInMetrics { inputs: self.len, merged: self.merged() }
    }

    /// Counts one merged item, publishing the count once per `METRIC_BATCH`.
    fn count_merged(&mut self) {
        self.unpublished += 1;
        if self.unpublished == METRIC_BATCH {
            self.publish();
        }
    }

    /// Adds the items counted locally to the shared count and the facade.
    fn publish(&mut self) {
        if self.unpublished > 0 {
            self.control.merged.fetch_add(self.unpublished, Relaxed);
            self.counter.increment(self.unpublished);
            self.unpublished = 0;
        }
    }

    fn apply_commands(&mut self) {
        let commands = {
            let mut state = self.control.commands.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::take(&mut state.commands)
        };
        for command in commands {
            match command {
                Command::Add(key, stream, priority) => {
                    self.insert(key.generation, stream, priority);
                }
                Command::Remove(key) => {
                    self.remove(key);
                }
            }
        }
    }

    fn drain_wakeups(&mut self, cx: &mut Context<'_>) -> bool {
        let mut woken = std::mem::take(&mut self.woken);
        self.control.queue.drain(&mut woken, cx.waker());
        let any = !woken.is_empty();
        for slot in woken.drain(..) {
            if slot == CONTROL {
                self.apply_commands();
            } else if let Some(input) = self.inputs.get_mut(slot).and_then(Option::as_mut)
                && !input.queued
            {
                input.queued = true;
                self.waiting -= 1;
                self.strategy
                    .ready(InputKey { slot, generation: input.generation }, input.priority);
            }
        }
        self.woken = woken;
        any
    }

    fn handles_alive(&self) -> bool {
        Arc::strong_count(&self.control) > 1
    }
}

impl<T> Control<T> {
    fn next_generation(&self) -> u64 {
        let mut state = self.commands.lock().unwrap_or_else(PoisonError::into_inner);
        let generation = state.next_generation;
        state.next_generation += 1;
        generation
    }
}

impl<T> Drop for FanIn<T> {
    fn drop(&mut self) {
        self.control.merged.fetch_add(self.unpublished, Relaxed);
        self.counter.increment(self.unpublished);
    }
}

impl<T: Send + 'static> MetricsSource for FanIn<T> {
    type Snapshot = FanInMetrics;

    fn metrics(&self) -> FanInMetrics {
        FanIn::metrics(self)
    }

    /// Sets the merged count back to zero (items counted locally and not
    /// yet published, at most 63, are added later).
    fn reset_metrics(&self) {
        self.control.merged.store(0, Relaxed);
    }
}

impl<T: Send + 'static> Stream for FanIn<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        // Take part in tokio's cooperative budget: after a run of items the
        // task gives its runtime a turn, so timers and IO wake the other
        // inputs even when one input is always ready, on any runtime flavour.
        let Poll::Ready(coop) = tokio::task::coop::poll_proceed(cx) else {
            this.publish();
            return Poll::Pending;
        };
        let mut passes = 0;
        loop {
            // Inputs that were pending and have been woken join the line
            // first, so an always-ready input cannot keep them out.
            if this.waiting > 0 || this.handles_alive() {
                this.drain_wakeups(cx);
            }
            while let Some(key) = this.strategy.next() {
                let Some(input) = this.inputs.get_mut(key.slot).and_then(Option::as_mut) else {
                    continue;
                };
                if input.generation != key.generation || !input.queued {
                    continue; // removed (and maybe replaced) since it was queued
                }
                let mut input_cx = Context::from_waker(&input.waker);
                match input.stream.as_mut().poll_next(&mut input_cx) {
                    Poll::Ready(Some(item)) => {
                        this.strategy.ready(key, input.priority);
                        this.count_merged();
                        coop.made_progress();
                        return Poll::Ready(Some(item));
                    }
                    Poll::Ready(None) => {
                        input.queued = false;
                        this.waiting += 1;
                        this.remove(key);
                    }
                    Poll::Pending => {
                        input.queued = false;
                        this.waiting += 1;
                    }
                }
            }
            if this.len == 0 && !this.handles_alive() {
                // A handle dropped after queueing an add still counts.
                if !this.drain_wakeups(cx) {
                    this.publish();
                    return Poll::Ready(None);
                }
                continue;
            }
            if !this.drain_wakeups(cx) {
                this.publish();
                return Poll::Pending;
            }
            passes += 1;
            if passes == MAX_PASSES {
                // Inputs that wake themselves and stay pending would keep
                // this loop going forever: yield, and come back at once.
                cx.waker().wake_by_ref();
                this.publish();
                return Poll::Pending;
            }
        }
    }
}

/// Adds and removes inputs of a [`FanIn`] from other tasks. Cloneable; while
/// any handle exists, a fan-in with no inputs waits for one instead of ending.
///
/// # Examples
///
/// ```
/// use conc_fan::FanIn;
/// use futures::StreamExt;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let fan_in = FanIn::new();
/// let handle = fan_in.handle();
/// tokio::spawn(async move {
///     handle.add(futures::stream::iter([1, 2]));
///     handle.add(futures::stream::iter([3]));
///     // dropping the last handle lets the fan-in end once its inputs have
/// });
/// let mut items: Vec<i32> = fan_in.collect().await;
/// items.sort();
/// assert_eq!(items, [1, 2, 3]);
/// # }
/// ```
#[must_use = "a handle does nothing unless inputs are added through it"]
pub struct FanInHandle<T> {
    control: Arc<Control<T>>,
}

impl<T> Clone for FanInHandle<T> {
    fn clone(&self) -> Self {
        Self { control: Arc::clone(&self.control) }
    }
}

impl<T> fmt::Debug for FanInHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FanInHandle").finish_non_exhaustive()
    }
}

impl<T: Send + 'static> FanInHandle<T> {
    /// Adds an input with priority 0; it joins at the fan-in's next poll.
    pub fn add<S>(&self, stream: S) -> InputKey
    where
        S: Stream<Item = T> + Send + 'static,
    {
        self.add_with_priority(stream, 0)
    }

    /// Adds an input with a priority; it joins at the fan-in's next poll.
    pub fn add_with_priority<S>(&self, stream: S, priority: u32) -> InputKey
    where
        S: Stream<Item = T> + Send + 'static,
    {
        let key = {
            let mut state = self.control.commands.lock().unwrap_or_else(PoisonError::into_inner);
            let generation = state.next_generation;
            state.next_generation += 1;
            // The slot is chosen when the command is applied; the key the
            // caller gets must match, so the fan-in keys by generation.
            let key = InputKey { slot: usize::MAX, generation };
            state.commands.push(Command::Add(key, Box::pin(stream), priority));
            key
        };
        self.wake();
        key
    }

    /// Removes an input at the fan-in's next poll; its remaining items are dropped.
    pub fn remove(&self, key: InputKey) {
        self.control
            .commands
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .commands
            .push(Command::Remove(key));
        self.wake();
    }

    fn wake(&self) {
        self.control.queue.waker(CONTROL).wake();
    }
}

impl<T> FanInHandle<T> {
    /// A snapshot of the fan-in's inputs and the items it merged, from
    /// another task. The merged count moves once per 64 items and whenever
    /// the fan-in waits, yields or ends, so it trails a busy fan-in by at
    /// most 63.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_fan::FanIn;
    /// use futures::{FutureExt, StreamExt};
    ///
    /// # futures::executor::block_on(async {
    /// let mut fan_in = FanIn::new();
    /// let watcher = fan_in.handle();
    /// fan_in.add(futures::stream::iter([1, 2, 3]));
    /// assert_eq!(watcher.metrics().inputs, 1);
    /// let mut fan_in = std::pin::pin!(fan_in);
    /// for _ in 0..3 {
    ///     fan_in.next().await;
    /// }
    /// assert_eq!(watcher.metrics().merged, 0, "published once per 64 items, or when it waits");
    /// // No input is ready and a handle lives: the fan-in waits, and publishes.
    /// assert!(fan_in.next().now_or_never().is_none());
    /// let metrics = watcher.metrics();
    /// assert_eq!((metrics.inputs, metrics.merged), (0, 3));
    /// # });
    /// ```
    pub fn metrics(&self) -> FanInMetrics {
        FanInMetrics {
            inputs: self.control.inputs.load(Relaxed),
            merged: self.control.merged.load(Relaxed),
        }
    }
}

impl<T: Send + 'static> MetricsSource for FanInHandle<T> {
    type Snapshot = FanInMetrics;

    fn metrics(&self) -> FanInMetrics {
        FanInHandle::metrics(self)
    }

    /// Sets the merged count back to zero.
    fn reset_metrics(&self) {
        self.control.merged.store(0, Relaxed);
    }
}

/// A snapshot of a [`FanIn`]: its inputs now and the items it merged since
/// it was created (or its metrics were last reset). From
/// [`FanIn::metrics`] or [`FanInHandle::metrics`].
///
/// # Examples
///
/// ```
/// use conc_core::metrics::MetricsSnapshot;
/// use conc_fan::FanIn;
/// use futures::StreamExt;
///
/// # futures::executor::block_on(async {
/// let mut fan_in = FanIn::new();
/// fan_in.add(futures::stream::iter([1, 2]));
/// fan_in.add(futures::stream::iter([3]));
/// assert_eq!(fan_in.metrics().inputs, 2);
/// let mut fan_in = std::pin::pin!(fan_in);
/// while fan_in.next().await.is_some() {}
/// assert_eq!(fan_in.metrics().merged, 3);
/// assert_eq!(fan_in.metrics().entries()[0].to_string(), "conc.fan.items.merged=3");
/// # });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
#[must_use]
pub struct FanInMetrics {
    /// Inputs now.
    pub inputs: usize,
    /// Items merged.
    pub merged: u64,
}

impl MetricsSnapshot for FanInMetrics {
    fn entries(&self) -> Vec<MetricEntry> {
        vec![
            MetricEntry::new(FAN_ITEMS_MERGED, MetricValue::Count(self.merged)),
            MetricEntry::new("inputs", MetricValue::Gauge(self.inputs as f64)),
        ]
    }
}
