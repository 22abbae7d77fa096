//! A bulkhead: at most N calls at once, with an optional bounded wait queue.
//!
//! # Overview
//!
//! [`Bulkhead::try_acquire`] takes a slot or fails at once;
//! [`Bulkhead::acquire`] waits in a bounded FIFO queue for at most the
//! configured `max_wait`. A [`BulkheadPermit`] gives its slot back on `Drop`,
//! so a cancelled call, a panic or a dropped future never leaks capacity; a
//! slot freed while callers wait is handed straight to the oldest waiter, so
//! later callers cannot barge past the queue.
//!
//! The uncontended path is one compare-and-swap to take a slot and one
//! `fetch_sub` to give it back; the queue's lock is taken only when someone waits.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use conc_resilience::{Bulkhead, BulkheadError};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_resilience::ConfigError> {
//! let bulkhead = Bulkhead::builder()
//!     .max_concurrent(2)
//!     .max_queued(8)
//!     .max_wait(Duration::from_millis(50))
//!     .build()?;
//!
//! let first = bulkhead.try_acquire().unwrap();
//! let _second = bulkhead.try_acquire().unwrap();
//! assert!(matches!(bulkhead.try_acquire(), Err(BulkheadError::Full { .. })));
//! drop(first);
//! let value = bulkhead.call(async { 42 }).await.unwrap();
//! assert_eq!(value, 42);
//! assert_eq!(bulkhead.snapshot().available, 1);
//! # Ok(()) }
//! ```

mod queue;

#[cfg(test)]
mod tests;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use conc_core::metrics::{
    BULKHEAD_IN_FLIGHT, BULKHEAD_QUEUED, BULKHEAD_REJECTED, MetricEntry, MetricValue,
    MetricsSnapshot, MetricsSource,
};

use crate::ConfigError;
use crate::loom::sync::atomic::{AtomicU64, Ordering};

use self::queue::{Queue, Waiter};

/// The largest `max_concurrent` a bulkhead accepts.
pub const MAX_CONCURRENT: u32 = u32::MAX >> 1;

/// Why a bulkhead refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BulkheadError {
    /// Every slot was taken and the queue was full (or there is no queue).
    #[error("bulkhead is full: {max_concurrent} calls running, {queued} waiting")]
    Full {
        /// The bulkhead's limit.
        max_concurrent: u32,
        /// Callers waiting when this one was refused.
        queued: u32,
    },
    /// The caller waited `max_wait` in the queue without getting a slot.
    #[error("no bulkhead slot within {waited:?}")]
    Timeout {
        /// How long it waited.
        waited: Duration,
    },
}

/// A call a bulkhead refused, handed back with the reason.
#[derive(Debug)]
pub struct Refused<F> {
    /// Why.
    pub error: BulkheadError,
    /// The work, never started.
    pub work: F,
}

impl<F> fmt::Display for Refused<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl<F: fmt::Debug> std::error::Error for Refused<F> {}

/// Builds a [`Bulkhead`].
///
/// | setting | default |
/// |---|---|
/// | [`max_concurrent`](Self::max_concurrent) | 25 (Resilience4j) |
/// | [`max_queued`](Self::max_queued) | 0: no queue, fail fast |
/// | [`max_wait`](Self::max_wait) | 0: fail fast |
/// | [`name`](Self::name) | `"default"` |
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build() is called"]
pub struct BulkheadBuilder {
    max_concurrent: u32,
    max_queued: u32,
    max_wait: Duration,
    name: String,
}

impl BulkheadBuilder {
    /// How many calls may run at once. Defaults to 25.
    pub fn max_concurrent(mut self, max: u32) -> Self {
        self.max_concurrent = max;
        self
    }

    /// How many callers of [`Bulkhead::acquire`] may wait for a slot. Defaults to 0.
    pub fn max_queued(mut self, max: u32) -> Self {
        self.max_queued = max;
        self
    }

    /// How long a queued caller waits before giving up. Defaults to 0 (no wait).
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// The name used in metric labels. Defaults to `"default"`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when `max_concurrent` is 0 or above [`MAX_CONCURRENT`],
    /// or a queue is configured with a zero `max_wait`.
    pub fn build(self) -> Result<Bulkhead, ConfigError> {
        if self.max_concurrent == 0 {
            return Err(ConfigError::Zero { field: "max_concurrent" });
        }
        if self.max_concurrent > MAX_CONCURRENT {
            return Err(ConfigError::TooLarge {
                field: "max_concurrent",
                value: u64::from(self.max_concurrent),
                max: u64::from(MAX_CONCURRENT),
            });
        }
        if self.max_queued > 0 && self.max_wait.is_zero() {
            return Err(ConfigError::ZeroDuration { field: "max_wait" });
        }
        let name = self.name;
        Ok(Bulkhead {
            inner: Arc::new(Inner {
                in_flight: AtomicU64::new(0),
                queued: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
                max: u64::from(self.max_concurrent),
                max_queued: u64::from(self.max_queued),
                max_wait: self.max_wait,
                queue: Queue::new(),
                rejected_counter: metrics::counter!(BULKHEAD_REJECTED, "bulkhead" => name.clone()),
                queued_gauge: metrics::gauge!(BULKHEAD_QUEUED, "bulkhead" => name.clone()),
                name,
            }),
        })
    }
}

struct Inner {
    in_flight: AtomicU64,
    queued: AtomicU64,
    rejected: AtomicU64,
    max: u64,
    max_queued: u64,
    max_wait: Duration,
    queue: Queue,
    rejected_counter: metrics::Counter,
    queued_gauge: metrics::Gauge,
    name: String,
}

impl Inner {
    /// Takes a slot if one is free.
    #[inline]
    fn try_take(&self) -> bool {
        let mut current = self.in_flight.load(Ordering::SeqCst);
        loop {
            if current >= self.max {
                return false;
            }
            match self.in_flight.compare_exchange_weak(
                current,
                current + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return true,
                Err(seen) => current = seen,
            }
        }
    }

    /// Gives a slot back, handing it to the oldest waiter if there is one.
    #[inline]
    fn release(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.queued.load(Ordering::SeqCst) > 0 {
            self.hand_over();
        }
    }

    #[cold]
    fn hand_over(&self) {
        let mut queue = self.queue.lock();
        while let Some(waiter) = queue.front() {
            if !self.try_take() {
                return;
            }
            let waiter = Arc::clone(waiter);
            queue.pop_front();
            self.queued.fetch_sub(1, Ordering::SeqCst);
            waiter.grant();
        }
    }

    fn refuse(&self) -> BulkheadError {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        self.rejected_counter.increment(1);
        BulkheadError::Full {
            max_concurrent: self.max as u32,
            queued: self.queued.load(Ordering::Relaxed) as u32,
        }
    }
}

/// Limits how many calls run at once. Cheap to clone: clones share the slots.
#[derive(Clone)]
pub struct Bulkhead {
    inner: Arc<Inner>,
}

impl fmt::Debug for Bulkhead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulkhead")
            .field("name", &self.inner.name)
            .field("snapshot", &self.snapshot())
            .finish()
    }
}

impl Bulkhead {
    /// A builder with the defaults listed on [`BulkheadBuilder`].
    pub fn builder() -> BulkheadBuilder {
        BulkheadBuilder {
            max_concurrent: 25,
            max_queued: 0,
            max_wait: Duration::ZERO,
            name: "default".to_owned(),
        }
    }

    /// Takes a slot now, or fails. Never waits and never jumps a non-empty queue.
    ///
    /// # Errors
    ///
    /// [`BulkheadError::Full`] when no slot is free or callers are queued.
    #[inline]
    pub fn try_acquire(&self) -> Result<BulkheadPermit, BulkheadError> {
        let inner = &*self.inner;
        if inner.queued.load(Ordering::SeqCst) == 0 && inner.try_take() {
            return Ok(BulkheadPermit { inner: Arc::clone(&self.inner) });
        }
        Err(inner.refuse())
    }

    /// Takes a slot, waiting in the queue (if configured) for at most `max_wait`.
    ///
    /// Cancel-safe: dropping the future leaves the queue, and a slot handed
    /// to it in the meantime goes to the next waiter.
    ///
    /// # Errors
    ///
    /// [`BulkheadError::Full`] when the queue is full too,
    /// [`BulkheadError::Timeout`] after `max_wait` without a slot.
    pub async fn acquire(&self) -> Result<BulkheadPermit, BulkheadError> {
        let inner = &*self.inner;
        if inner.queued.load(Ordering::SeqCst) == 0 && inner.try_take() {
            return Ok(BulkheadPermit { inner: Arc::clone(&self.inner) });
        }
        let waiter = {
            let mut queue = inner.queue.lock();
            if inner.queued.load(Ordering::SeqCst) >= inner.max_queued {
                drop(queue);
                return Err(inner.refuse());
            }
            inner.queued.fetch_add(1, Ordering::SeqCst);
            let waiter = Arc::new(Waiter::new());
            queue.push_back(Arc::clone(&waiter));
            drop(queue);
            // A slot freed between the first try and the enqueue saw no waiter:
            // look again now that this one is visible.
            if inner.in_flight.load(Ordering::SeqCst) < inner.max {
                inner.hand_over();
            }
            waiter
        };
        inner.queued_gauge.set(inner.queued.load(Ordering::Relaxed) as f64);
        let mut guard = WaitGuard { inner: &self.inner, waiter: Some(Arc::clone(&waiter)) };
        let granted = tokio::time::timeout(inner.max_wait, queue::Granted::new(&waiter)).await;
        if granted.is_ok() || guard.leave_queue() {
            guard.waiter = None;
            return Ok(BulkheadPermit { inner: Arc::clone(&self.inner) });
        }
        guard.waiter = None;
        inner.rejected.fetch_add(1, Ordering::Relaxed);
        inner.rejected_counter.increment(1);
        Err(BulkheadError::Timeout { waited: inner.max_wait })
    }

    /// Runs `work` in a slot, waiting for one as [`acquire`](Self::acquire) does.
    ///
    /// # Errors
    ///
    /// [`BulkheadError`] when no slot could be had; `work` was not started.
    pub async fn call<F: Future>(&self, work: F) -> Result<F::Output, BulkheadError> {
        let permit = self.acquire().await?;
        let output = work.await;
        drop(permit);
        Ok(output)
    }

    /// Runs `work` in a slot if one is free now; otherwise hands it back.
    ///
    /// # Errors
    ///
    /// [`Refused`] with the reason and the untouched `work`.
    pub async fn try_call<F: Future>(&self, work: F) -> Result<F::Output, Refused<F>> {
        match self.try_acquire() {
            Ok(permit) => {
                let output = work.await;
                drop(permit);
                Ok(output)
            }
            Err(error) => Err(Refused { error, work }),
        }
    }

    /// Whether callers of [`acquire`](Self::acquire) can wait in a queue.
    pub fn has_queue(&self) -> bool {
        self.inner.max_queued > 0
    }

    /// Slots free, callers queued and calls refused so far.
    pub fn snapshot(&self) -> BulkheadSnapshot {
        let inner = &*self.inner;
        let in_flight = inner.in_flight.load(Ordering::SeqCst).min(inner.max);
        BulkheadSnapshot {
            max_concurrent: inner.max as u32,
            available: (inner.max - in_flight) as u32,
            in_flight: in_flight as u32,
            queued: inner.queued.load(Ordering::SeqCst) as u32,
            rejected: inner.rejected.load(Ordering::Relaxed),
        }
    }
}

/// Removes a waiter from the queue when its `acquire` future is dropped.
struct WaitGuard<'a> {
    inner: &'a Arc<Inner>,
    waiter: Option<Arc<Waiter>>,
}

impl WaitGuard<'_> {
    /// Leaves the queue; true when a slot was granted meanwhile (the caller owns it now).
    fn leave_queue(&mut self) -> bool {
        let Some(waiter) = &self.waiter else { return false };
        let mut queue = self.inner.queue.lock();
        if let Some(index) = queue.iter().position(|queued| Arc::ptr_eq(queued, waiter)) {
            queue.remove(index);
            self.inner.queued.fetch_sub(1, Ordering::SeqCst);
            drop(queue);
            self.inner.queued_gauge.set(self.inner.queued.load(Ordering::Relaxed) as f64);
            false
        } else {
            // Not queued any more: it was granted a slot.
            true
        }
    }
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        if self.waiter.is_some() && self.leave_queue() {
            // Granted, but nobody will use it: pass it on.
            self.inner.release();
        }
    }
}

/// One bulkhead slot, given back on `Drop`.
#[must_use = "the slot is given back as soon as the permit is dropped"]
pub struct BulkheadPermit {
    inner: Arc<Inner>,
}

impl fmt::Debug for BulkheadPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkheadPermit").field("bulkhead", &self.inner.name).finish()
    }
}

impl Drop for BulkheadPermit {
    #[inline]
    fn drop(&mut self) {
        self.inner.release();
    }
}

/// A bulkhead's state at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BulkheadSnapshot {
    /// The limit.
    pub max_concurrent: u32,
    /// Slots free now.
    pub available: u32,
    /// Calls holding a slot now.
    pub in_flight: u32,
    /// Callers waiting for a slot now.
    pub queued: u32,
    /// Calls refused (full or timed out) since the bulkhead was built.
    pub rejected: u64,
}

impl MetricsSnapshot for BulkheadSnapshot {
    fn entries(&self) -> Vec<MetricEntry> {
        vec![
            MetricEntry::new(BULKHEAD_IN_FLIGHT, MetricValue::Gauge(f64::from(self.in_flight))),
            MetricEntry::new(BULKHEAD_QUEUED, MetricValue::Gauge(f64::from(self.queued))),
            MetricEntry::new(BULKHEAD_REJECTED, MetricValue::Count(self.rejected)),
            MetricEntry::new("available", MetricValue::Gauge(f64::from(self.available))),
        ]
    }
}

impl MetricsSource for Bulkhead {
    type Snapshot = BulkheadSnapshot;

    fn metrics(&self) -> BulkheadSnapshot {
        self.snapshot()
    }

    fn reset_metrics(&self) {
        self.inner.rejected.store(0, Ordering::Relaxed);
    }
}
