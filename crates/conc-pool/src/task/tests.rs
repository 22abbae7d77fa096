//! The task allocation: every way a job and its handle can part, checked
//! for a closure dropped exactly once, a result dropped exactly once and the
//! allocation freed once (a double free or a use after free crashes these
//! tests, or the loom models beside them).

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use proptest::prelude::*;

use super::{Job, TaskExtras, spawn, with_handle};
use crate::core::Outcome;
use crate::job::CancelToken;
use crate::{JoinError, TaskHandle};

#[cfg(conc_loom)]
mod loom_task;

/// Counts its drops (shared with the future task's tests).
#[derive(Debug)]
pub(super) struct Dropped(pub(super) Arc<AtomicUsize>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

pub(super) fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

pub(super) fn drops(count: &AtomicUsize) -> usize {
    count.load(Ordering::SeqCst)
}

/// A task with a handle whose closure holds `guard` and returns `value`.
fn task_of<T: Send + 'static>(guard: Dropped, value: T) -> (Job, TaskHandle<T>) {
    plain(move || {
        let _guard = guard;
        value
    })
}

/// A task with a handle running `f`, with `extras`.
fn with_extras<F, T>(f: F, extras: Option<TaskExtras>) -> (Job, TaskHandle<T>)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    with_handle(f, |f: F, _: &CancelToken<'_>| f(), extras)
}

fn plain<F: FnOnce() -> T + Send + 'static, T: Send + 'static>(f: F) -> (Job, TaskHandle<T>) {
    with_extras(f, None)
}

/// Polls `handle` once.
pub(super) fn poll_once<T>(handle: &mut TaskHandle<T>) -> Poll<Result<T, JoinError>> {
    pin!(handle).poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn a_run_task_delivers_its_result_and_drops_its_closure_once() {
    let closure = counter();
    let result = counter();
    let (job, handle) = task_of(Dropped(Arc::clone(&closure)), Dropped(Arc::clone(&result)));
    assert_eq!(job.run(0), Outcome::Completed);
    assert_eq!(drops(&closure), 1);
    assert!(handle.is_finished());
    drop(handle.join().unwrap());
    assert_eq!(drops(&result), 1);
}

#[test]
fn an_unrun_job_dropped_drops_its_closure_once_and_cancels_the_handle() {
    let closure = counter();
    let (job, handle) = task_of(Dropped(Arc::clone(&closure)), 1_u8);
    drop(job);
    assert_eq!(drops(&closure), 1);
    assert_eq!(handle.join(), Err(JoinError::Cancelled));
}

#[test]
fn an_abandoned_job_reports_its_reason() {
    let closure = counter();
    let (job, handle) = task_of(Dropped(Arc::clone(&closure)), 1_u8);
    job.abandon(JoinError::NotRun);
    assert_eq!(drops(&closure), 1);
    assert_eq!(handle.join(), Err(JoinError::NotRun));
}

#[test]
fn a_task_whose_handle_went_first_is_not_run() {
    let ran = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&ran);
    let (job, handle) = plain(move || seen.store(true, Ordering::SeqCst));
    drop(handle);
    assert_eq!(job.run(0), Outcome::Cancelled);
    assert!(!ran.load(Ordering::SeqCst));
    assert_eq!(Arc::strong_count(&ran), 1, "the closure was dropped");
}

#[test]
fn a_panic_reaches_the_handle() {
    let (job, handle) = plain(|| -> u8 { panic!("bad row") });
    assert_eq!(job.run(0), Outcome::Panicked);
    assert_eq!(handle.join(), Err(JoinError::Panicked { message: "bad row".to_owned() }));
}

#[test]
fn a_deadline_passed_before_the_start_times_the_task_out() {
    let extras = TaskExtras::new(Some(10));
    let (job, handle) = with_extras(|| 1_u8, extras);
    assert_eq!(job.run(10), Outcome::TimedOut);
    assert_eq!(handle.join(), Err(JoinError::DeadlineExceeded));

    let extras = TaskExtras::new(Some(10));
    let (job, handle) = with_extras(|| 1_u8, extras);
    assert_eq!(job.run(9), Outcome::Completed);
    assert_eq!(handle.join(), Ok(1));
}

#[test]
fn a_running_closure_sees_its_handle_cancelled() {
    let (job, mut handle) = with_handle(
        (),
        |(), token: &CancelToken<'_>| {
            while !token.is_cancelled() {
                std::thread::yield_now();
            }
            "stopped"
        },
        None,
    );
    let worker = std::thread::spawn(move || job.run(0));
    handle.cancel();
    assert_eq!(worker.join().unwrap(), Outcome::Cancelled);
    assert_eq!(handle.join(), Err(JoinError::Cancelled));
}

#[test]
fn a_spawned_task_runs_or_drops_its_closure_once() {
    let closure = counter();
    let guard = Dropped(Arc::clone(&closure));
    let ran = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&ran);
    let job = spawn(
        move || {
            let _guard = guard;
            seen.store(true, Ordering::SeqCst);
        },
        None,
    );
    assert_eq!(job.run(0), Outcome::Completed);
    assert!(ran.load(Ordering::SeqCst));
    assert_eq!(drops(&closure), 1);

    for abandon in [false, true] {
        let closure = counter();
        let guard = Dropped(Arc::clone(&closure));
        let job = spawn(move || drop(guard), TaskExtras::new(Some(5)));
        if abandon {
            job.abandon(JoinError::NotRun);
        } else {
            drop(job);
        }
        assert_eq!(drops(&closure), 1);
    }

    assert_eq!(spawn(|| panic!("spawned"), None).run(0), Outcome::Panicked);
}

#[test]
fn a_job_is_two_words() {
    // A pointer to the task, or an inline closure and its vtable.
    assert_eq!(size_of::<Job>(), 2 * size_of::<usize>());
    assert_eq!(size_of::<Option<Job>>(), 2 * size_of::<usize>());
}

#[test]
fn a_closure_of_a_word_is_stored_in_the_job_and_runs_or_drops_once() {
    // One word (an `Arc`): stored inline, run once.
    let closure = counter();
    let guard = Dropped(Arc::clone(&closure));
    let job = spawn(move || drop(guard), None);
    assert_eq!(job.head.as_ptr().addr() & 1, 1, "stored inline");
    assert_eq!(job.run(0), Outcome::Completed);
    assert_eq!(drops(&closure), 1);

    // Dropped unrun (a queue dropped with it) or abandoned (a shutdown).
    for abandon in [false, true] {
        let closure = counter();
        let guard = Dropped(Arc::clone(&closure));
        let job = spawn(move || drop(guard), None);
        if abandon {
            job.abandon(JoinError::NotRun);
        } else {
            drop(job);
        }
        assert_eq!(drops(&closure), 1);
    }

    // Zero-sized, and panicking: caught.
    let job = spawn(|| panic!("inline"), None);
    assert_eq!(job.head.as_ptr().addr() & 1, 1, "stored inline");
    assert_eq!(job.run(0), Outcome::Panicked);
}

#[test]
fn a_larger_closure_or_one_with_a_span_is_allocated() {
    let closure = counter();
    let guard = Dropped(Arc::clone(&closure));
    let wide = [7_u64; 2];
    let job = spawn(move || drop((guard, wide)), None);
    assert_eq!(job.head.as_ptr().addr() & 1, 0, "allocated");
    drop(job);
    assert_eq!(drops(&closure), 1);

    let job = spawn(|| (), TaskExtras::new(Some(1)));
    assert_eq!(job.head.as_ptr().addr() & 1, 0, "allocated, with its extras");
    assert_eq!(job.run(0), Outcome::Completed);
}

/// What the job side does.
#[derive(Debug, Clone, Copy)]
enum JobEnd {
    Run,
    RunPanicking,
    Abandon,
    Drop,
}

/// What the handle side does, before or after the job's end.
#[derive(Debug, Clone, Copy)]
pub(super) enum HandleStep {
    Poll,
    Cancel,
    Drop,
}

fn job_end() -> impl Strategy<Value = JobEnd> {
    prop_oneof![
        Just(JobEnd::Run),
        Just(JobEnd::RunPanicking),
        Just(JobEnd::Abandon),
        Just(JobEnd::Drop)
    ]
}

pub(super) fn handle_step() -> impl Strategy<Value = HandleStep> {
    prop_oneof![Just(HandleStep::Poll), Just(HandleStep::Cancel), Just(HandleStep::Drop)]
}

/// The handle's side of a parting.
pub(super) struct HandleSide {
    pub(super) handle: Option<TaskHandle<Dropped>>,
    /// Cancelled before it finished.
    pub(super) cancelled: bool,
    /// What it resolved to.
    pub(super) taken: Option<Result<Dropped, JoinError>>,
}

impl HandleSide {
    /// A side holding `handle`, not cancelled, with nothing taken yet.
    pub(super) fn new(handle: TaskHandle<Dropped>) -> Self {
        Self { handle: Some(handle), cancelled: false, taken: None }
    }

    pub(super) fn step(&mut self, step: HandleStep) {
        let Some(handle) = self.handle.as_mut() else { return };
        match step {
            HandleStep::Poll => {
                if let Poll::Ready(out) = poll_once(handle) {
                    self.taken.get_or_insert(out);
                    self.handle = None;
                }
            }
            HandleStep::Cancel => {
                self.cancelled |= !handle.is_finished();
                handle.cancel();
            }
            HandleStep::Drop => self.handle = None,
        }
    }

    /// Whether the handle no longer wants a result.
    pub(super) fn gone(&self) -> bool {
        self.handle.is_none() || self.cancelled
    }
}

proptest! {
    /// Any order of the two sides' steps: the closure and the value it
    /// returns are each dropped exactly once, and the handle resolves to what the job
    /// did, unless it was cancelled first.
    #[test]
    fn every_parting_drops_each_part_once(
        before in proptest::collection::vec(handle_step(), 0..3),
        end in job_end(),
        after in proptest::collection::vec(handle_step(), 0..3),
    ) {
        let closure = counter();
        let result = counter();
        let guard = Dropped(Arc::clone(&closure));
        let value = Dropped(Arc::clone(&result));
        let panics = matches!(end, JobEnd::RunPanicking);
        let (job, handle) = plain(move || {
            let _guard = guard;
            assert!(!panics, "asked to panic");
            value
        });
        let mut side = HandleSide::new(handle);
        for s in &before {
            side.step(*s);
        }
        let handle_gone = side.handle.is_none() || side.cancelled;
        let outcome = match end {
            JobEnd::Run | JobEnd::RunPanicking => Some(job.run(0)),
            JobEnd::Abandon => {
                job.abandon(JoinError::NotRun);
                None
            }
            JobEnd::Drop => {
                drop(job);
                None
            }
        };
        prop_assert_eq!(drops(&closure), 1);
        if let Some(outcome) = outcome {
            let expected = if handle_gone {
                Outcome::Cancelled
            } else if panics {
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
            let delivered = out.is_ok();
            let expected = match (handle_gone, end) {
                // Cancelled first, or a job dropped with no word to its handle.
                (true, _) | (false, JobEnd::Drop) => Err(JoinError::Cancelled),
                (false, JobEnd::Run) => Ok(()),
                (false, JobEnd::RunPanicking) => {
                    Err(JoinError::Panicked { message: "asked to panic".to_owned() })
                }
                (false, JobEnd::Abandon) => Err(JoinError::NotRun),
            };
            prop_assert_eq!(out.map(drop), expected);
            prop_assert!(!delivered || matches!(end, JobEnd::Run));
        }
        // The value: returned and read, refused, left unread, or dropped
        // with the closure that never ran (or panicked), once in every case.
        prop_assert_eq!(drops(&result), 1);
    }
}
