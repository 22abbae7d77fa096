//! The queue core both pools share: priorities with aging, capacity
//! reservation, the idle-worker list and the waiting-submitter list.
//!
//! One mutex guards the entries and both waiter lists; capacity is reserved
//! with an atomic *before* the mutex is taken, so a full queue refuses work
//! with one atomic load, no lock and no allocation.
//!
//! Wake-ups are the expensive part of a pool (an OS unpark costs micro-
//! seconds), so a push wakes a worker only when one is registered idle, and
//! each idle worker is woken at most once per registration: a pool whose
//! workers are all busy pays no wake-up at all.

use std::collections::VecDeque;
use std::task::Waker;

use crate::loom::sync::Mutex;
use crate::loom::sync::atomic::{AtomicUsize, Ordering};

#[cfg(test)]
mod tests;

/// Levels beyond this many are pruned of empty ones when a new level arrives,
/// so a stream of distinct priorities cannot grow the level list forever.
const MAX_IDLE_LEVELS: usize = 16;

/// One queued job with what the queue needs to order it.
#[derive(Debug)]
pub(crate) struct Entry<J> {
    pub(crate) job: J,
    /// Dequeues that had happened when the entry was queued (for aging).
    mark: u64,
    /// Global enqueue order, for FIFO between tasks due at the same count.
    seq: u64,
    /// When the entry was queued, in nanoseconds on the pool's clock.
    pub(crate) enqueued_nanos: u64,
}

#[derive(Debug)]
struct Level<J> {
    priority: i32,
    entries: VecDeque<Entry<J>>,
}

/// What a worker gets back from [`Queue::pop_or_register`].
#[derive(Debug)]
pub(crate) enum Pop<J> {
    /// A job to run.
    Job(Entry<J>),
    /// Nothing queued; the worker's waker is registered and will be woken by
    /// the next push or by [`Queue::close`].
    Idle,
    /// The queue is closed and empty: the worker should exit.
    Closed,
}

/// Why a push was refused. The job is handed back in every case.
#[derive(Debug)]
pub(crate) enum PushError<J> {
    /// No capacity left.
    Full(J),
    /// The queue no longer accepts work.
    Closed(J),
}

#[derive(Debug)]
struct Inner<J> {
    /// Sorted by priority, highest first.
    levels: Vec<Level<J>>,
    len: usize,
    /// Total dequeues, the clock aging runs on.
    pops: u64,
    seq: u64,
    /// Idle workers, by worker id.
    idle: Vec<(usize, Waker)>,
    /// Submitters waiting for room.
    space: VecDeque<(u64, Waker)>,
    space_ids: u64,
    closed: bool,
    /// Accepted entries, since the queue was made or its counts reset.
    pushed: u64,
    /// Idle workers woken by a push, since the queue was made or its counts reset.
    wake_ups: u64,
}

/// The shared queue.
#[derive(Debug)]
pub(crate) struct Queue<J> {
    /// Entries queued plus pushes that reserved room and have not yet landed.
    /// On its own cache lines, apart from the mutex word.
    reserved: Padded<AtomicUsize>,
    capacity: Option<usize>,
    /// Every `aging_step` dequeues a waiting entry gets one level closer to
    /// being due (see `take_next`).
    aging_step: Option<u64>,
    inner: Mutex<Inner<J>>,
}

/// Keeps a hot atomic off the cache lines of its neighbours.
#[derive(Debug)]
#[repr(align(128))]
struct Padded<T>(T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Room reserved for one push; released if dropped unused.
#[must_use = "a reservation holds queue capacity until it is used or dropped"]
#[derive(Debug)]
pub(crate) struct Reservation<'a, J> {
    queue: &'a Queue<J>,
    used: bool,
}

impl<J> Drop for Reservation<'_, J> {
    fn drop(&mut self) {
        if !self.used {
            self.queue.release_one();
        }
    }
}

impl<J> Queue<J> {
    /// A queue holding at most `capacity` entries (`None`: unbounded).
    pub(crate) fn new(capacity: Option<usize>, aging_step: Option<u64>) -> Self {
        Self {
            reserved: Padded(AtomicUsize::new(0)),
            capacity,
            aging_step,
            inner: Mutex::new(Inner {
                levels: Vec::new(),
                len: 0,
                pops: 0,
                seq: 0,
                idle: Vec::new(),
                space: VecDeque::new(),
                space_ids: 0,
                closed: false,
                pushed: 0,
                wake_ups: 0,
            }),
        }
    }

    fn lock(&self) -> crate::loom::sync::MutexGuard<'_, Inner<J>> {
        // A panic never happens while the lock is held (no user code runs
        // under it), so a poisoned lock still holds consistent data.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reserves room for one entry, or `None` when the queue is full.
    /// One atomic operation; no lock, no allocation.
    pub(crate) fn try_reserve(&self) -> Option<Reservation<'_, J>> {
        match self.capacity {
            None => {
                self.reserved.fetch_add(1, Ordering::Relaxed);
            }
            Some(capacity) => {
                let mut current = self.reserved.load(Ordering::Relaxed);
                loop {
                    if current >= capacity {
                        return None;
                    }
                    match self.reserved.compare_exchange_weak(
                        current,
                        current + 1,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => break,
                        Err(actual) => current = actual,
                    }
                }
            }
        }
        Some(Reservation { queue: self, used: false })
    }

    fn release_one(&self) {
        self.reserved.fetch_sub(1, Ordering::Relaxed);
    }

    /// Entries queued (and pushes in flight that already reserved room).
    pub(crate) fn len(&self) -> usize {
        self.reserved.load(Ordering::Relaxed)
    }

    /// The capacity, `None` when unbounded.
    pub(crate) fn capacity(&self) -> Option<usize> {
        self.capacity
    }

    /// Whether the queue was closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Entries accepted since the queue was made (or its counts reset).
    pub(crate) fn pushed(&self) -> u64 {
        self.lock().pushed
    }

    /// Idle workers a push woke since the queue was made (or its counts reset).
    pub(crate) fn wake_ups(&self) -> u64 {
        self.lock().wake_ups
    }

    /// Zeroes the accepted and wake-up counts.
    pub(crate) fn reset_counts(&self) {
        let mut inner = self.lock();
        inner.pushed = 0;
        inner.wake_ups = 0;
    }

    /// Pushes a job into room reserved by `reservation`, waking one idle
    /// worker if there is one. `item` is turned into a job by `into_job` only
    /// once the push is sure to succeed, so a refused item comes back as it was.
    pub(crate) fn push<T>(
        &self,
        mut reservation: Reservation<'_, J>,
        item: T,
        into_job: impl FnOnce(T) -> J,
        priority: i32,
        now_nanos: u64,
    ) -> Result<bool, PushError<T>> {
        let waker = {
            let mut inner = self.lock();
            if inner.closed {
                drop(inner);
                return Err(PushError::Closed(item));
            }
            reservation.used = true;
            inner.insert(into_job(item), priority, now_nanos);
            let waker = inner.idle.pop().map(|(_, waker)| waker);
            inner.wake_ups += u64::from(waker.is_some());
            waker
        };
        let woke = waker.is_some();
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(woke)
    }

    /// Wakes every idle worker (so they can see a change of size).
    pub(crate) fn wake_idle(&self) {
        let idle = std::mem::take(&mut self.lock().idle);
        for (_, waker) in idle {
            waker.wake();
        }
    }

    /// Pushes `job` into a full queue by evicting the oldest entry of the
    /// lowest priority level, which is returned. When there is nothing to
    /// evict (the room is held by pushes still in flight), the job comes back
    /// as [`PushError::Full`].
    pub(crate) fn push_evicting<T>(
        &self,
        item: T,
        into_job: impl FnOnce(T) -> J,
        priority: i32,
        now_nanos: u64,
    ) -> Result<Entry<J>, PushError<T>> {
        let mut inner = self.lock();
        if inner.closed {
            drop(inner);
            return Err(PushError::Closed(item));
        }
        let Some(evicted) = inner.evict_oldest_lowest() else {
            drop(inner);
            return Err(PushError::Full(item));
        };
        // The evicted entry's room passes to the new one: `reserved` is unchanged.
        inner.insert(into_job(item), priority, now_nanos);
        Ok(evicted)
    }

    /// Takes the entry to run next, or registers `waker` as idle worker `id`.
    pub(crate) fn pop_or_register(&self, id: usize, waker: &Waker) -> Pop<J> {
        let (entry, space) = {
            let mut inner = self.lock();
            let Some(entry) = inner.take_next(self.aging_step) else {
                if inner.closed {
                    return Pop::Closed;
                }
                match inner.idle.iter_mut().find(|(worker, _)| *worker == id) {
                    Some((_, registered)) => registered.clone_from(waker),
                    None => inner.idle.push((id, waker.clone())),
                }
                return Pop::Idle;
            };
            self.release_one();
            (entry, inner.space.pop_front().map(|(_, w)| w))
        };
        if let Some(space) = space {
            space.wake();
        }
        Pop::Job(entry)
    }

    /// Takes the entry to run next without registering as idle.
    pub(crate) fn pop(&self) -> Option<Entry<J>> {
        let (entry, space) = {
            let mut inner = self.lock();
            let entry = inner.take_next(self.aging_step)?;
            self.release_one();
            (entry, inner.space.pop_front().map(|(_, w)| w))
        };
        if let Some(space) = space {
            space.wake();
        }
        Some(entry)
    }

    /// Removes worker `id` from the idle list (it found work another way, or
    /// is exiting).
    pub(crate) fn unregister(&self, id: usize) {
        self.lock().idle.retain(|(worker, _)| *worker != id);
    }

    /// Reserves room, or registers `waker` to be woken when room may have
    /// appeared. `ticket` identifies the waiter across calls (`None` on the
    /// first call; the returned ticket on later ones).
    pub(crate) fn reserve_or_wait(
        &self,
        waker: &Waker,
        ticket: &mut Option<u64>,
    ) -> Result<Option<Reservation<'_, J>>, ()> {
        if let Some(reservation) = self.try_reserve() {
            return Ok(Some(reservation));
        }
        let mut inner = self.lock();
        if inner.closed {
            return Err(());
        }
        // Re-check under the lock: a pop releases room under this lock, then
        // wakes a waiter, so either the room is visible here or our waker is
        // registered before the pop looks for one.
        if let Some(reservation) = self.try_reserve() {
            drop(inner);
            return Ok(Some(reservation));
        }
        if let Some((_, registered)) =
            ticket.and_then(|t| inner.space.iter_mut().find(|(id, _)| *id == t))
        {
            registered.clone_from(waker);
        } else {
            inner.space_ids += 1;
            let id = inner.space_ids;
            *ticket = Some(id);
            inner.space.push_back((id, waker.clone()));
        }
        Ok(None)
    }

    /// Stops waiting for room (timed out or gave up). If this waiter had been
    /// woken and room is free, the wake passes to the next waiter.
    pub(crate) fn cancel_wait(&self, ticket: Option<u64>) {
        let Some(ticket) = ticket else { return };
        let next = {
            let mut inner = self.lock();
            let before = inner.space.len();
            inner.space.retain(|(id, _)| *id != ticket);
            let was_woken = inner.space.len() == before;
            let has_room = self.capacity.is_none_or(|c| self.len() < c);
            if was_woken && has_room { inner.space.pop_front().map(|(_, w)| w) } else { None }
        };
        if let Some(next) = next {
            next.wake();
        }
    }

    /// Closes the queue: pushes are refused from now on; idle workers and
    /// waiting submitters are woken so they can see it. Queued entries stay.
    pub(crate) fn close(&self) {
        let (idle, space) = {
            let mut inner = self.lock();
            inner.closed = true;
            (std::mem::take(&mut inner.idle), std::mem::take(&mut inner.space))
        };
        for (_, waker) in idle {
            waker.wake();
        }
        for (_, waker) in space {
            waker.wake();
        }
    }

    /// Takes every queued entry, in the order they would have run.
    pub(crate) fn drain(&self) -> Vec<Entry<J>> {
        let mut out = Vec::new();
        let space = {
            let mut inner = self.lock();
            while let Some(entry) = inner.take_next(self.aging_step) {
                self.release_one();
                out.push(entry);
            }
            std::mem::take(&mut inner.space)
        };
        for (_, waker) in space {
            waker.wake();
        }
        out
    }
}

impl<J> Inner<J> {
    fn insert(&mut self, job: J, priority: i32, now_nanos: u64) {
        let entry = Entry { job, mark: self.pops, seq: self.seq, enqueued_nanos: now_nanos };
        self.seq += 1;
        self.len += 1;
        self.pushed += 1;
        // Levels are few and sorted highest first; the common case is one level.
        match self.levels.binary_search_by(|level| priority.cmp(&level.priority)) {
            Ok(index) => self.levels[index].entries.push_back(entry),
            Err(mut index) => {
                if self.levels.len() >= MAX_IDLE_LEVELS {
                    self.levels.retain(|level| !level.entries.is_empty());
                    index = self
                        .levels
                        .binary_search_by(|level| priority.cmp(&level.priority))
                        .unwrap_or_else(|i| i);
                }
                let mut entries = VecDeque::new();
                entries.push_back(entry);
                self.levels.insert(index, Level { priority, entries });
            }
        }
    }

    /// The entry to run next.
    ///
    /// Without aging: the head of the highest priority. With aging, a task
    /// of priority `p` queued when the dequeue count was `mark` falls due at
    /// `mark + (top - p) × aging_step`, `top` being the highest priority
    /// waiting now: a head past its due count runs first (the earliest due,
    /// then the earliest queued); otherwise the highest priority's head. Only
    /// the task that waits gains: the backlog above it does not age with it,
    /// so however many high-priority tasks wait, a low one runs once it is due.
    fn take_next(&mut self, aging_step: Option<u64>) -> Option<Entry<J>> {
        if self.len == 0 {
            return None;
        }
        let top = self.levels.iter().position(|level| !level.entries.is_empty())?;
        let mut pick = top;
        if let Some(step) = aging_step {
            let top_priority = self.levels[top].priority;
            let mut earliest: Option<(u64, u64)> = None;
            for (index, level) in self.levels.iter().enumerate().skip(top + 1) {
                let Some(head) = level.entries.front() else { continue };
                let gap = u64::from(top_priority.abs_diff(level.priority));
                let due = head.mark.saturating_add(gap.saturating_mul(step));
                if due <= self.pops && earliest.is_none_or(|first| (due, head.seq) < first) {
                    earliest = Some((due, head.seq));
                    pick = index;
                }
            }
        }
        let entry = self.levels[pick].entries.pop_front()?;
        self.len -= 1;
        self.pops += 1;
        Some(entry)
    }

    fn evict_oldest_lowest(&mut self) -> Option<Entry<J>> {
        let level = self.levels.iter_mut().rev().find(|level| !level.entries.is_empty())?;
        let entry = level.entries.pop_front()?;
        self.len -= 1;
        Some(entry)
    }
}
