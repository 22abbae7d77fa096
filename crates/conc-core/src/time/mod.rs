//! Clocks: precise, coarse (cached for hot paths) and manual (for tests).
//!
//! Every component that decides from time takes a [`Clock`]. Three are provided:
//!
//! | clock | a read costs | resolution | use it for |
//! |---|---|---|---|
//! | [`SystemClock`] | one `Instant::now()` (a vDSO call, ~20 ns) | the OS's | measuring latency |
//! | [`CoarseClock`] | one atomic load (~1 ns) | [`DEFAULT_RESOLUTION`] (1 ms) by default | hot-path decisions: rate limits, breaker windows, idle timeouts |
//! | [`ManualClock`] | one atomic load | exact, moved by hand | deterministic tests |
//!
//! Components read the clock they are given through a [`Timeline`]:
//! nanoseconds since the clock's origin as a `u64`, never going back. A
//! builder takes it one way everywhere, `.clock(c)`, defaulting to the
//! process-wide [`CoarseClock::global`].
//!
//! The costs are measured by `cargo xtask bench core` (see `docs/performance.md`).
//!
//! Async waiting is not this module's job: components wait with `tokio::time`,
//! so their tests run on tokio's paused clock, and decide with a `Clock`, so
//! their decision logic runs on a [`ManualClock`].
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use conc_core::time::{Clock, ManualClock};
//!
//! /// A component that decides from a clock it is given.
//! struct Cooldown<C: Clock> { clock: C, until: std::time::Instant }
//!
//! impl<C: Clock> Cooldown<C> {
//!     fn new(clock: C, period: Duration) -> Self {
//!         let until = clock.now() + period;
//!         Self { clock, until }
//!     }
//!     fn is_over(&self) -> bool { self.clock.now() >= self.until }
//! }
//!
//! let clock = ManualClock::new();
//! let cooldown = Cooldown::new(clock.clone(), Duration::from_secs(30));
//! assert!(!cooldown.is_over());
//! clock.advance(Duration::from_secs(30));
//! assert!(cooldown.is_over());
//! ```

mod cell;
mod clock;
mod coarse;
mod error;
mod manual;
mod timeline;

pub use clock::{Clock, SystemClock, saturating_nanos};
pub use coarse::{CoarseClock, DEFAULT_RESOLUTION, MAX_RESOLUTION, MIN_RESOLUTION};
pub use error::ClockError;
pub use manual::ManualClock;
pub use timeline::Timeline;

#[cfg(test)]
mod tests;
