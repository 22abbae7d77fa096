//! `conc-ratelimit`: GCRA checks, direct and keyed, beside governor (the Rust
//! anchor: GCRA in one atomic word, keyed on a `DashMap`).
//!
//! Both sides get the same quotas. Ours reads its default clock, the
//! process-wide coarse clock (one atomic load). governor runs twice: with its
//! default clock, quanta's TSC reading (`peer/governor_default_clock`), and
//! with its fastest, `QuantaUpkeepClock`, a coarse clock kept by an upkeep
//! thread like ours (`peer/governor_upkeep_clock`). The direct
//! limiters allow 10⁹ per second with a burst of 10⁶; the keyed ones 10⁶ per
//! day per key with the same burst. Either way every check is admitted, so
//! every check is a compare-and-swap, and keyed state stays live (a key whose
//! state is fully replenished would be evicted by ours, turning the scenario
//! into an insert benchmark).
//!
//! - `ratelimit/direct_1t`: one thread, one limiter.
//! - `ratelimit/direct_2t`: two threads on one limiter; one iteration is one
//!   check on each thread (wall time, so threads that scale halve it).
//! - `ratelimit/keyed_100k_2t`: 100 000 keys already present, two threads
//!   each checking keys in a scrambled order; one iteration is one check on
//!   each thread.
//!
//! - `ratelimit/acquire_async`: one `acquire(1).await` on a current-thread
//!   tokio runtime that never has to wait: our `Gcra` and `TokenBucket`
//!   against `leaky_bucket::RateLimiter` (10⁹ permits refilled every
//!   millisecond, starting full).
//! - `ratelimit/try_acquire_sync`: the same three, non-blocking.
//! - `ratelimit/tower_call`: `ready().await` then `call(..).await` through
//!   our `RateLimitLayer` against tower's `RateLimit` (10¹⁸ requests per
//!   second), both over a `service_fn` that answers at once. `ours` charges
//!   a shared keyed limiter under one key; `ours/direct` a shared `Gcra`, one
//!   limit over every request, which is what tower's limiter is.
//!
//! - `ratelimit/leaky_bucket`: one admitted `try_acquire(1)` on our
//!   `LeakyBucket` used as a meter (its pacing cell, through the `Limiter`
//!   trait) against `leaky_bucket::RateLimiter::try_acquire(1)`; and one
//!   `try_enqueue` + `try_dequeue` round trip through our queue against the
//!   peer's `try_acquire` that would let the same item out.
//! - `ratelimit/sliding`: one admitted `try_acquire(1)` on our
//!   `SlidingWindow` and `SlidingLog` (10⁹ per second) against governor's
//!   direct check, the nearest peer (no sliding window in governor or
//!   leaky-bucket), with its default and its upkeep clock.
//! - `ratelimit/named`: one admitted `RateLimiter::attempt` on one of 1 000
//!   string keys against governor's keyed check on the same `String` keys
//!   (both with their default clock).
//!
//! - `ratelimit/redis`: one GCRA check on a loopback `redis-server` the
//!   bench starts, against one raw `EVALSHA` of an equivalent hand-written
//!   script with the same client (skipped without a `redis-server` binary).
//!
//! Before the groups run, the suite prints the bytes allocated per key by
//! each keyed store holding 1 000 000 live `u64` keys (a counting allocator).
#![allow(missing_docs, reason = "criterion's macros generate undocumented items")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::Barrier;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use std::sync::Arc;

use conc_ratelimit::{
    Gcra, Keyed, LeakyBucket, Limiter, Quota, RateLimitLayer, RateLimiter, SlidingLog,
    SlidingWindow, TokenBucket,
};
use criterion::{Criterion, criterion_group, criterion_main};
use tower::{Layer as _, ServiceExt as _};

/// Counts live heap bytes, so the suite can report memory per key.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter only observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size().cast_signed(), Ordering::Relaxed);
        // SAFETY: the caller upholds `alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size().cast_signed(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size.cast_signed() - layout.size().cast_signed(), Ordering::Relaxed);
        // SAFETY: as for `realloc`'s caller.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const RATE: u32 = 1_000_000_000;
const BURST: u32 = 1_000_000;
const KEYS: u64 = 100_000;

fn ours_quota() -> Quota {
    Quota::per_second(RATE).and_then(|q| q.with_burst(BURST)).expect("valid quota")
}

fn ours_keyed_quota() -> Quota {
    Quota::per_day(BURST).expect("valid quota")
}

fn peer_keyed_quota() -> governor::Quota {
    governor::Quota::with_period(Duration::from_nanos(86_400_000_000_000 / u64::from(BURST)))
        .expect("non-zero period")
        .allow_burst(NonZeroU32::new(BURST).expect("non-zero"))
}

fn peer_quota() -> governor::Quota {
    governor::Quota::per_second(NonZeroU32::new(RATE).expect("non-zero"))
        .allow_burst(NonZeroU32::new(BURST).expect("non-zero"))
}

/// A scrambled walk over `0..KEYS` (multiplication by an odd constant modulo a
/// power of two above `KEYS`, skipping values past it), so consecutive checks
/// land in different shards and cache lines.
fn scrambled_keys() -> Vec<u64> {
    (0..131_072u64).map(|i| i.wrapping_mul(0x9E37_79B9) & 131_071).filter(|k| *k < KEYS).collect()
}

/// Runs `per_thread(thread_index, iters)` on two threads at once and returns
/// the wall time from the common start to the last finish.
fn two_threads(iters: u64, per_thread: impl Fn(usize, u64) + Sync) -> Duration {
    let barrier = Barrier::new(3);
    std::thread::scope(|scope| {
        for index in 0..2 {
            let barrier = &barrier;
            let per_thread = &per_thread;
            scope.spawn(move || {
                barrier.wait();
                per_thread(index, iters);
                barrier.wait();
            });
        }
        barrier.wait();
        let start = Instant::now();
        barrier.wait();
        start.elapsed()
    })
}

/// governor's fastest clock: a coarse TSC reading refreshed by an upkeep
/// thread every millisecond (the resolution of our coarse clock).
fn upkeep_clock() -> governor::clock::QuantaUpkeepClock {
    governor::clock::QuantaUpkeepClock::from_interval(Duration::from_millis(1))
        .expect("an upkeep thread")
}

/// governor's direct check, one thread, with its default clock and with its
/// upkeep clock: the two peer rows of a single-threaded group.
fn governor_direct_rows(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
) {
    let peer = governor::RateLimiter::direct(peer_quota());
    group.bench_function("peer/governor_default_clock", |b| {
        b.iter(|| black_box(peer.check()).is_ok());
    });
    let peer = governor::RateLimiter::direct_with_clock(peer_quota(), upkeep_clock());
    group.bench_function("peer/governor_upkeep_clock", |b| {
        b.iter(|| black_box(peer.check()).is_ok());
    });
}

fn direct_1t(c: &mut Criterion) {
    let mut group = c.benchmark_group("ratelimit/direct_1t");
    let ours = Gcra::new(ours_quota());
    group.bench_function("ours", |b| b.iter(|| black_box(ours.try_acquire(1)).is_ok()));
    governor_direct_rows(&mut group);
    group.finish();
}

/// A row of `group` timing `check` on two threads at once; one iteration is
/// one check on each thread.
fn two_thread_row(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: &str,
    check: impl Fn() + Sync,
) {
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            two_threads(iters, |_, n| {
                for _ in 0..n {
                    check();
                }
            })
        });
    });
}

fn direct_2t(c: &mut Criterion) {
    let mut group = c.benchmark_group("ratelimit/direct_2t");
    let ours = Gcra::new(ours_quota());
    two_thread_row(&mut group, "ours", || {
        let _ = black_box(ours.try_acquire(1));
    });
    let peer = governor::RateLimiter::direct(peer_quota());
    two_thread_row(&mut group, "peer/governor_default_clock", || {
        let _ = black_box(peer.check());
    });
    let peer = governor::RateLimiter::direct_with_clock(peer_quota(), upkeep_clock());
    two_thread_row(&mut group, "peer/governor_upkeep_clock", || {
        let _ = black_box(peer.check());
    });
    group.finish();
}

fn keyed_100k_2t(c: &mut Criterion) {
    let mut group = c.benchmark_group("ratelimit/keyed_100k_2t");
    let keys = scrambled_keys();
    let ours: Keyed<u64> = Keyed::new(ours_keyed_quota());
    let peer = governor::RateLimiter::keyed(peer_keyed_quota());
    let peer_upkeep = governor::RateLimiter::dashmap_with_clock(peer_keyed_quota(), upkeep_clock());
    for key in &keys {
        ours.try_acquire(key, 1).expect("admitted");
        peer.check_key(key).expect("admitted");
        peer_upkeep.check_key(key).expect("admitted");
    }
    let walk = |index: usize, n: u64, check: &dyn Fn(&u64)| {
        let mut i = index * keys.len() / 2;
        for _ in 0..n {
            check(&keys[i]);
            i += 1;
            if i == keys.len() {
                i = 0;
            }
        }
    };
    group.bench_function("ours", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, |index, n| {
                walk(index, n, &|key| {
                    black_box(ours.try_acquire(key, 1)).ok();
                });
            })
        });
    });
    group.bench_function("peer/governor_default_clock", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, |index, n| {
                walk(index, n, &|key| {
                    black_box(peer.check_key(key)).ok();
                });
            })
        });
    });
    group.bench_function("peer/governor_upkeep_clock", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, |index, n| {
                walk(index, n, &|key| {
                    black_box(peer_upkeep.check_key(key)).ok();
                });
            })
        });
    });
    group.finish();
}

fn leaky_bucket(c: &mut Criterion) {
    let mut group = c.benchmark_group("ratelimit/leaky_bucket");
    // Pacing of one unit per nanosecond with a burst of 10⁹: every take admitted.
    let ours: LeakyBucket<u64> = LeakyBucket::builder()
        .capacity(1_024)
        .interval(Duration::from_nanos(1))
        .burst(1_000_000_000)
        .build()
        .expect("valid bucket");
    group.bench_function("ours/meter", |b| {
        b.iter(|| black_box(Limiter::try_acquire(&ours, &(), 1)).is_ok());
    });
    group.bench_function("ours/enqueue_dequeue", |b| {
        b.iter(|| {
            ours.try_enqueue(7).expect("room");
            black_box(ours.try_dequeue()).expect("paced through");
        });
    });
    let peer = peer_leaky_bucket();
    group.bench_function("peer/leaky-bucket", |b| b.iter(|| black_box(peer.try_acquire(1))));
    group.finish();
}

fn sliding(c: &mut Criterion) {
    let mut group = c.benchmark_group("ratelimit/sliding");
    let window = SlidingWindow::new(RATE, Duration::from_secs(1)).expect("valid window");
    group.bench_function("ours/window", |b| b.iter(|| black_box(window.try_acquire(1)).is_ok()));
    let log = SlidingLog::new(RATE, Duration::from_secs(1)).expect("valid log");
    group.bench_function("ours/log", |b| b.iter(|| black_box(log.try_acquire(1)).is_ok()));
    governor_direct_rows(&mut group);
    group.finish();
}

fn named(c: &mut Criterion) {
    let mut group = c.benchmark_group("ratelimit/named");
    let keys: Vec<String> = (0..1_000).map(|i| format!("user:{i}")).collect();
    let ours: RateLimiter = RateLimiter::new();
    let day = Duration::from_secs(86_400);
    let mut next = 0;
    group.bench_function("ours/attempt", |b| {
        b.iter(|| {
            next = (next + 1) % keys.len();
            black_box(ours.attempt(&keys[next], u64::MAX, day, || ())).ok();
        });
    });
    let peer = governor::RateLimiter::keyed(peer_keyed_quota());
    let mut next = 0;
    group.bench_function("peer/governor_default_clock", |b| {
        b.iter(|| {
            next = (next + 1) % keys.len();
            black_box(peer.check_key(&keys[next])).ok();
        });
    });
    group.finish();
}

/// Heap bytes per key with 1 000 000 `u64` keys in each keyed store.
#[allow(clippy::print_stdout, reason = "the suite reports memory per key on the terminal")]
fn memory_per_key(_: &mut Criterion) {
    const N: u64 = 1_000_000;
    let before = LIVE.load(Ordering::Relaxed);
    // One request per day per key: every key stays live (not evictable) for
    // the whole measurement.
    let ours: Keyed<u64> = Keyed::new(Quota::per_day(1).expect("valid quota"));
    for key in 0..N {
        ours.try_acquire(&key, 1).expect("admitted");
    }
    let ours_bytes = LIVE.load(Ordering::Relaxed) - before;
    drop(ours);
    let before = LIVE.load(Ordering::Relaxed);
    let peer = governor::RateLimiter::keyed(
        governor::Quota::with_period(Duration::from_secs(86_400)).expect("non-zero period"),
    );
    for key in 0..N {
        peer.check_key(&key).expect("admitted");
    }
    let peer_bytes = LIVE.load(Ordering::Relaxed) - before;
    drop(peer);
    println!(
        "ratelimit/memory_per_key (1M u64 keys): ours {:.1} B/key, governor {:.1} B/key",
        ours_bytes as f64 / N as f64,
        peer_bytes as f64 / N as f64
    );
}

/// A GCRA check on Redis against one raw `EVALSHA` of a hand-written GCRA
/// script doing the same work (read TIME, GET, compare, SET PX), through the
/// same kind of client (a `ConnectionManager`) on the same server: the cost
/// of our wrapper on top of the round trip.
fn redis(c: &mut Criterion) {
    let server = match conc_test_support::RedisServer::start() {
        Ok(server) => server,
        Err(error) => {
            #[allow(
                clippy::print_stderr,
                reason = "a bench reports a skipped group on the terminal"
            )]
            {
                eprintln!("skipping ratelimit/redis: {error}");
            }
            return;
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let url = server.url();
    let (ours, raw) = rt.block_on(async {
        let ours =
            conc_ratelimit::RedisLimiter::connect(url.clone()).await.expect("the bench server");
        let client = redis::Client::open(url.as_str()).expect("a redis url");
        let raw = redis::aio::ConnectionManager::new(client).await.expect("the bench server");
        (ours, raw)
    });
    let quota = ours_keyed_quota();
    let script = redis::Script::new(
        r"
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + ARGV[1]
if new_tat - ARGV[2] > now then return 0 end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return 1
",
    );
    let emission_us = quota.emission_interval().as_micros() as u64;
    let tolerance_us = emission_us * u64::from(quota.burst());

    let mut group = c.benchmark_group("ratelimit/redis");
    let mut n = 0u64;
    group.bench_function("ours", |b| {
        b.to_async(&rt).iter(|| {
            n = (n + 1) % 1_000;
            let key = format!("user:{n}");
            let ours = &ours;
            async move {
                black_box(ours.try_acquire(&key, quota, 1).await).expect("admitted");
            }
        });
    });
    let mut n = 0u64;
    group.bench_function("peer/evalsha", |b| {
        b.to_async(&rt).iter(|| {
            n = (n + 1) % 1_000;
            let key = format!("raw:{{user:{n}}}");
            let mut raw = raw.clone();
            let mut invocation = script.prepare_invoke();
            invocation.key(key).arg(emission_us).arg(tolerance_us);
            async move {
                let admitted: i64 = invocation.invoke_async(&mut raw).await.expect("server up");
                black_box(admitted);
            }
        });
    });
    group.finish();
    drop(rt);
    drop(server);
}

/// Our token bucket holding 10⁹ tokens refilled every millisecond, like the peer.
fn ours_token_bucket() -> TokenBucket {
    TokenBucket::builder()
        .capacity(1_000_000_000)
        .refill(1_000_000_000)
        .interval(Duration::from_millis(1))
        .build()
        .expect("valid bucket")
}

/// `leaky_bucket::RateLimiter` holding 10⁹ permits refilled every millisecond.
fn peer_leaky_bucket() -> leaky_bucket::RateLimiter {
    leaky_bucket::RateLimiter::builder()
        .max(1_000_000_000)
        .initial(1_000_000_000)
        .refill(1_000_000_000)
        .interval(Duration::from_millis(1))
        .build()
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
}

/// Times `iters` runs of `step` inside one `block_on`.
fn timed<F: Future<Output = ()>>(
    rt: &tokio::runtime::Runtime,
    iters: u64,
    mut step: impl FnMut() -> F,
) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            step().await;
        }
        start.elapsed()
    })
}

fn acquire_async(c: &mut Criterion) {
    let rt = current_thread();
    let mut group = c.benchmark_group("ratelimit/acquire_async");
    let gcra = Gcra::new(ours_quota());
    group.bench_function("ours/gcra", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, || async { black_box(gcra.acquire(1).await).expect("admitted") })
        });
    });
    let bucket = ours_token_bucket();
    group.bench_function("ours/token_bucket", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, || async { black_box(bucket.acquire(1).await).expect("admitted") })
        });
    });
    let peer = peer_leaky_bucket();
    group.bench_function("peer/leaky-bucket", |b| {
        b.iter_custom(|iters| timed(&rt, iters, || async { peer.acquire(1).await }));
    });
    group.finish();
}

fn try_acquire_sync(c: &mut Criterion) {
    let mut group = c.benchmark_group("ratelimit/try_acquire_sync");
    let gcra = Gcra::new(ours_quota());
    group.bench_function("ours/gcra", |b| b.iter(|| black_box(gcra.try_acquire(1)).is_ok()));
    let bucket = ours_token_bucket();
    group.bench_function("ours/token_bucket", |b| {
        b.iter(|| black_box(bucket.try_acquire(1)).is_ok());
    });
    let peer = peer_leaky_bucket();
    group.bench_function("peer/leaky-bucket", |b| b.iter(|| black_box(peer.try_acquire(1))));
    group.finish();
}

fn tower_call(c: &mut Criterion) {
    let rt = current_thread();
    let answer =
        tower::service_fn(|request: u64| async move { Ok::<_, std::convert::Infallible>(request) });
    let mut group = c.benchmark_group("ratelimit/tower_call");
    let keyed: Arc<Keyed<()>> = Arc::new(Keyed::new(ours_quota()));
    let mut ours = RateLimitLayer::new(keyed, |_: &u64| ()).layer(answer);
    group.bench_function("ours", |b| b.iter_custom(|iters| calls(&rt, &mut ours, iters)));
    let direct = Arc::new(Gcra::new(ours_quota()));
    let mut ours_direct = RateLimitLayer::new(direct, |_: &u64| ()).layer(answer);
    group.bench_function("ours/direct", |b| {
        b.iter_custom(|iters| calls(&rt, &mut ours_direct, iters));
    });
    let mut peer = rt.block_on(async {
        tower::limit::RateLimit::new(
            answer,
            tower::limit::rate::Rate::new(1_000_000_000_000_000_000, Duration::from_secs(1)),
        )
    });
    group.bench_function("peer/tower", |b| b.iter_custom(|iters| calls(&rt, &mut peer, iters)));
    group.finish();
}

/// Times `iters` calls of `service` (`ready().await`, then the call's future
/// awaited), every one admitted.
fn calls<S>(rt: &tokio::runtime::Runtime, service: &mut S, iters: u64) -> Duration
where
    S: tower::Service<u64, Response = u64>,
    S::Error: std::fmt::Debug,
{
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            let ready = service.ready().await.expect("ready");
            black_box(ready.call(7).await.expect("admitted"));
        }
        start.elapsed()
    })
}

criterion_group!(
    benches,
    memory_per_key,
    direct_1t,
    direct_2t,
    keyed_100k_2t,
    acquire_async,
    try_acquire_sync,
    tower_call,
    leaky_bucket,
    sliding,
    named,
    redis
);
criterion_main!(benches);
