//! [`RecentLog`]: a shared, bounded log that keeps the newest entries.
//!
//! The storage under `conc-pipeline`'s and `conc-fan`'s dead letter queues:
//! memory stays bounded whatever the rate of entries, and nothing leaves
//! unnoticed, since every entry pushed out to make room is counted.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A bounded log keeping the newest `capacity` entries: when full, the
/// oldest entry is dropped and counted in [`dropped`](Self::dropped). Clones
/// share the log.
///
/// # Examples
///
/// ```
/// use conc_core::recent::RecentLog;
///
/// let log = RecentLog::new(2);
/// let writer = log.clone();
/// for entry in ["a", "b", "c"] {
///     writer.push(entry);
/// }
/// assert_eq!(log.dropped(), 1, "\"a\" made room for \"c\"");
/// assert_eq!(log.take(), ["b", "c"]);
/// assert!(log.is_empty());
/// ```
pub struct RecentLog<T> {
    shared: Arc<Shared<T>>,
}

struct Shared<T> {
    capacity: usize,
    state: Mutex<State<T>>,
}

struct State<T> {
    entries: VecDeque<T>,
    dropped: u64,
}

impl<T> RecentLog<T> {
    /// A log keeping at most `capacity` entries. Memory grows with the
    /// entries held, not with `capacity`, so a large capacity costs nothing
    /// up front. A capacity of zero keeps nothing: every entry pushed is
    /// dropped at once and counted.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_core::recent::RecentLog;
    ///
    /// let log = RecentLog::new(0);
    /// log.push("kept nowhere");
    /// assert!(log.is_empty());
    /// assert_eq!(log.dropped(), 1);
    /// ```
    pub fn new(capacity: usize) -> Self {
        let state = State { entries: VecDeque::new(), dropped: 0 };
        Self { shared: Arc::new(Shared { capacity, state: Mutex::new(state) }) }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // No caller code runs under the lock, so a poisoned lock still holds
        // a consistent log.
        self.shared.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends `entry`, dropping (and counting) the oldest when full.
    pub fn push(&self, entry: T) {
        let mut state = self.lock();
        if self.shared.capacity == 0 {
            state.dropped += 1;
            return;
        }
        if state.entries.len() == self.shared.capacity {
            state.entries.pop_front();
            state.dropped += 1;
        }
        state.entries.push_back(entry);
    }

    /// Removes and returns every entry, oldest first.
    pub fn take(&self) -> Vec<T> {
        self.lock().entries.drain(..).collect()
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many entries were dropped because the log was full.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// The most entries it keeps.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }
}

impl<T> Clone for RecentLog<T> {
    fn clone(&self) -> Self {
        Self { shared: Arc::clone(&self.shared) }
    }
}

impl<T> fmt::Debug for RecentLog<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("RecentLog")
            .field("capacity", &self.shared.capacity)
            .field("len", &state.entries.len())
            .field("dropped", &state.dropped)
            .finish()
    }
}
