//! Loom models of the queue hand-off and the worker state counters.

use std::future::poll_fn;
use std::task::Poll;

use loom::sync::Arc;
use loom::thread;

use crate::core::{Outcome, WorkerSlot};
use crate::queue::{Local, Pop, PushError, Queue};

/// A worker found nothing. A closed queue with entries still on their way
/// (a push that reserved before the close, a job between a worker's deque
/// and its count) wakes the worker at once to look again, a short spin: the
/// yield lets the model run the thread it waits for, as the OS would.
fn idle<T>() -> Poll<T> {
    thread::yield_now();
    Poll::Pending
}

/// Waits for the next job like a worker does; `None` once closed and empty.
fn next(queue: &Queue<u32>, worker: usize) -> Option<u32> {
    loom::future::block_on(poll_fn(|cx| match queue.pop_or_register(worker, cx.waker()) {
        Pop::Job(entry) => Poll::Ready(Some(entry.job)),
        Pop::Idle => idle(),
        Pop::Closed => Poll::Ready(None),
    }))
}

/// Waits for the next job like a blocking worker with a deque of its own.
fn next_local(queue: &Queue<u32>, local: &Local<'_, u32>, worker: usize) -> Option<u32> {
    loom::future::block_on(poll_fn(|cx| {
        match queue.pop_or_register_local(worker, cx.waker(), Some(local)) {
            Pop::Job(entry) => Poll::Ready(Some(entry.job)),
            Pop::Idle => idle(),
            Pop::Closed => Poll::Ready(None),
        }
    }))
}

fn push(queue: &Queue<u32>, job: u32, priority: i32) -> Result<bool, PushError<u32>> {
    let reservation = queue.try_reserve().unwrap();
    queue.push(reservation, job, |j| j, priority, 0)
}

/// The fast lane with per-worker deques: a worker with a deque of its own
/// that went idle is woken by every push (a lost wake-up deadlocks the
/// model, the producer waiting for each job to be seen), and leaves once
/// the queue is closed and empty.
#[test]
fn loom_a_fast_push_always_reaches_an_idle_worker_with_a_deque() {
    loom::model(|| {
        let queue = Arc::new(Queue::<u32>::new(None, None));
        let (seen_tx, seen_rx) = loom::sync::mpsc::channel();
        let worker = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                let local = queue.local(0);
                while let Some(job) = next_local(&queue, &local, 0) {
                    seen_tx.send(job).unwrap();
                }
            })
        };
        for job in [1, 2] {
            push(&queue, job, 0).unwrap();
            assert_eq!(seen_rx.recv().unwrap(), job);
        }
        queue.close();
        worker.join().unwrap();
    });
}

/// Two workers with deques, jobs pushed before and after they start and
/// taken by batches and by stealing: each job runs exactly once, and both
/// workers leave only after every job was taken (a worker leaving early
/// while the other still holds a batch is fine: the count says when).
#[test]
fn loom_workers_with_deques_take_each_job_once_then_leave() {
    loom::model(|| {
        let queue = Arc::new(Queue::<u32>::new(None, None));
        push(&queue, 10, 0).unwrap();
        push(&queue, 20, 0).unwrap();
        let workers: Vec<_> = (0..2)
            .map(|id| {
                let queue = Arc::clone(&queue);
                thread::spawn(move || {
                    let local = queue.local(id);
                    let mut seen = Vec::new();
                    while let Some(job) = next_local(&queue, &local, id) {
                        seen.push(job);
                    }
                    seen
                })
            })
            .collect();
        push(&queue, 30, 0).unwrap();
        queue.close();
        let mut all: Vec<u32> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
        all.sort_unstable();
        assert_eq!(all, [10, 20, 30]);
        assert_eq!(queue.len(), 0);
    });
}

/// A close racing a fast push: the push is either refused (the job comes
/// back) or its job is taken by the worker before the worker leaves, never
/// lost in between.
#[test]
fn loom_a_push_racing_close_is_refused_or_run() {
    loom::model(|| {
        let queue = Arc::new(Queue::<u32>::new(None, None));
        let worker = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                let local = queue.local(0);
                let mut seen = Vec::new();
                while let Some(job) = next_local(&queue, &local, 0) {
                    seen.push(job);
                }
                seen
            })
        };
        let closer = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || queue.close())
        };
        let accepted = match push(&queue, 5, 0) {
            Ok(_) => true,
            Err(PushError::Closed(job)) => {
                assert_eq!(job, 5);
                false
            }
            Err(PushError::Full(_)) => unreachable!("unbounded"),
        };
        closer.join().unwrap();
        let seen = worker.join().unwrap();
        assert_eq!(seen, if accepted { vec![5] } else { vec![] });
    });
}

/// The switch to the ordered lane (a push of another priority) racing a
/// fast push and a worker: both jobs are taken exactly once.
#[test]
fn loom_the_switch_to_the_ordered_lane_loses_nothing() {
    loom::model(|| {
        let queue = Arc::new(Queue::<u32>::new(None, None));
        let fast = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || push(&queue, 1, 0).unwrap())
        };
        let worker = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                let local = queue.local(0);
                let mut seen = Vec::new();
                while let Some(job) = next_local(&queue, &local, 0) {
                    seen.push(job);
                }
                seen
            })
        };
        push(&queue, 2, 3).unwrap();
        fast.join().unwrap();
        queue.close();
        let mut seen = worker.join().unwrap();
        seen.sort_unstable();
        assert_eq!(seen, [1, 2]);
    });
}

/// A worker leaving with jobs in its deque hands them back: the other
/// worker, idle or busy, runs them; nothing is lost and nothing runs twice.
#[test]
fn loom_a_leaving_worker_hands_its_deque_back() {
    loom::model(|| {
        let queue = Arc::new(Queue::<u32>::new(None, None));
        push(&queue, 1, 0).unwrap();
        push(&queue, 2, 0).unwrap();
        // Takes one job (moving a batch into its deque), then leaves.
        let leaver = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                let local = queue.local(0);
                queue.pop_local(Some(&local)).map(|entry| entry.job)
            })
        };
        let other = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                let local = queue.local(1);
                let mut seen = Vec::new();
                while let Some(job) = next_local(&queue, &local, 1) {
                    seen.push(job);
                }
                seen
            })
        };
        let mut all: Vec<u32> = leaver.join().unwrap().into_iter().collect();
        queue.close();
        all.extend(other.join().unwrap());
        all.sort_unstable();
        assert_eq!(all, [1, 2]);
    });
}

/// Two jobs, the first waiting for the second to finish, and two workers
/// with deques. A worker moving both from the injector into its deque holds
/// the second in no lane for a moment; the other worker, looking then, finds
/// nothing while the count says two are queued. It must not go to sleep (no
/// push is left to wake it): it looks again and steals the second job from
/// the deque of the worker stuck on the first. Sleeping deadlocks the model.
#[test]
fn loom_a_worker_looking_during_a_batch_move_steals_what_the_batch_left() {
    loom::model(|| {
        let queue = Arc::new(Queue::<u32>::new(None, None));
        push(&queue, 1, 0).unwrap();
        push(&queue, 2, 0).unwrap();
        let second_done = Arc::new(loom::sync::Notify::new());
        let (done_tx, done_rx) = loom::sync::mpsc::channel();
        let workers: Vec<_> = (0..2)
            .map(|id| {
                let queue = Arc::clone(&queue);
                let second_done = Arc::clone(&second_done);
                let done_tx = done_tx.clone();
                thread::spawn(move || {
                    let local = queue.local(id);
                    while let Some(job) = next_local(&queue, &local, id) {
                        if job == 1 {
                            second_done.wait();
                        } else {
                            second_done.notify();
                        }
                        done_tx.send(job).unwrap();
                    }
                })
            })
            .collect();
        let mut done = [done_rx.recv().unwrap(), done_rx.recv().unwrap()];
        done.sort_unstable();
        assert_eq!(done, [1, 2]);
        queue.close();
        for worker in workers {
            worker.join().unwrap();
        }
        assert_eq!(queue.len(), 0);
    });
}

/// A fast push that reserved room before the close lands its entry after
/// it. A drain running in between waits for the entry and hands it back:
/// the job is refused or drained, never left behind in the queue.
#[test]
fn loom_a_drain_after_close_takes_a_push_that_reserved_before_it() {
    loom::model(|| {
        let queue = Arc::new(Queue::<u32>::new(None, None));
        let pusher = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || match push(&queue, 5, 0) {
                Ok(_) => true,
                Err(PushError::Closed(job)) => {
                    assert_eq!(job, 5);
                    false
                }
                Err(PushError::Full(_)) => unreachable!("unbounded"),
            })
        };
        queue.close();
        let drained: Vec<u32> = queue.drain().into_iter().map(|entry| entry.job).collect();
        let accepted = pusher.join().unwrap();
        assert_eq!(drained, if accepted { vec![5] } else { vec![] });
        assert_eq!(queue.len(), 0);
    });
}

/// A worker that went idle is always woken by a push: the producer waits
/// for each job to be seen before pushing the next, so a lost wake-up
/// deadlocks the model. Close then ends the worker.
#[test]
fn loom_a_push_always_reaches_an_idle_worker() {
    loom::model(|| {
        let queue = Arc::new(Queue::<u32>::new(None, None));
        let (seen_tx, seen_rx) = loom::sync::mpsc::channel();
        let worker = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                while let Some(job) = next(&queue, 0) {
                    seen_tx.send(job).unwrap();
                }
            })
        };
        for job in [1, 2] {
            let reservation = queue.try_reserve().unwrap();
            queue.push(reservation, job, |j| j, 0, 0).unwrap();
            assert_eq!(seen_rx.recv().unwrap(), job);
        }
        queue.close();
        worker.join().unwrap();
    });
}

/// Two workers racing for two jobs: each job is taken exactly once and
/// both workers exit after close.
#[test]
fn loom_two_workers_take_each_job_once() {
    loom::model(|| {
        let queue = Arc::new(Queue::<u32>::new(None, None));
        let workers: Vec<_> = (0..2)
            .map(|id| {
                let queue = Arc::clone(&queue);
                thread::spawn(move || {
                    let mut seen = Vec::new();
                    while let Some(job) = next(&queue, id) {
                        seen.push(job);
                    }
                    seen
                })
            })
            .collect();
        for job in [10, 20] {
            let reservation = queue.try_reserve().unwrap();
            queue.push(reservation, job, |j| j, 0, 0).unwrap();
        }
        queue.close();
        let mut all: Vec<u32> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
        all.sort_unstable();
        assert_eq!(all, [10, 20]);
    });
}

/// Two submitters race for the last slot of a bounded queue: exactly one
/// gets it, and a submitter waiting for room is woken by the pop that frees it.
#[test]
fn loom_capacity_is_never_exceeded_and_a_waiter_gets_the_freed_room() {
    loom::model(|| {
        let queue = Arc::new(Queue::<u32>::new(Some(1), None));
        let racers: Vec<_> = (0..2)
            .map(|job| {
                let queue = Arc::clone(&queue);
                thread::spawn(move || match queue.try_reserve() {
                    Some(reservation) => queue.push(reservation, job, |j| j, 0, 0).is_ok(),
                    None => false,
                })
            })
            .collect();
        let accepted = racers.into_iter().map(|r| r.join().unwrap()).filter(|&ok| ok).count();
        assert_eq!(accepted, 1);
        assert_eq!(queue.len(), 1);

        let waiter = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                let mut ticket = None;
                let got = loom::future::block_on(poll_fn(|cx| {
                    match queue.reserve_or_wait(cx.waker(), &mut ticket) {
                        Ok(Some(reservation)) => {
                            queue.push(reservation, 7, |j| j, 0, 0).unwrap();
                            Poll::Ready(true)
                        }
                        Ok(None) => Poll::Pending,
                        Err(()) => Poll::Ready(false),
                    }
                }));
                queue.cancel_wait(ticket);
                got
            })
        };
        assert!(next(&queue, 0).is_some());
        assert!(waiter.join().unwrap());
        assert_eq!(next(&queue, 0), Some(7));
    });
}

/// A reader of a worker's slot never sees the completed count go back and
/// sees the final count once the worker is done.
#[test]
fn loom_worker_counters_are_monotonic() {
    loom::model(|| {
        let slot = Arc::new(WorkerSlot::new());
        let worker = {
            let slot = Arc::clone(&slot);
            thread::spawn(move || {
                for _ in 0..2 {
                    slot.start(0, 1);
                    slot.finish(Outcome::Completed);
                }
            })
        };
        let first = slot.completed();
        let second = slot.completed();
        assert!(second >= first);
        worker.join().unwrap();
        assert_eq!(slot.completed(), 2);
        assert!(!slot.is_busy());
    });
}
