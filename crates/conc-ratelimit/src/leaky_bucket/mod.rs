//! [`LeakyBucket`]: a bounded queue that lets items out at a fixed rate.

mod builder;

use std::collections::VecDeque;
use std::fmt;
use std::pin::pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use conc_core::time::{Clock, CoarseClock, Timeline};
use tokio::sync::Notify;

pub use builder::LeakyBucketBuilder;

use crate::gcra::{CellRef, GcraCell, Params, wait_for};
use crate::stats::{Stats, metrics_source};
use crate::time::ns;
use crate::{LimiterMetrics, RateLimitError};

/// A leaky bucket as a queue: producers put items in (up to `capacity`
/// waiting), consumers take them out no faster than one every `interval`
/// (after an optional `burst`), so work leaves smoothly whatever the arrival
/// pattern.
///
/// Where a [`Gcra`](crate::Gcra) or [`TokenBucket`](crate::TokenBucket)
/// *meters* callers (admit or refuse now), this *shapes* traffic: nothing is
/// refused while there is room in the queue, and the output is paced.
///
/// - [`try_enqueue`](Self::try_enqueue) puts an item in or hands it back when
///   the queue is full; [`enqueue`](Self::enqueue) waits for room.
/// - [`try_dequeue`](Self::try_dequeue) takes the next item if it may leave
///   now, or says how long until it may; [`dequeue`](Self::dequeue) waits for
///   an item and its turn.
///
/// Both waits are cancellation-safe: a dropped `enqueue` drops the item it
/// was holding and took no room; a dropped `dequeue` took no item and used
/// no pacing slot.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_ratelimit::{LeakyBucket, TokioClock};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let outbox = LeakyBucket::builder()
///     .capacity(100)
///     .interval(Duration::from_millis(100)) // 10 emails a second, evenly spaced
///     .clock(TokioClock)
///     .build()?;
///
/// for n in 0..3 {
///     outbox.try_enqueue(format!("email {n}")).map_err(|full| full.to_string())?;
/// }
/// let started = tokio::time::Instant::now();
/// assert_eq!(outbox.dequeue().await, "email 0");
/// assert_eq!(outbox.dequeue().await, "email 1");
/// assert_eq!(outbox.dequeue().await, "email 2");
/// assert_eq!(started.elapsed(), Duration::from_millis(200));
/// # Ok(()) }
/// ```
pub struct LeakyBucket<T, C = CoarseClock> {
    queue: Mutex<VecDeque<T>>,
    capacity: usize,
    pace: GcraCell,
    params: Params,
    time: Timeline<C>,
    items: Notify,
    room: Notify,
    stats: Stats,
}

/// The queue was full: the item is handed back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("leaky bucket is full ({capacity} items waiting)")]
pub struct Full<T> {
    /// The item that was not queued.
    pub item: T,
    /// The queue's capacity.
    pub capacity: usize,
}

/// Why [`LeakyBucket::try_dequeue`] returned no item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DequeueError {
    /// No item is waiting.
    #[error("leaky bucket is empty")]
    Empty,
    /// An item is waiting but may not leave yet.
    #[error("next item may leave in {retry_after:?}")]
    NotYet {
        /// How long until the next item may leave.
        retry_after: Duration,
    },
}

impl<T, C: Clock> LeakyBucket<T, C> {
    /// Puts `item` at the back of the queue.
    ///
    /// # Errors
    ///
    /// [`Full`] with the item when `capacity` items are already waiting.
    pub fn try_enqueue(&self, item: T) -> Result<(), Full<T>> {
        self.stats.record(self.push(item))
    }

    /// A snapshot of the enqueues allowed, rejected (queue full) and waiting
    /// for room now.
    pub fn metrics(&self) -> LimiterMetrics {
        self.stats.snapshot()
    }

    /// [`try_enqueue`](Self::try_enqueue) without counting.
    fn push(&self, item: T) -> Result<(), Full<T>> {
        {
            let mut queue = self.lock();
            if queue.len() >= self.capacity {
                return Err(Full { item, capacity: self.capacity });
            }
            queue.push_back(item);
        }
        self.items.notify_one();
        Ok(())
    }

    /// Puts `item` at the back of the queue, waiting for room.
    ///
    /// While it waits for room the caller counts as waiting in
    /// [`metrics`](Self::metrics), until the item is queued or the future is
    /// dropped (which hands nothing to the queue).
    pub async fn enqueue(&self, mut item: T) {
        let mut waiting = None;
        loop {
            let mut room = pin!(self.room.notified());
            room.as_mut().enable();
            match self.push(item) {
                Ok(()) => {
                    drop(waiting);
                    self.stats.allowed();
                    return;
                }
                Err(full) => item = full.item,
            }
            if waiting.is_none() {
                waiting = Some(self.stats.waiting());
            }
            room.await;
        }
    }

    /// Takes the next item if it may leave now.
    ///
    /// # Errors
    ///
    /// [`DequeueError::Empty`] when nothing waits; [`DequeueError::NotYet`]
    /// with the wait until the next item may leave.
    pub fn try_dequeue(&self) -> Result<T, DequeueError> {
        let item = {
            let mut queue = self.lock();
            if queue.is_empty() {
                return Err(DequeueError::Empty);
            }
            let now = self.time.now();
            if let Err(wait) = self.pace.charge(now, self.params.emission, self.params.tolerance) {
                return Err(DequeueError::NotYet { retry_after: ns(wait) });
            }
            queue.pop_front()
        };
        self.room.notify_one();
        item.ok_or(DequeueError::Empty)
    }

    /// Takes every item that may leave now, up to `max`, in order (empty when
    /// none may).
    pub fn try_dequeue_batch(&self, max: usize) -> Vec<T> {
        let items: Vec<T> = {
            let mut queue = self.lock();
            let wanted = queue.len().min(max) as u64;
            if wanted == 0 {
                return Vec::new();
            }
            let now = self.time.now();
            match self.pace.charge_up_to(now, wanted, self.params) {
                Ok((granted, _)) => queue.drain(..granted as usize).collect(),
                Err(_) => return Vec::new(),
            }
        };
        if !items.is_empty() {
            self.room.notify_waiters();
        }
        items
    }

    /// Waits for the next item and for its turn to leave, then takes it.
    pub async fn dequeue(&self) -> T {
        loop {
            let mut arrived = pin!(self.items.notified());
            arrived.as_mut().enable();
            match self.try_dequeue() {
                Ok(item) => return item,
                Err(DequeueError::NotYet { retry_after }) => {
                    tokio::time::sleep(retry_after.max(Duration::from_nanos(1))).await;
                }
                Err(DequeueError::Empty) => arrived.await,
            }
        }
    }

    /// How long until the next item may leave (zero when it may now, or when
    /// the queue is empty and the next arrival could leave at once).
    pub fn retry_after(&self) -> Duration {
        ns(wait_for(self.pace.tat(), self.time.now(), self.params.emission, self.params.tolerance))
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no item waits.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Room left in the queue.
    pub fn remaining(&self) -> usize {
        self.capacity - self.len()
    }

    /// Most items waiting at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets the pacing history: the next `burst` items may leave at once.
    pub fn reset(&self) {
        self.pace.reset();
    }

    /// Takes every waiting item out at once, ignoring the pace, and hands them back.
    pub fn clear(&self) -> Vec<T> {
        let items: Vec<T> = self.lock().drain(..).collect();
        self.room.notify_waiters();
        items
    }

    /// Items that may leave back to back after the bucket has been idle.
    pub fn burst(&self) -> u32 {
        self.params.burst
    }

    /// Takes `n` pacing slots now (the [`Limiter`](crate::Limiter) view).
    pub(crate) fn meter_take(&self, n: u32) -> Result<(), RateLimitError> {
        let cost = self.params.cost(n)?;
        self.params.charge(CellRef::Shared(&self.pace), self.time.now(), || self.time.now(), cost)
    }

    /// Pacing slots free now.
    pub(crate) fn meter_remaining(&self) -> u32 {
        self.params.remaining(self.pace.tat(), self.time.now())
    }

    /// The wait until `n` pacing slots are free.
    pub(crate) fn meter_retry_after(&self, n: u32) -> Result<Duration, RateLimitError> {
        self.params.retry_after(self.pace.tat(), self.time.now(), n)
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<T>> {
        // No user code runs under this lock, so a poisoned lock still holds a
        // consistent queue.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

metrics_source!(LeakyBucket<T, C> where C: Clock);

impl<T, C: Clock> fmt::Debug for LeakyBucket<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeakyBucket")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .field("interval", &ns(self.params.emission))
            .finish_non_exhaustive()
    }
}
