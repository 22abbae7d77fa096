//! The work-stealing deques of the fast lane: crossbeam-deque's, or, under
//! `--cfg conc_loom`, a mutex-based stand-in with the same interface, so the
//! loom models check the queue's own protocol (idle wake-ups, room for
//! waiting submitters, close and drain) around them. crossbeam-deque's own
//! lock-free code is tested by its authors; it does not run under loom.

#[cfg(not(all(test, conc_loom)))]
pub(crate) use crossbeam_deque::{Injector, Steal, Stealer, Worker};

#[cfg(all(test, conc_loom))]
pub(crate) use model::{Injector, Steal, Stealer, Worker};

#[cfg(all(test, conc_loom))]
mod model {
    use std::collections::VecDeque;

    use loom::sync::{Arc, Mutex};

    /// The outcome of a steal.
    #[allow(dead_code, reason = "the stand-in never asks for a retry")]
    pub(crate) enum Steal<T> {
        Empty,
        Success(T),
        Retry,
    }

    fn take<T>(queue: &Mutex<VecDeque<T>>) -> Steal<T> {
        queue.lock().unwrap().pop_front().map_or(Steal::Empty, Steal::Success)
    }

    /// Moves up to half of `from` (at least one) into `to`; the first one back.
    fn batch<T>(from: &Mutex<VecDeque<T>>, to: &Worker<T>) -> Steal<T> {
        // One lock at a time: two workers stealing from each other never
        // wait on each other.
        let (first, moved) = {
            let mut from = from.lock().unwrap();
            let Some(first) = from.pop_front() else { return Steal::Empty };
            let more = from.len().div_ceil(2);
            (first, from.drain(..more).collect::<Vec<_>>())
        };
        to.queue.lock().unwrap().extend(moved);
        Steal::Success(first)
    }

    pub(crate) struct Injector<T> {
        queue: Mutex<VecDeque<T>>,
    }

    impl<T> Injector<T> {
        pub(crate) fn new() -> Self {
            Self { queue: Mutex::new(VecDeque::new()) }
        }
        pub(crate) fn push(&self, value: T) {
            self.queue.lock().unwrap().push_back(value);
        }
        pub(crate) fn steal(&self) -> Steal<T> {
            take(&self.queue)
        }
        pub(crate) fn steal_batch_and_pop(&self, to: &Worker<T>) -> Steal<T> {
            batch(&self.queue, to)
        }
        pub(crate) fn is_empty(&self) -> bool {
            self.queue.lock().unwrap().is_empty()
        }
    }

    pub(crate) struct Worker<T> {
        queue: Arc<Mutex<VecDeque<T>>>,
    }

    impl<T> Worker<T> {
        pub(crate) fn new_fifo() -> Self {
            Self { queue: Arc::new(Mutex::new(VecDeque::new())) }
        }
        pub(crate) fn pop(&self) -> Option<T> {
            self.queue.lock().unwrap().pop_front()
        }
        pub(crate) fn is_empty(&self) -> bool {
            self.queue.lock().unwrap().is_empty()
        }
        pub(crate) fn stealer(&self) -> Stealer<T> {
            Stealer { queue: Arc::clone(&self.queue) }
        }
    }

    pub(crate) struct Stealer<T> {
        queue: Arc<Mutex<VecDeque<T>>>,
    }

    impl<T> Clone for Stealer<T> {
        fn clone(&self) -> Self {
            Self { queue: Arc::clone(&self.queue) }
        }
    }

    impl<T> Stealer<T> {
        pub(crate) fn steal(&self) -> Steal<T> {
            take(&self.queue)
        }
        pub(crate) fn steal_batch_and_pop(&self, to: &Worker<T>) -> Steal<T> {
            batch(&self.queue, to)
        }
        pub(crate) fn is_empty(&self) -> bool {
            self.queue.lock().unwrap().is_empty()
        }
    }

    impl<T> std::fmt::Debug for Injector<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Injector")
        }
    }
    impl<T> std::fmt::Debug for Worker<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Worker")
        }
    }
    impl<T> std::fmt::Debug for Stealer<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Stealer")
        }
    }
}
