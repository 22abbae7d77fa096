//! Bad input never panics, aborts or hangs: every public constructor and
//! builder setter of the crate, fed edge values (0, 1, MAX, MAX − 1, MAX / 2,
//! `u32::MAX`, `Duration::MAX`, `u64::MAX` seconds, NaN, ±∞, names with NUL
//! bytes), either refuses them with a `ConfigError` or works; the pools
//! built are then driven with edge values too. Each case runs inside
//! `catch_unwind` on a watched thread, so a panic or a hang fails it.
//!
//! Constructors and setters covered (43): `BlockingPool::builder`, its 15
//! setters (`workers`, `max_workers`, `queue_capacity`, `unbounded`,
//! `rejection`, `aging_step`, `strict_priorities`, `name`, `stuck_after`,
//! `keep_alive`, `clock`, `scale_policy`, `on_scale`, `on_evict`,
//! `stack_size`) and `build`; `AsyncPool::builder`, its 15 setters (the 14
//! shared ones and `runtime`) and `build`; `TaskOptions::new`, `priority`,
//! `timeout`; `Rejection::Block`; `QueueUtilisation::new`;
//! `ThreadDriver::new`, `ThreadDriver::with_pool`; `Concurrency::new`; a
//! `ScaleSnapshot` of edge fields. The pools built are driven through the
//! methods that take numbers or durations (`submit_with`, `spawn_with`,
//! `try_submit_with`, `submit_batch`, `scale_up`, `scale_down`, `resize`,
//! `shutdown`, `shutdown_now`, `join`), as are `wait_deferred`,
//! `utilisation` and both policies' `decide`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use conc_core::config::ConfigError;
use conc_core::driver::panic_message;
use conc_core::time::ManualClock;
use conc_pool::{
    AsyncPool, AsyncPoolBuilder, BlockingPool, BlockingPoolBuilder, Concurrency, GrowWhenQueued,
    PoolBuildError, QueueUtilisation, Rejection, ScaleDecision, ScalePolicy, ScaleSnapshot,
    ScaleTrigger, TaskOptions, ThreadDriver,
};
use proptest::prelude::*;

/// How long one case may take before it counts as a hang.
const WATCH: Duration = Duration::from_secs(30);

/// Runs `f` on a watched thread inside `catch_unwind`; fails on a panic or
/// when it does not finish within [`WATCH`].
fn watched<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("edge-case".into())
        .spawn(move || {
            let _ = tx.send(catch_unwind(AssertUnwindSafe(f)));
        })
        .unwrap();
    match rx.recv_timeout(WATCH) {
        Ok(Ok(value)) => value,
        Ok(Err(payload)) => panic!("{what} panicked: {}", panic_message(payload.as_ref())),
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what} did not finish within {WATCH:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what} died without a word"),
    }
}

fn sizes() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(2),
        Just(usize::MAX),
        Just(usize::MAX - 1),
        Just(usize::MAX / 2),
        Just(u32::MAX as usize),
    ]
}

fn counts() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(2),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        Just(u64::MAX / 2),
        Just(u64::from(u32::MAX)),
    ]
}

fn durations() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::from_nanos(1)),
        Just(Duration::from_millis(1)),
        Just(Duration::MAX),
        Just(Duration::from_secs(u64::MAX)),
        Just(Duration::from_nanos(u64::MAX)),
        Just(Duration::from_secs(u64::from(u32::MAX))),
    ]
}

fn priorities() -> impl Strategy<Value = i32> {
    prop_oneof![Just(i32::MIN), Just(i32::MIN + 1), Just(-1), Just(0), Just(1), Just(i32::MAX)]
}

fn ratios() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(1.0),
        Just(0.5),
        Just(-1.0),
        Just(1.0 + f64::EPSILON),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::MIN_POSITIVE),
    ]
}

fn names() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("pool".to_owned()),
        Just("\0".to_owned()),
        Just("a\0b".to_owned()),
        Just("池".repeat(100)),
        Just("x".repeat(10_000)),
    ]
}

fn rejections() -> impl Strategy<Value = Rejection> {
    prop_oneof![
        Just(Rejection::Reject),
        Just(Rejection::CallerRuns),
        Just(Rejection::DropOldest),
        durations().prop_map(Rejection::Block),
    ]
}

/// One edge value (or none) for every common setter.
#[derive(Debug, Clone)]
#[allow(clippy::option_option, reason = "a setting left alone, turned off, or set")]
struct Common {
    workers: usize,
    max_workers: Option<usize>,
    capacity: Option<Option<usize>>,
    rejection: Option<Rejection>,
    aging: Option<Option<u64>>,
    name: Option<String>,
    stuck_after: Option<Duration>,
    keep_alive: Option<Duration>,
    manual_clock: bool,
    policy: Option<(usize, f64)>,
    hooks: bool,
}

fn commons() -> impl Strategy<Value = Common> {
    (
        (
            sizes(),
            proptest::option::of(sizes()),
            proptest::option::of(proptest::option::of(sizes())),
        ),
        (proptest::option::of(rejections()), proptest::option::of(proptest::option::of(counts()))),
        (proptest::option::of(names()), proptest::option::of(durations())),
        (proptest::option::of(durations()), any::<bool>()),
        (proptest::option::of((sizes(), ratios())), any::<bool>()),
    )
        .prop_map(
            |(
                (workers, max_workers, capacity),
                (rejection, aging),
                (name, stuck_after),
                (keep_alive, manual_clock),
                (policy, hooks),
            )| Common {
                workers,
                max_workers,
                capacity,
                rejection,
                aging,
                name,
                stuck_after,
                keep_alive,
                manual_clock,
                policy,
                hooks,
            },
        )
}

/// Applies `$common` to a builder (both builders share these setters).
macro_rules! apply {
    ($builder:expr, $common:expr) => {{
        let c = $common;
        let mut b = $builder.workers(c.workers);
        if let Some(max) = c.max_workers {
            b = b.max_workers(max);
        }
        match c.capacity {
            Some(Some(capacity)) => b = b.queue_capacity(capacity),
            Some(None) => b = b.unbounded(),
            None => {}
        }
        if let Some(rejection) = c.rejection {
            b = b.rejection(rejection);
        }
        match c.aging {
            Some(Some(step)) => b = b.aging_step(step),
            Some(None) => b = b.strict_priorities(),
            None => {}
        }
        if let Some(name) = c.name {
            b = b.name(name);
        }
        if let Some(threshold) = c.stuck_after {
            b = b.stuck_after(threshold);
        }
        if let Some(keep_alive) = c.keep_alive {
            b = b.keep_alive(keep_alive);
        }
        if c.manual_clock {
            let clock = ManualClock::new();
            clock.advance(Duration::from_secs(3_600));
            b = b.clock(clock);
        }
        if let Some((per_worker, ratio)) = c.policy {
            if let Ok(policy) = QueueUtilisation::new(per_worker, ratio) {
                b = b.scale_policy(policy);
            }
        }
        if c.hooks {
            b = b.on_scale(|_, _| {}).on_evict(drop);
        }
        b
    }};
}

/// Refusals name a setting and say the rule.
fn check_refusal(error: &ConfigError) {
    assert!(!error.field.is_empty() && error.reason.starts_with("must"), "{error}");
}

fn options(priority: i32, timeout: Option<Duration>) -> TaskOptions {
    let options = TaskOptions::new().priority(priority);
    match timeout {
        Some(timeout) => options.timeout(timeout),
        None => options,
    }
}

/// Drives a built blocking pool with edge values; never waits for long
/// (every task is trivial).
fn drive_blocking(pool: &BlockingPool, priority: i32, timeout: Option<Duration>, n: usize) {
    let _ = pool.submit_with(options(priority, timeout), || 1).map(conc_pool::TaskHandle::join);
    let _ = pool.spawn_with(options(priority, timeout), || {});
    let _ = pool.try_submit_with(options(priority, timeout), || 2).map(conc_pool::TaskHandle::join);
    let _ = pool.submit_batch((0..3).map(|i| move || i)).map(conc_pool::Batch::join);
    let _ = pool.scale_up(n);
    let _ = pool.scale_down(n);
    pool.resize(n);
    let _ = (pool.metrics(), pool.health(), pool.workers());
    let driver = ThreadDriver::with_pool(pool.clone());
    drop(driver);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn blocking_pool_setters_refuse_or_work(
        common in commons(),
        stack in proptest::option::of(prop_oneof![Just(0_usize), Just(1), Just(64 << 10), sizes()]),
        priority in priorities(),
        timeout in proptest::option::of(durations()),
        n in sizes(),
        wait in durations(),
    ) {
        watched("blocking pool", move || {
            let mut builder: BlockingPoolBuilder = apply!(BlockingPool::builder(), common);
            if let Some(bytes) = stack {
                builder = builder.stack_size(bytes);
            }
            match builder.build() {
                Ok(pool) => {
                    drive_blocking(&pool, priority, timeout, n);
                    // A long wait is fine: every task above is trivial.
                    let _ = pool.shutdown(wait);
                    let _ = pool.join(wait);
                }
                Err(PoolBuildError::Config(error)) => check_refusal(&error),
                Err(other) => panic!("unexpected build error: {other}"),
            }
        });
    }

    #[test]
    fn async_pool_setters_refuse_or_work(
        common in commons(),
        with_runtime in any::<bool>(),
        priority in priorities(),
        timeout in proptest::option::of(durations()),
        n in sizes(),
        wait in durations(),
    ) {
        watched("async pool", move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let mut builder: AsyncPoolBuilder = apply!(AsyncPool::builder(), common);
            if with_runtime {
                builder = builder.runtime(runtime.handle().clone());
            }
            // Outside any runtime: without `runtime` the build is refused.
            match builder.build() {
                Ok(pool) => runtime.block_on(async {
                    assert!(with_runtime, "built outside a runtime without one");
                    let _ = pool.submit_with(options(priority, timeout), async { 1 }).await;
                    let _ = pool.spawn_with(options(priority, timeout), async {}).await;
                    let _ = pool.try_submit_with(options(priority, timeout), async { 2 });
                    let _ = pool.submit_batch((0..3).map(|i| async move { i })).await;
                    let _ = pool.scale_up(n);
                    let _ = pool.scale_down(n);
                    pool.resize(n);
                    let _ = (pool.metrics(), pool.health(), pool.workers());
                    // Cut off what still runs, so no wait is long.
                    let _ = pool.shutdown_now().await;
                    let _ = pool.shutdown(wait).await;
                }),
                Err(error) => check_refusal(&error),
            }
        });
    }

    #[test]
    fn policies_options_and_snapshots_take_any_value(
        per_worker in sizes(),
        ratio in ratios(),
        priority in priorities(),
        timeout in durations(),
        fields in (sizes(), sizes(), sizes(), sizes(), sizes(), sizes()),
        wait in durations(),
    ) {
        watched("policies", move || {
            let options = TaskOptions::new().priority(priority).timeout(timeout);
            assert_eq!((options.priority, options.timeout), (priority, Some(timeout)));
            let _ = Rejection::Block(wait);
            let (workers, min_workers, max_workers, busy, idle, queued) = fields;
            for trigger in [ScaleTrigger::Queued, ScaleTrigger::IdleTimeout] {
                let snapshot = ScaleSnapshot {
                    trigger,
                    workers,
                    min_workers,
                    max_workers,
                    busy,
                    idle,
                    queued,
                    queue_wait_p99: wait,
                };
                let utilisation = snapshot.utilisation();
                assert!(utilisation.is_finite() && utilisation >= 0.0);
                let _ = GrowWhenQueued.decide(&snapshot);
                match QueueUtilisation::new(per_worker, ratio) {
                    Ok(policy) => {
                        let decision = policy.decide(&snapshot);
                        assert!(!matches!(decision, ScaleDecision::Grow(0)));
                    }
                    Err(error) => check_refusal(&error),
                }
            }
        });
    }

    #[test]
    fn the_thread_driver_refuses_or_works(workers in sizes()) {
        watched("thread driver", move || match ThreadDriver::new(workers) {
            Ok(driver) => drop(driver),
            Err(PoolBuildError::Config(error)) => check_refusal(&error),
            Err(other) => panic!("unexpected error: {other}"),
        });
    }
}

/// The sizes that used to take minutes or terabytes: refused at once with
/// the limit named, or (within the limit) built and shut down quickly.
#[test]
fn huge_worker_counts_are_refused_or_fast() {
    watched("huge worker counts", || {
        let err = BlockingPool::builder().workers(65_536).build().unwrap_err();
        assert_eq!(err.to_string(), "invalid `workers` 65536: must be at most 32768");
        let err = BlockingPool::builder().workers(1).max_workers(usize::MAX).build().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid `max_workers` 18446744073709551615: must be at most 32768"
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let err = AsyncPool::builder().workers(usize::MAX - 1).build().unwrap_err();
            assert_eq!(
                err.to_string(),
                "invalid `workers` 18446744073709551614: must be at most 1048576"
            );
            let pool = AsyncPool::builder().workers(65_536).build().unwrap();
            assert_eq!(pool.workers(), 65_536);
            assert_eq!(pool.submit(async { 7 }).await.unwrap().await, Ok(7));
            assert!(pool.shutdown(Duration::from_secs(60)).await.is_clean());
        });
    });
}

/// The facade builds and waits with any timeout.
#[test]
fn the_facade_takes_any_wait() {
    watched("facade", || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let concurrency = Arc::new(Concurrency::new().unwrap());
            for wait in [Duration::ZERO, Duration::MAX, Duration::from_secs(u64::MAX)] {
                assert!(concurrency.wait_deferred(wait).await);
            }
        });
    });
}
