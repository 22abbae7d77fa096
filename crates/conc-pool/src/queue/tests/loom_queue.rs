//! Loom models of the queue hand-off and the worker state counters.

use std::future::poll_fn;
use std::task::Poll;

use loom::sync::Arc;
use loom::thread;

use crate::core::{Outcome, WorkerSlot};
use crate::queue::{Pop, Queue};

/// Waits for the next job like a worker does; `None` once closed and empty.
fn next(queue: &Queue<u32>, worker: usize) -> Option<u32> {
    loom::future::block_on(poll_fn(|cx| match queue.pop_or_register(worker, cx.waker()) {
        Pop::Job(entry) => Poll::Ready(Some(entry.job)),
        Pop::Idle => Poll::Pending,
        Pop::Closed => Poll::Ready(None),
    }))
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
