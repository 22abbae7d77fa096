//! The state every handle and permit of one bulkhead shares.

use std::sync::Arc;
use std::time::Duration;

use conc_core::metrics::{BULKHEAD_IN_FLIGHT, BULKHEAD_QUEUED, BULKHEAD_REJECTED};

use super::error::BulkheadError;
use super::queue::Queue;
use crate::loom::sync::atomic::{AtomicU64, Ordering};

/// What [`Shared::peek`] saw.
#[cfg_attr(not(feature = "tower"), allow(dead_code))]
pub(super) enum Peek {
    Slot,
    Queue,
    Full(BulkheadError),
}

pub(super) struct Shared {
    pub(super) in_flight: AtomicU64,
    pub(super) queued: AtomicU64,
    pub(super) rejected: AtomicU64,
    pub(super) max: u64,
    pub(super) max_queued: u64,
    pub(super) max_wait: Duration,
    pub(super) queue: Queue,
    rejected_counter: metrics::Counter,
    in_flight_gauge: metrics::Gauge,
    queued_gauge: metrics::Gauge,
    pub(super) name: String,
}

impl Shared {
    pub(super) fn new(max: u32, max_queued: u32, max_wait: Duration, name: String) -> Self {
        Self {
            in_flight: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            max: u64::from(max),
            max_queued: u64::from(max_queued),
            max_wait,
            queue: Queue::new(),
            rejected_counter: metrics::counter!(BULKHEAD_REJECTED, "bulkhead" => name.clone()),
            in_flight_gauge: metrics::gauge!(BULKHEAD_IN_FLIGHT, "bulkhead" => name.clone()),
            queued_gauge: metrics::gauge!(BULKHEAD_QUEUED, "bulkhead" => name.clone()),
            name,
        }
    }

    /// Takes a slot if one is free and nobody is queued for one.
    #[inline]
    pub(super) fn try_take_fair(&self) -> bool {
        self.queued.load(Ordering::SeqCst) == 0 && self.try_take()
    }

    /// What a caller would get now, taking nothing: a slot, a place in the
    /// queue, or the refusal (not counted yet).
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(super) fn peek(&self) -> Peek {
        let queued = self.queued.load(Ordering::SeqCst);
        if queued == 0 && self.in_flight.load(Ordering::SeqCst) < self.max {
            Peek::Slot
        } else if queued < self.max_queued {
            Peek::Queue
        } else {
            Peek::Full(BulkheadError::Full {
                max_concurrent: self.max as u32,
                queued: queued as u32,
            })
        }
    }

    /// Takes a slot if one is free.
    #[inline]
    pub(super) fn try_take(&self) -> bool {
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
                Ok(_) => {
                    self.in_flight_gauge.increment(1.0);
                    return true;
                }
                Err(seen) => current = seen,
            }
        }
    }

    /// Gives a slot back, handing it to the oldest waiter if there is one.
    #[inline]
    pub(super) fn release(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.in_flight_gauge.decrement(1.0);
        if self.queued.load(Ordering::SeqCst) > 0 {
            self.hand_over();
        }
    }

    #[cold]
    pub(super) fn hand_over(&self) {
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
        drop(queue);
        self.publish_queued();
    }

    /// Counts a refusal and describes it.
    pub(super) fn refuse(&self) -> BulkheadError {
        self.count_rejection();
        BulkheadError::Full {
            max_concurrent: self.max as u32,
            queued: self.queued.load(Ordering::Relaxed) as u32,
        }
    }

    pub(super) fn count_rejection(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        self.rejected_counter.increment(1);
    }

    /// Sets the queue-length gauge to the length now.
    pub(super) fn publish_queued(&self) {
        self.queued_gauge.set(self.queued.load(Ordering::Relaxed) as f64);
    }
}
