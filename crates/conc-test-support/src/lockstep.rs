//! Do many waiters retry together? Counting how many attempts land on one instant.
//!
//! A limiter or a lock that refuses many callers at once tells each of them
//! when to come back; if they all sleep exactly that long they retry in
//! lockstep. Tests record every attempt as `(waiter, instant)` and ask a
//! [`Crowds`] how crowded the instants were.

use std::collections::HashMap;

/// How the attempts of many waiters spread over time.
///
/// ```
/// use conc_test_support::lockstep::Crowds;
///
/// // Waiters 0 and 1 try at 0 ms, then both at 100 ms, then at 150 and 190 ms.
/// let attempts = [(0, 0), (1, 0), (0, 100), (1, 100), (0, 150), (1, 190)];
/// let late = Crowds::after(&attempts, 2);
/// assert_eq!((late.largest(), late.instants(), late.attempts()), (1, 2, 2));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Crowds {
    at: HashMap<u128, usize>,
}

impl Crowds {
    /// Counts the attempts of each waiter after its first `skip`, by the
    /// instant they happened. `attempts` is `(waiter, instant)` in the order
    /// the attempts were made; the instant's unit is the caller's (usually
    /// milliseconds of a paused tokio clock).
    pub fn after(attempts: &[(usize, u128)], skip: usize) -> Self {
        let mut made: HashMap<usize, usize> = HashMap::new();
        let mut at: HashMap<u128, usize> = HashMap::new();
        for &(waiter, instant) in attempts {
            let number = made.entry(waiter).or_default();
            *number += 1;
            if *number > skip {
                *at.entry(instant).or_default() += 1;
            }
        }
        Self { at }
    }

    /// The most attempts that landed on one instant (0 when none counted).
    pub fn largest(&self) -> usize {
        self.at.values().copied().max().unwrap_or(0)
    }

    /// How many distinct instants the counted attempts landed on.
    pub fn instants(&self) -> usize {
        self.at.len()
    }

    /// How many attempts were counted.
    pub fn attempts(&self) -> usize {
        self.at.values().sum()
    }
}
