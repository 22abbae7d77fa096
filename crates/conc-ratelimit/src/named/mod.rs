//! [`RateLimiter`]: Laravel's `RateLimiter`, with an atomic `attempt` and
//! several limits charged all or nothing.

mod builder;

use conc_core::hash::FoldHash;
use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use conc_core::time::{Clock, CoarseClock, Timeline};

pub use builder::RateLimiterBuilder;

use crate::time::ns;
use crate::{Decision, Decisions};

/// Stripes of the key table; keys hash to one, and multi-limit checks lock
/// their stripes in ascending order.
const STRIPES: usize = 64;

/// The fewest keys a stripe holds before it sweeps expired windows.
const MIN_SWEEP: usize = 64;

/// One limit on a request: at most `max` hits per `decay`, counted under `key`.
///
/// The names follow Laravel's `Illuminate\Cache\RateLimiting\Limit`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_ratelimit::Limit;
///
/// let limit = Limit::per_minute(60).by("user:42");
/// assert_eq!(limit.max(), 60);
/// assert_eq!(limit.decay(), Duration::from_secs(60));
/// assert_eq!(limit.key(), "user:42");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    key: String,
    max: u64,
    decay: Duration,
}

impl Limit {
    /// At most `max` per `decay`.
    pub fn new(max: u64, decay: Duration) -> Self {
        Self { key: String::new(), max, decay }
    }

    /// At most `max` per second.
    pub fn per_second(max: u64) -> Self {
        Self::new(max, Duration::from_secs(1))
    }

    /// At most `max` per minute.
    pub fn per_minute(max: u64) -> Self {
        Self::new(max, Duration::from_secs(60))
    }

    /// At most `max` per `minutes` minutes (saturating at `u64::MAX`
    /// seconds, about 584 billion years, for huge `minutes`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_ratelimit::Limit;
    ///
    /// assert_eq!(Limit::per_minutes(5, 10).decay(), Duration::from_secs(300));
    /// assert_eq!(Limit::per_minutes(u64::MAX, 10).decay(), Duration::from_secs(u64::MAX));
    /// ```
    pub fn per_minutes(minutes: u64, max: u64) -> Self {
        Self::new(max, Duration::from_secs(minutes.saturating_mul(60)))
    }

    /// At most `max` per hour.
    pub fn per_hour(max: u64) -> Self {
        Self::new(max, Duration::from_secs(3_600))
    }

    /// At most `max` per day.
    pub fn per_day(max: u64) -> Self {
        Self::new(max, Duration::from_secs(86_400))
    }

    /// Counts hits under `key` (a user id, an IP address); defaults to the
    /// empty key, one counter for everyone.
    #[must_use]
    pub fn by(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }

    /// The key hits are counted under.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Hits allowed per window.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The window length.
    pub fn decay(&self) -> Duration {
        self.decay
    }
}

/// What a named limiter's closure returns: one [`Limit`] or several.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Limits(Vec<Limit>);

impl From<Limit> for Limits {
    fn from(limit: Limit) -> Self {
        Self(vec![limit])
    }
}

impl From<Vec<Limit>> for Limits {
    fn from(limits: Vec<Limit>) -> Self {
        Self(limits)
    }
}

impl<const N: usize> From<[Limit; N]> for Limits {
    fn from(limits: [Limit; N]) -> Self {
        Self(limits.into())
    }
}

/// Why a named check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NamedError {
    /// No limiter was defined under this name with [`RateLimiter::for_name`].
    #[error("no rate limiter named {name:?}")]
    Unknown {
        /// The name asked for.
        name: String,
    },
}

/// [`RateLimiter::attempt`] refused: too many attempts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("too many attempts: retry after {:?}", decision.retry_after())]
pub struct TooManyAttempts {
    /// The refusal, with its limit and retry-after.
    pub decision: Decision,
}

/// A snapshot of a [`RateLimiter`]'s decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct NamedMetrics {
    /// Checks and attempts admitted (every limit charged).
    pub permitted: u64,
    /// Checks and attempts refused (no limit charged).
    pub rejected: u64,
    /// Windows held now, open or expired but not yet swept.
    pub windows: u64,
}

impl conc_core::metrics::MetricsSnapshot for NamedMetrics {
    fn entries(&self) -> Vec<conc_core::metrics::MetricEntry> {
        use conc_core::metrics::{
            MetricEntry, MetricValue, RATELIMIT_KEYS, RATELIMIT_PERMITTED, RATELIMIT_REJECTED,
        };
        vec![
            MetricEntry::new(RATELIMIT_PERMITTED, MetricValue::Count(self.permitted)),
            MetricEntry::new(RATELIMIT_REJECTED, MetricValue::Count(self.rejected)),
            MetricEntry::new(RATELIMIT_KEYS, MetricValue::Gauge(self.windows as f64)),
        ]
    }
}

impl<R, C: Clock> conc_core::metrics::MetricsSource for RateLimiter<R, C> {
    type Snapshot = NamedMetrics;

    fn metrics(&self) -> NamedMetrics {
        RateLimiter::metrics(self)
    }

    /// Resets the permitted and rejected counts; the window count describes the present.
    fn reset_metrics(&self) {
        self.permitted.store(0, Ordering::Relaxed);
        self.rejected.store(0, Ordering::Relaxed);
    }
}

type Resolver<R> = Arc<dyn Fn(&R) -> Limits + Send + Sync>;

/// A fixed window: hits since it opened, and when it closes.
#[derive(Debug, Clone, Copy)]
struct Window {
    hits: u64,
    closes_at: u64,
}

/// One stripe's windows. The table keeps std's `SipHash`: names come from
/// clients, and this limiter has no hasher to opt out with.
#[derive(Debug, Default)]
struct Stripe {
    windows: HashMap<String, Window>,
    swept_len: usize,
}

/// Laravel's `RateLimiter` in Rust: fixed-window counters per key, named
/// limiters chosen per request, and one [`Decision`] type that renders the
/// response headers.
///
/// | Laravel | here |
/// |---|---|
/// | `RateLimiter::for('api', fn ($request) => Limit::perMinute(60)->by($request->ip()))` | [`for_name`](Self::for_name)`("api", \|req\| Limit::per_minute(60).by(req.ip))` |
/// | `RateLimiter::attempt($key, $max, $callback, $decay)` | [`attempt`](Self::attempt)`(key, max, decay, f)`: **atomic** check and hit |
/// | `tooManyAttempts`, `hit`, `increment`, `decrement`, `attempts`, `remaining`, `availableIn`, `clear` | same names, snake case |
/// | `ThrottleRequests` with an array of limits | [`check`](Self::check): **all or nothing** |
///
/// Each key's window opens at its first hit and lasts `decay`, as in Laravel
/// (up to twice `max` can pass across a window edge; use
/// [`SlidingLog`](crate::SlidingLog) where that matters). Unlike Laravel,
/// `attempt` checks and hits under one lock, so N concurrent callers with
/// limit L get exactly L successes, and a request under several limits is
/// charged by all of them or by none. Expired windows are dropped as the
/// table grows (amortised per stripe), so memory stays bounded without a
/// prune call.
///
/// `R` is the request type named limiters look at; use `()` when only the
/// keyed methods are used.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::time::ManualClock;
/// use conc_ratelimit::{Limit, RateLimiter};
///
/// struct Request { user: u64, ip: &'static str }
///
/// let limiter = RateLimiter::<Request>::builder().clock(ManualClock::new()).build();
/// limiter.for_name("uploads", |req: &Request| {
///     vec![
///         Limit::per_minute(10).by(format!("user:{}", req.user)),
///         Limit::per_day(1_000).by(format!("ip:{}", req.ip)),
///     ]
/// });
///
/// let request = Request { user: 7, ip: "10.0.0.1" };
/// for _ in 0..10 {
///     assert!(limiter.check("uploads", &request)?.allowed());
/// }
/// let refused = limiter.check("uploads", &request)?;
/// assert!(!refused.allowed());
/// assert_eq!(refused.retry_after(), Duration::from_secs(60));
/// // The per-day limit was not charged for the refused request.
/// assert_eq!(limiter.attempts("uploads:ip:10.0.0.1"), 10);
/// # Ok::<(), conc_ratelimit::NamedError>(())
/// ```
pub struct RateLimiter<R = (), C = CoarseClock> {
    permitted: AtomicU64,
    rejected: AtomicU64,
    stripes: Box<[Mutex<Stripe>]>,
    hasher: FoldHash,
    named: RwLock<HashMap<String, Resolver<R>>>,
    time: Timeline<C>,
}

impl<R> Default for RateLimiter<R, CoarseClock> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R> RateLimiter<R, CoarseClock> {
    /// A limiter on the process-wide coarse clock.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_ratelimit::RateLimiter;
    ///
    /// let limiter: RateLimiter = RateLimiter::new();
    /// assert_eq!(limiter.hit("login:ann", Duration::from_secs(60)), 1);
    /// ```
    pub fn new() -> Self {
        Self::builder().build()
    }
}

impl<R, C: Clock> RateLimiter<R, C> {
    /// Defines (or replaces) the limiter `name`: `resolve` picks the limits
    /// and keys for each request. Keys are stored as `"{name}:{key}"`.
    pub fn for_name<L: Into<Limits>>(
        &self,
        name: impl Into<String>,
        resolve: impl Fn(&R) -> L + Send + Sync + 'static,
    ) {
        let resolver: Resolver<R> = Arc::new(move |request| resolve(request).into());
        self.named.write().unwrap_or_else(PoisonError::into_inner).insert(name.into(), resolver);
    }

    /// Checks `request` against the limiter `name` and, if every limit
    /// allows it, hits them all; if any refuses, none is hit.
    ///
    /// # Errors
    ///
    /// [`NamedError::Unknown`] when no limiter has that name.
    pub fn check(&self, name: &str, request: &R) -> Result<Decisions, NamedError> {
        let resolver = self
            .named
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
            .ok_or_else(|| NamedError::Unknown { name: name.to_owned() })?;
        let Limits(limits) = resolver(request);
        let keyed: Vec<(String, Limit)> =
            limits.into_iter().map(|limit| (format!("{name}:{}", limit.key), limit)).collect();
        let decisions = self.charge_all(name, &keyed, 1);
        let metric = if decisions.allowed() {
            conc_core::metrics::RATELIMIT_PERMITTED
        } else {
            conc_core::metrics::RATELIMIT_REJECTED
        };
        metrics::counter!(metric, "limiter" => name.to_owned()).increment(1);
        Ok(decisions)
    }

    /// Runs `f` if `key` has had fewer than `max` hits in its window, hitting
    /// it first (the window opens with `decay`); check and hit are one atomic
    /// step.
    ///
    /// # Errors
    ///
    /// [`TooManyAttempts`] with the refusal; `f` is not run and nothing is hit.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_core::time::ManualClock;
    /// use conc_ratelimit::RateLimiter;
    ///
    /// let limiter: RateLimiter<(), _> = RateLimiter::builder().clock(ManualClock::new()).build();
    /// let minute = Duration::from_secs(60);
    /// assert_eq!(limiter.attempt("send-message:7", 2, minute, || "sent"), Ok("sent"));
    /// assert_eq!(limiter.attempt("send-message:7", 2, minute, || "sent"), Ok("sent"));
    /// let refused = limiter.attempt("send-message:7", 2, minute, || "sent").unwrap_err();
    /// assert_eq!(refused.decision.retry_after(), minute);
    /// ```
    pub fn attempt<T>(
        &self,
        key: &str,
        max: u64,
        decay: Duration,
        f: impl FnOnce() -> T,
    ) -> Result<T, TooManyAttempts> {
        // One limit and a cost of one: `charge_all`'s verdict without its
        // vectors, and without a `Decision` unless the attempt is refused.
        let now = self.time.now();
        let refused = {
            let mut stripe = self.stripe(key);
            let fresh = Window { hits: 1, closes_at: Self::closes_at(now, decay) };
            match stripe.windows.get_mut(key) {
                Some(window) if window.closes_at > now => {
                    if window.hits < max {
                        window.hits += 1;
                        None
                    } else {
                        Some(*window)
                    }
                }
                _ if max == 0 => Some(Window { hits: 0, ..fresh }),
                // An expired window reopens in place: the table does not grow.
                Some(window) => {
                    *window = fresh;
                    None
                }
                None => {
                    stripe.windows.insert(key.to_owned(), fresh);
                    Self::maybe_sweep(&mut stripe, now);
                    None
                }
            }
        };
        match refused {
            None => {
                self.permitted.fetch_add(1, Ordering::Relaxed);
                Ok(f())
            }
            Some(window) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                let reset_after = ns(window.closes_at - now);
                let decision =
                    Decision::new(key, false, max, max.saturating_sub(window.hits), decay)
                        .with_reset_after(reset_after)
                        .with_retry_after(reset_after);
                Err(TooManyAttempts { decision })
            }
        }
    }

    /// Whether `key` has had `max` or more hits in its window (read-only).
    pub fn too_many_attempts(&self, key: &str, max: u64) -> bool {
        self.attempts(key) >= max
    }

    /// Hits `key` once (opening a window of `decay` if none is open) and
    /// returns its hits in the window. Always counts, even past a limit.
    pub fn hit(&self, key: &str, decay: Duration) -> u64 {
        self.increment(key, decay, 1)
    }

    /// Adds `amount` hits to `key` and returns its hits in the window.
    pub fn increment(&self, key: &str, decay: Duration, amount: u64) -> u64 {
        let now = self.time.now();
        let mut stripe = self.stripe(key);
        let window = Self::open(&mut stripe, key, now, decay);
        window.hits = window.hits.saturating_add(amount);
        let hits = window.hits;
        Self::maybe_sweep(&mut stripe, now);
        hits
    }

    /// Removes `amount` hits from `key` (a refund) and returns its hits.
    pub fn decrement(&self, key: &str, amount: u64) -> u64 {
        let now = self.time.now();
        let mut stripe = self.stripe(key);
        match stripe.windows.get_mut(key) {
            Some(window) if window.closes_at > now => {
                window.hits = window.hits.saturating_sub(amount);
                window.hits
            }
            _ => 0,
        }
    }

    /// Hits `key` has had in its open window (0 when none is open).
    pub fn attempts(&self, key: &str) -> u64 {
        let now = self.time.now();
        self.stripe(key).windows.get(key).filter(|w| w.closes_at > now).map_or(0, |w| w.hits)
    }

    /// Hits left for `key` under `max`.
    pub fn remaining(&self, key: &str, max: u64) -> u64 {
        max.saturating_sub(self.attempts(key))
    }

    /// How long until `key`'s window closes (zero when none is open).
    pub fn available_in(&self, key: &str) -> Duration {
        let now = self.time.now();
        let closes_at = self.stripe(key).windows.get(key).map_or(0, |w| w.closes_at);
        ns(closes_at.saturating_sub(now))
    }

    /// Forgets `key`'s hits.
    pub fn clear(&self, key: &str) {
        self.stripe(key).windows.remove(key);
    }

    /// Windows held now, open or expired but not yet swept.
    pub fn len(&self) -> usize {
        self.stripes.iter().map(|s| lock(s).windows.len()).sum()
    }

    /// Whether no window is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A snapshot of the checks and attempts decided so far and the windows held.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_ratelimit::RateLimiter;
    ///
    /// let limiter: RateLimiter = RateLimiter::new();
    /// let _ = limiter.attempt("k", 1, Duration::from_secs(60), || ());
    /// let _ = limiter.attempt("k", 1, Duration::from_secs(60), || ());
    /// let metrics = limiter.metrics();
    /// assert_eq!((metrics.permitted, metrics.rejected, metrics.windows), (1, 1, 1));
    /// ```
    pub fn metrics(&self) -> NamedMetrics {
        NamedMetrics {
            permitted: self.permitted.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            windows: self.len() as u64,
        }
    }

    /// Checks `limits` (already keyed) and hits them all, or none.
    fn charge_all(&self, policy: &str, limits: &[(String, Limit)], cost: u64) -> Decisions {
        let now = self.time.now();
        let mut order: Vec<usize> = limits.iter().map(|(key, _)| self.stripe_of(key)).collect();
        order.sort_unstable();
        order.dedup();
        // Lock in ascending stripe order: two multi-limit checks never deadlock.
        let mut guards: Vec<(usize, MutexGuard<'_, Stripe>)> =
            order.iter().map(|&i| (i, lock(&self.stripes[i]))).collect();
        let guard_of = |index: usize| order.binary_search(&index).unwrap_or(0);
        let mut allowed = true;
        let mut verdicts = Vec::with_capacity(limits.len());
        for (key, limit) in limits {
            let stripe = &guards[guard_of(self.stripe_of(key))].1;
            let window = stripe.windows.get(key).copied().filter(|w| w.closes_at > now);
            let hits = window.map_or(0, |w| w.hits);
            let closes_at = window.map_or(Self::closes_at(now, limit.decay), |w| w.closes_at);
            // Checked: hits can reach u64::MAX through `increment`.
            let ok = hits.checked_add(cost).is_some_and(|total| total <= limit.max);
            allowed &= ok;
            verdicts.push((ok, hits, closes_at));
        }
        let decisions = limits
            .iter()
            .zip(verdicts)
            .map(|((key, limit), (ok, hits, closes_at))| {
                let name: Arc<str> =
                    if limit.key.is_empty() { policy.into() } else { key.as_str().into() };
                let reset_after = ns(closes_at - now);
                let remaining = if allowed {
                    limit.max.saturating_sub(hits.saturating_add(cost))
                } else {
                    limit.max.saturating_sub(hits)
                };
                let decision = Decision::new(name, allowed, limit.max, remaining, limit.decay)
                    .with_reset_after(reset_after);
                if ok { decision } else { decision.with_retry_after(reset_after) }
            })
            .collect();
        let counter = if allowed { &self.permitted } else { &self.rejected };
        counter.fetch_add(1, Ordering::Relaxed);
        if allowed {
            for (key, limit) in limits {
                let index = guard_of(self.stripe_of(key));
                let stripe = &mut guards[index].1;
                let window = Self::open(stripe, key, now, limit.decay);
                window.hits = window.hits.saturating_add(cost);
            }
            for (_, stripe) in &mut guards {
                Self::maybe_sweep(stripe, now);
            }
        }
        Decisions::new(decisions)
    }

    /// The open window of `key`, opening a new one if none is.
    fn open<'a>(stripe: &'a mut Stripe, key: &str, now: u64, decay: Duration) -> &'a mut Window {
        let fresh = Window { hits: 0, closes_at: Self::closes_at(now, decay) };
        // A known key is found without copying it; only a new one is copied.
        if !stripe.windows.contains_key(key) {
            return stripe.windows.entry(key.to_owned()).or_insert(fresh);
        }
        let window = stripe.windows.get_mut(key).expect("checked above");
        if window.closes_at <= now {
            *window = fresh;
        }
        window
    }

    /// When a window opened at `now` with `decay` closes.
    fn closes_at(now: u64, decay: Duration) -> u64 {
        now.saturating_add(conc_core::time::saturating_nanos(decay))
    }

    /// Drops expired windows once the stripe doubled since its last sweep.
    fn maybe_sweep(stripe: &mut Stripe, now: u64) {
        if stripe.windows.len() >= (2 * stripe.swept_len).max(MIN_SWEEP) {
            stripe.windows.retain(|_, w| w.closes_at > now);
            stripe.swept_len = stripe.windows.len();
        }
    }

    fn stripe_of(&self, key: &str) -> usize {
        (self.hasher.hash_one(key) as usize) % STRIPES
    }

    fn stripe(&self, key: &str) -> MutexGuard<'_, Stripe> {
        lock(&self.stripes[self.stripe_of(key)])
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // No user code runs under these locks; a poisoned one is still consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<R, C: Clock> fmt::Debug for RateLimiter<R, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> =
            self.named.read().unwrap_or_else(PoisonError::into_inner).keys().cloned().collect();
        f.debug_struct("RateLimiter")
            .field("named", &names)
            .field("windows", &self.len())
            .finish_non_exhaustive()
    }
}
