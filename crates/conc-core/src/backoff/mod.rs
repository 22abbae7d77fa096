//! Backoff schedules: how long to wait before each retry, and how many retries to make.
//!
//! # Overview
//!
//! This is the one backoff implementation of the toolkit: resilience retries, bus job backoff and
//! process restart policies all take a [`Backoff`]. A policy is built once from a strategy
//! constructor and a few settings, validated by [`BackoffBuilder::build`], and then hands each
//! retry loop its own schedule, a [`Delays`] iterator:
//!
//! ```
//! use std::time::Duration;
//!
//! use conc_core::backoff::{Backoff, Jitter};
//!
//! let backoff = Backoff::exponential(Duration::from_millis(100)) // factor defaults to 2.0
//!     .factor(2.0)
//!     .jitter(Jitter::Full)
//!     .max_delay(Duration::from_secs(10))
//!     .max_retries(5) // or .max_attempts(6), which counts the first call
//!     .seed(42) // reproducible schedule
//!     .build()?;
//! let delays: Vec<Duration> = backoff.delays().collect();
//! assert_eq!(delays.len(), 5);
//! assert!(delays.iter().all(|delay| *delay <= Duration::from_secs(10)));
//! # Ok::<(), conc_core::config::ConfigError>(())
//! ```
//!
//! The strategies, with `n` the 0-based retry index (formulas before the cap and jitter):
//!
//! | constructor | delay at index `n` |
//! |---|---|
//! | [`Backoff::fixed(delay)`](Backoff::fixed) | `delay` |
//! | [`Backoff::linear(initial, increment)`](Backoff::linear) | `initial + n * increment` |
//! | [`Backoff::exponential(initial)`](Backoff::exponential) + [`.factor(f)`](BackoffBuilder::factor) | `initial * f^n` (`f` defaults to 2.0) |
//! | [`Backoff::fibonacci(initial)`](Backoff::fibonacci) | `initial * F(n + 1)`: 1, 1, 2, 3, 5, 8 … times `initial` |
//! | [`Backoff::decorrelated_jitter(base)`](Backoff::decorrelated_jitter) | `random(base, 3 * d(n - 1))` with `d(-1) = base` (AWS) |
//! | [`Backoff::custom(f)`](Backoff::custom) | `f(n)` |
//!
//! # Numbering
//!
//! Retry indices are 0-based. The delay at index `n` is waited after attempt `n + 1` failed and
//! before attempt `n + 2`, that is before retry `n + 1`:
//!
//! ```text
//! attempt 1 (the first call) → fails → wait delay[0] → attempt 2 (retry 1)
//!                            → fails → wait delay[1] → attempt 3 (retry 2) …
//! ```
//!
//! [`Backoff::base_delay(n)`](Backoff::base_delay), [`Backoff::delays_from(n, …)`](Backoff::delays_from),
//! the argument of a [`custom`](Backoff::custom) function and
//! [`Delays::retries_so_far`] all use this index. The tables below label rows "retry 1, retry 2, …".
//!
//! # `max_attempts` versus `max_retries`
//!
//! Libraries disagree on what "3 retries" means (Resilience4j's `maxAttempts` counts the first
//! call, Polly's `MaxRetryAttempts` does not), so both names exist and mean different things:
//!
//! - [`max_retries(n)`](BackoffBuilder::max_retries) allows `n` retries *after* the first call:
//!   the schedule yields `n` delays and the operation runs at most `n + 1` times.
//!   `max_retries(0)` never retries.
//! - [`max_attempts(n)`](BackoffBuilder::max_attempts) allows `n` calls *in total*, the first one
//!   included: the schedule yields `n - 1` delays. `max_attempts(1)` equals `max_retries(0)`;
//!   `max_attempts(0)` is an error, since the first call always happens.
//!
//! Setting both on one builder is an error (a [`ConfigError`](crate::config::ConfigError) naming `max_attempts`). Setting neither
//! gives an infinite schedule. [`Backoff::max_retries`] and [`Backoff::max_attempts`] report the
//! limit in both terms, whichever was set.
//!
//! # Cap and jitter
//!
//! With `raw` the strategy's delay and `cap` the [`max_delay`](BackoffBuilder::max_delay)
//! (unlimited by default), each delay is computed as:
//!
//! ```text
//! d     = min(raw, cap)                    // cap before jitter, as AWS does
//! delay = min(jitter(d), cap)              // and after: no delay ever exceeds the cap
//!
//! Jitter::None  : jitter(d) = d                              (the default)
//! Jitter::Full  : jitter(d) = random(0, d)                   in [0, d]
//! Jitter::Equal : jitter(d) = d/2 + random(0, d/2)           in [d/2, d]
//! ```
//!
//! Capping first keeps full jitter uniform over `[0, min(raw, cap)]` instead of piling delays up
//! at the cap. Decorrelated jitter is random by construction: it is
//! `delay = min(cap, random(base, 3 * previous))`, and combining it with a [`Jitter`] other than
//! `None` is an error (a [`ConfigError`](crate::config::ConfigError) naming `jitter`). [`Backoff::delay_bounds`] gives
//! the range each delay can take.
//!
//! # Golden tables
//!
//! All with a first delay of 100 ms. These exact values are asserted by the crate's tests.
//!
//! | retry | index | fixed | linear (+100 ms) | exponential (×2) | fibonacci | exponential (×2, max 1 s) |
//! |---|---|---|---|---|---|---|
//! | 1 | 0 | 100ms | 100ms | 100ms | 100ms | 100ms |
//! | 2 | 1 | 100ms | 200ms | 200ms | 100ms | 200ms |
//! | 3 | 2 | 100ms | 300ms | 400ms | 200ms | 400ms |
//! | 4 | 3 | 100ms | 400ms | 800ms | 300ms | 800ms |
//! | 5 | 4 | 100ms | 500ms | 1.6s | 500ms | 1s |
//! | 6 | 5 | 100ms | 600ms | 3.2s | 800ms | 1s |
//! | 7 | 6 | 100ms | 700ms | 6.4s | 1.3s | 1s |
//! | 8 | 7 | 100ms | 800ms | 12.8s | 2.1s | 1s |
//!
//! The builders: `Backoff::fixed(100ms)`, `Backoff::linear(100ms, 100ms)`,
//! `Backoff::exponential(100ms)`, `Backoff::fibonacci(100ms)` and
//! `Backoff::exponential(100ms).max_delay(1s)`.
//!
//! Random schedules are reproducible with a seed, but their values are an implementation detail;
//! what is guaranteed is the range of each delay ([`Backoff::delay_bounds`]). For
//! `Backoff::decorrelated_jitter(100ms).max_delay(10s)` and for
//! `Backoff::exponential(100ms).max_delay(1s)` with jitter:
//!
//! | retry | index | decorrelated (base 100 ms, max 10 s) | exponential, max 1 s, `Full` | exponential, max 1 s, `Equal` |
//! |---|---|---|---|---|
//! | 1 | 0 | 100ms ..= 300ms | 0ns ..= 100ms | 50ms ..= 100ms |
//! | 2 | 1 | 100ms ..= 900ms | 0ns ..= 200ms | 100ms ..= 200ms |
//! | 3 | 2 | 100ms ..= 2.7s | 0ns ..= 400ms | 200ms ..= 400ms |
//! | 4 | 3 | 100ms ..= 8.1s | 0ns ..= 800ms | 400ms ..= 800ms |
//! | 5 | 4 | 100ms ..= 10s | 0ns ..= 1s | 500ms ..= 1s |
//! | 6 | 5 | 100ms ..= 10s | 0ns ..= 1s | 500ms ..= 1s |
//!
//! # Randomness and resuming
//!
//! Jitter draws from `SplitMix64`, a small non-cryptographic generator. With
//! [`BackoffBuilder::seed`] every [`Backoff::delays`] call yields the same schedule, which is
//! what tests want; [`Backoff::delays_seeded`] picks the seed per call. Without a seed, each
//! [`Backoff::delays`] call draws a fresh seed from a thread-local stream started from std's
//! randomly keyed `RandomState`, so callers that fail together do not retry together. Drawing
//! the seed takes no lock and touches no shared atomic; a [`custom`](Backoff::custom) policy
//! does bump the reference count of its function once per schedule.
//!
//! The random number for retry index `n` depends only on the seed and `n`, so a schedule can be
//! stopped and resumed: store [`Delays::retries_so_far`] and [`Delays::previous`] (a durable job
//! queue stores the attempt count and the last delay anyway) and continue with
//! [`Backoff::delays_from`].
//!
//! # Validation and saturation
//!
//! [`BackoffBuilder::build`] rejects, with a [`ConfigError`](crate::config::ConfigError) that names the setting and its
//! value: a zero duration, a factor below 1.0 or not finite (NaN included), a factor on a strategy
//! other than exponential, a `max_delay` below the first delay, `max_attempts(0)`, both limits at
//! once, and jitter on decorrelated jitter. Nothing is clamped silently.
//!
//! A [`Duration`](std::time::Duration) cannot be negative. Configuration that holds seconds as
//! floats should convert them with [`Duration::try_from_secs_f64`](std::time::Duration::try_from_secs_f64),
//! which returns an error for negative, NaN and too large values where `Duration::from_secs_f64`
//! would panic; report that error to the user as the setting's error.
//!
//! Once built, a policy never panics or overflows: at huge retry indices every strategy
//! saturates at `max_delay`, or at [`Duration::MAX`](std::time::Duration::MAX) when uncapped, and
//! [`Backoff::base_delay`] takes constant time for any index.
//!
//! # Example: a retry loop
//!
//! ```
//! use std::time::Duration;
//!
//! use conc_core::backoff::Backoff;
//!
//! /// Runs `op` until it succeeds or the schedule is exhausted, sleeping with `sleep`.
//! fn retry<T, E>(
//!     backoff: &Backoff,
//!     mut sleep: impl FnMut(Duration),
//!     mut op: impl FnMut() -> Result<T, E>,
//! ) -> Result<T, E> {
//!     let mut delays = backoff.delays();
//!     loop {
//!         match op() {
//!             Ok(value) => return Ok(value),
//!             Err(err) => match delays.next() {
//!                 Some(delay) => sleep(delay),
//!                 None => return Err(err),
//!             },
//!         }
//!     }
//! }
//!
//! let backoff = Backoff::exponential(Duration::from_millis(100)).max_attempts(3).build()?;
//! let mut calls = 0;
//! let mut slept = Vec::new();
//! let result: Result<(), &str> = retry(&backoff, |delay| slept.push(delay), || {
//!     calls += 1;
//!     Err("unavailable")
//! });
//! assert_eq!(result, Err("unavailable"));
//! assert_eq!(calls, 3); // max_attempts counts the first call
//! assert_eq!(slept, [Duration::from_millis(100), Duration::from_millis(200)]);
//! # Ok::<(), conc_core::config::ConfigError>(())
//! ```

mod builder;
mod delays;
mod jitter;
mod math;
mod policy;
mod rng;
mod stagger;
mod strategy;

pub use builder::BackoffBuilder;
pub use delays::Delays;
pub use jitter::Jitter;
pub use policy::Backoff;
pub use stagger::{MAX_STAGGER, stagger};
pub use strategy::{DelayFn, Strategy};
