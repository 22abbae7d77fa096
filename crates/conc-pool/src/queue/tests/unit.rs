//! Unit tests of the queue core, without threads.

use std::task::Waker;

use super::super::fast::FOLD_EVERY;
use super::super::{COUNT, Pop, PushError, Queue};
use crate::loom::sync::atomic::Ordering;

fn push(queue: &Queue<u32>, job: u32, priority: i32) {
    let reservation = queue.try_reserve().expect("room");
    queue.push(reservation, job, |j| j, priority, 0).expect("open");
}

fn pop(queue: &Queue<u32>) -> Option<u32> {
    match queue.pop_or_register(0, Waker::noop()) {
        Pop::Job(entry) => Some(entry.job),
        Pop::Idle | Pop::Closed => None,
    }
}

#[test]
fn reservations_respect_capacity_and_come_back_when_dropped() {
    let queue = Queue::<u32>::new(Some(2), None);
    let a = queue.try_reserve().unwrap();
    let b = queue.try_reserve().unwrap();
    assert!(queue.try_reserve().is_none());
    drop(a);
    assert!(queue.try_reserve().is_some());
    drop(b);
    assert_eq!(queue.len(), 0);
}

#[test]
fn strict_order_is_priority_then_fifo() {
    let queue = Queue::new(None, None);
    for (job, priority) in [(1, 0), (2, 9), (3, 0), (4, 9), (5, -3)] {
        push(&queue, job, priority);
    }
    let order: Vec<_> = std::iter::from_fn(|| pop(&queue)).collect();
    assert_eq!(order, [2, 4, 1, 3, 5]);
}

#[test]
fn many_distinct_priorities_keep_order_and_prune_empty_levels() {
    let queue = Queue::new(None, None);
    for round in 0..3 {
        for p in 0..40 {
            push(&queue, u32::try_from(p + round * 100).unwrap(), p);
        }
        let order: Vec<_> = std::iter::from_fn(|| pop(&queue)).collect();
        let expected: Vec<u32> =
            (0..40).rev().map(|p| u32::try_from(p + round * 100).unwrap()).collect();
        assert_eq!(order, expected);
    }
}

#[test]
fn eviction_takes_the_oldest_of_the_lowest_level() {
    let queue = Queue::new(Some(3), None);
    push(&queue, 1, 5);
    push(&queue, 2, 0);
    push(&queue, 3, 0);
    let evicted = queue.push_evicting(4, |j| j, 5, 0).unwrap();
    assert_eq!(evicted.job, 2);
    let order: Vec<_> = std::iter::from_fn(|| pop(&queue)).collect();
    assert_eq!(order, [1, 4, 3]);
}

#[test]
fn a_closed_queue_refuses_and_drains() {
    let queue = Queue::new(None, None);
    push(&queue, 1, 0);
    queue.close();
    let reservation = queue.try_reserve().unwrap();
    assert!(matches!(queue.push(reservation, 2, |j| j, 0, 0), Err(PushError::Closed(2))));
    assert_eq!(queue.drain().into_iter().map(|e| e.job).collect::<Vec<_>>(), [1]);
    assert!(matches!(queue.pop_or_register(0, Waker::noop()), Pop::Closed));
    assert_eq!(queue.len(), 0);
}

/// Pops one entry and, while `stream` holds, queues another priority-5 one:
/// a saturating stream whose backlog keeps its size.
fn pop_streaming(queue: &Queue<u32>, stream: bool) -> Option<u32> {
    let job = pop(queue)?;
    if stream && job == 5 {
        push(queue, 5, 5);
    }
    Some(job)
}

/// A priority-0 task behind a saturating priority-5 stream waits exactly
/// `5 × step` dequeues, whatever the backlog and whether it was queued
/// before or after it.
#[test]
fn aging_bounds_the_wait_exactly_whatever_the_backlog() {
    for step in [1, 3, 64] {
        for backlog in [0, 1, 4, 64, 200, 10_000] {
            for low_first in [true, false] {
                let queue = Queue::new(None, Some(step));
                if low_first {
                    push(&queue, 0, 0);
                }
                for _ in 0..=backlog {
                    push(&queue, 5, 5);
                }
                if !low_first {
                    push(&queue, 0, 0);
                }
                let before = std::iter::from_fn(|| pop_streaming(&queue, true))
                    .take_while(|&job| job != 0)
                    .count();
                assert_eq!(
                    before,
                    5 * usize::try_from(step).unwrap(),
                    "step {step}, backlog {backlog}, low first {low_first}"
                );
            }
        }
    }
}

/// Each waiting level falls due at its own distance from the top; tasks due
/// at the same count keep their queueing order.
#[test]
fn levels_fall_due_by_their_distance_from_the_top() {
    let queue = Queue::new(None, Some(2));
    push(&queue, 0, 0); // due after 10 dequeues
    push(&queue, 3, 3); // due after 4
    push(&queue, 4, 4); // due after 2
    for _ in 0..20 {
        push(&queue, 5, 5);
    }
    let order: Vec<_> = std::iter::from_fn(|| pop(&queue)).collect();
    let position = |job| order.iter().position(|&j| j == job).unwrap();
    assert_eq!((position(4), position(3), position(0)), (2, 4, 10));
}

/// A worker's takes are folded into the reservation count as it goes: however
/// many entries pass through an unbounded queue, the count stays below the
/// entries queued plus one fold's worth per worker, so it never carries into
/// the closed flag (after 2^31 pushes on a 32-bit target).
#[test]
fn takes_through_a_worker_deque_keep_the_reservation_count_bounded() {
    let queue = Queue::<u32>::new(None, None);
    let local = queue.local(0);
    let rounds = u32::try_from(3 * FOLD_EVERY).unwrap();
    for job in 0..rounds {
        push(&queue, job, 0);
        assert_eq!(queue.pop_local(Some(&local)).map(|entry| entry.job), Some(job));
    }
    assert!(queue.reserved.load(Ordering::SeqCst) & COUNT < FOLD_EVERY);
    assert_eq!(queue.len(), 0);
    assert!(!queue.is_closed());
    push(&queue, 7, 0);
    assert_eq!(queue.len(), 1);
    drop(local);
    assert_eq!(pop(&queue), Some(7));
    assert_eq!(queue.len(), 0);
}
