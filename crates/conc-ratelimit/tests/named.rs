//! Laravel-style named limiters: atomic attempt, all-or-nothing multi-limit
//! charging, the Laravel method family, bounded memory, header rendering.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use conc_core::time::ManualClock;
use conc_ratelimit::{Decision, Decisions, Limit, NamedError, RateLimiter};

const MINUTE: Duration = Duration::from_secs(60);

fn limiter<R>() -> (RateLimiter<R, ManualClock>, ManualClock) {
    let clock = ManualClock::new();
    (RateLimiter::builder().clock(clock.clone()).build(), clock)
}

#[test]
fn the_laravel_method_family() {
    let (limiter, clock) = limiter::<()>();
    assert!(!limiter.too_many_attempts("login:ann", 3));
    assert_eq!(limiter.hit("login:ann", MINUTE), 1);
    assert_eq!(limiter.increment("login:ann", MINUTE, 2), 3);
    assert!(limiter.too_many_attempts("login:ann", 3));
    assert_eq!(limiter.remaining("login:ann", 5), 2);
    assert_eq!(limiter.decrement("login:ann", 1), 2);
    assert_eq!(limiter.attempts("login:ann"), 2);
    clock.advance(Duration::from_secs(20));
    assert_eq!(limiter.available_in("login:ann"), Duration::from_secs(40));
    // The window opened at the first hit and closes `decay` later.
    clock.advance(Duration::from_secs(40));
    assert_eq!(limiter.attempts("login:ann"), 0);
    assert_eq!(limiter.available_in("login:ann"), Duration::ZERO);
    assert_eq!(limiter.hit("login:ann", MINUTE), 1);
    limiter.clear("login:ann");
    assert_eq!(limiter.attempts("login:ann"), 0);
    assert_eq!(limiter.decrement("login:ann", 1), 0);
}

#[test]
fn attempt_runs_the_callback_only_when_allowed() {
    let (limiter, clock) = limiter::<()>();
    let mut runs = 0;
    for _ in 0..3 {
        limiter.attempt("report", 3, MINUTE, || runs += 1).unwrap();
    }
    let refused = limiter.attempt("report", 3, MINUTE, || runs += 1).unwrap_err();
    assert_eq!(runs, 3);
    assert_eq!(refused.decision.retry_after(), MINUTE);
    assert_eq!(refused.decision.remaining(), 0);
    assert_eq!(limiter.attempts("report"), 3, "a refused attempt is not counted");
    clock.advance(MINUTE);
    assert_eq!(limiter.attempt("report", 3, MINUTE, || 42), Ok(42));
}

#[test]
fn attempt_is_atomic_under_concurrency() {
    let (limiter, _clock) = limiter::<()>();
    let limiter = Arc::new(limiter);
    let admitted: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let limiter = Arc::clone(&limiter);
                scope.spawn(move || {
                    (0..500).filter(|_| limiter.attempt("hot", 250, MINUTE, || ()).is_ok()).count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(admitted, 250);
    let metrics = limiter.metrics();
    assert_eq!((metrics.permitted, metrics.rejected, metrics.windows), (250, 1_750, 1));
    conc_core::metrics::MetricsSource::reset_metrics(&*limiter);
    assert_eq!(limiter.metrics().rejected, 0);
    let entries = conc_core::metrics::MetricsSnapshot::entries(&limiter.metrics());
    assert_eq!(entries.len(), 3);
}

struct Request {
    user: u32,
    ip: &'static str,
}

#[test]
fn several_limits_are_charged_all_or_nothing() {
    let (limiter, clock) = limiter::<Request>();
    limiter.for_name("api", |req: &Request| {
        [
            Limit::per_minute(3).by(format!("user:{}", req.user)),
            Limit::per_hour(5).by(format!("ip:{}", req.ip)),
        ]
    });
    let ann = Request { user: 1, ip: "10.0.0.1" };
    let bob = Request { user: 2, ip: "10.0.0.1" };
    for _ in 0..3 {
        assert!(limiter.check("api", &ann).unwrap().allowed());
    }
    // Ann's per-minute limit refuses: the shared per-hour IP limit is not charged.
    let refused = limiter.check("api", &ann).unwrap();
    assert!(!refused.allowed());
    assert_eq!(refused.retry_after(), MINUTE);
    assert_eq!(limiter.attempts("api:ip:10.0.0.1"), 3);
    // Bob shares the IP: two more fit under the per-hour limit, then it refuses
    // and Bob's per-minute counter stays where it was.
    assert!(limiter.check("api", &bob).unwrap().allowed());
    assert!(limiter.check("api", &bob).unwrap().allowed());
    let refused = limiter.check("api", &bob).unwrap();
    assert!(!refused.allowed());
    assert_eq!(refused.retry_after(), Duration::from_secs(3_600));
    assert_eq!(limiter.attempts("api:user:2"), 2);
    let strictest = refused.most_restrictive().unwrap();
    assert_eq!(strictest.policy(), "api:ip:10.0.0.1");
    clock.advance(MINUTE);
    assert!(!limiter.check("api", &ann).unwrap().allowed(), "the hour is not over");
    assert_eq!(limiter.check("nope", &ann), Err(NamedError::Unknown { name: "nope".to_owned() }));
}

#[test]
fn a_limit_without_a_key_is_named_after_the_limiter() {
    let (limiter, _clock) = limiter::<()>();
    limiter.for_name("global", |()| Limit::per_second(1));
    let allowed = limiter.check("global", &()).unwrap();
    assert_eq!(allowed.decisions()[0].policy(), "global");
    assert_eq!(allowed.decisions()[0].remaining(), 0);
    assert!(!limiter.check("global", &()).unwrap().allowed());
    assert!(format!("{limiter:?}").contains("global"));
}

/// Opens windows for 100,000 keys, 100 a second, each closing after two
/// seconds, through `open`, and checks that the limiter holds a bounded
/// number of them without a prune call.
fn expired_windows_are_dropped(open: impl Fn(&RateLimiter<(), ManualClock>, &str)) {
    let (limiter, clock) = limiter::<()>();
    for key in 0..100_000u32 {
        if key % 100 == 0 {
            clock.advance(Duration::from_secs(1));
        }
        open(&limiter, &format!("k{key}"));
    }
    // About 200 keys are in open windows at any time.
    assert!(limiter.len() < 64 * 2 * 64, "{} windows held", limiter.len());
    assert!(!limiter.is_empty());
}

/// Through `hit`, and through `attempt`, which has a path of its own.
#[test]
fn expired_windows_are_dropped_without_a_prune_call() {
    let window = Duration::from_secs(2);
    expired_windows_are_dropped(|limiter, key| {
        limiter.hit(key, window);
    });
    expired_windows_are_dropped(|limiter, key| limiter.attempt(key, 1, window, || ()).unwrap());
}

/// A window whose count reached `u64::MAX` (through `increment`) refuses one
/// more under a limit of `u64::MAX`, through `attempt` and `check` alike,
/// instead of wrapping around.
#[test]
fn a_full_count_refuses_one_more_at_the_largest_limit() {
    let (limiter, _clock) = limiter::<()>();
    limiter.for_name("all", |()| Limit::new(u64::MAX, MINUTE).by("k"));
    assert_eq!(limiter.increment("k", MINUTE, u64::MAX), u64::MAX);
    assert_eq!(limiter.increment("all:k", MINUTE, u64::MAX), u64::MAX);
    let refused = limiter.attempt("k", u64::MAX, MINUTE, || ()).unwrap_err();
    assert_eq!(refused.decision.remaining(), 0);
    let checked = limiter.check("all", &()).unwrap();
    assert!(!checked.allowed());
    assert_eq!(checked.into_vec()[0].remaining(), 0);
    assert_eq!((limiter.attempts("k"), limiter.attempts("all:k")), (u64::MAX, u64::MAX));
}

#[test]
fn headers_render_ietf_and_laravel_fields() {
    let (limiter, _clock) = limiter::<()>();
    limiter.for_name("search", |()| Limit::per_minute(2).by("all"));
    let first = limiter.check("search", &()).unwrap();
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    assert_eq!(
        first.headers(now),
        vec![
            ("RateLimit-Policy", "\"search:all\";q=2;w=60".to_owned()),
            ("RateLimit", "\"search:all\";r=1;t=60".to_owned()),
            ("X-RateLimit-Limit", "2".to_owned()),
            ("X-RateLimit-Remaining", "1".to_owned()),
        ]
    );
    let _ = limiter.check("search", &()).unwrap();
    let refused = limiter.check("search", &()).unwrap();
    let headers = refused.headers(now);
    assert!(headers.contains(&("Retry-After", "60".to_owned())));
    assert!(headers.contains(&("X-RateLimit-Reset", "1700000060".to_owned())));
    assert!(headers.contains(&("X-RateLimit-Remaining", "0".to_owned())));
    assert!(Decisions::default().headers(now).is_empty());
    assert!(Decisions::default().allowed());
}

#[test]
fn header_seconds_round_up() {
    let decision = Decision::new("p", false, 10, 0, Duration::from_millis(1_500))
        .with_retry_after(Duration::from_millis(200))
        .with_reset_after(Duration::from_millis(1_001));
    assert_eq!(decision.ietf_limit(), "\"p\";r=0;t=2");
    assert_eq!(decision.ietf_policy(), "\"p\";q=10;w=2");
    let headers = Decisions::new(vec![decision]).headers(UNIX_EPOCH);
    assert!(headers.contains(&("Retry-After", "1".to_owned())));
}

static_assertions::assert_impl_all!(RateLimiter<String>: Send, Sync);

/// One step of [`attempt_agrees_with_a_one_limit_policy`].
#[derive(Debug, Clone)]
enum Step {
    Attempt,
    Advance(u64),
    Increment(u64),
    Clear,
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        4 => Just(Step::Attempt),
        2 => (0_u64..90).prop_map(Step::Advance),
        1 => (0_u64..4).prop_map(Step::Increment),
        1 => Just(Step::Clear),
    ]
}

proptest::proptest! {
    /// `attempt` takes a path of its own (one limit, a cost of one, no
    /// `Decision` unless refused): on every sequence it answers as a policy
    /// of that one limit does through `check`, and leaves the same count.
    #[test]
    fn attempt_agrees_with_a_one_limit_policy(
        max in 0_u64..5,
        decay_s in 1_u64..60,
        steps in proptest::collection::vec(step(), 1..60),
    ) {
        let clock = ManualClock::new();
        let ours: RateLimiter<(), _> = RateLimiter::builder().clock(clock.clone()).build();
        let policy: RateLimiter<(), _> = RateLimiter::builder().clock(clock.clone()).build();
        let decay = Duration::from_secs(decay_s);
        policy.for_name("p", move |()| Limit::new(max, decay));
        // The policy's one limit has no key: its window is stored as "p:".
        let (key, window) = ("k", "p:");
        for step in steps {
            match step {
                Step::Attempt => {
                    let attempted = ours.attempt(key, max, decay, || ());
                    let checked = policy.check("p", &()).unwrap();
                    proptest::prop_assert_eq!(attempted.is_ok(), checked.allowed());
                    if let Err(refused) = attempted {
                        let expected = checked.into_vec().remove(0);
                        let got = refused.decision;
                        proptest::prop_assert_eq!(got.policy(), key);
                        proptest::prop_assert_eq!(
                            (got.allowed(), got.limit(), got.remaining()),
                            (expected.allowed(), expected.limit(), expected.remaining())
                        );
                        proptest::prop_assert_eq!(
                            (got.reset_after(), got.retry_after(), got.window()),
                            (expected.reset_after(), expected.retry_after(), expected.window())
                        );
                    }
                }
                Step::Advance(seconds) => clock.advance(Duration::from_secs(seconds)),
                Step::Increment(amount) => {
                    proptest::prop_assert_eq!(
                        ours.increment(key, decay, amount),
                        policy.increment(window, decay, amount)
                    );
                }
                Step::Clear => {
                    ours.clear(key);
                    policy.clear(window);
                }
            }
            proptest::prop_assert_eq!(ours.attempts(key), policy.attempts(window));
            proptest::prop_assert_eq!(ours.available_in(key), policy.available_in(window));
            proptest::prop_assert_eq!(ours.metrics(), policy.metrics());
        }
    }
}
