//! The queue core both pools share: priorities with aging, capacity
//! reservation, the idle-worker list and the waiting-submitter list.
//!
//! Two lanes. The *fast lane* holds tasks of the default priority (0) while
//! the pool has only ever seen that priority: a lock-free injector that every
//! submitter pushes into, and one work-stealing deque per worker (of the
//! workers that have one). A worker takes from its own deque, then moves a
//! batch from the injector into it, then steals a batch from another worker's
//! deque, so a task crosses no lock and a worker pays one shared compare-and-
//! swap per batch, and a worker stuck on a long task loses its backlog to the
//! others. The *ordered lane* is the priority-level structure behind one
//! mutex, which also guards both waiter lists. The first push of another
//! priority (or a pool built with the drop-oldest policy) switches the queue
//! to the ordered lane for good: everything in the fast lane moves into it as
//! priority 0, in order, so priorities, aging and eviction keep their exact
//! meaning from then on.
//!
//! Capacity is reserved with an atomic *before* anything else, so a full
//! queue refuses work with one atomic load, no lock and no allocation. The
//! reservation is released only when a worker takes the entry to run it, so
//! the count covers every lane, the workers' deques included: a closed queue
//! lets its workers leave only once it reaches zero.
//!
//! Wake-ups are the expensive part of a pool (an OS unpark costs micro-
//! seconds), so a push wakes a worker only when one is registered idle, and
//! each idle worker is woken at most once per registration: a pool whose
//! workers are all busy pays no wake-up at all.

use std::collections::VecDeque;
use std::task::Waker;

use crate::loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
use crate::loom::sync::{Mutex, RwLock};
use deque::Injector;
pub(crate) use fast::Local;
use fast::Member;

mod deque;
mod fast;
#[cfg(test)]
mod tests;

/// The closed flag, the top bit of `Queue::reserved`.
const CLOSED: usize = 1 << (usize::BITS - 1);

/// The count, the other bits of `Queue::reserved`.
const COUNT: usize = !CLOSED;

/// Levels beyond this many are pruned of empty ones when a new level arrives,
/// so a stream of distinct priorities cannot grow the level list forever.
const MAX_IDLE_LEVELS: usize = 16;

/// One queued job. Kept small: the fast lane stores entries in blocks it
/// allocates as it goes.
#[derive(Debug)]
pub(crate) struct Entry<J> {
    pub(crate) job: J,
    /// When the entry was queued, in nanoseconds on the pool's clock.
    pub(crate) enqueued_nanos: u64,
}

/// An entry of the ordered lane, with what the lane needs to order it.
#[derive(Debug)]
struct Ordered<J> {
    entry: Entry<J>,
    /// Dequeues that had happened when the entry was queued (for aging).
    mark: u64,
    /// Global enqueue order, for FIFO between tasks due at the same count.
    seq: u64,
}

#[derive(Debug)]
struct Level<J> {
    priority: i32,
    entries: VecDeque<Ordered<J>>,
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
    /// The fast lane's shared end, where submitters push.
    injector: Injector<Entry<J>>,
    /// The fast lane's per-worker deques, as others steal from them.
    stealers: RwLock<Vec<Member<J>>>,
    /// Bumped whenever `stealers` changes, so a worker refreshes its copy
    /// only then (reading the lock on every steal would bounce its word
    /// between the workers).
    stealers_version: AtomicU64,
    /// Set for good by the first push the fast lane cannot take.
    ordered: AtomicBool,
    /// `inner.idle.len()`, readable without the lock.
    idle_count: Padded<AtomicUsize>,
    /// `inner.space.len()`, readable without the lock.
    space_count: Padded<AtomicUsize>,
    /// Accepted entries, since the queue was made or its counts reset.
    pushed: Padded<AtomicU64>,
    /// Idle workers woken by a push, since the queue was made or its counts reset.
    wake_ups: AtomicU64,
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
    /// Whether the queue was closed when the room was reserved.
    closed: bool,
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
            }),
            injector: Injector::new(),
            stealers: RwLock::new(Vec::new()),
            stealers_version: AtomicU64::new(0),
            ordered: AtomicBool::new(false),
            idle_count: Padded(AtomicUsize::new(0)),
            space_count: Padded(AtomicUsize::new(0)),
            pushed: Padded(AtomicU64::new(0)),
            wake_ups: AtomicU64::new(0),
        }
    }

    /// This queue with the ordered lane only, from the start (the drop-oldest
    /// policy evicts the oldest of the lowest priority, which needs it).
    pub(crate) fn ordered_only(self) -> Self {
        self.ordered.store(true, Ordering::SeqCst);
        self
    }

    fn lock(&self) -> crate::loom::sync::MutexGuard<'_, Inner<J>> {
        // A panic never happens while the lock is held (no user code runs
        // under it), so a poisoned lock still holds consistent data.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reserves room for one entry, or `None` when the queue is full.
    /// One atomic operation; no lock, no allocation.
    ///
    /// The count and the closed flag share one atomic: a reservation made
    /// before the close comes first in that atomic's order, so a worker that
    /// reads the flag set also reads the reservation in the count, and does
    /// not leave while that entry is on its way. A reservation made after the
    /// close knows it (the push refuses the entry).
    pub(crate) fn try_reserve(&self) -> Option<Reservation<'_, J>> {
        let before = match self.capacity {
            None => self.reserved.fetch_add(1, Ordering::SeqCst),
            Some(capacity) => {
                let mut current = self.reserved.load(Ordering::SeqCst);
                loop {
                    if current & COUNT >= capacity {
                        return None;
                    }
                    match self.reserved.compare_exchange_weak(
                        current,
                        current + 1,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    ) {
                        Ok(before) => break before,
                        Err(actual) => current = actual,
                    }
                }
            }
        };
        Some(Reservation { queue: self, used: false, closed: before & CLOSED != 0 })
    }

    fn release_one(&self) {
        self.reserved.fetch_sub(1, Ordering::SeqCst);
    }

    /// Entries queued (and pushes in flight that already reserved room),
    /// the workers' deques included.
    ///
    /// A bounded queue counts in `reserved` alone. In an unbounded one a
    /// worker with a deque counts what it takes in a counter of its own
    /// (no cache line shared with the submitters is written per task), and
    /// the length is `reserved` less those counts. They are read first: a
    /// take seen there was reserved before it, so `reserved`, read after,
    /// includes it.
    pub(crate) fn len(&self) -> usize {
        self.len_and_closed().0
    }

    /// [`len`](Self::len), and whether the queue is closed, read together.
    fn len_and_closed(&self) -> (usize, bool) {
        let split = |reserved: usize, taken: usize| {
            ((reserved & COUNT).saturating_sub(taken), reserved & CLOSED != 0)
        };
        if self.capacity.is_some() {
            return split(self.reserved.load(Ordering::SeqCst), 0);
        }
        let stealers = self.read_stealers();
        let taken = stealers
            .iter()
            .fold(0_usize, |sum, member| sum.wrapping_add(member.taken.load(Ordering::Acquire)));
        let reserved = self.reserved.load(Ordering::SeqCst);
        drop(stealers);
        split(reserved, taken)
    }

    /// The capacity, `None` when unbounded.
    pub(crate) fn capacity(&self) -> Option<usize> {
        self.capacity
    }

    /// Whether the queue was closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.reserved.load(Ordering::SeqCst) & CLOSED != 0
    }

    /// Entries accepted since the queue was made (or its counts reset).
    pub(crate) fn pushed(&self) -> u64 {
        self.pushed.load(Ordering::Relaxed)
    }

    /// Idle workers a push woke since the queue was made (or its counts reset).
    pub(crate) fn wake_ups(&self) -> u64 {
        self.wake_ups.load(Ordering::Relaxed)
    }

    /// Zeroes the accepted and wake-up counts.
    pub(crate) fn reset_counts(&self) {
        self.pushed.store(0, Ordering::Relaxed);
        self.wake_ups.store(0, Ordering::Relaxed);
    }

    /// Wakes one idle worker, if one is registered, counting it as a wake-up
    /// for new work; whether one was.
    fn wake_one(&self) -> bool {
        let woke = self.wake_one_quietly();
        if woke {
            self.wake_ups.fetch_add(1, Ordering::Relaxed);
        }
        woke
    }

    /// Wakes one idle worker, if one is registered, without counting it (a
    /// wake passed on, or one to share a batch); whether one was.
    fn wake_one_quietly(&self) -> bool {
        let waker = {
            let mut inner = self.lock();
            let waker = inner.idle.pop().map(|(_, waker)| waker);
            self.idle_count.store(inner.idle.len(), Ordering::SeqCst);
            waker
        };
        let woke = waker.is_some();
        if let Some(waker) = waker {
            waker.wake();
        }
        woke
    }

    /// An entry was taken to run: its room is free again, and a submitter
    /// waiting for room is woken.
    ///
    /// The release and a waiter's registration pair up (each followed by a
    /// sequentially consistent fence): a waiter registers, then tries to
    /// reserve; a taker releases, then looks for waiters. Either the
    /// waiter's attempt sees the room or the taker sees the waiter.
    fn taken(&self, local: Option<&Local<'_, J>>) {
        if self.capacity.is_none() {
            // No submitter ever waits for room in an unbounded queue.
            match local {
                Some(local) => local.count_taken(),
                None => self.release_one(),
            }
            return;
        }
        self.release_one();
        fence(Ordering::SeqCst);
        if self.space_count.load(Ordering::SeqCst) > 0 {
            let waiter = {
                let mut inner = self.lock();
                let waiter = inner.space.pop_front().map(|(_, w)| w);
                self.space_count.store(inner.space.len(), Ordering::SeqCst);
                waiter
            };
            if let Some(waiter) = waiter {
                waiter.wake();
            }
        }
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
        if priority == 0 && !self.ordered.load(Ordering::SeqCst) {
            // The fast lane. A reservation made before the close is counted
            // where a worker deciding to leave reads the close (see
            // `try_reserve`); one made after it refuses the entry.
            if reservation.closed {
                return Err(PushError::Closed(item));
            }
            reservation.used = true;
            self.injector.push(Entry { job: into_job(item), enqueued_nanos: now_nanos });
            self.pushed.fetch_add(1, Ordering::Relaxed);
            // Pairs with the fence of a worker registering idle: either the
            // worker's second look finds this entry or this look finds it idle.
            fence(Ordering::SeqCst);
            if self.ordered.load(Ordering::SeqCst) {
                // The queue turned ordered while this entry was on its way.
                self.migrate_stragglers();
            }
            if self.idle_count.load(Ordering::SeqCst) == 0 {
                return Ok(false);
            }
            return Ok(self.wake_one());
        }
        let waker = {
            let mut inner = self.lock();
            if inner.closed {
                drop(inner);
                return Err(PushError::Closed(item));
            }
            reservation.used = true;
            self.make_ordered(&mut inner);
            inner.insert(into_job(item), priority, now_nanos);
            let waker = inner.idle.pop().map(|(_, waker)| waker);
            self.idle_count.store(inner.idle.len(), Ordering::SeqCst);
            waker
        };
        self.pushed.fetch_add(1, Ordering::Relaxed);
        let woke = waker.is_some();
        if let Some(waker) = waker {
            self.wake_ups.fetch_add(1, Ordering::Relaxed);
            waker.wake();
        }
        Ok(woke)
    }

    /// Wakes every idle worker (so they can see a change of size).
    pub(crate) fn wake_idle(&self) {
        let idle = {
            let mut inner = self.lock();
            self.idle_count.store(0, Ordering::SeqCst);
            std::mem::take(&mut inner.idle)
        };
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
        self.make_ordered(&mut inner);
        let Some(evicted) = inner.evict_oldest_lowest() else {
            drop(inner);
            return Err(PushError::Full(item));
        };
        // The evicted entry's room passes to the new one: `reserved` is unchanged.
        inner.insert(into_job(item), priority, now_nanos);
        drop(inner);
        self.pushed.fetch_add(1, Ordering::Relaxed);
        Ok(evicted)
    }

    /// Takes the entry to run next, or registers `waker` as idle worker `id`.
    pub(crate) fn pop_or_register(&self, id: usize, waker: &Waker) -> Pop<J> {
        self.pop_or_register_local(id, waker, None)
    }

    /// [`pop_or_register`](Self::pop_or_register) for a worker with a deque
    /// of its own.
    ///
    /// Registering and a fast push pair up: the worker registers, then
    /// (after a sequentially consistent fence) looks again; a push lands its
    /// entry, then (after the same fence) looks for an idle worker. Either
    /// the second look finds the entry or the push finds the worker.
    ///
    /// Entries the count has but no lane shows are on their way, and each
    /// way ends with a look for an idle worker after the same kind of fence:
    /// a push landing its entry, a batch put into a worker's deque (see
    /// `pop_fast`), a leaving worker's deque handed back. So a worker that
    /// misses them here sleeps only if it will be woken for them. A worker
    /// whose registration a push took (to wake it) after it had found other
    /// work passes that wake on to another idle worker, so the pushed entry
    /// does not wait for this one to finish its task.
    pub(crate) fn pop_or_register_local(
        &self,
        id: usize,
        waker: &Waker,
        local: Option<&Local<'_, J>>,
    ) -> Pop<J> {
        if let Some(entry) = self.pop_local(local) {
            return Pop::Job(entry);
        }
        {
            let mut inner = self.lock();
            match inner.idle.iter_mut().find(|(worker, _)| *worker == id) {
                Some((_, registered)) => registered.clone_from(waker),
                None => inner.idle.push((id, waker.clone())),
            }
            self.idle_count.store(inner.idle.len(), Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        if let Some(entry) = self.pop_local(local) {
            if !self.unregister(id) {
                // A push (or a batch) took this registration to wake this
                // worker, which has found work of its own: pass the wake on.
                self.wake_one_quietly();
            }
            return Pop::Job(entry);
        }
        let (len, closed) = self.len_and_closed();
        if closed {
            if len == 0 {
                self.unregister(id);
                return Pop::Closed;
            }
            // Closed, with entries on their way (a push that got in before
            // the close, a batch between the injector and a deque, a worker
            // handing its deque back): look again soon rather than leave.
            waker.wake_by_ref();
        }
        Pop::Idle
    }

    /// Takes the entry to run next without registering as idle.
    pub(crate) fn pop(&self) -> Option<Entry<J>> {
        self.pop_local(None)
    }

    /// [`pop`](Self::pop) for a worker with a deque of its own (`None`: a
    /// worker without one).
    pub(crate) fn pop_local(&self, local: Option<&Local<'_, J>>) -> Option<Entry<J>> {
        let entry = if self.ordered.load(Ordering::SeqCst) {
            self.pop_ordered()
        } else {
            self.pop_fast(local)
        }?;
        self.taken(local);
        Some(entry)
    }

    /// The ordered lane, after moving in whatever the fast lane still holds
    /// (entries that landed after the switch, a worker's deque).
    fn pop_ordered(&self) -> Option<Entry<J>> {
        let mut inner = self.lock();
        if self.len() > inner.len {
            self.move_fast_lane(&mut inner);
        }
        inner.take_next(self.aging_step)
    }

    /// Removes worker `id` from the idle list (it found work another way, or
    /// is exiting); whether it was still there (`false`: a push, a close or
    /// a batch to share took the registration to wake it).
    pub(crate) fn unregister(&self, id: usize) -> bool {
        let mut inner = self.lock();
        let before = inner.idle.len();
        inner.idle.retain(|(worker, _)| *worker != id);
        self.idle_count.store(inner.idle.len(), Ordering::SeqCst);
        inner.idle.len() != before
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
        // Register first, then look for room again: a worker taking an entry
        // releases its room, then looks for waiters (see `taken`), so either
        // the room is visible here or this waiter is seen there.
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
        self.space_count.store(inner.space.len(), Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if let Some(reservation) = self.try_reserve() {
            if let Some(t) = *ticket {
                inner.space.retain(|(id, _)| *id != t);
                self.space_count.store(inner.space.len(), Ordering::SeqCst);
            }
            *ticket = None;
            drop(inner);
            return Ok(Some(reservation));
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
            let next =
                if was_woken && has_room { inner.space.pop_front().map(|(_, w)| w) } else { None };
            self.space_count.store(inner.space.len(), Ordering::SeqCst);
            next
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
            self.reserved.fetch_or(CLOSED, Ordering::SeqCst);
            self.idle_count.store(0, Ordering::SeqCst);
            self.space_count.store(0, Ordering::SeqCst);
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
    ///
    /// On a closed queue, also every entry still on its way: a fast push
    /// that reserved room before the close lands its entry after it, and a
    /// batch between the injector and a worker's deque (or the deque of a
    /// worker leaving) is in no lane for a moment. The count covers them
    /// all, so the drain looks again until it reaches zero (or a worker took
    /// the entry to run): nothing the close let in can land after the drain
    /// and be lost. A push still making its job holds the drain that long
    /// (the async processor makes it with the user's function).
    pub(crate) fn drain(&self) -> Vec<Entry<J>> {
        let mut out = Vec::new();
        loop {
            let space = {
                let mut inner = self.lock();
                self.move_fast_lane(&mut inner);
                while let Some(entry) = inner.take_next(self.aging_step) {
                    self.release_one();
                    out.push(entry);
                }
                self.space_count.store(0, Ordering::SeqCst);
                std::mem::take(&mut inner.space)
            };
            for (_, waker) in space {
                waker.wake();
            }
            if !self.is_closed() || self.len() == 0 {
                return out;
            }
            crate::loom::thread::yield_now();
        }
    }
}

impl<J> Inner<J> {
    fn insert(&mut self, job: J, priority: i32, now_nanos: u64) {
        let entry = Ordered {
            entry: Entry { job, enqueued_nanos: now_nanos },
            mark: self.pops,
            seq: self.seq,
        };
        self.seq += 1;
        self.len += 1;
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
        Some(entry.entry)
    }

    fn evict_oldest_lowest(&mut self) -> Option<Entry<J>> {
        let level = self.levels.iter_mut().rev().find(|level| !level.entries.is_empty())?;
        let entry = level.entries.pop_front()?;
        self.len -= 1;
        Some(entry.entry)
    }
}
