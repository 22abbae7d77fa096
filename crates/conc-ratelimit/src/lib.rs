//! Rate limiters: GCRA (the default), token bucket, leaky bucket, sliding
//! window; keyed with automatic eviction; Laravel-style named limiters.
//!
//! # Overview
//!
//! | type | algorithm | state | use it for |
//! |---|---|---|---|
//! | [`Gcra`] | generic cell rate algorithm | one `AtomicU64` | the default: N per period with a burst, lock-free |
//! | [`Keyed`] | GCRA per key | the key + 8 bytes, per key, plus table slack (19–39 B for `u64` keys) | per user / IP / token limits; idle keys evicted by themselves |
//! | [`TokenBucket`] | token bucket, discrete refill | one `AtomicU64` | "R tokens every interval, at most C" |
//! | [`LeakyBucket`] | leaky bucket as a queue | a bounded queue | shaping: work leaves at a fixed rate |
//! | [`SlidingWindow`] | sliding window counter | 24 bytes of counters | about N in any window, O(1) memory |
//! | [`SlidingLog`] | sliding log | ≤ N entries of 16 bytes (queue capacity up to 2×) | never more than N in any window, exactly |
//! | [`RateLimiter`] | fixed window per key (Laravel) | one window per key | named limiters, atomic `attempt`, all-or-nothing limits, [`Decisions`] headers |
//!
//! Every limiter has the same method family: `try_acquire(n)` (non-blocking;
//! a refusal says exactly how long until the same call would succeed),
//! `acquire(n).await` (waits; cancellation-safe, a dropped wait consumes
//! nothing), `try_acquire_batch(max)` (takes what is available, up to `max`),
//! state queries (`remaining`, `retry_after`, `reset_after`) and `reset`.
//! Asking for more than a limiter can ever admit at once is a typed error
//! ([`RateLimitError::ExceedsCapacity`]), never a wait that lasts forever.
//! Every limiter but [`RateLimiter`] implements the [`Limiter`] trait (the
//! direct ones with the key `()`), so generic code and the tower layer take
//! any of them. Invalid settings are refused with conc-core's
//! [`ConfigError`](conc_core::config::ConfigError), naming field, value and rule.
//!
//! Decisions read a [`Clock`](conc_core::time::Clock): the process-wide
//! [`CoarseClock`](conc_core::time::CoarseClock) (one atomic load, 1 ms
//! resolution) by default, a [`ManualClock`](conc_core::time::ManualClock) in
//! tests, or [`TokioClock`] to follow tokio's paused time. Every limiter takes
//! its clock one way, `.clock(c)` on its builder
//! (`Gcra::builder(quota).clock(c).build()`,
//! `SlidingLog::builder(limit, window).clock(c).build()?`, …); the short
//! constructors (`Gcra::new(quota)`) take the default. Readings are clamped
//! so that a clock stepping backwards never panics and never refuses what an
//! earlier reading admitted. Times are exact integer nanoseconds and saturate
//! instead of overflowing.
//!
//! # Metrics and tracing
//!
//! Every limiter implements `conc_core::metrics::MetricsSource`
//! (`metrics()`, `reset_metrics()`). [`Gcra`], [`TokenBucket`],
//! [`LeakyBucket`], [`SlidingWindow`], [`SlidingLog`] and `RedisLimiter`
//! keep allowed / rejected / waiting counts, read as a [`LimiterMetrics`];
//! [`Keyed`] the same counts and its keys, evictions and sweeps, as a
//! [`KeyedMetrics`]; [`RateLimiter`] a [`NamedMetrics`]. Allowed and rejected are striped
//! over cache-line padded per-thread slots, so counting an admission does not
//! make threads contend; `waiting` is a gauge of the `acquire` (or
//! `LeakyBucket::enqueue`) futures pending now, released when the future
//! completes or is dropped.
//!
//! Through the `metrics` facade (names in `conc_core::metrics`):
//! `conc.ratelimit.permitted` and `conc.ratelimit.rejected` from named-limiter
//! checks (labelled `limiter`), `conc.ratelimit.rejected` from refusals of
//! every limiter, `conc.ratelimit.waiting` (gauge) while a caller waits,
//! `conc.ratelimit.keys`, `conc.ratelimit.evicted` and
//! `conc.ratelimit.sweeps` after each keyed sweep, and
//! `conc.ratelimit.wait` for every `acquire` that had to wait. Admissions of
//! the direct limiters and `Keyed` reach the facade only through the
//! snapshot's `allowed` (a facade call per admitted check would cost as much
//! as the check). Sweeps and rejections in the tower layer are traced at
//! `trace` / `debug` level.
//!
//! # Feature flags
//!
//! - `tower`: [`RateLimitLayer`] and the service [`RateLimit`] (module
//!   [`rate_limit`], future at `rate_limit::future::ResponseFuture`), tower
//!   middleware over any shared [`Limiter`].
//!
//! - `redis`: [`RedisLimiter`], GCRA (one Lua script, server clock) and
//!   Laravel's fixed window in Redis, with a fail-open / fail-closed policy.
//!
//! The in-memory limiters are always available.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use conc_core::time::ManualClock;
//! use conc_ratelimit::{Gcra, Keyed, Quota, RateLimitError};
//!
//! let clock = ManualClock::new();
//!
//! // 10 requests per second, bursts of up to 20.
//! let api = Gcra::builder(Quota::per_second(10)?.with_burst(20)?).clock(clock.clone()).build();
//! api.try_acquire(20)?;
//! match api.try_acquire(1) {
//!     Err(RateLimitError::Limited { retry_after }) => assert_eq!(retry_after, Duration::from_millis(100)),
//!     other => panic!("expected a refusal, got {other:?}"),
//! }
//!
//! // 5 logins per minute per user name.
//! let logins = Keyed::builder(Quota::per_minute(5)?).clock(clock.clone()).build();
//! for _ in 0..5 {
//!     logins.try_acquire(&"mallory", 1)?;
//! }
//! assert!(logins.try_acquire(&"mallory", 1).is_err());
//! assert!(logins.try_acquire(&"alice", 1).is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What it replaces
//!
//! | need | usual choice | here |
//! |---|---|---|
//! | GCRA in one atomic word | `governor::RateLimiter::direct` | [`Gcra`]: same maths, coarse clock by default, clamped clock, batch takes |
//! | keyed limits | `governor` keyed + a timer calling `retain_recent` | [`Keyed`]: evicts idle keys by itself, memory bounded |
//! | token bucket | `leaky-bucket` (a token bucket behind a mutex) | [`TokenBucket`]: one atomic word |
//! | traffic shaping | a hand-rolled queue + interval timer | [`LeakyBucket`] |
//! | "never more than N per window" | hand-rolled Redis sorted sets | [`SlidingLog`], [`SlidingWindow`] |
//! | Laravel `RateLimiter`, `ThrottleRequests` | — | [`RateLimiter`], [`Decisions::headers`] |
//! | redis-cell (a module managed Redis cannot load), hand-written Lua | `RedisLimiter` (feature `redis`): GCRA in one script on the server clock, fail-open / fail-closed |
//! | tower `RateLimitLayer` (not `Clone`, per service) | `Buffer` around it | `RateLimitLayer` (feature `tower`): `Clone`, shared, any [`Limiter`], keyed or not |
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.88.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

mod decision;
mod error;
mod gcra;
mod keyed;
mod leaky_bucket;
mod limiter;
mod loom;
mod named;
mod quota;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod rate_limit;
#[cfg(feature = "redis")]
mod redis;
mod sliding;
mod stats;
mod time;
mod token_bucket;
mod wait;

pub use decision::{Decision, Decisions};
pub use error::RateLimitError;
pub use gcra::{Gcra, GcraBuilder};
pub use keyed::{Keyed, KeyedBuilder, KeyedMetrics};
pub use leaky_bucket::{DequeueError, Full, LeakyBucket, LeakyBucketBuilder};
pub use limiter::Limiter;
pub use named::{
    Limit, Limits, NamedError, NamedMetrics, RateLimiter, RateLimiterBuilder, TooManyAttempts,
};
pub use quota::Quota;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use rate_limit::{Mode, RateLimit, RateLimitLayer};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::{FailurePolicy, RedisLimiter, RedisLimiterBuilder, RedisSetupError};
pub use sliding::{SlidingLog, SlidingLogBuilder, SlidingWindow, SlidingWindowBuilder};
pub use stats::LimiterMetrics;
pub use time::TokioClock;
pub use token_bucket::{TokenBucket, TokenBucketBuilder};

/// The guide's examples are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/ratelimit.md")]
struct RateLimitGuide;
