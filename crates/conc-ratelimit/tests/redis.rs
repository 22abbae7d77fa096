//! The Redis limiter against a real `redis-server`: the conformance suite it
//! shares with the in-memory limiter, the key layout, Laravel's fixed window, several
//! clients never exceeding the limit together, and the failure policies.
//!
//! Every test starts its own server through `conc-test-support` and skips
//! when the binary is missing, unless `CONC_REQUIRE_SERVICES=1`.

mod conformance;

use std::time::{Duration, Instant};

use conc_ratelimit::{FailurePolicy, Quota, RateLimitError, RedisLimiter, RedisSetupError};
use conc_test_support::RedisServer;

/// The Redis limiter under the conformance suite: one quota, real time.
struct Shared {
    limiter: RedisLimiter,
    quota: Quota,
}

impl conformance::Subject for Shared {
    async fn try_acquire(&self, key: &str, n: u32) -> Result<(), RateLimitError> {
        self.limiter.try_acquire(key, self.quota, n).await
    }

    async fn remaining(&self, key: &str) -> u32 {
        self.limiter.remaining(key, self.quota).await.unwrap()
    }

    async fn reset(&self, key: &str) {
        self.limiter.clear(key).await.unwrap();
    }

    /// The server's clock runs on its own: sleep the time out, plus 10 ms
    /// for the round trips on either side.
    async fn pass(&self, elapsed: Duration) {
        tokio::time::sleep(elapsed + Duration::from_millis(10)).await;
    }
}

conformance::suite!(async |quota: Quota| {
    let redis = conc_test_support::require_redis()?;
    let limiter = RedisLimiter::connect(redis.url()).await.unwrap();
    Some((Shared { limiter, quota }, Box::new(redis) as conformance::KeepAlive))
});

/// The least a server-side duration of `full`, started after `started`, can
/// still have left now: the server's clock cannot have moved on more than
/// ours since (1 ms for the server's rounding to milliseconds and clock slew).
fn at_least(full: Duration, started: Instant) -> Duration {
    full.saturating_sub(started.elapsed() + Duration::from_millis(1))
}

async fn raw(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap()
}

#[tokio::test]
async fn gcra_admits_the_burst_then_names_the_wait() {
    let Some(redis) = conc_test_support::require_redis() else { return };
    let limiter = RedisLimiter::connect(redis.url()).await.unwrap();
    let quota = Quota::per_minute(3).unwrap();
    let started = Instant::now();
    for _ in 0..3 {
        limiter.try_acquire("user:1", quota, 1).await.unwrap();
    }
    // One unit is worth 20 s, counted from the first admission on the
    // server's clock; the server's clock cannot have moved on more than ours
    // since before that admission was sent.
    let wait = limiter.try_acquire("user:1", quota, 1).await.unwrap_err().retry_after().unwrap();
    let least = at_least(Duration::from_secs(20), started);
    assert!(wait <= Duration::from_secs(20) && wait >= least, "{wait:?}, least {least:?}");
    assert_eq!(limiter.remaining("user:1", quota).await.unwrap(), 0);
    // Keys are independent; n > burst is a typed error, as in memory.
    assert_eq!(limiter.remaining("user:2", quota).await.unwrap(), 3);
    limiter.try_acquire("user:2", quota, 2).await.unwrap();
    assert_eq!(limiter.remaining("user:2", quota).await.unwrap(), 1);
    assert_eq!(
        limiter.try_acquire("user:2", quota, 4).await,
        Err(RateLimitError::ExceedsCapacity { requested: 4, capacity: 3 })
    );
    limiter.clear("user:1").await.unwrap();
    assert_eq!(limiter.remaining("user:1", quota).await.unwrap(), 3);
}

#[tokio::test]
async fn keys_carry_a_hash_tag_and_expire_when_replenished() {
    let Some(redis) = conc_test_support::require_redis() else { return };
    let limiter =
        RedisLimiter::builder(redis.url()).key_prefix("shop:rl:").connect().await.unwrap();
    assert_eq!(limiter.key("ip:10.0.0.1"), "shop:rl:{ip:10.0.0.1}");
    let mut raw = raw(&redis).await;
    let started = Instant::now();
    limiter.try_acquire("ip:10.0.0.1", Quota::per_second(10).unwrap(), 5).await.unwrap();
    let pttl: i64 =
        redis::cmd("PTTL").arg("shop:rl:{ip:10.0.0.1}").query_async(&mut raw).await.unwrap();
    // Five units of 100 ms: the key lives until the state is fully replenished,
    // 500 ms from the admission, less what the server's clock moved since.
    let least = i64::try_from(at_least(Duration::from_millis(500), started).as_millis()).unwrap();
    assert!((least..=500).contains(&pttl), "pttl {pttl}, least {least}");
    let err = RedisLimiter::builder(redis.url()).key_prefix("bad{").connect().await.unwrap_err();
    assert!(matches!(err, RedisSetupError::Config(ref error) if error.field == "key_prefix"));
}

#[tokio::test]
async fn fixed_window_attempt_is_atomic_like_laravel() {
    let Some(redis) = conc_test_support::require_redis() else { return };
    let limiter = RedisLimiter::connect(redis.url()).await.unwrap();
    let minute = Duration::from_secs(60);
    let started = Instant::now();
    assert_eq!(limiter.attempt("login:ann", 2, minute).await, Ok(1));
    assert_eq!(limiter.attempt("login:ann", 2, minute).await, Ok(2));
    let refused = limiter.attempt("login:ann", 2, minute).await.unwrap_err();
    // The window opened with the first attempt and lasts a minute.
    let wait = refused.retry_after().unwrap();
    let least = at_least(minute, started);
    assert!(wait <= minute && wait >= least, "{wait:?}, least {least:?}");
    let mut raw = raw(&redis).await;
    let hits: u64 =
        redis::cmd("GET").arg(limiter.key("login:ann")).query_async(&mut raw).await.unwrap();
    assert_eq!(hits, 2, "a refused attempt is not counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_clients_never_exceed_the_limit_together() {
    let Some(redis) = conc_test_support::require_redis() else { return };
    // 100 per hour: one unit every 36 s, so during the test (well under 36 s)
    // at most the burst of 100 may pass. Tolerance: burst + elapsed / 36 s.
    let quota = Quota::per_hour(100).unwrap();
    let started = std::time::Instant::now();
    let mut clients = Vec::new();
    for _ in 0..4 {
        let limiter = RedisLimiter::connect(redis.url()).await.unwrap();
        clients.push(tokio::spawn(async move {
            let mut admitted = 0u64;
            for _ in 0..60 {
                if limiter.try_acquire("shared", quota, 1).await.is_ok() {
                    admitted += 1;
                }
            }
            admitted
        }));
    }
    let mut admitted = 0;
    for client in clients {
        admitted += client.await.unwrap();
    }
    let refills = started.elapsed().as_secs() / 36;
    assert!(admitted >= 100 && admitted <= 100 + refills, "admitted {admitted}");
}

#[tokio::test]
async fn an_unreachable_server_fails_closed_or_open_by_policy() {
    let Some(mut redis) = conc_test_support::require_redis() else { return };
    let closed = RedisLimiter::connect(redis.url()).await.unwrap();
    let open = RedisLimiter::builder(redis.url())
        .on_failure(FailurePolicy::Open)
        .response_timeout(Duration::from_millis(100))
        .connect()
        .await
        .unwrap();
    let quota = Quota::per_second(1).unwrap();
    closed.try_acquire("k", quota, 1).await.unwrap();
    redis.kill().unwrap();
    assert_eq!(closed.try_acquire("k", quota, 1).await, Err(RateLimitError::Unavailable));
    assert_eq!(open.try_acquire("k", quota, 1).await, Ok(()));
    assert_eq!(open.attempt("k2", 1, Duration::from_secs(1)).await, Ok(0));
    assert_eq!(closed.remaining("k", quota).await, Err(RateLimitError::Unavailable));
    redis.restart().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_call_after_a_restart_is_answered_by_the_server() {
    let Some(mut redis) = conc_test_support::require_redis() else { return };
    let limiter = RedisLimiter::connect(redis.url()).await.unwrap();
    let quota = Quota::per_second(100).unwrap();
    limiter.try_acquire("k", quota, 1).await.unwrap();

    // Restarted between two calls: the connection the client holds is dead.
    redis.restart().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(limiter.try_acquire("k", quota, 1).await, Ok(()), "first call after a restart");

    // Down while calls are made (they fail closed), then up for a while.
    redis.kill().unwrap();
    for _ in 0..3 {
        assert_eq!(limiter.try_acquire("k", quota, 1).await, Err(RateLimitError::Unavailable));
    }
    redis.restart().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(limiter.try_acquire("k", quota, 1).await, Ok(()), "first call after the outage");
    assert_eq!(limiter.remaining("k", quota).await.map(|left| left > 0), Ok(true));
    let metrics = limiter.metrics();
    assert_eq!((metrics.allowed, metrics.rejected), (3, 3), "{metrics:?}");
}

#[tokio::test(start_paused = false)]
async fn acquire_waits_for_the_server_clock() {
    let Some(redis) = conc_test_support::require_redis() else { return };
    let limiter = RedisLimiter::connect(redis.url()).await.unwrap();
    // One unit every second, no burst: after an admission the next unit is
    // a whole second away, far longer than the round trip that checks it.
    let unit = Duration::from_secs(1);
    let quota = Quota::with_period(unit).unwrap();
    let started = Instant::now();
    limiter.acquire("paced", quota, 1).await.unwrap();
    // The second unit needs a second of server time; acquire sleeps it out.
    limiter.acquire("paced", quota, 1).await.unwrap();
    let waited = started.elapsed();
    assert!(waited + Duration::from_millis(1) >= unit, "admitted after {waited:?}");
    // It was charged: the third unit is refused, with a wait of at most a unit.
    let wait = limiter.try_acquire("paced", quota, 1).await.unwrap_err().retry_after().unwrap();
    assert!(wait > Duration::ZERO && wait <= unit, "{wait:?}");
}

static_assertions::assert_impl_all!(RedisLimiter: Send, Sync, Clone, std::fmt::Debug);
