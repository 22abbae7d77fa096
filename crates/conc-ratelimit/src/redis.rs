//! [`RedisLimiter`]: GCRA and Laravel's fixed window in Redis, shared by every
//! process and machine that talks to the same server.

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use conc_core::config::{self, ConfigError};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, RedisError, Script, ScriptInvocation};

use crate::stats::Stats;
use crate::{LimiterMetrics, Quota, RateLimitError};

/// GCRA on the server's clock, in integer microseconds (exact in Lua's
/// doubles until the year 2255).
///
/// `KEYS[1]` the key; `ARGV[1]` emission µs, `ARGV[2]` tolerance µs
/// (`emission × burst`), `ARGV[3]` cost µs (`emission × n`, 0 to peek).
/// Returns `{admitted, wait µs, remaining}`.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local emission = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + cost
local allowed_at = new_tat - tolerance
if allowed_at > now then
  return {0, allowed_at - now, math.floor((now + tolerance - tat) / emission)}
end
if cost > 0 then
  local ttl_ms = math.ceil((new_tat - now) / 1000)
  if ttl_ms < 1 then ttl_ms = 1 end
  redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', ttl_ms)
end
return {1, 0, math.floor((now + tolerance - new_tat) / emission)}
";

/// Laravel's fixed window, with check and hit in one step.
///
/// `KEYS[1]` the counter; `ARGV[1]` max, `ARGV[2]` window ms, `ARGV[3]` cost.
/// Returns `{admitted, hits, pttl}`.
const FIXED_WINDOW: &str = r"
local hits = tonumber(redis.call('GET', KEYS[1]) or '0')
local cost = tonumber(ARGV[3])
if hits + cost > tonumber(ARGV[1]) then
  return {0, hits, redis.call('PTTL', KEYS[1])}
end
hits = redis.call('INCRBY', KEYS[1], cost)
local pttl = redis.call('PTTL', KEYS[1])
if pttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  pttl = tonumber(ARGV[2])
end
return {1, hits, pttl}
";

static GCRA_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(GCRA));
static FIXED_WINDOW_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(FIXED_WINDOW));

/// What a [`RedisLimiter`] answers when Redis cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FailurePolicy {
    /// Refuse with [`RateLimitError::Unavailable`]: for limits that protect
    /// something (logins, payments). The default.
    #[default]
    Closed,
    /// Admit: for limits that only smooth throughput, where an outage of the
    /// limiter must not become an outage of the service.
    Open,
}

/// Rate limits kept in Redis: GCRA in one Lua script on the server's clock,
/// and Laravel's fixed window, so every process and machine sharing the
/// server shares the limits.
///
/// - Keys are `"{prefix}{key}"` with the caller's key as the hash tag
///   (`conc:ratelimit:{user:42}`), so a key and anything derived from it stay
///   in one Redis Cluster slot.
/// - Every check is one `EVALSHA` round trip (the script is loaded on a
///   `NOSCRIPT` reply), atomic on the server; keys expire when their state is
///   fully replenished, so Redis memory is bounded by the active keys.
/// - Time is the server's `TIME`, so clients with skewed clocks agree. The
///   GCRA state is kept in whole microseconds: quotas whose emission interval
///   is below 1 µs are refused.
/// - When Redis cannot be reached the [`FailurePolicy`] decides: refuse
///   (default) or admit.
///
/// The GCRA semantics (burst, exact retry-after, `ExceedsCapacity`) are those
/// of the in-memory [`Gcra`](crate::Gcra).
///
/// # Examples
///
/// ```no_run
/// use conc_ratelimit::{FailurePolicy, Quota, RedisLimiter};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let limiter = RedisLimiter::builder("redis://127.0.0.1:6379/")
///     .on_failure(FailurePolicy::Open)
///     .connect()
///     .await?;
/// let quota = Quota::per_minute(60)?;
/// limiter.try_acquire("user:42", quota, 1).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisLimiter {
    connection: ConnectionManager,
    prefix: Arc<str>,
    failure: FailurePolicy,
    response_timeout: Duration,
    stats: Arc<Stats>,
}

/// Why a [`RedisLimiter`] could not be built.
///
/// # Examples
///
/// ```
/// use conc_ratelimit::{RedisLimiter, RedisSetupError};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let refused = RedisLimiter::builder("redis://127.0.0.1:1/").key_prefix("a{b}").connect().await;
/// assert!(matches!(refused, Err(RedisSetupError::Config(error)) if error.field == "key_prefix"));
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisSetupError {
    /// A setting is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The URL could not be parsed or the first connection failed.
    #[error("cannot connect to redis")]
    Connect(#[source] redis::RedisError),
}

/// Options of a [`RedisLimiter`]; finished by [`connect`](Self::connect).
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `connect` is called"]
pub struct RedisLimiterBuilder {
    url: String,
    prefix: String,
    failure: FailurePolicy,
    response_timeout: Duration,
}

impl RedisLimiter {
    /// A builder for a limiter on the server at `url`.
    pub fn builder(url: impl Into<String>) -> RedisLimiterBuilder {
        RedisLimiterBuilder {
            url: url.into(),
            prefix: "conc:ratelimit:".to_owned(),
            failure: FailurePolicy::Closed,
            response_timeout: Duration::from_millis(250),
        }
    }

    /// A limiter on the server at `url` with the default options.
    ///
    /// # Errors
    ///
    /// [`RedisSetupError::Connect`] when the server cannot be reached.
    pub async fn connect(url: impl Into<String>) -> Result<Self, RedisSetupError> {
        Self::builder(url).connect().await
    }

    /// Takes `n` units of `quota` for `key` (GCRA), all or nothing.
    ///
    /// # Errors
    ///
    /// [`RateLimitError::Limited`] with the wait on the server's clock;
    /// [`RateLimitError::ExceedsCapacity`] when `n` is larger than the burst
    /// (or, with `capacity: 0`, when the quota's emission interval is below
    /// the 1 µs the server keeps); [`RateLimitError::Unavailable`] when Redis
    /// cannot be reached and the policy is [`FailurePolicy::Closed`].
    pub async fn try_acquire(&self, key: &str, quota: Quota, n: u32) -> Result<(), RateLimitError> {
        if n > quota.burst() {
            return Err(RateLimitError::ExceedsCapacity { requested: n, capacity: quota.burst() });
        }
        let emission = micros(quota)?;
        let mut invocation = GCRA_SCRIPT.prepare_invoke();
        invocation
            .key(self.key(key))
            .arg(emission)
            .arg(emission * u64::from(quota.burst()))
            .arg(emission * u64::from(n));
        let outcome = match self.invoke::<(u8, u64, u64)>(&invocation).await {
            Ok((1, _, _)) => Ok(()),
            Ok((_, wait, _)) => {
                Err(RateLimitError::Limited { retry_after: Duration::from_micros(wait) })
            }
            Err(error) => self.failed(&error),
        };
        self.stats.record(outcome)
    }

    /// A snapshot of the checks allowed, refused (over the limit, or Redis
    /// unreachable under [`FailurePolicy::Closed`]) and waiting now.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use conc_ratelimit::{Quota, RedisLimiter};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let limiter = RedisLimiter::connect("redis://127.0.0.1:6379/").await?;
    /// let _ = limiter.try_acquire("k", Quota::per_minute(1)?, 1).await;
    /// assert_eq!(limiter.metrics().allowed, 1);
    /// # Ok(()) }
    /// ```
    pub fn metrics(&self) -> LimiterMetrics {
        self.stats.snapshot()
    }

    /// Runs `invocation`. A call that finds the connection dropped (the
    /// server restarted or the network broke since the last call) tries once
    /// more on the connection the manager re-establishes, within the response
    /// timeout, so a server that is back answers the first call after it.
    async fn invoke<T: FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, RedisError> {
        match invocation.invoke_async::<T>(&mut self.connection.clone()).await {
            Err(error) if dropped(&error) => {
                let mut connection = self.connection.clone();
                let retry = invocation.invoke_async::<T>(&mut connection);
                match tokio::time::timeout(self.response_timeout, retry).await {
                    Ok(result) => result,
                    Err(_elapsed) => Err(error),
                }
            }
            other => other,
        }
    }

    /// Units of `quota` `key` could take at once now.
    ///
    /// # Errors
    ///
    /// [`RateLimitError::Unavailable`] when Redis cannot be reached (whatever the policy).
    pub async fn remaining(&self, key: &str, quota: Quota) -> Result<u32, RateLimitError> {
        let emission = micros(quota)?;
        let mut invocation = GCRA_SCRIPT.prepare_invoke();
        invocation.key(self.key(key)).arg(emission).arg(emission * u64::from(quota.burst())).arg(0);
        match self.invoke::<(u8, u64, u64)>(&invocation).await {
            Ok((_, _, remaining)) => Ok(remaining.min(u64::from(quota.burst())) as u32),
            Err(error) => {
                tracing::warn!(%error, "conc-ratelimit: redis unreachable");
                Err(RateLimitError::Unavailable)
            }
        }
    }

    /// Waits until `n` units of `quota` can be taken for `key`, then takes
    /// them. Cancellation-safe: a dropped wait takes nothing.
    ///
    /// # Errors
    ///
    /// As [`try_acquire`](Self::try_acquire), never `Limited`.
    pub async fn acquire(&self, key: &str, quota: Quota, n: u32) -> Result<(), RateLimitError> {
        let mut waiting = None;
        loop {
            match self.try_acquire(key, quota, n).await {
                Err(RateLimitError::Limited { retry_after }) => {
                    let refused_before = waiting.is_some();
                    if waiting.is_none() {
                        waiting = Some(self.stats.waiting());
                    }
                    // At least a millisecond: the server counts in them.
                    let pause = crate::wait::pause(retry_after, refused_before);
                    tokio::time::sleep(pause.max(Duration::from_millis(1))).await;
                }
                other => return other,
            }
        }
    }

    /// Laravel's `RateLimiter::attempt` on a fixed window: hits `key` if it
    /// has had fewer than `max` hits in its window (which opens at the first
    /// hit and lasts `window`), in one atomic step. Returns the hits so far.
    ///
    /// # Errors
    ///
    /// [`RateLimitError::Limited`] with the time until the window closes;
    /// [`RateLimitError::Unavailable`] as for [`try_acquire`](Self::try_acquire).
    pub async fn attempt(
        &self,
        key: &str,
        max: u64,
        window: Duration,
    ) -> Result<u64, RateLimitError> {
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut invocation = FIXED_WINDOW_SCRIPT.prepare_invoke();
        invocation.key(self.key(key)).arg(max).arg(window_ms).arg(1);
        let outcome = match self.invoke::<(u8, u64, i64)>(&invocation).await {
            Ok((1, hits, _)) => Ok(hits),
            Ok((_, _, pttl)) => Err(RateLimitError::Limited {
                retry_after: Duration::from_millis(pttl.max(0).unsigned_abs()),
            }),
            Err(error) => self.failed(&error).map(|()| 0),
        };
        self.stats.record(outcome)
    }

    /// Forgets `key`'s state (GCRA or fixed window).
    ///
    /// # Errors
    ///
    /// [`RateLimitError::Unavailable`] when Redis cannot be reached.
    pub async fn clear(&self, key: &str) -> Result<(), RateLimitError> {
        redis::cmd("DEL")
            .arg(self.key(key))
            .exec_async(&mut self.connection.clone())
            .await
            .map_err(|_| RateLimitError::Unavailable)
    }

    /// The Redis key holding `key`'s state: `"{prefix}{key}"` with `key` as
    /// the hash tag.
    pub fn key(&self, key: &str) -> String {
        format!("{}{{{key}}}", self.prefix)
    }

    fn failed(&self, error: &redis::RedisError) -> Result<(), RateLimitError> {
        tracing::warn!(%error, policy = ?self.failure, "conc-ratelimit: redis unreachable");
        match self.failure {
            FailurePolicy::Open => Ok(()),
            FailurePolicy::Closed => Err(RateLimitError::Unavailable),
        }
    }
}

/// Whether `error` says the connection is gone (not a timeout, not a reply).
fn dropped(error: &RedisError) -> bool {
    !error.is_timeout()
        && (error.is_connection_dropped()
            || error.is_connection_refusal()
            || error.is_io_error()
            || error.is_unrecoverable_error())
}

/// The emission interval in whole microseconds (at least 1).
fn micros(quota: Quota) -> Result<u64, RateLimitError> {
    let emission = quota.emission_ns() / 1_000;
    if emission == 0 {
        return Err(RateLimitError::ExceedsCapacity { requested: 1, capacity: 0 });
    }
    Ok(emission)
}

impl fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("prefix", &self.prefix)
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

impl RedisLimiterBuilder {
    /// Text every key starts with; must not contain `{` or `}` (the hash tag
    /// follows it). Defaults to `"conc:ratelimit:"`.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// What to answer when Redis cannot be reached. Defaults to
    /// [`FailurePolicy::Closed`].
    pub fn on_failure(mut self, policy: FailurePolicy) -> Self {
        self.failure = policy;
        self
    }

    /// How long one check may wait for Redis before the failure policy
    /// applies; between 1 ns and one hour. Defaults to 250 ms.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Validates the options and connects.
    ///
    /// # Errors
    ///
    /// [`RedisSetupError::Config`] for a prefix with braces or a NUL byte,
    /// or a zero timeout; [`RedisSetupError::Connect`] when the server cannot
    /// be reached.
    pub async fn connect(self) -> Result<RedisLimiter, RedisSetupError> {
        if self.prefix.contains(['{', '}', '\0']) {
            let reason = "must not contain `{`, `}` or a NUL byte";
            return Err(ConfigError::new("key_prefix", &self.prefix, reason).into());
        }
        config::positive("response_timeout", self.response_timeout)?;
        config::at_most("response_timeout", self.response_timeout, Duration::from_secs(3_600))?;
        let client = redis::Client::open(self.url.as_str()).map_err(RedisSetupError::Connect)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(self.response_timeout))
            .set_connection_timeout(Some(self.response_timeout))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(RedisSetupError::Connect)?;
        Ok(RedisLimiter {
            connection,
            prefix: self.prefix.into(),
            failure: self.failure,
            response_timeout: self.response_timeout,
            stats: Arc::new(Stats::new()),
        })
    }
}

impl conc_core::metrics::MetricsSource for RedisLimiter {
    type Snapshot = LimiterMetrics;

    fn metrics(&self) -> LimiterMetrics {
        RedisLimiter::metrics(self)
    }

    /// Resets allowed and rejected (for this client and its clones); `waiting`
    /// describes the present.
    fn reset_metrics(&self) {
        self.stats.reset();
    }
}
