//! The fast lane: a lock-free injector every submitter pushes into and a
//! work-stealing deque per worker, for the tasks of the default priority
//! while the queue has seen no other (see the module above for the switch to
//! the ordered lane).

use std::cell::RefCell;

use super::deque::{Steal, Stealer, Worker};
use super::{Entry, Inner, Padded, Queue};
use crate::loom::sync::Arc;
use crate::loom::sync::atomic::{AtomicUsize, Ordering, fence};

/// A worker with a deque of its own, as the queue lists it.
#[derive(Debug)]
pub(super) struct Member<J> {
    pub(super) id: usize,
    pub(super) stealer: Stealer<Entry<J>>,
    /// Entries this worker took to run, in an unbounded queue (see `len`).
    pub(super) taken: Arc<Padded<AtomicUsize>>,
}

/// A worker's own deque in the fast lane. Dropping it (the worker leaves)
/// moves what it still holds back into the queue.
#[derive(Debug)]
pub(crate) struct Local<'a, J> {
    queue: &'a Queue<J>,
    id: usize,
    deque: Worker<Entry<J>>,
    /// Entries this worker took to run; only this worker writes it.
    taken: Arc<Padded<AtomicUsize>>,
    /// The other workers' stealers as of a version of the list.
    victims: RefCell<(u64, Vec<Stealer<Entry<J>>>)>,
}

/// A worker folds its count of taken entries into `Queue::reserved` every
/// this many takes. `reserved` only grows with pushes otherwise (a worker's
/// takes are subtracted from it by `len`), and its count must never carry
/// into the closed flag: with the folds it stays below the entries queued
/// plus this many per worker, whatever the number of pushes, on 32-bit
/// targets too.
pub(super) const FOLD_EVERY: usize = 1 << 12;

impl<J> Local<'_, J> {
    /// Counts one entry taken to run (single writer: no locked instruction,
    /// but for a fold every [`FOLD_EVERY`] takes).
    pub(super) fn count_taken(&self) {
        let taken = self.taken.load(Ordering::Relaxed).wrapping_add(1);
        if taken < FOLD_EVERY {
            self.taken.store(taken, Ordering::Release);
            return;
        }
        // Under the write lock, as the leaving worker's fold: `len` reads
        // the counts and `reserved` under the read lock, so it sees the
        // takes in one place or the other, never in both or neither.
        let _members =
            self.queue.stealers.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.queue.reserved.fetch_sub(taken, Ordering::SeqCst);
        self.taken.store(0, Ordering::Release);
    }

    /// Whether work may be waiting where this worker can take it (a hint
    /// for spinning; taking decides).
    pub(crate) fn work_visible(&self) -> bool {
        let queue = self.queue;
        !self.deque.is_empty()
            || !queue.injector.is_empty()
            || (queue.ordered.load(Ordering::Relaxed) && queue.len() > 0)
            || self.victims.borrow().1.iter().any(|stealer| !stealer.is_empty())
    }

    /// Steals a batch from another worker's deque into this one (the other
    /// workers in turn, starting after this one).
    fn steal_from_others(&self) -> Option<Entry<J>> {
        let version = self.queue.stealers_version.load(Ordering::Acquire);
        let mut victims = self.victims.borrow_mut();
        if victims.0 != version {
            let stealers = self.queue.read_stealers();
            let (after, before) =
                stealers.split_at(stealers.partition_point(|member| member.id <= self.id));
            victims.1 = after
                .iter()
                .chain(before)
                .filter(|member| member.id != self.id)
                .map(|member| member.stealer.clone())
                .collect();
            victims.0 = version;
        }
        victims
            .1
            .iter()
            .find_map(|stealer| first_steal(|| stealer.steal_batch_and_pop(&self.deque)))
    }
}

impl<J> Drop for Local<'_, J> {
    fn drop(&mut self) {
        // Leave the list and fold the count into `reserved` in one step,
        // under the write lock, so `len` sees one or the other, never both.
        self.queue.write_stealers(|stealers| {
            stealers.retain(|member| member.id != self.id);
            self.queue.reserved.fetch_sub(self.taken.load(Ordering::Relaxed), Ordering::SeqCst);
        });
        let mut moved = false;
        while let Some(entry) = self.deque.pop() {
            moved = true;
            if self.queue.ordered.load(Ordering::SeqCst) {
                let mut inner = self.queue.lock();
                inner.insert(entry.job, 0, entry.enqueued_nanos);
            } else {
                self.queue.injector.push(entry);
            }
        }
        if moved {
            // Still counted in `reserved`: the other workers take them.
            self.queue.migrate_stragglers();
            fence(Ordering::SeqCst);
            self.queue.wake_one();
        }
    }
}

impl<J> Queue<J> {
    /// A deque of its own for worker `id`, from which the others can steal.
    pub(crate) fn local(&self, id: usize) -> Local<'_, J> {
        let deque = Worker::new_fifo();
        let taken = Arc::new(Padded(AtomicUsize::new(0)));
        self.write_stealers(|stealers| {
            let at = stealers.partition_point(|member| member.id < id);
            let member = Member { id, stealer: deque.stealer(), taken: Arc::clone(&taken) };
            stealers.insert(at, member);
        });
        Local { queue: self, id, deque, taken, victims: RefCell::new((u64::MAX, Vec::new())) }
    }

    /// Changes the stealer list (kept sorted by worker id).
    fn write_stealers(&self, change: impl FnOnce(&mut Vec<Member<J>>)) {
        let mut stealers = self.stealers.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        change(&mut stealers);
        self.stealers_version.fetch_add(1, Ordering::Release);
    }

    pub(super) fn read_stealers(&self) -> crate::loom::sync::RwLockReadGuard<'_, Vec<Member<J>>> {
        self.stealers.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Switches to the ordered lane for good (under the lock), moving the
    /// fast lane's entries into it as priority 0, oldest first: the workers'
    /// deques (filled from the injector earlier) before the injector.
    pub(super) fn make_ordered(&self, inner: &mut Inner<J>) {
        let was_ordered = self.ordered.swap(true, Ordering::SeqCst);
        // Pairs with the fence of a fast push: an entry that push landed
        // before it read `ordered` as unset is visible from here.
        fence(Ordering::SeqCst);
        if !was_ordered || !self.injector.is_empty() {
            self.move_fast_lane(inner);
        }
    }

    /// Moves every entry of the fast lane into the ordered lane (under the lock).
    pub(super) fn move_fast_lane(&self, inner: &mut Inner<J>) {
        let stealers = self.read_stealers();
        for Member { stealer, .. } in stealers.iter() {
            drain_steals(
                || stealer.steal(),
                |entry| inner.insert(entry.job, 0, entry.enqueued_nanos),
            );
        }
        drop(stealers);
        drain_steals(
            || self.injector.steal(),
            |entry| inner.insert(entry.job, 0, entry.enqueued_nanos),
        );
    }

    /// Moves fast-lane entries that landed after the switch to the ordered lane.
    pub(super) fn migrate_stragglers(&self) {
        if self.ordered.load(Ordering::SeqCst) {
            let mut inner = self.lock();
            self.move_fast_lane(&mut inner);
        }
    }

    /// The fast lane: the worker's own deque, a batch from the injector, a
    /// batch stolen from another worker.
    ///
    /// A batch that leaves entries in the worker's deque wakes one idle
    /// worker, if there is one, to steal some. This is what keeps them from
    /// waiting behind a long task: while the batch is on its way (taken from
    /// the injector or another deque, not yet in this one) it is in no lane,
    /// and a worker looking then finds nothing and goes to sleep. The batch
    /// landing and a worker registering idle pair up (each followed by a
    /// sequentially consistent fence): either that worker's second look
    /// finds the batch or this look finds the worker idle.
    pub(super) fn pop_fast(&self, local: Option<&Local<'_, J>>) -> Option<Entry<J>> {
        let Some(local) = local else {
            if let Some(entry) = first_steal(|| self.injector.steal()) {
                return Some(entry);
            }
            let stealers = self.read_stealers();
            return stealers.iter().find_map(|member| first_steal(|| member.stealer.steal()));
        };
        if let Some(entry) = local.deque.pop() {
            return Some(entry);
        }
        let entry = first_steal(|| self.injector.steal_batch_and_pop(&local.deque))
            .or_else(|| local.steal_from_others())?;
        if local.deque.is_empty() {
            return Some(entry);
        }
        fence(Ordering::SeqCst);
        if self.idle_count.load(Ordering::SeqCst) > 0 {
            self.wake_one_quietly();
        }
        Some(entry)
    }
}

/// Steals until `steal` comes back empty, handing each entry to `each`.
fn drain_steals<T>(steal: impl Fn() -> Steal<T>, mut each: impl FnMut(T)) {
    loop {
        match steal() {
            Steal::Success(entry) => each(entry),
            Steal::Empty => return,
            Steal::Retry => std::hint::spin_loop(),
        }
    }
}

/// The first entry `steal` gets, retrying while it races; `None` when empty.
fn first_steal<T>(steal: impl Fn() -> Steal<T>) -> Option<T> {
    loop {
        match steal() {
            Steal::Success(entry) => return Some(entry),
            Steal::Empty => return None,
            Steal::Retry => std::hint::spin_loop(),
        }
    }
}
