//! A future task's one allocation: every way its job and its handle can
//! part, checked for a future dropped exactly once, a result dropped exactly
//! once and the allocation freed once (a double free or a use after free
//! crashes these tests, or the loom models beside them), and for the worker
//! woken when the handle of a pending future closes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use proptest::prelude::*;

use super::{FutureJob, spawn, with_handle};
use crate::JoinError;
use crate::core::Outcome;
use crate::task::tests::{Dropped, HandleSide, counter, drops, handle_step, poll_once};

#[cfg(conc_loom)]
mod loom_future;

/// Counts its wake-ups; its strong count tells how many clones are alive.
struct Wakes(AtomicUsize);

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn wakes() -> (Arc<Wakes>, Waker) {
    let wakes = Arc::new(Wakes(AtomicUsize::new(0)));
    (Arc::clone(&wakes), Waker::from(Arc::clone(&wakes)))
}

/// A future holding `guard` that is pending until `ready` is set, then
/// returns `value` (or panics, if `panics`).
struct Gate<T> {
    _guard: Dropped,
    ready: Arc<AtomicBool>,
    value: Option<T>,
    panics: bool,
}

impl<T: Unpin> Future for Gate<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<T> {
        if !self.ready.load(Ordering::SeqCst) {
            return Poll::Pending;
        }
        assert!(!self.panics, "asked to panic");
        Poll::Ready(self.value.take().expect("polled after completion"))
    }
}

fn poll_job(job: &mut FutureJob, waker: &Waker) -> Poll<Outcome> {
    Pin::new(job).poll(&mut Context::from_waker(waker))
}

#[test]
fn a_job_is_two_words() {
    assert_eq!(size_of::<FutureJob>(), 2 * size_of::<usize>());
}

#[test]
fn a_finished_future_is_dropped_before_its_result_is_delivered_once() {
    let future = counter();
    let result = counter();
    let guard = Dropped(Arc::clone(&future));
    let value = Dropped(Arc::clone(&result));
    let (mut job, mut handle) = with_handle(
        async move {
            let _guard = guard;
            value
        },
        None,
    );
    assert!(poll_once(&mut handle).is_pending());
    assert_eq!(poll_job(&mut job, Waker::noop()), Poll::Ready(Outcome::Completed));
    assert_eq!(drops(&future), 1, "dropped when it finished");
    // Polled again (nothing does), it reports nothing more.
    assert_eq!(poll_job(&mut job, Waker::noop()), Poll::Ready(Outcome::Cancelled));
    drop(job);
    let Poll::Ready(Ok(value)) = poll_once(&mut handle) else { panic!("delivered") };
    drop(value);
    assert_eq!(drops(&result), 1);
}

#[test]
fn closing_the_handle_of_a_pending_future_wakes_its_worker_which_drops_it() {
    for cancel in [true, false] {
        let future = counter();
        let ready = Arc::new(AtomicBool::new(false));
        let gate = Gate {
            _guard: Dropped(Arc::clone(&future)),
            ready: Arc::clone(&ready),
            value: Some(1_u8),
            panics: false,
        };
        let (mut job, mut handle) = with_handle(gate, None);
        let (woken, waker) = wakes();
        assert!(poll_job(&mut job, &waker).is_pending());
        // The same worker polls again: its waker is stored once.
        assert!(poll_job(&mut job, &waker).is_pending());
        assert_eq!(Arc::strong_count(&woken), 3, "one clone stored");
        if cancel {
            handle.cancel();
            assert_eq!(handle.join(), Err(JoinError::Cancelled));
        } else {
            drop(handle);
        }
        assert_eq!(woken.0.load(Ordering::SeqCst), 1, "the worker is woken");
        assert_eq!(drops(&future), 0, "dropped by the worker, not the handle");
        assert_eq!(poll_job(&mut job, &waker), Poll::Ready(Outcome::Cancelled));
        assert_eq!(drops(&future), 1);
        drop(job);
        assert_eq!(Arc::strong_count(&woken), 2, "no clone left");
    }
}

#[test]
fn a_job_dropped_mid_run_drops_its_future_and_cancels_the_handle() {
    let future = counter();
    let ready = Arc::new(AtomicBool::new(false));
    let gate =
        Gate { _guard: Dropped(Arc::clone(&future)), ready, value: Some(1_u8), panics: false };
    let (mut job, handle) = with_handle(gate, None);
    let (woken, waker) = wakes();
    assert!(poll_job(&mut job, &waker).is_pending());
    drop(job);
    assert_eq!(drops(&future), 1);
    assert_eq!(Arc::strong_count(&woken), 2, "the stored waker goes with the job");
    assert_eq!(handle.join(), Err(JoinError::Cancelled));
}

#[test]
fn an_abandoned_job_reports_its_reason() {
    let future = counter();
    let guard = Dropped(Arc::clone(&future));
    let (job, handle) = with_handle(async move { drop(guard) }, None);
    job.abandon(JoinError::NotRun);
    assert_eq!(drops(&future), 1);
    assert_eq!(handle.join(), Err(JoinError::NotRun));
}

#[test]
fn a_panic_reaches_the_handle() {
    let future = counter();
    let gate = Gate {
        _guard: Dropped(Arc::clone(&future)),
        ready: Arc::new(AtomicBool::new(true)),
        value: Some(1_u8),
        panics: true,
    };
    let (mut job, handle) = with_handle(gate, None);
    assert_eq!(poll_job(&mut job, Waker::noop()), Poll::Ready(Outcome::Panicked));
    assert_eq!(drops(&future), 1);
    assert_eq!(handle.join(), Err(JoinError::Panicked { message: "asked to panic".to_owned() }));
}

#[test]
fn a_spawned_future_runs_or_drops_once() {
    for end in 0..4 {
        let future = counter();
        let ready = Arc::new(AtomicBool::new(end != 1));
        let gate = Gate {
            _guard: Dropped(Arc::clone(&future)),
            ready: Arc::clone(&ready),
            value: Some(()),
            panics: end == 2,
        };
        let mut job = spawn(gate);
        match end {
            0 => assert_eq!(poll_job(&mut job, Waker::noop()), Poll::Ready(Outcome::Completed)),
            1 => {
                assert!(poll_job(&mut job, Waker::noop()).is_pending());
                drop(job);
            }
            2 => assert_eq!(poll_job(&mut job, Waker::noop()), Poll::Ready(Outcome::Panicked)),
            _ => job.abandon(JoinError::NotRun),
        }
        assert_eq!(drops(&future), 1, "end {end}");
    }
}

/// How the job ends.
#[derive(Debug, Clone, Copy)]
enum JobEnd {
    /// Polled pending, then to completion.
    Run,
    RunPanicking,
    /// Polled pending, then dropped (a worker cut off).
    DropRunning,
    Abandon,
    Drop,
}

fn job_end() -> impl Strategy<Value = JobEnd> {
    prop_oneof![
        Just(JobEnd::Run),
        Just(JobEnd::RunPanicking),
        Just(JobEnd::DropRunning),
        Just(JobEnd::Abandon),
        Just(JobEnd::Drop)
    ]
}

proptest! {
    /// Any order of the two sides' steps, a handle step also between the
    /// job's polls: the future and its output are each dropped exactly
    /// once, a worker whose future is pending is woken if the handle closes
    /// then, and the handle resolves to what the job did, unless it was
    /// cancelled first.
    #[test]
    fn every_parting_drops_each_part_once(
        before in proptest::collection::vec(handle_step(), 0..3),
        between in proptest::collection::vec(handle_step(), 0..2),
        end in job_end(),
        after in proptest::collection::vec(handle_step(), 0..3),
    ) {
        let future = counter();
        let result = counter();
        let ready = Arc::new(AtomicBool::new(false));
        let gate = Gate {
            _guard: Dropped(Arc::clone(&future)),
            ready: Arc::clone(&ready),
            value: Some(Dropped(Arc::clone(&result))),
            panics: matches!(end, JobEnd::RunPanicking),
        };
        let (mut job, handle) = with_handle(gate, None);
        let mut side = HandleSide::new(handle);
        for s in &before {
            side.step(*s);
        }
        let (woken, waker) = wakes();
        let runs = matches!(end, JobEnd::Run | JobEnd::RunPanicking | JobEnd::DropRunning);
        let mut outcome = None;
        let mut first = Poll::Pending;
        if runs {
            first = poll_job(&mut job, &waker);
            prop_assert_eq!(first.is_pending(), !side.gone());
            for s in &between {
                side.step(*s);
            }
            let closed_while_pending = first.is_pending() && side.gone();
            prop_assert_eq!(woken.0.load(Ordering::SeqCst), usize::from(closed_while_pending));
        }
        let handle_gone = side.gone();
        match end {
            JobEnd::Run | JobEnd::RunPanicking => {
                ready.store(true, Ordering::SeqCst);
                outcome = Some(match first {
                    Poll::Ready(outcome) => outcome,
                    Poll::Pending => match poll_job(&mut job, &waker) {
                        Poll::Ready(outcome) => outcome,
                        Poll::Pending => panic!("a ready gate finishes"),
                    },
                });
                drop(job);
            }
            JobEnd::DropRunning | JobEnd::Drop => drop(job),
            JobEnd::Abandon => job.abandon(JoinError::NotRun),
        }
        prop_assert_eq!(drops(&future), 1);
        prop_assert_eq!(Arc::strong_count(&woken), 2, "no stored waker left");
        if let Some(outcome) = outcome {
            let expected = if handle_gone {
                Outcome::Cancelled
            } else if matches!(end, JobEnd::RunPanicking) {
                Outcome::Panicked
            } else {
                Outcome::Completed
            };
            prop_assert_eq!(outcome, expected);
        }
        for s in &after {
            side.step(*s);
        }
        if let Some(h) = side.handle.take() {
            side.taken.get_or_insert(h.join());
        }
        if let Some(out) = side.taken.take() {
            let expected = match (handle_gone, end) {
                (true, _) | (false, JobEnd::Drop | JobEnd::DropRunning) => {
                    Err(JoinError::Cancelled)
                }
                (false, JobEnd::Run) => Ok(()),
                (false, JobEnd::RunPanicking) => {
                    Err(JoinError::Panicked { message: "asked to panic".to_owned() })
                }
                (false, JobEnd::Abandon) => Err(JoinError::NotRun),
            };
            prop_assert_eq!(out.map(drop), expected);
        }
        // The output: read, refused, left unread, or dropped with the
        // future that never finished (or panicked), once in every case.
        prop_assert_eq!(drops(&result), 1);
    }
}

/// The task of `fut`: its size, to print and bound.
fn task_size<F: Future + Send + 'static>(_: &F) -> usize
where
    F::Output: Send + 'static,
{
    size_of::<super::HandleTask<F>>()
}

#[test]
#[allow(clippy::print_stdout, reason = "the test reports the figure it bounds")]
fn a_task_is_its_future_plus_the_slot_the_runner_and_the_extras() {
    let value = 7_usize;
    let fut = async move { value };
    let fut_size = size_of_val(&fut);
    let size = task_size(&fut);
    println!("future {fut_size} bytes, task {size} bytes");
    // Header and slot 24, runner waker 16, the boxed deadline 8, span 8,
    // the started flag (and the stage's tag, in its niche): at most 64
    // beyond the future.
    assert!(size <= fut_size + 64, "{size} bytes for a future of {fut_size}");
}
