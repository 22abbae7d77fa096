//! Loom models of a future task's one allocation, shared by its job (on a
//! worker) and its handle: the slot's lock, the closed bit, the worker's
//! waker stored for a close to wake, and the two references (whichever side
//! lets go last frees it, once). A leaked future or value (loom's `Arc`
//! inside) fails a model, and so does an access to the slot or the stored
//! waker that does not hold the lock.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use crate::JoinError;
use crate::core::Outcome;
use crate::task::future::{FutureJob, with_handle};

/// Counts its drops.
#[derive(Debug)]
struct Dropped(Arc<AtomicUsize>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Pending for ever, until dropped.
struct Forever(#[allow(dead_code, reason = "held for its drop")] Dropped);

impl Future for Forever {
    type Output = u8;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u8> {
        Poll::Pending
    }
}

/// Counts its wake-ups; its strong count tells how many clones are alive.
struct Wakes(std::sync::atomic::AtomicUsize);

impl std::task::Wake for Wakes {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

fn wakes() -> (std::sync::Arc<Wakes>, Waker) {
    let wakes = std::sync::Arc::new(Wakes(std::sync::atomic::AtomicUsize::new(0)));
    (std::sync::Arc::clone(&wakes), Waker::from(wakes))
}

fn woken(wakes: &Wakes) -> usize {
    wakes.0.load(std::sync::atomic::Ordering::SeqCst)
}

fn poll_job(job: &mut FutureJob, waker: &Waker) -> Poll<Outcome> {
    Pin::new(job).poll(&mut Context::from_waker(waker))
}

/// A worker polls the future to completion while the handle waits for it:
/// the future is dropped, the result delivered once (no lost wake-up: a
/// lost one deadlocks the model).
#[test]
fn loom_a_future_result_reaches_a_waiting_handle() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let value = Dropped(Arc::clone(&drops));
        let guard = Dropped(Arc::clone(&drops));
        let (mut job, handle) = with_handle(
            async move {
                drop(guard);
                value
            },
            None,
        );
        let worker = thread::spawn(move || poll_job(&mut job, Waker::noop()));
        let result = loom::future::block_on(handle);
        assert!(result.is_ok());
        drop(result);
        assert_eq!(worker.join().unwrap(), Poll::Ready(Outcome::Completed));
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    });
}

/// The handle is dropped while a worker polls the pending future: either
/// the poll sees the close, or the close finds the worker's waker and wakes
/// it (no lost wake-up), and the next poll drops the future; nothing is
/// left of the worker's waker.
#[test]
fn loom_a_handle_dropped_while_its_future_is_pending() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (mut job, handle) = with_handle(Forever(Dropped(Arc::clone(&drops))), None);
        let (wakes, waker) = wakes();
        let closer = thread::spawn(move || drop(handle));
        let first = poll_job(&mut job, &waker);
        closer.join().unwrap();
        if first.is_pending() {
            assert_eq!(woken(&wakes), 1, "the close wakes the worker");
            assert_eq!(poll_job(&mut job, &waker), Poll::Ready(Outcome::Cancelled));
        } else {
            assert_eq!(first, Poll::Ready(Outcome::Cancelled));
        }
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        drop(job);
        assert_eq!(std::sync::Arc::strong_count(&wakes), 2, "a stored clone is left");
    });
}

/// The worker's waker is replaced (a second poll with another waker) while
/// the handle is cancelled: the waker of the last pending poll is woken,
/// and every clone the task took of either waker is woken or dropped, once.
#[test]
fn loom_a_runner_waker_replaced_while_the_handle_cancels() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (mut job, mut handle) = with_handle(Forever(Dropped(Arc::clone(&drops))), None);
        let (first, first_waker) = wakes();
        let (second, second_waker) = wakes();
        let worker = thread::spawn(move || {
            let a = poll_job(&mut job, &first_waker);
            let b = if a.is_pending() { poll_job(&mut job, &second_waker) } else { a };
            (job, a, b)
        });
        handle.cancel();
        let (job, a, b) = worker.join().unwrap();
        assert_eq!(loom::future::block_on(handle), Err(JoinError::Cancelled));
        let last_pending = match (a, b) {
            (Poll::Pending, Poll::Pending) => Some(&second),
            (Poll::Pending, Poll::Ready(_)) => Some(&first),
            _ => None,
        };
        if let Some(wakes) = last_pending {
            assert_eq!(woken(wakes), 1, "the close wakes the last registered waker");
        }
        drop(job);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        for wakes in [&first, &second] {
            assert!(woken(wakes) <= 1, "woken twice");
            assert_eq!(std::sync::Arc::strong_count(wakes), 1, "a stored clone is left");
        }
    });
}

/// A worker cut off (its job dropped mid-run) while the handle waits: the
/// handle resolves as cancelled, the future is dropped once.
#[test]
fn loom_a_job_dropped_mid_run_while_its_handle_waits() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (mut job, handle) = with_handle(Forever(Dropped(Arc::clone(&drops))), None);
        let worker = thread::spawn(move || {
            assert!(poll_job(&mut job, Waker::noop()).is_pending());
            drop(job);
        });
        assert_eq!(loom::future::block_on(handle), Err(JoinError::Cancelled));
        worker.join().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}
