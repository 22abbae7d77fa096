//! The bulkhead's FIFO of waiters.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::loom::sync::atomic::{AtomicBool, Ordering};
use crate::loom::sync::{Mutex, MutexGuard};

/// One caller waiting for a slot.
#[derive(Debug)]
pub(super) struct Waiter {
    granted: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Waiter {
    pub(super) fn new() -> Self {
        Self { granted: AtomicBool::new(false), waker: Mutex::new(None) }
    }

    /// Marks the waiter as owning a slot and wakes it.
    pub(super) fn grant(&self) {
        self.granted.store(true, Ordering::SeqCst);
        let waker = self.waker.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// Resolves when the waiter is granted a slot.
pub(super) struct Granted<'a> {
    waiter: &'a Waiter,
}

impl<'a> Granted<'a> {
    pub(super) fn new(waiter: &'a Arc<Waiter>) -> Self {
        Self { waiter }
    }
}

impl Future for Granted<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.waiter.granted.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        *self.waiter.waker.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(cx.waker().clone());
        if self.waiter.granted.load(Ordering::SeqCst) { Poll::Ready(()) } else { Poll::Pending }
    }
}

/// The waiters, oldest first.
#[derive(Debug)]
pub(super) struct Queue {
    waiters: Mutex<VecDeque<Arc<Waiter>>>,
}

impl Queue {
    pub(super) fn new() -> Self {
        Self { waiters: Mutex::new(VecDeque::new()) }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, VecDeque<Arc<Waiter>>> {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
