//! Loom models of a task's one allocation, shared by its job (on a worker)
//! and its handle: the slot's lock, the closed bit, and the two references
//! (whichever side lets go last frees it, once). A leaked value or closure
//! (loom's `Arc` inside) fails a model, and so does an access to the slot
//! that does not hold the lock.

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use crate::core::Outcome;
use crate::job::CancelToken;
use crate::task::{Job, with_handle};
use crate::{JoinError, TaskHandle};

/// Counts its drops.
#[derive(Debug)]
struct Dropped(Arc<AtomicUsize>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A task returning a value that counts its drops in `drops`.
fn counted(drops: &Arc<AtomicUsize>) -> (Job, TaskHandle<Dropped>) {
    let value = Dropped(Arc::clone(drops));
    run_through(move || value)
}

fn run_through<F, T>(f: F) -> (Job, TaskHandle<T>)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    with_handle(f, |f: F, _: &CancelToken<'_>| f(), None)
}

/// A worker runs the task while the handle waits for it: the result is
/// delivered once (no lost wake-up: a lost one deadlocks the model).
#[test]
fn loom_a_result_reaches_a_waiting_handle() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (job, handle) = counted(&drops);
        let worker = thread::spawn(move || job.run(0));
        let result = loom::future::block_on(handle);
        assert!(result.is_ok());
        drop(result);
        assert_eq!(worker.join().unwrap(), Outcome::Completed);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}

/// The handle is dropped while the task runs: the task is freed once, by
/// whichever side goes last, and the value is dropped once (delivered into
/// a slot no one reads, or refused).
#[test]
fn loom_a_handle_dropped_while_its_task_runs() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (job, handle) = counted(&drops);
        let worker = thread::spawn(move || job.run(0));
        drop(handle);
        let outcome = worker.join().unwrap();
        assert!(matches!(outcome, Outcome::Completed | Outcome::Cancelled), "{outcome:?}");
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}

/// A cancel races the run: the handle resolves to the value exactly when
/// the worker counted the task completed, and to a cancellation otherwise.
#[test]
fn loom_a_cancel_racing_the_run() {
    loom::model(|| {
        let (job, mut handle) = run_through(|| 7_u8);
        let worker = thread::spawn(move || job.run(0));
        handle.cancel();
        let result = loom::future::block_on(handle);
        match worker.join().unwrap() {
            Outcome::Completed => assert_eq!(result, Ok(7)),
            Outcome::Cancelled => assert_eq!(result, Err(JoinError::Cancelled)),
            other => panic!("unexpected outcome {other:?}"),
        }
    });
}

/// A shutdown hands the unrun task back and drops it while the handle is
/// awaited, or dropped: the closure goes once, the handle learns the reason.
#[test]
fn loom_an_unrun_task_abandoned_while_its_handle_waits_or_goes() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let guard = Dropped(Arc::clone(&drops));
        let (job, handle) = run_through(move || drop(guard));
        let (job2, handle2) = counted(&drops);
        let shutdown = thread::spawn(move || {
            job.abandon(JoinError::NotRun);
            drop(job2);
        });
        assert_eq!(loom::future::block_on(handle), Err(JoinError::NotRun));
        drop(handle2);
        shutdown.join().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    });
}

/// Counts its wake-ups; its strong count tells how many clones are alive.
struct Wakes(std::sync::atomic::AtomicUsize);

impl std::task::Wake for Wakes {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

fn wakes() -> (std::sync::Arc<Wakes>, std::task::Waker) {
    let wakes = std::sync::Arc::new(Wakes(std::sync::atomic::AtomicUsize::new(0)));
    (std::sync::Arc::clone(&wakes), std::task::Waker::from(wakes))
}

/// The handle, polled with one waker, is polled with another while the task
/// runs (the stored waker is replaced under the lock, the old one dropped
/// outside it): the result is delivered once, and every clone the slot took
/// of either waker is woken or dropped, once.
#[test]
fn loom_a_waker_replaced_while_the_task_runs() {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    loom::model(|| {
        let (job, mut handle) = run_through(|| 7_u8);
        let (first, first_waker) = wakes();
        let (second, second_waker) = wakes();
        let polled = Pin::new(&mut handle).poll(&mut Context::from_waker(&first_waker));
        assert!(polled.is_pending(), "the task has not run yet");
        let worker = thread::spawn(move || job.run(0));
        let result = match Pin::new(&mut handle).poll(&mut Context::from_waker(&second_waker)) {
            Poll::Ready(result) => result,
            Poll::Pending => loom::future::block_on(handle),
        };
        assert_eq!(result, Ok(7));
        assert_eq!(worker.join().unwrap(), Outcome::Completed);
        for (wakes, waker) in [(&first, &first_waker), (&second, &second_waker)] {
            assert!(wakes.0.load(std::sync::atomic::Ordering::SeqCst) <= 1, "woken twice");
            assert_eq!(
                std::sync::Arc::strong_count(wakes),
                2,
                "a stored clone of {waker:?} is left"
            );
        }
    });
}
