//! A guided tour of what `conc` offers today. Run it with
//! `cargo run -p conc --example tour`.
//!
//! 1. Backoff schedules: the one backoff implementation every retrying
//!    component shares, shown as a table.
//! 2. Clocks: the cached coarse clock for hot paths and the manual clock for tests.
//! 3. A registry of components shutting down in reverse order by a deadline,
//!    reporting the one that overran it.
//! 4. Locks: workers competing for a nightly job, a funnel of two export
//!    slots, and a fence refusing the late write of a holder that stalled.
//! 5. Rate limits: a per-user API limit with exact retry-after, and a
//!    Laravel-style named limiter charging two limits all or nothing, with the
//!    response headers it renders.
#![allow(clippy::print_stdout, reason = "the tour talks to the terminal")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use conc::core::backoff::{Backoff, BackoffBuilder, BackoffError, Jitter};
use conc::core::lifecycle::{Lifecycle, Registry};
use conc::core::metrics::{MetricEntry, MetricValue, MetricsSnapshot, MetricsSource};
use conc::core::time::{Clock, CoarseClock, ManualClock};
use conc::lock::{Fence, LockStore, MemoryBackend};
use conc::{BoxError, BoxFuture};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    backoff_table()?;
    clocks();
    shutdown().await?;
    locks().await?;
    rate_limits()?;
    Ok(())
}

fn backoff_table() -> Result<(), BackoffError> {
    println!("== 1. Backoff schedules (initial 100ms, 6 retries) ==\n");
    let ms = Duration::from_millis;
    let rows: [(&str, BackoffBuilder); 6] = [
        ("fixed", Backoff::fixed(ms(100))),
        ("linear +100ms", Backoff::linear(ms(100), ms(100))),
        ("exponential x2", Backoff::exponential(ms(100))),
        ("fibonacci", Backoff::fibonacci(ms(100))),
        (
            "exp x2, cap 1s, equal jitter",
            Backoff::exponential(ms(100)).max_delay(ms(1000)).jitter(Jitter::Equal),
        ),
        ("decorrelated jitter, cap 1s", Backoff::decorrelated_jitter(ms(100)).max_delay(ms(1000))),
    ];
    print!("{:<30}", "strategy");
    for retry in 1..=6 {
        print!("{:>9}", format!("retry {retry}"));
    }
    println!();
    for (name, builder) in rows {
        // A fixed seed makes the jittered rows reproducible from run to run.
        let backoff = builder.max_retries(6).seed(7).build()?;
        print!("{name:<30}");
        for delay in backoff.delays() {
            print!("{:>9}", format!("{}ms", delay.as_millis()));
        }
        println!();
    }
    println!();
    Ok(())
}

fn clocks() {
    println!("== 2. Clocks ==\n");
    let coarse = CoarseClock::global();
    let reads = 1_000_000u32;
    let started = Instant::now();
    let mut last = coarse.now();
    for _ in 0..reads {
        last = last.max(coarse.now());
    }
    println!(
        "coarse clock: {reads} reads in {:?} (resolution {:?}, never ahead of Instant::now())",
        started.elapsed(),
        coarse.resolution()
    );

    let manual = ManualClock::new();
    let start = manual.now();
    manual.advance(Duration::from_secs(90));
    println!("manual clock: advanced by hand to {:?} after its origin\n", manual.now() - start);
}

/// How a demo component behaves when asked to stop.
#[derive(Debug, Clone, Copy)]
enum Drain {
    /// Finishes its in-flight work in the given time.
    Within(Duration),
    /// Never finishes: the registry gives up on it at the deadline.
    Never,
}

#[derive(Debug)]
struct Service {
    name: &'static str,
    drain: Drain,
    running: AtomicBool,
    handled: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
struct ServiceMetrics {
    handled: u64,
}

impl MetricsSnapshot for ServiceMetrics {
    fn entries(&self) -> Vec<MetricEntry> {
        vec![MetricEntry::new("handled", MetricValue::Count(self.handled))]
    }
}

impl MetricsSource for Service {
    type Snapshot = ServiceMetrics;
    fn metrics(&self) -> ServiceMetrics {
        ServiceMetrics { handled: self.handled.load(Ordering::Relaxed) }
    }
    fn reset_metrics(&self) {
        self.handled.store(0, Ordering::Relaxed);
    }
}

impl Lifecycle for Service {
    fn name(&self) -> &str {
        self.name
    }

    fn start(&self) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(async move {
            self.running.store(true, Ordering::SeqCst);
            println!("  started  {}", self.name);
            Ok(())
        })
    }

    fn stop(&self, _deadline: Instant) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(async move {
            match self.drain {
                Drain::Within(time) => tokio::time::sleep(time).await,
                Drain::Never => std::future::pending::<()>().await,
            }
            self.running.store(false, Ordering::SeqCst);
            println!("  stopped  {}", self.name);
            Ok(())
        })
    }

    fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }
}

async fn shutdown() -> Result<(), BoxError> {
    println!("== 3. A registry shutting down by a deadline ==\n");
    let registry = Registry::new();
    let services = [
        ("legacy-exporter", Drain::Never),
        ("database-pool", Drain::Within(Duration::from_millis(10))),
        ("queue-worker", Drain::Within(Duration::from_millis(50))),
        ("http", Drain::Within(Duration::from_millis(5))),
    ];
    for (name, drain) in services {
        let service = Service {
            name,
            drain,
            running: AtomicBool::new(false),
            handled: AtomicU64::new(name.len() as u64),
        };
        registry.register(Arc::new(service))?;
    }
    registry.start_all().await?;
    let metrics = registry.metrics();
    println!("\n  requests handled across components: {}", metrics.total_count("handled"));

    println!("\n  shutting down with a 200ms deadline, in reverse registration order:");
    let report = registry.shutdown_all(Instant::now() + Duration::from_millis(200)).await;
    println!("\n  report: {report}");
    for status in registry.list() {
        println!("  {:<16} running: {}", status.name, status.running);
    }
    Ok(())
}

/// A store that remembers the highest fence it accepted and refuses older ones.
#[derive(Debug, Default)]
struct FencedRegister {
    highest: Option<Fence>,
    value: String,
}

impl FencedRegister {
    fn write(&mut self, fence: Fence, value: &str) -> bool {
        if self.highest.is_some_and(|highest| fence < highest) {
            return false;
        }
        self.highest = Some(fence);
        value.clone_into(&mut self.value);
        true
    }
}

async fn locks() -> Result<(), BoxError> {
    println!("\n== 4. Locks with owners and fences ==\n");
    let store = LockStore::memory();

    let mut workers = Vec::new();
    for worker in ["worker-a", "worker-b", "worker-c"] {
        let lock = store.lock("nightly-report", Duration::from_secs(60))?;
        workers.push(tokio::spawn(async move {
            let ran = lock
                .get_with(|fence| async move {
                    // The report takes a while; the others find the lock held.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    fence
                })
                .await?;
            Ok::<_, conc::lock::LockError>((worker, ran))
        }));
    }
    for worker in workers {
        match worker.await?? {
            (name, Some(fence)) => println!("  {name}: ran the nightly report (fence {fence})"),
            (name, None) => println!("  {name}: someone else was running it, skipped"),
        }
    }

    let exports = store.funnel("exports", 2, Duration::from_secs(60))?;
    let first = exports.get().await?.ok_or("slot free")?;
    let second = exports.get().await?.ok_or("slot free")?;
    let third = exports.get().await?;
    println!(
        "\n  funnel of 2: slots {} and {} taken, a third export {}",
        first.slot(),
        second.slot(),
        if third.is_some() { "got in (wrong!)" } else { "waits" }
    );
    first.release().await?;
    second.release().await?;

    // A holder that stalls past its time to live, on a clock we move by hand.
    let clock = ManualClock::new();
    let store = LockStore::new(MemoryBackend::with_clock(clock.clone()));
    let mut register = FencedRegister::default();
    let slow = store.lock("account:7", Duration::from_secs(5))?.get().await?.ok_or("free")?;
    clock.advance(Duration::from_secs(6)); // the holder is paused for 6 s
    let fast = store.lock("account:7", Duration::from_secs(5))?.get().await?.ok_or("expired")?;
    let accepted = register.write(fast.fence(), "balance=90");
    println!("\n  new holder writes with fence {}: {}", fast.fence(), verdict(accepted));
    let accepted = register.write(slow.fence(), "balance=100");
    println!("  stalled holder resumes, writes with fence {}: {}", slow.fence(), verdict(accepted));
    println!(
        "  stalled holder releases: {}",
        match slow.release().await {
            Ok(()) => "released".to_owned(),
            Err(error) => error.to_string(),
        }
    );
    fast.release().await?;
    println!("  register holds {:?}", register.value);
    Ok(())
}

fn verdict(accepted: bool) -> &'static str {
    if accepted { "accepted" } else { "refused (stale fence)" }
}

fn rate_limits() -> Result<(), BoxError> {
    use conc::ratelimit::{Keyed, Limit, Quota, RateLimitError, RateLimiter};

    struct Upload {
        user: u32,
        ip: &'static str,
    }

    println!("\n== 5. Rate limits ==\n");
    // 5 requests per second per user, bursts of up to 5, on a clock we move by hand.
    let clock = ManualClock::new();
    let per_user = Keyed::with_clock(Quota::per_second(5)?, clock.clone());
    for (ms, user) in [
        (0, "ann"),
        (0, "ann"),
        (0, "ann"),
        (0, "ann"),
        (0, "ann"),
        (0, "ann"),
        (0, "bob"),
        (200, "ann"),
    ] {
        clock.advance(Duration::from_millis(ms));
        let verdict = match per_user.try_acquire(&user, 1) {
            Ok(()) => "allowed".to_owned(),
            Err(RateLimitError::Limited { retry_after }) => {
                format!("429, retry after {retry_after:?}")
            }
            Err(other) => other.to_string(),
        };
        println!("  t={:>4?} {user}: {verdict}", clock.elapsed());
    }

    // Laravel's RateLimiter::for, with both limits charged or neither.
    let limiter = RateLimiter::<Upload, _>::with_clock(clock.clone());
    limiter.for_name("uploads", |req: &Upload| {
        [
            Limit::per_minute(2).by(format!("user:{}", req.user)),
            Limit::per_hour(3).by(format!("ip:{}", req.ip)),
        ]
    });
    let now = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for upload in [
        Upload { user: 1, ip: "10.0.0.9" },
        Upload { user: 1, ip: "10.0.0.9" },
        Upload { user: 1, ip: "10.0.0.9" },
        Upload { user: 2, ip: "10.0.0.9" },
    ] {
        let decisions = limiter.check("uploads", &upload)?;
        println!(
            "\n  upload by user {} from {}: {}",
            upload.user,
            upload.ip,
            if decisions.allowed() { "allowed" } else { "refused" }
        );
        for (name, value) in decisions.headers(now) {
            println!("    {name}: {value}");
        }
    }
    println!(
        "\n  IP counter: {} of 3 used; the refused upload was charged to neither limit",
        limiter.attempts("uploads:ip:10.0.0.9")
    );
    Ok(())
}
