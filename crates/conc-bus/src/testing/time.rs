//! [`PausedTime`]: a clock that follows tokio's time, so that a backend's
//! leases and delays move with the workers' timers on a paused runtime.

use std::time::Instant;

use conc_core::time::Clock;

/// A [`Clock`] that reads `tokio::time::Instant::now()`.
///
/// Under a paused tokio clock (`#[tokio::test(start_paused = true)]`) it
/// stands still until every task waits on a timer, then jumps to the next
/// timer, together with the workers' sleeps and lease renewals. A
/// [`MemoryQueue`](crate::MemoryQueue) built on it therefore expires leases and
/// releases delayed jobs exactly when the workers' timers say so, and a test
/// of minutes of queue time runs in milliseconds, the same way every time.
/// Outside a paused runtime it is tokio's (precise) view of the system clock.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_bus::testing::PausedTime;
/// use conc_bus::{MemoryQueue, QueueBackend};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), conc_core::config::ConfigError> {
/// let backend = MemoryQueue::builder().clock(PausedTime).build()?;
/// let before = backend.now();
/// tokio::time::sleep(Duration::from_secs(3600)).await; // returns at once: time is paused
/// assert_eq!(backend.now() - before, 3_600_000);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PausedTime;

impl Clock for PausedTime {
    #[inline]
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}
