//! A guided tour of what `conc` offers today. Run it with
//! `cargo run -p conc-kit --example tour`.
//!
//! 1. Backoff schedules: the one backoff implementation every retrying
//!    component shares, shown as a table.
//! 2. Clocks: the cached coarse clock for hot paths and the manual clock for tests.
//! 3. A registry of components shutting down in reverse order by a deadline,
//!    reporting the one that overran it.
//! 4. Locks: workers competing for a nightly job, a funnel of two export
//!    slots, and a fence refusing the late write of a holder that stalled.
//! 5. Processes: a build step with a timeout that kills the whole process
//!    tree, a pool of checks under a concurrency limit, and a pipeline.
//! 6. Rate limits: a per-user API limit with exact retry-after, and a
//!    Laravel-style named limiter charging two limits all or nothing, with the
//!    response headers it renders.
//! 7. Resilience: a flaky price service behind retries, a circuit breaker and
//!    a bulkhead, with a cached fallback while the circuit is open.
//! 8. A pipeline importing order lines: parse, price with retries against a
//!    flaky service, dead letters for bad lines, per-stage metrics.
//! 9. Fan-in of three shop feeds (the express one first) and fan-out of the
//!    merged orders over four workers, with their loads.
//! 10. Pools: thumbnails on a blocking pool with a bounded queue that makes
//!     the producer run overflow itself, an async pool serving urgent
//!     requests first, a panic reported in its handle, and a shutdown that
//!     hands back what never started.
//! 11. Background jobs: an order confirmation pushed and processed, a flaky
//!     export retried with backoff until it lands in the failed store, and
//!     the failed job retried from the store after the export service is back;
//!     then a command dispatched on the bus. The jobs live in
//!     `target/tour-jobs.db`, which the dashboard can open afterwards.
#![allow(clippy::print_stdout, reason = "the tour talks to the terminal")]
#[path = "tour_parts/workflows.rs"]
mod workflows;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use conc::core::backoff::{Backoff, BackoffBuilder, Jitter};
use conc::core::config::ConfigError;
use conc::core::lifecycle::{Lifecycle, Registry};
use conc::core::metrics::{MetricEntry, MetricValue, MetricsSnapshot, MetricsSource};
use conc::core::time::{Clock, CoarseClock, ManualClock};
use conc::lock::{Fence, LockStore, MemoryBackend};
use conc::process::{Pipe, Process, ProcessError, ProcessPool, ProcessPoolEvent};
use conc::{BoxError, BoxFuture};
use futures::StreamExt;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    backoff_table()?;
    clocks();
    shutdown().await?;
    locks().await?;
    processes().await?;
    rate_limits()?;
    resilience().await?;
    pipeline().await?;
    fan().await?;
    pools().await?;
    jobs().await?;
    Ok(())
}

fn backoff_table() -> Result<(), ConfigError> {
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
    let store = LockStore::new(MemoryBackend::builder().clock(clock.clone()).build());
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
    let m = store.metrics();
    println!(
        "  store metrics: {} acquired, {} released, {} lost (expired)",
        m.acquired, m.released, m.expired
    );
    Ok(())
}

fn verdict(accepted: bool) -> &'static str {
    if accepted { "accepted" } else { "refused (stale fence)" }
}

async fn processes() -> Result<(), BoxError> {
    println!("\n== 5. Processes ==\n");
    // A "build" that starts a helper and then hangs: the timeout kills the
    // script and the helper it started (one process group), and hands back
    // the output read so far.
    let started = Instant::now();
    let hung = Process::shell("echo compiling; sleep 60 & echo \"helper pid $!\"; wait")
        .timeout(Duration::from_millis(500))
        .run()
        .await;
    match hung {
        Err(ProcessError::TimedOut { kind, output, .. }) => println!(
            "build timed out ({kind:?}) after {:?}, {}; output kept: {:?}",
            started.elapsed(),
            output.status(),
            output.stdout_str().lines().collect::<Vec<_>>()
        ),
        other => println!("build: {other:?}"),
    }

    // Six checks, at most two at a time, results in the order given.
    let pool = ProcessPool::builder()
        .concurrency(2)
        .on_event(|event| {
            if let ProcessPoolEvent::Finished { name, successful, completed, total, .. } = event {
                println!(
                    "  [{completed}/{total}] {name} {}",
                    if *successful { "ok" } else { "FAILED" }
                );
            }
        })
        .build()?;
    let checks = [
        ("fmt", "exit 0"),
        ("lint", "exit 0"),
        ("unit", "exit 0"),
        ("docs", "echo 'broken link' >&2; exit 1"),
        ("audit", "exit 0"),
        ("size", "exit 0"),
    ]
    .map(|(name, script)| (name, Process::shell(script)));
    let results = pool.run(checks).await?;
    let failed: Vec<&str> = results.failed().collect();
    println!("pool of 2: {} checks, failed: {failed:?}", results.len());

    // A real pipe: sort | uniq -c | sort -rn | head -1.
    let top = Pipe::new()
        .pipe(Process::new("sort").input("db\nweb\nweb\ncache\nweb\ndb\n"))
        .pipe(Process::new("uniq").arg("-c"))
        .pipe(Process::new("sort").arg("-rn"))
        .pipe(Process::new("head").args(["-n", "1"]))
        .run()
        .await?;
    println!(
        "most frequent service: {} (stages: {:?})",
        top.stdout_str().trim(),
        top.statuses().len()
    );
    Ok(())
}

fn rate_limits() -> Result<(), BoxError> {
    use conc::ratelimit::{Keyed, Limit, Quota, RateLimitError, RateLimiter};

    struct Upload {
        user: u32,
        ip: &'static str,
    }

    println!("\n== 6. Rate limits ==\n");
    // 5 requests per second per user, bursts of up to 5, on a clock we move by hand.
    let clock = ManualClock::new();
    let per_user = Keyed::builder(Quota::per_second(5)?).clock(clock.clone()).build();
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

    let m = per_user.metrics();
    println!("  per-user limiter: {} allowed, {} refused, {} keys", m.allowed, m.rejected, m.keys);

    // Laravel's RateLimiter::for, with both limits charged or neither.
    let limiter = RateLimiter::<Upload>::builder().clock(clock.clone()).build();
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

/// A price service that is down from its 5th to its 12th request.
struct PriceService {
    requests: AtomicU64,
}

impl PriceService {
    async fn price(&self, sku: &str) -> Result<u64, std::io::Error> {
        let n = self.requests.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1)).await;
        if (4..12).contains(&n) {
            Err(std::io::Error::other(format!("price service unavailable for {sku}")))
        } else {
            Ok(1_999)
        }
    }
}

async fn resilience() -> Result<(), BoxError> {
    use conc::resilience::{
        Bulkhead, CircuitBreaker, ErrorKind, FailureWindow, Fallback, ResilienceError, Retry,
        Stack, Timeout,
    };

    println!("\n== 7. Resilience: retries, a circuit breaker, a bulkhead and a fallback ==\n");
    let breaker = CircuitBreaker::builder()
        .name("prices")
        .sliding_window(FailureWindow::count(10))
        .minimum_calls(5)
        .failure_rate_threshold(0.5)
        .wait_in_open(Duration::from_millis(30))
        .permitted_calls_in_half_open(2)
        .on_event(|event| {
            if let conc::resilience::BreakerEvent::StateTransition { from, to, reason } = event {
                println!("  breaker: {from} -> {to} ({reason})");
            }
        })
        .build()?;
    let stack = Stack::builder()
        .total_timeout(Timeout::new(Duration::from_secs(1))?)
        .retry(
            Retry::builder()
                .backoff(Backoff::fixed(Duration::from_millis(2)).build()?)
                .max_attempts(2)
                .build()?,
        )
        .circuit_breaker(breaker.clone())
        .bulkhead(Bulkhead::builder().max_concurrent(8).build()?)
        .attempt_timeout(Timeout::new(Duration::from_millis(100))?)
        .build();
    let cached: Fallback<u64, std::io::Error> =
        Fallback::new().on(ErrorKind::BreakerOpen, |_| 1_899);
    let service = PriceService { requests: AtomicU64::new(0) };

    let (mut live, mut fallback, mut failed) = (0, 0, 0);
    for _ in 0..30 {
        let result = stack
            .run(|_| service.price("sku-42"))
            .await
            .map(|price| (price, true))
            .or_else(|error| cached.apply(Err(error)).map(|price| (price, false)));
        match result {
            Ok((_, true)) => live += 1,
            Ok((_, false)) => fallback += 1,
            Err(ResilienceError::Inner(_)) => failed += 1,
            Err(other) => return Err(other.into()),
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let metrics = breaker.metrics();
    println!(
        "\n  30 requests: {live} live prices, {fallback} cached prices while the circuit was open, {failed} failed"
    );
    println!(
        "  the price service saw {} requests; the breaker refused {} and is {}",
        service.requests.load(Ordering::SeqCst),
        metrics.not_permitted,
        metrics.state
    );
    Ok(())
}

async fn pipeline() -> Result<(), BoxError> {
    use conc::pipeline::{DeadLetterQueue, Pipeline, Stage};

    println!("\n== 8. A pipeline importing order lines ==\n");
    let rejected = DeadLetterQueue::new(100);
    let flaky_calls = Arc::new(AtomicU64::new(0));
    let calls = Arc::clone(&flaky_calls);
    let pipeline = Pipeline::builder()
        .then(
            Stage::new("parse", |line: String| async move {
                let (sku, qty) = line.split_once(',').ok_or("no comma")?;
                Ok::<_, BoxError>((sku.to_owned(), qty.trim().parse::<u32>()?))
            })
            .concurrency(4)
            .dead_letter(rejected.clone()),
        )
        .filter(|(_, qty)| *qty > 0)
        .then(
            Stage::new("price", move |(sku, qty): (String, u32)| {
                let calls = Arc::clone(&calls);
                async move {
                    // The price service fails every third call.
                    if calls.fetch_add(1, Ordering::Relaxed) % 3 == 2 {
                        return Err("price service unavailable");
                    }
                    Ok(format!("{sku} x{qty} = {:.2}", f64::from(qty) * 2.5))
                }
            })
            .concurrency(8)
            .retry(Backoff::exponential(Duration::from_millis(5)).max_retries(3).build()?),
        )
        .build()?;

    let lines = ["apple, 4", "pear, x", "plum, 0", "fig, 2", "no-comma", "kiwi, 10"];
    let priced: Vec<String> = pipeline
        .process_stream(futures::stream::iter(lines.map(String::from)))
        .filter_map(|line| async move { line.ok() })
        .collect()
        .await;
    for line in &priced {
        println!("  priced   {line}");
    }
    for letter in rejected.take() {
        println!("  rejected {:?} at {}: {}", letter.item, letter.origin, letter.error);
    }
    for stage in pipeline.metrics().stages {
        println!(
            "  stage {:<6} processed {} failed {} retried {} dead-lettered {}",
            stage.name, stage.processed, stage.failed, stage.retried, stage.dead_lettered
        );
    }
    Ok(())
}

async fn fan() -> Result<(), BoxError> {
    use conc::fan::{Balance, FanIn, FanOut, Priority};

    println!("\n== 9. Fan-in of shop feeds, fan-out over workers ==\n");
    let mut feeds = FanIn::with_strategy(Priority::default());
    feeds.add_with_priority(futures::stream::iter((1..=4).map(|n| format!("web-{n}"))), 1);
    feeds.add_with_priority(futures::stream::iter((1..=4).map(|n| format!("shop-{n}"))), 1);
    feeds.add_with_priority(futures::stream::iter((1..=2).map(|n| format!("express-{n}"))), 9);
    let packers = FanOut::builder().workers(4).batch(1).balance(Balance::LeastLoaded).build(
        |order: String| async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok::<_, BoxError>(format!("packed {order}"))
        },
    )?;
    let mut packed = packers.process_stream(feeds);
    let mut order = Vec::new();
    while let Some(result) = packed.next().await {
        order.push(result?);
    }
    println!("  in merge order: {}", order.join(", "));
    let loads: Vec<u64> = packed.loads().iter().map(|load| load.processed).collect();
    println!("  orders packed per worker: {loads:?}");
    Ok(())
}

async fn pools() -> Result<(), BoxError> {
    use conc::pool::{AsyncPool, BlockingPool, JoinError, Rejection, TaskOptions};

    println!("\n== 10. Worker pools ==\n");
    // CPU work: 40 thumbnails through 2 threads and a queue of 8. When the
    // queue is full, the producer renders the thumbnail itself (caller runs),
    // which slows it down to the pool's pace instead of piling work up.
    let thumbnails = BlockingPool::builder()
        .name("thumbnails")
        .workers(2)
        .queue_capacity(8)
        .rejection(Rejection::CallerRuns)
        .build()?;
    let render =
        |id: u32| move || (0..20_000u32).fold(id, |acc, x| acc.wrapping_mul(31).wrapping_add(x));
    let batch = thumbnails.submit_batch((0..40).map(render)).map_err(|e| e.to_string())?;
    let rendered = tokio::task::spawn_blocking(move || batch.join()).await?;
    let m = thumbnails.metrics();
    println!(
        "  thumbnails: {} rendered in input order; {} by the pool, {} by the producer when the queue was full",
        rendered.iter().filter(|r| r.is_ok()).count(),
        m.submitted,
        m.caller_ran
    );

    // I/O work: one worker, so the queue order shows. Urgent requests jump
    // the queue; a request that panics fails alone.
    let api = AsyncPool::builder().name("api").workers(1).build()?;
    let gate = Arc::new(tokio::sync::Notify::new());
    let held = Arc::clone(&gate);
    api.spawn(async move { held.notified().await }).await.map_err(|e| e.to_string())?;
    let served = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut requests = Vec::new();
    for (name, priority) in [("report", 0), ("login", 10), ("export", 0), ("payment", 10)] {
        let log = Arc::clone(&served);
        let request = api.submit_with(TaskOptions::new().priority(priority), async move {
            log.lock().expect("log").push(name);
        });
        requests.push(request.await.map_err(|e| e.to_string())?);
    }
    let broken = api
        .submit(async {
            let rows: Vec<u32> = Vec::new();
            rows[3]
        })
        .await
        .map_err(|e| e.to_string())?;
    // That request panics on purpose and its handle carries the message, so
    // the default panic report (and backtrace) stays quiet while it runs.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    gate.notify_one();
    for request in requests {
        request.await?;
    }
    let broken = broken.await;
    std::panic::set_hook(report);
    let served = served.lock().expect("log").join(", ");
    println!("  api: served {served} (priority 10 first, FIFO within a priority)");
    if let Err(JoinError::Panicked { message }) = broken {
        println!("  api: a request panicked ({message}); the worker kept serving");
    }

    // Shutdown with work still queued: nothing is lost, it is handed back.
    let stalled = Arc::new(tokio::sync::Notify::new());
    let held = Arc::clone(&stalled);
    api.spawn(async move { held.notified().await }).await.map_err(|e| e.to_string())?;
    let late: Vec<_> = [1, 2, 3].into_iter().map(|n| api.try_submit(async move { n })).collect();
    let report = api.shutdown(Duration::from_millis(20)).await;
    println!(
        "  shutdown: {} still running was cancelled, {} queued handed back",
        report.still_running,
        report.unstarted.len()
    );
    for task in report.unstarted {
        task.run().await; // run them here instead; their handles resolve
    }
    let mut outputs = Vec::new();
    for handle in late.into_iter().flatten() {
        outputs.push(handle.await?);
    }
    println!("  the handed-back requests ran on the caller: {outputs:?}");
    Ok(())
}

async fn jobs() -> Result<(), BoxError> {
    use conc::bus::{
        Bus, Command, FailedQuery, Job, JobContext, JobError, JobHandlers, Queue, Selection,
        SqliteQueue, Worker,
    };

    #[derive(serde::Serialize, serde::Deserialize)]
    struct ConfirmOrder {
        order: u32,
    }
    impl Job for ConfirmOrder {
        const NAME: &'static str = "confirm-order";
    }

    #[derive(serde::Serialize, serde::Deserialize)]
    struct ExportOrders {
        day: u32,
    }
    impl Job for ExportOrders {
        const NAME: &'static str = "export-orders";
    }

    #[derive(Clone)]
    struct PlaceOrder {
        items: u32,
    }
    #[derive(Debug, thiserror::Error)]
    #[error("an order needs at least one item")]
    struct EmptyOrder;
    impl Command for PlaceOrder {
        type Output = u32;
        type Error = EmptyOrder;
    }
    println!("\n== 11. Background jobs ==\n");
    // The jobs live in a SQLite file that outlasts the tour, for the dashboard:
    // `cargo run -p conc-dashboard -- --backend sqlite:target/tour-jobs.db`.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tour-jobs.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let backend = SqliteQueue::open(&path)?;
    let queue = Queue::new(backend.clone());
    queue.push(ConfirmOrder { order: 1042 }).await?;
    queue
        .dispatch(ExportOrders { day: 17 })
        .max_attempts(3)
        .backoff([10, 20].map(Duration::from_millis))
        .await?;

    // The export service is down until we say otherwise.
    let export_up = Arc::new(AtomicBool::new(false));
    let handlers = |export_up: Arc<AtomicBool>| {
        JobHandlers::new()
            .handle(|job: ConfirmOrder, ctx: JobContext| async move {
                println!("  confirm-order {}: mail sent (attempt {})", job.order, ctx.attempt());
                Ok::<(), JobError>(())
            })
            .handle(move |job: ExportOrders, ctx: JobContext| {
                let up = export_up.load(Ordering::SeqCst);
                async move {
                    if up {
                        println!(
                            "  export-orders day {}: exported (attempt {})",
                            job.day,
                            ctx.attempt()
                        );
                        Ok(())
                    } else {
                        println!(
                            "  export-orders day {}: service down (attempt {})",
                            job.day,
                            ctx.attempt()
                        );
                        Err(JobError::retry("export service unavailable"))
                    }
                }
            })
    };
    // Run a worker until the queue is empty (delayed retries included).
    let worker = Worker::builder(backend.clone(), handlers(Arc::clone(&export_up)))
        .poll_interval(Duration::from_millis(5))
        .build()?;
    worker.start()?;
    while queue.size("default").await?.total() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    worker.stop(Duration::ZERO);
    worker.stopped().await;
    let metrics = worker.metrics();
    println!(
        "  worker: {} processed, {} failed attempts, {} retried, {} to the failed store",
        metrics.processed, metrics.failed, metrics.retried, metrics.dead
    );
    let failed = queue.failed(&FailedQuery::new()).await?;
    for job in &failed {
        println!(
            "  failed store: {} after {} attempts ({}): {}",
            job.envelope.name, job.attempts, job.reason, job.error
        );
    }

    export_up.store(true, Ordering::SeqCst);
    let ids: Vec<_> = failed.iter().map(|job| job.envelope.id).collect();
    queue.retry_failed(&Selection::Ids(ids)).await?;
    println!("  the export service is back: retrying the failed job from the store");
    let retried =
        Worker::builder(backend.clone(), handlers(export_up)).stop_when_empty(true).build()?;
    retried.run().await?;
    println!("  failed store now holds {} job(s)", queue.failed_count(None).await?);

    let bus = Bus::builder()
        .handle(|order: PlaceOrder| async move {
            if order.items == 0 { Err(EmptyOrder) } else { Ok(1043) }
        })
        .queue(&queue)
        .build();
    let order = bus.dispatch(PlaceOrder { items: 3 }).await?;
    bus.dispatch_to_queue(ConfirmOrder { order }).await?;
    println!(
        "  bus: order {order} placed; its confirmation queued ({} ready)",
        queue.size("default").await?.ready
    );
    match bus.dispatch(PlaceOrder { items: 0 }).await {
        Err(error) => println!("  bus: {error}"),
        Ok(order) => println!("  bus: unexpected order {order}"),
    }
    workflows::workflows().await
}
