//! [`BulkheadPermit`], a slot given back on `Drop`, and the guard that takes
//! a waiter out of the queue when its wait is dropped.

use std::fmt;
use std::sync::Arc;

use super::queue::Waiter;
use super::shared::Shared;
use crate::loom::sync::atomic::Ordering;

/// One bulkhead slot, given back on `Drop`.
///
/// # Examples
///
/// ```
/// use conc_resilience::Bulkhead;
///
/// let bulkhead = Bulkhead::builder().max_concurrent(1).build()?;
/// let permit = bulkhead.try_acquire()?;
/// assert_eq!(bulkhead.metrics().available, 0);
/// drop(permit);
/// assert_eq!(bulkhead.metrics().available, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "the slot is given back as soon as the permit is dropped"]
pub struct BulkheadPermit {
    pub(super) shared: Arc<Shared>,
}

impl fmt::Debug for BulkheadPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkheadPermit").field("bulkhead", &self.shared.name).finish()
    }
}

impl Drop for BulkheadPermit {
    #[inline]
    fn drop(&mut self) {
        self.shared.release();
    }
}

/// A slot held for as long as it borrows its bulkhead; given back on drop.
pub(crate) struct Slot<'a> {
    pub(super) shared: &'a Shared,
}

impl Drop for Slot<'_> {
    #[inline]
    fn drop(&mut self) {
        self.shared.release();
    }
}

/// Removes a waiter from the queue when its `acquire` future is dropped.
pub(super) struct WaitGuard<'a> {
    pub(super) shared: &'a Arc<Shared>,
    pub(super) waiter: Option<Arc<Waiter>>,
}

impl WaitGuard<'_> {
    /// Leaves the queue; true when a slot was granted meanwhile (the caller owns it now).
    pub(super) fn leave_queue(&mut self) -> bool {
        let Some(waiter) = &self.waiter else { return false };
        let mut queue = self.shared.queue.lock();
        if let Some(index) = queue.iter().position(|queued| Arc::ptr_eq(queued, waiter)) {
            queue.remove(index);
            self.shared.queued.fetch_sub(1, Ordering::SeqCst);
            drop(queue);
            self.shared.publish_queued();
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
            self.shared.release();
        }
    }
}
