//! Fencing tokens.

use std::fmt;

/// A fencing token: a number handed out with every acquisition of a lock
/// name that is greater than every token handed out for that name before.
///
/// Pass it with every write to the resource the lock protects, and have the
/// resource refuse a write whose fence is lower than the highest it has seen.
/// That is what keeps a holder that paused past its time to live (a GC pause,
/// a stopped VM) from overwriting the work of the holder that came after it.
///
/// # Examples
///
/// ```
/// use conc_lock::Fence;
///
/// let first = Fence::new(7);
/// let second = Fence::new(8);
/// assert!(second > first);
/// assert_eq!(second.get(), 8);
/// assert_eq!(second.to_string(), "8");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fence(u64);

impl Fence {
    /// A fence with the value `value`.
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// The fence's value.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Fence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}
