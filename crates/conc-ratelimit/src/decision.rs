//! [`Decision`] and [`Decisions`]: what a limiter decided, renderable as HTTP
//! headers (IETF `RateLimit` / `RateLimit-Policy`, Laravel's `X-RateLimit-*`,
//! `Retry-After`).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One limit's verdict on one request.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_ratelimit::Decision;
///
/// let decision = Decision::new("api", true, 100, 42, Duration::from_secs(60))
///     .with_reset_after(Duration::from_millis(16_200));
/// assert_eq!(decision.ietf_limit(), "\"api\";r=42;t=17");
/// assert_eq!(decision.ietf_policy(), "\"api\";q=100;w=60");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Decision {
    policy: Arc<str>,
    allowed: bool,
    limit: u64,
    remaining: u64,
    window: Duration,
    reset_after: Duration,
    retry_after: Duration,
}

impl Decision {
    /// A verdict of the policy named `policy` allowing `limit` per `window`,
    /// with `remaining` left after this request. Reset and retry-after start at zero.
    pub fn new(
        policy: impl Into<Arc<str>>,
        allowed: bool,
        limit: u64,
        remaining: u64,
        window: Duration,
    ) -> Self {
        Self {
            policy: policy.into(),
            allowed,
            limit,
            remaining,
            window,
            reset_after: Duration::ZERO,
            retry_after: Duration::ZERO,
        }
    }

    /// Sets how long until the quota is whole again.
    pub fn with_reset_after(mut self, reset_after: Duration) -> Self {
        self.reset_after = reset_after;
        self
    }

    /// Sets how long until the refused request would be allowed.
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// The policy (limiter and limit) that decided.
    pub fn policy(&self) -> &str {
        &self.policy
    }

    /// Whether the request was allowed.
    pub fn allowed(&self) -> bool {
        self.allowed
    }

    /// Requests allowed per window.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Requests left in the window after this one.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// The window the limit counts over.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// How long until the quota is whole again.
    pub fn reset_after(&self) -> Duration {
        self.reset_after
    }

    /// For a refusal, how long until the same request would be allowed (zero when allowed).
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }

    /// The IETF `RateLimit` item for this policy: `"name";r=<remaining>;t=<seconds to reset>`.
    pub fn ietf_limit(&self) -> String {
        format!("\"{}\";r={};t={}", self.policy, self.remaining, ceil_secs(self.reset_after))
    }

    /// The IETF `RateLimit-Policy` item: `"name";q=<limit>;w=<window seconds>`.
    pub fn ietf_policy(&self) -> String {
        format!("\"{}\";q={};w={}", self.policy, self.limit, ceil_secs(self.window))
    }
}

/// Whole seconds, rounded up: headers never promise a retry earlier than
/// true. Saturates at `u64::MAX` (for `Duration::MAX`).
fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs().saturating_add(u64::from(duration.subsec_nanos() > 0))
}

/// The verdicts of every limit that applied to one request: allowed only if
/// all allowed (and then every limit was charged), refused otherwise (and
/// then none was).
///
/// # Examples
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use conc_ratelimit::{Decision, Decisions};
///
/// let decisions = Decisions::new(vec![
///     Decision::new("per-second", true, 10, 3, Duration::from_secs(1)),
///     Decision::new("per-day", false, 1_000, 0, Duration::from_secs(86_400))
///         .with_retry_after(Duration::from_secs(7_200))
///         .with_reset_after(Duration::from_secs(7_200)),
/// ]);
/// assert!(!decisions.allowed());
/// let headers = decisions.headers(UNIX_EPOCH + Duration::from_secs(1_000));
/// assert!(headers.contains(&("Retry-After", "7200".to_owned())));
/// assert!(headers.contains(&("X-RateLimit-Reset", "8200".to_owned())));
/// assert!(headers.contains(&("X-RateLimit-Remaining", "0".to_owned())));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[must_use]
pub struct Decisions {
    decisions: Vec<Decision>,
}

impl Decisions {
    /// Collects verdicts.
    pub fn new(decisions: Vec<Decision>) -> Self {
        Self { decisions }
    }

    /// Whether every limit allowed the request (true when no limit applied).
    pub fn allowed(&self) -> bool {
        self.decisions.iter().all(Decision::allowed)
    }

    /// Each limit's verdict, in the order the limits were given.
    pub fn decisions(&self) -> &[Decision] {
        &self.decisions
    }

    /// The verdicts, by value.
    pub fn into_vec(self) -> Vec<Decision> {
        self.decisions
    }

    /// The longest wait among the refusals: when the request would be allowed
    /// by every limit (zero when allowed).
    pub fn retry_after(&self) -> Duration {
        self.decisions
            .iter()
            .filter(|d| !d.allowed)
            .map(Decision::retry_after)
            .max()
            .unwrap_or_default()
    }

    /// The most restrictive verdict: the refusal with the longest wait, or
    /// the allowance with the fewest requests left.
    pub fn most_restrictive(&self) -> Option<&Decision> {
        let refused = self.decisions.iter().filter(|d| !d.allowed).max_by_key(|d| d.retry_after);
        refused.or_else(|| self.decisions.iter().min_by_key(|d| d.remaining))
    }

    /// The response headers for this request, given the wall-clock time `now`:
    ///
    /// - `RateLimit-Policy` and `RateLimit` (IETF httpapi draft 10), one item
    ///   per limit;
    /// - `X-RateLimit-Limit` and `X-RateLimit-Remaining` from the most
    ///   restrictive limit (Laravel's `ThrottleRequests`);
    /// - on a refusal, `Retry-After` (seconds, rounded up) and
    ///   `X-RateLimit-Reset` (Unix time of the retry).
    ///
    /// Seconds saturate at `u64::MAX` rather than overflow (a window or wait
    /// of `Duration::MAX`).
    pub fn headers(&self, now: SystemTime) -> Vec<(&'static str, String)> {
        let mut headers = Vec::new();
        if self.decisions.is_empty() {
            return headers;
        }
        let join = |item: fn(&Decision) -> String| {
            let mut out = String::new();
            for (i, decision) in self.decisions.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{}", item(decision));
            }
            out
        };
        headers.push(("RateLimit-Policy", join(Decision::ietf_policy)));
        headers.push(("RateLimit", join(Decision::ietf_limit)));
        if let Some(strictest) = self.most_restrictive() {
            headers.push(("X-RateLimit-Limit", strictest.limit.to_string()));
            headers.push(("X-RateLimit-Remaining", strictest.remaining.to_string()));
        }
        if !self.allowed() {
            let retry = ceil_secs(self.retry_after());
            let unix = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
            headers.push(("Retry-After", retry.to_string()));
            headers.push(("X-RateLimit-Reset", unix.saturating_add(retry).to_string()));
        }
        headers
    }
}
