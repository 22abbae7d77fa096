//! [`Bulkhead`]: the bulkhead, and the tower service it becomes around an
//! inner service.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use conc_core::metrics::MetricsSource;

use super::builder::BulkheadBuilder;
use super::error::{BulkheadError, Refused};
use super::metrics::BulkheadMetrics;
use super::permit::{BulkheadPermit, Slot, WaitGuard};
use super::queue::{self, Waiter};
use super::shared::Shared;
use crate::loom::sync::atomic::Ordering;
use crate::readiness::Readiness;

/// Limits how many calls run at once. Cheap to clone: clones share the slots.
///
/// `Bulkhead` (that is, `Bulkhead<()>`) is the bulkhead on its own:
/// [`try_acquire`](Self::try_acquire) or [`acquire`](Self::acquire) a slot,
/// or [`call`](Bulkhead::call) a future in one. With the `tower` feature a
/// `BulkheadLayer` turns an inner service `S` into a
/// `Bulkhead<S>`: a tower `Service` sharing the same slots, with every method
/// of the bulkhead.
///
/// # Examples
///
/// ```
/// use conc_resilience::{Bulkhead, BulkheadError};
///
/// let bulkhead = Bulkhead::builder().max_concurrent(1).build()?;
/// let permit = bulkhead.try_acquire()?;
/// assert!(matches!(bulkhead.try_acquire(), Err(BulkheadError::Full { .. })));
/// drop(permit);
/// assert!(bulkhead.try_acquire().is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Bulkhead<S = ()> {
    pub(super) shared: Arc<Shared>,
    pub(super) inner: S,
    /// What the service's `poll_ready` decided for its next call (tower only).
    pub(super) ready: Readiness<BulkheadError>,
}

impl<S: fmt::Debug> fmt::Debug for Bulkhead<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulkhead")
            .field("name", &self.shared.name)
            .field("metrics", &self.metrics())
            .field("inner", &self.inner)
            .field("ready", &self.ready)
            .finish()
    }
}

impl<S: Clone> Clone for Bulkhead<S> {
    /// A clone shares the slots, but not what this instance's `poll_ready`
    /// decided.
    fn clone(&self) -> Self {
        Self::from_parts(Arc::clone(&self.shared), self.inner.clone())
    }
}

impl Bulkhead {
    /// A builder with the defaults listed on [`BulkheadBuilder`].
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::Bulkhead;
    ///
    /// assert_eq!(Bulkhead::builder().build()?.metrics().max_concurrent, 25);
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn builder() -> BulkheadBuilder {
        BulkheadBuilder::new()
    }

    /// Runs `work` in a slot, waiting for one as [`acquire`](Self::acquire) does.
    ///
    /// # Errors
    ///
    /// [`BulkheadError`] when no slot could be had; `work` was not started.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::Bulkhead;
    ///
    /// # futures::executor::block_on(async {
    /// let bulkhead = Bulkhead::builder().build()?;
    /// assert_eq!(bulkhead.call(async { 42 }).await?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::Bulkhead;
    ///
    /// # futures::executor::block_on(async {
    /// let bulkhead = Bulkhead::builder().build()?;
    /// assert_eq!(bulkhead.try_call(async { 42 }).await.ok(), Some(42));
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// # }).unwrap();
    /// ```
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
}

impl<S> Bulkhead<S> {
    pub(super) fn from_parts(shared: Arc<Shared>, inner: S) -> Self {
        Self { shared, inner, ready: Readiness::Unpolled }
    }

    /// The same bulkhead (the same slots) around `inner`.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn wrap<T>(&self, inner: T) -> Bulkhead<T> {
        Bulkhead::from_parts(Arc::clone(&self.shared), inner)
    }

    /// Takes a slot now, or fails. Never waits and never jumps a non-empty queue.
    ///
    /// # Errors
    ///
    /// [`BulkheadError::Full`] when no slot is free or callers are queued.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::Bulkhead;
    ///
    /// let bulkhead = Bulkhead::builder().max_concurrent(1).build()?;
    /// let _slot = bulkhead.try_acquire()?;
    /// assert!(bulkhead.try_acquire().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Result<BulkheadPermit, BulkheadError> {
        let shared = &*self.shared;
        if shared.try_take_fair() {
            return Ok(BulkheadPermit { shared: Arc::clone(&self.shared) });
        }
        Err(shared.refuse())
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
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_resilience::{Bulkhead, BulkheadError};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let bulkhead = Bulkhead::builder()
    ///     .max_concurrent(1)
    ///     .max_queued(1)
    ///     .max_wait(Duration::from_secs(1))
    ///     .build()?;
    /// let held = bulkhead.acquire().await?;
    /// let refused = bulkhead.acquire().await.unwrap_err();
    /// assert_eq!(refused, BulkheadError::Timeout { waited: Duration::from_secs(1) });
    /// # drop(held);
    /// # Ok(()) }
    /// ```
    pub async fn acquire(&self) -> Result<BulkheadPermit, BulkheadError> {
        acquire(&self.shared).await
    }

    /// A slot if one is free now and nobody queues for one, without a
    /// future: the fast path of [`slot`](Self::slot), for callers that await
    /// `slot` only when this answers `None`.
    #[inline]
    pub(crate) fn try_slot(&self) -> Option<Slot<'_>> {
        self.shared.try_take_fair().then(|| Slot { shared: &self.shared })
    }

    /// Takes a slot as [`acquire`](Self::acquire) does, held by a guard that
    /// borrows the bulkhead (no reference count to move on the way in and
    /// out): for callers, like [`Stack`](crate::Stack), that give it back
    /// before the bulkhead could go away.
    pub(crate) async fn slot(&self) -> Result<Slot<'_>, BulkheadError> {
        take_slot(&self.shared).await?;
        Ok(Slot { shared: &self.shared })
    }

    /// Whether callers of [`acquire`](Self::acquire) can wait in a queue.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::Bulkhead;
    ///
    /// assert!(!Bulkhead::builder().build()?.has_queue());
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn has_queue(&self) -> bool {
        self.shared.max_queued > 0
    }

    /// Slots free, callers queued and calls refused so far.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::Bulkhead;
    ///
    /// let bulkhead = Bulkhead::builder().max_concurrent(4).build()?;
    /// assert_eq!(bulkhead.metrics().available, 4);
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn metrics(&self) -> BulkheadMetrics {
        let shared = &*self.shared;
        let in_flight = shared.in_flight.load(Ordering::SeqCst).min(shared.max);
        BulkheadMetrics {
            max_concurrent: shared.max as u32,
            available: (shared.max - in_flight) as u32,
            in_flight: in_flight as u32,
            queued: shared.queued.load(Ordering::SeqCst) as u32,
            rejected: shared.rejected.load(Ordering::Relaxed),
        }
    }
}

impl<S> MetricsSource for Bulkhead<S> {
    type Snapshot = BulkheadMetrics;

    fn metrics(&self) -> BulkheadMetrics {
        Bulkhead::metrics(self)
    }

    fn reset_metrics(&self) {
        self.shared.rejected.store(0, Ordering::Relaxed);
    }
}

/// Takes a slot of `shared_arc`, waiting in its queue for at most `max_wait`.
pub(super) async fn acquire(shared_arc: &Arc<Shared>) -> Result<BulkheadPermit, BulkheadError> {
    take_slot(shared_arc).await?;
    Ok(BulkheadPermit { shared: Arc::clone(shared_arc) })
}

/// Takes a slot of `shared_arc` as [`acquire`] does, for the caller to give
/// back with [`Shared::release`] (no cancellation point between the taking
/// and the return).
pub(super) async fn take_slot(shared_arc: &Arc<Shared>) -> Result<(), BulkheadError> {
    if shared_arc.try_take_fair() {
        return Ok(());
    }
    // Boxed: the waiting path (a queue entry and a timer) is several times
    // larger than the rest, and every future that awaits an acquisition
    // would otherwise carry (and move) its room even when a slot is free.
    Box::pin(wait_for_slot(shared_arc)).await
}

/// The slow path of [`take_slot`]: no slot was free at the first look.
async fn wait_for_slot(shared_arc: &Arc<Shared>) -> Result<(), BulkheadError> {
    let shared = &**shared_arc;
    if shared.try_take_fair() {
        return Ok(());
    }
    let waiter = {
        let mut queue = shared.queue.lock();
        if shared.queued.load(Ordering::SeqCst) >= shared.max_queued {
            drop(queue);
            return Err(shared.refuse());
        }
        shared.queued.fetch_add(1, Ordering::SeqCst);
        let waiter = Arc::new(Waiter::new());
        queue.push_back(Arc::clone(&waiter));
        drop(queue);
        // A slot freed between the first try and the enqueue saw no waiter:
        // look again now that this one is visible.
        if shared.in_flight.load(Ordering::SeqCst) < shared.max {
            shared.hand_over();
        }
        waiter
    };
    shared.publish_queued();
    let mut guard = WaitGuard { shared: shared_arc, waiter: Some(Arc::clone(&waiter)) };
    let granted = tokio::time::timeout(shared.max_wait, queue::Granted::new(&waiter)).await;
    if granted.is_ok() || guard.leave_queue() {
        guard.waiter = None;
        return Ok(());
    }
    guard.waiter = None;
    shared.count_rejection();
    Err(BulkheadError::Timeout { waited: shared.max_wait })
}
