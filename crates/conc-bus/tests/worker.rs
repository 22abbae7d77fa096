//! The worker on the memory backend, on tokio's paused clock: retries and
//! backoff, limits, timeouts, panics, leases, stopping, stop conditions,
//! backend failures, metrics and events.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conc_bus::{
    FailReason, FailedQuery, Job, JobContext, JobError, JobHandlers, JobOptions, MemoryQueue,
    Queue, Worker, WorkerEvent, WorkerState, WorkerStop,
};
use conc_core::lifecycle::Registry;
use conc_core::metrics::MetricsSource;
use serde::{Deserialize, Serialize};
use support::{Flaky, drain, events_of, secs};
use tokio::time::Instant;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Task {
    n: u32,
}

impl Job for Task {
    const NAME: &'static str = "task";
}

fn backend() -> MemoryQueue {
    MemoryQueue::builder().clock(conc_bus::testing::PausedTime).build().unwrap()
}

/// Records the (paused) time of each call, from the test's start.
#[derive(Clone, Default)]
struct Calls(Arc<Mutex<Vec<Duration>>>);

impl Calls {
    fn record(&self, start: Instant) {
        self.0.lock().unwrap().push(start.elapsed());
    }
    fn times(&self) -> Vec<u64> {
        self.0.lock().unwrap().iter().map(Duration::as_secs).collect()
    }
}

#[tokio::test(start_paused = true)]
async fn backoff_list_waits_per_retry_and_its_last_value_repeats() {
    let backend = backend();
    let queue = Queue::new(backend.clone());
    queue
        .dispatch(Task { n: 1 })
        .max_attempts(5)
        .backoff([1, 5, 10].map(Duration::from_secs))
        .await
        .unwrap();
    let calls = Calls::default();
    let start = Instant::now();
    let seen = calls.clone();
    let handlers = JobHandlers::new().handle(move |_: Task, _: JobContext| {
        seen.record(start);
        async { Err::<(), _>(JobError::retry("always")) }
    });
    let worker = Worker::builder(backend, handlers).build().unwrap();
    drain(&worker, &queue, &["default"]).await;
    assert_eq!(calls.times(), [0, 1, 6, 16, 26]);
    let failed = queue.failed(&FailedQuery::new()).await.unwrap();
    assert_eq!(failed[0].reason, FailReason::AttemptsExhausted);
    assert_eq!(failed[0].attempts, 5);
    assert_eq!(failed[0].envelope.history.len(), 5);
    let metrics = worker.metrics();
    assert_eq!((metrics.failed, metrics.retried, metrics.dead), (5, 4, 1));
}

#[tokio::test(start_paused = true)]
async fn a_type_backoff_policy_applies_when_the_dispatch_sets_none() {
    #[derive(Serialize, Deserialize)]
    struct Policy;
    impl Job for Policy {
        const NAME: &'static str = "policy";
        fn options() -> JobOptions {
            let backoff = conc_core::backoff::Backoff::exponential(secs(2)).build().unwrap();
            JobOptions::new().max_attempts(4).backoff(backoff)
        }
    }
    let backend = backend();
    let queue = Queue::new(backend.clone());
    queue.push(Policy).await.unwrap();
    let calls = Calls::default();
    let (start, seen) = (Instant::now(), calls.clone());
    let handlers = JobHandlers::new().handle(move |_: Policy, _: JobContext| {
        seen.record(start);
        async { Err::<(), _>(JobError::retry("no")) }
    });
    let worker = Worker::builder(backend, handlers).build().unwrap();
    drain(&worker, &queue, &["default"]).await;
    assert_eq!(calls.times(), [0, 2, 6, 14]);
}

#[tokio::test(start_paused = true)]
async fn releases_do_not_use_up_max_exceptions_but_errors_do() {
    let backend = backend();
    let queue = Queue::new(backend.clone());
    queue.dispatch(Task { n: 1 }).max_attempts(10).max_exceptions(2).await.unwrap();
    let runs = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&runs);
    let handlers = JobHandlers::new().handle(move |_: Task, ctx: JobContext| {
        let run = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            if run <= 3 {
                ctx.release(secs(1)); // rate limited: put back, not a failure
                Ok(())
            } else {
                Err(JobError::retry("broken"))
            }
        }
    });
    let worker = Worker::builder(backend, handlers).build().unwrap();
    drain(&worker, &queue, &["default"]).await;
    assert_eq!(runs.load(Ordering::SeqCst), 5, "three releases, then two failures");
    let failed = queue.failed(&FailedQuery::new()).await.unwrap();
    assert_eq!(failed[0].reason, FailReason::TooManyExceptions);
    assert_eq!(failed[0].attempts, 5);
    assert_eq!(worker.metrics().released, 3);
}

#[tokio::test(start_paused = true)]
async fn a_passed_retry_deadline_fails_without_running() {
    let backend = backend();
    let queue = Queue::new(backend.clone());
    let past = std::time::SystemTime::now() - Duration::from_secs(3600);
    queue.dispatch(Task { n: 1 }).retry_until(past).await.unwrap();
    let handlers = JobHandlers::new().handle(|_: Task, _: JobContext| async {
        panic!("must not run");
    });
    let worker = Worker::builder(backend, handlers).stop_when_empty(true).build().unwrap();
    let mut events = worker.subscribe();
    worker.run().await.unwrap();
    assert_eq!(
        queue.failed(&FailedQuery::new()).await.unwrap()[0].reason,
        FailReason::DeadlinePassed
    );
    assert!(
        events_of(&mut events).iter().any(|e| matches!(
            e,
            WorkerEvent::FoundDead { reason: FailReason::DeadlinePassed, .. }
        ))
    );
}

#[tokio::test(start_paused = true)]
async fn a_fatal_error_goes_straight_to_the_failed_store() {
    let backend = backend();
    let queue = Queue::new(backend.clone());
    queue.dispatch(Task { n: 1 }).max_attempts(10).await.unwrap();
    let handlers = JobHandlers::new()
        .handle(|_: Task, _: JobContext| async { Err::<(), _>(JobError::fatal("card declined")) });
    Worker::builder(backend, handlers).stop_when_empty(true).build().unwrap().run().await.unwrap();
    let failed = &queue.failed(&FailedQuery::new()).await.unwrap()[0];
    assert_eq!((failed.reason, failed.attempts), (FailReason::Fatal, 1));
    assert_eq!(failed.error, "card declined");
}

#[tokio::test(start_paused = true)]
async fn a_timeout_cancels_the_attempt_and_says_timed_out() {
    let backend = backend();
    let queue = Queue::new(backend.clone());
    queue.dispatch(Task { n: 1 }).timeout(secs(5)).max_attempts(2).await.unwrap();
    queue
        .dispatch(Task { n: 2 })
        .timeout(secs(5))
        .fail_on_timeout(true)
        .max_attempts(5)
        .await
        .unwrap();
    let handlers = JobHandlers::new().handle(|_: Task, _: JobContext| async {
        tokio::time::sleep(secs(60)).await;
        Ok::<(), JobError>(())
    });
    let worker = Worker::builder(backend, handlers).build().unwrap();
    drain(&worker, &queue, &["default"]).await;
    let failed = queue.failed(&FailedQuery::new()).await.unwrap();
    let by_n = |n: u32| {
        failed
            .iter()
            .find(|f| serde_json::from_str::<Task>(&f.envelope.payload).unwrap().n == n)
            .unwrap()
    };
    let retried = by_n(1);
    assert_eq!((retried.reason, retried.attempts), (FailReason::AttemptsExhausted, 2));
    assert_eq!(retried.error, "timed out after 5s");
    let at_once = by_n(2);
    assert_eq!((at_once.reason, at_once.attempts), (FailReason::TimedOut, 1));
    assert!(at_once.error.contains("timed out"), "never 'too many attempts'");
}

#[tokio::test(start_paused = true)]
async fn a_panic_fails_the_attempt_with_its_message_and_the_worker_goes_on() {
    let backend = backend();
    let queue = Queue::new(backend.clone());
    queue.dispatch(Task { n: 0 }).max_attempts(1).await.unwrap();
    queue.push(Task { n: 1 }).await.unwrap();
    let handlers = JobHandlers::new().handle(|job: Task, _: JobContext| async move {
        assert!(job.n != 0, "zero is not allowed");
        Ok::<(), JobError>(())
    });
    let worker =
        Worker::builder(backend, handlers).concurrency(1).stop_when_empty(true).build().unwrap();
    worker.run().await.unwrap();
    let failed = queue.failed(&FailedQuery::new()).await.unwrap();
    assert_eq!(failed[0].error, "panicked: zero is not allowed");
    assert_eq!(worker.metrics().processed, 1);
}

#[tokio::test(start_paused = true)]
async fn a_renewed_lease_keeps_a_long_job_from_running_twice() {
    let backend = backend();
    let queue = Queue::new(backend.clone());
    queue.push(Task { n: 1 }).await.unwrap();
    let runs = Arc::new(AtomicU32::new(0));
    let make = |runs: Arc<AtomicU32>| {
        JobHandlers::new().handle(move |_: Task, _: JobContext| {
            runs.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(secs(100)).await; // over three 30 s leases
                Ok::<(), JobError>(())
            }
        })
    };
    let first = Worker::builder(backend.clone(), make(Arc::clone(&runs))).build().unwrap();
    let second = Worker::builder(backend.clone(), make(Arc::clone(&runs))).build().unwrap();
    first.start().unwrap();
    tokio::time::sleep(secs(1)).await;
    second.start().unwrap();
    tokio::time::sleep(secs(150)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(first.metrics().processed + second.metrics().processed, 1);
    assert_eq!(first.metrics().lease_lost, 0);
    first.stop(secs(1));
    second.stop(secs(1));
    first.stopped().await;
    second.stopped().await;
}

#[tokio::test(start_paused = true)]
async fn a_lost_lease_cancels_the_attempt_and_its_late_result_is_refused() {
    let backend = backend();
    let flaky = Flaky::new(backend.clone());
    let queue = Queue::new(backend.clone());
    queue.push(Task { n: 1 }).await.unwrap();
    let cancelled = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&cancelled);
    let slow = JobHandlers::new().handle(move |_: Task, ctx: JobContext| {
        // Work the attempt started elsewhere hears the cancellation even
        // though the attempt itself is dropped.
        let seen = Arc::clone(&seen);
        let watcher = ctx.clone();
        tokio::spawn(async move {
            watcher.cancelled().await;
            seen.fetch_add(1, Ordering::SeqCst);
        });
        async move {
            tokio::time::sleep(secs(300)).await;
            Ok::<(), JobError>(())
        }
    });
    // Renewals fail: the lease lapses after 30 s and another worker takes the job.
    flaky.refuse_extends(true);
    let stalled =
        Worker::builder(flaky.clone(), slow).concurrency(1).lease(secs(30)).build().unwrap();
    let mut events = stalled.subscribe();
    stalled.start().unwrap();
    tokio::time::sleep(secs(31)).await;
    let done = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&done);
    let fast = JobHandlers::new().handle(move |_: Task, ctx: JobContext| {
        assert_eq!(ctx.attempt(), 2);
        counter.fetch_add(1, Ordering::SeqCst);
        async { Ok::<(), JobError>(()) }
    });
    let taker = Worker::builder(backend.clone(), fast).stop_when_empty(true).build().unwrap();
    taker.run().await.unwrap();
    assert_eq!(done.load(Ordering::SeqCst), 1);
    // The stalled worker's next renewal is refused: it gives the attempt up.
    flaky.refuse_extends(false);
    tokio::time::sleep(secs(20)).await;
    assert_eq!(cancelled.load(Ordering::SeqCst), 1, "the attempt saw its cancellation");
    assert_eq!(stalled.metrics().lease_lost, 1);
    assert!(events_of(&mut events).iter().any(|e| matches!(e, WorkerEvent::LeaseLost { .. })));
    assert_eq!(stalled.metrics().processed, 0);
    stalled.stop(secs(0));
    stalled.stopped().await;
}

#[tokio::test(start_paused = true)]
async fn a_stopping_worker_signals_its_jobs_and_hands_their_leases_back_at_once() {
    let backend = backend();
    let queue = Queue::new(backend.clone());
    queue.push(Task { n: 1 }).await.unwrap();
    let cancelled = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&cancelled);
    let long = JobHandlers::new().handle(move |_: Task, ctx: JobContext| {
        let seen = Arc::clone(&seen);
        async move {
            tokio::time::sleep(secs(10)).await;
            if ctx.is_cancelled() {
                seen.fetch_add(1, Ordering::SeqCst);
            }
            Ok::<(), JobError>(())
        }
    });
    let worker = Worker::builder(backend.clone(), long).grace(secs(1)).build().unwrap();
    let mut events = worker.subscribe();
    worker.start().unwrap();
    tokio::time::sleep(secs(2)).await;
    let stop_at = Instant::now();
    worker.stop(secs(5)); // at most its configured grace of 1 s
    assert_eq!(worker.stopped().await, WorkerStop::Requested);
    assert_eq!(stop_at.elapsed(), secs(1));
    assert_eq!(worker.state(), WorkerState::Stopped(WorkerStop::Requested));
    assert!(
        events_of(&mut events)
            .iter()
            .any(|e| matches!(e, WorkerEvent::Stopping { reason: WorkerStop::Requested }))
    );
    // The job is available at once, long before its 30 s lease would lapse.
    let size = queue.size("default").await.unwrap();
    assert_eq!((size.ready, size.reserved), (1, 0));
    let attempt = Arc::new(AtomicU32::new(0));
    let seen_attempt = Arc::clone(&attempt);
    let next = JobHandlers::new().handle(move |_: Task, ctx: JobContext| {
        seen_attempt.store(ctx.attempt(), Ordering::SeqCst);
        async { Ok::<(), JobError>(()) }
    });
    let start = Instant::now();
    Worker::builder(backend, next).stop_when_empty(true).build().unwrap().run().await.unwrap();
    assert!(start.elapsed() < secs(30));
    assert_eq!(attempt.load(Ordering::SeqCst), 2);
    assert_eq!(cancelled.load(Ordering::SeqCst), 0, "the dropped attempt did not finish");
}

#[tokio::test(start_paused = true)]
async fn a_crashed_worker_loses_nothing_and_its_job_comes_back_within_a_lease() {
    let backend = backend();
    let queue = Queue::new(backend.clone());
    queue.push(Task { n: 1 }).await.unwrap();
    let hang = JobHandlers::new().handle(|_: Task, _: JobContext| async {
        std::future::pending::<()>().await;
        Ok::<(), JobError>(())
    });
    let doomed = Worker::builder(backend.clone(), hang).lease(secs(10)).build().unwrap();
    let task = tokio::spawn(async move { doomed.run().await });
    tokio::time::sleep(secs(1)).await;
    task.abort(); // the worker dies mid-job: no ack, no release
    let crashed_at = Instant::now();
    let attempt = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&attempt);
    let ok = JobHandlers::new().handle(move |_: Task, ctx: JobContext| {
        seen.store(ctx.attempt(), Ordering::SeqCst);
        async { Ok::<(), JobError>(()) }
    });
    let rescuer = Worker::builder(backend, ok).poll_interval(secs(1)).max_jobs(1).build().unwrap();
    rescuer.run().await.unwrap();
    assert_eq!(attempt.load(Ordering::SeqCst), 2, "attempts are counted at reservation");
    assert!(crashed_at.elapsed() <= secs(11), "back within one lease and one poll");
    assert_eq!(queue.size("default").await.unwrap().total(), 0);
}

#[tokio::test(start_paused = true)]
async fn stop_conditions_end_the_run_with_their_reason() {
    let handlers =
        || JobHandlers::new().handle(|_: Task, _: JobContext| async { Ok::<(), JobError>(()) });
    let backend = backend();
    let queue = Queue::new(backend.clone());
    for n in 0..10 {
        queue.push(Task { n }).await.unwrap();
    }
    let worker =
        Worker::builder(backend.clone(), handlers()).concurrency(1).max_jobs(3).build().unwrap();
    assert_eq!(worker.run().await.unwrap(), WorkerStop::MaxJobs);
    assert_eq!(worker.metrics().processed, 3);
    assert_eq!(queue.size("default").await.unwrap().ready, 7);

    let worker =
        Worker::builder(backend.clone(), handlers()).stop_when_empty(true).build().unwrap();
    assert_eq!(worker.run().await.unwrap(), WorkerStop::Empty);
    assert_eq!(worker.metrics().processed, 7);

    let idle = Worker::builder(backend, handlers()).max_time(secs(90)).build().unwrap();
    let start = Instant::now();
    assert_eq!(idle.run().await.unwrap(), WorkerStop::MaxTime);
    assert_eq!(start.elapsed(), secs(90));
    assert!(idle.run().await.is_err(), "a worker runs once");
}

#[tokio::test(start_paused = true)]
async fn a_paused_queue_stops_its_jobs_only() {
    let backend = backend();
    let queue = Queue::new(backend.clone());
    queue.dispatch(Task { n: 1 }).on_queue("mail").await.unwrap();
    queue.dispatch(Task { n: 2 }).on_queue("sms").await.unwrap();
    queue.pause("mail").await.unwrap();
    let ran = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&ran);
    let handlers = JobHandlers::new().handle(move |job: Task, _: JobContext| {
        seen.lock().unwrap().push(job.n);
        async { Ok::<(), JobError>(()) }
    });
    let worker = Worker::builder(backend, handlers).queues(["mail", "sms"]).build().unwrap();
    worker.start().unwrap();
    tokio::time::sleep(secs(5)).await;
    assert_eq!(*ran.lock().unwrap(), [2]);
    queue.resume("mail").await.unwrap();
    tokio::time::sleep(secs(2)).await;
    assert_eq!(*ran.lock().unwrap(), [2, 1]);
    worker.stop(secs(1));
    worker.stopped().await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_backend_is_retried_with_backoff_and_never_stops_the_worker() {
    let backend = backend();
    let flaky = Flaky::new(backend.clone());
    Queue::new(backend.clone()).push(Task { n: 1 }).await.unwrap();
    let handlers =
        JobHandlers::new().handle(|_: Task, _: JobContext| async { Ok::<(), JobError>(()) });
    flaky.fail_all(true);
    let worker = Worker::builder(flaky.clone(), handlers).build().unwrap();
    let mut events = worker.subscribe();
    worker.start().unwrap();
    tokio::time::sleep(secs(120)).await;
    let health = worker.health();
    assert!(!health.is_ready());
    assert!(health.last_error.as_deref().unwrap_or_default().contains("injected"));
    assert!(worker.metrics().backend_errors >= 5, "it kept trying");
    assert_eq!(worker.state(), WorkerState::Running);
    flaky.fail_all(false);
    tokio::time::sleep(secs(31)).await;
    assert_eq!(worker.metrics().processed, 1);
    assert!(worker.health().is_ready());
    let events = events_of(&mut events);
    assert!(events.iter().any(|e| matches!(e, WorkerEvent::BackendError { .. })));
    assert!(events.iter().any(|e| matches!(e, WorkerEvent::BackendRecovered)));
    worker.stop(secs(1));
    worker.stopped().await;
}

#[tokio::test(start_paused = true)]
async fn undecodable_jobs_fail_with_the_reason_and_upcasters_run_old_payloads() {
    #[derive(Deserialize)]
    struct TaskV0 {
        number: u32,
    }
    #[derive(Serialize, Deserialize)]
    struct Old {
        number: u32,
    }
    impl Job for Old {
        const NAME: &'static str = "task";
        const VERSION: u32 = 0;
    }
    #[derive(Serialize, Deserialize)]
    struct Unknown;
    impl Job for Unknown {
        const NAME: &'static str = "unknown";
    }
    #[derive(Serialize, Deserialize)]
    struct Future;
    impl Job for Future {
        const NAME: &'static str = "task";
        const VERSION: u32 = 9;
    }
    let backend = backend();
    let queue = Queue::new(backend.clone());
    queue.push(Old { number: 41 }).await.unwrap();
    queue.push(Unknown).await.unwrap();
    queue.push(Future).await.unwrap();
    let seen = Arc::new(AtomicU32::new(0));
    let got = Arc::clone(&seen);
    let handlers = JobHandlers::new()
        .handle(move |job: Task, _: JobContext| {
            got.store(job.n, Ordering::SeqCst);
            async { Ok::<(), JobError>(()) }
        })
        .upcast(0, |old: TaskV0| Task { n: old.number + 1 });
    Worker::builder(backend, handlers).stop_when_empty(true).build().unwrap().run().await.unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), 42);
    let failed = queue.failed(&FailedQuery::new()).await.unwrap();
    assert_eq!(failed.len(), 2);
    assert!(failed.iter().all(|f| f.reason == FailReason::Undecodable && f.attempts == 1));
    let errors: Vec<&str> = failed.iter().map(|f| f.error.as_str()).collect();
    assert!(errors.contains(&"no handler is registered for job `unknown`"), "{errors:?}");
    assert!(
        errors.contains(&"job `task` has no decoder for payload version 9 (current version 1)"),
        "{errors:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn metrics_and_events_tell_what_happened() {
    let backend = backend();
    let queue = Queue::new(backend.clone());
    queue.dispatch(Task { n: 1 }).on_queue("slow").await.unwrap();
    tokio::time::sleep(secs(10)).await; // waits 10 s before a worker comes
    for n in 2..=4 {
        queue.push(Task { n }).await.unwrap();
    }
    queue.dispatch(Task { n: 0 }).max_attempts(1).await.unwrap();
    let handlers = JobHandlers::new().handle(|job: Task, _: JobContext| async move {
        tokio::time::sleep(Duration::from_millis(100 * u64::from(job.n))).await;
        if job.n == 0 { Err(JobError::retry("zero")) } else { Ok(()) }
    });
    let worker = Worker::builder(backend, handlers)
        .queues(["slow", "default"])
        .long_wait("slow", secs(5))
        .stop_when_empty(true)
        .build()
        .unwrap();
    let mut events = worker.subscribe();
    worker.run().await.unwrap();
    let metrics = worker.metrics();
    assert_eq!((metrics.processed, metrics.failed, metrics.dead), (4, 1, 1));
    assert_eq!((metrics.processed_last_minute, metrics.failed_last_minute), (4, 1));
    assert_eq!(metrics.runtimes.len(), 1);
    assert_eq!(metrics.runtimes[0].key, "task");
    assert_eq!(metrics.runtimes[0].count, 5);
    let slow = metrics.waits.iter().find(|w| w.key == "slow").unwrap();
    assert!(slow.p50 >= secs(10) && slow.p50 <= secs(12), "{slow:?}");
    let events = events_of(&mut events);
    assert!(
        events.iter().any(|e| matches!(e, WorkerEvent::LongWait { queue, .. } if queue == "slow"))
    );
    let processed = events.iter().filter(|e| matches!(e, WorkerEvent::Processed { .. })).count();
    assert_eq!(processed, 4);
    worker.reset_metrics();
    assert_eq!(worker.metrics().processed, 0);
}

#[tokio::test(start_paused = true)]
async fn a_registry_starts_and_stops_a_worker_by_its_deadline() {
    let backend = backend();
    let queue = Queue::new(backend.clone());
    let handlers = JobHandlers::new().handle(|_: Task, _: JobContext| async {
        tokio::time::sleep(secs(60)).await;
        Ok::<(), JobError>(())
    });
    let worker = Worker::builder(backend, handlers).name("mailer").grace(secs(30)).build().unwrap();
    let registry = Registry::new();
    registry.register(std::sync::Arc::new(worker.clone())).unwrap();
    registry.start_all().await.unwrap();
    assert_eq!(worker.state(), WorkerState::Running);
    queue.push(Task { n: 1 }).await.unwrap();
    tokio::time::sleep(secs(3)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let report = registry.shutdown_all(deadline).await;
    assert!(report.is_clean(), "{report}");
    assert!(matches!(worker.state(), WorkerState::Stopped(WorkerStop::Requested)));
    assert_eq!(queue.size("default").await.unwrap().ready, 1, "the running job went back");
}

#[tokio::test]
async fn an_endless_supply_of_jobs_does_not_starve_a_current_thread_runtime() {
    let backend = MemoryQueue::new();
    let queue = Queue::new(backend.clone());
    let jobs: Vec<Task> = (0..20_000).map(|n| Task { n }).collect();
    queue.push_bulk(jobs).await.unwrap();
    let handlers =
        JobHandlers::new().handle(|_: Task, _: JobContext| async { Ok::<(), JobError>(()) });
    let worker = Worker::builder(backend, handlers).concurrency(64).prefetch(64).build().unwrap();
    worker.start().unwrap();
    // A timer on the same single-threaded runtime still fires while the
    // worker has work: the worker yields between rounds.
    tokio::time::sleep(Duration::from_millis(1)).await;
    let processed = worker.metrics().processed;
    assert!(processed < 20_000, "the timer fired before the queue drained ({processed})");
    worker.stop(Duration::ZERO);
    worker.stopped().await;
}

#[tokio::test(start_paused = true)]
async fn without_prefetch_a_worker_holds_no_more_than_it_runs() {
    let backend = backend();
    let queue = Queue::new(backend.clone());
    for n in 0..10 {
        queue.push(Task { n }).await.unwrap();
    }
    let handlers = JobHandlers::new().handle(|_: Task, _: JobContext| async {
        tokio::time::sleep(secs(5)).await;
        Ok::<(), JobError>(())
    });
    let worker = Worker::builder(backend.clone(), handlers.clone()).concurrency(2).build().unwrap();
    worker.start().unwrap();
    tokio::time::sleep(secs(1)).await;
    assert_eq!(queue.size("default").await.unwrap().reserved, 2);
    assert_eq!(worker.health().leases_held, 2);
    let with_prefetch =
        Worker::builder(backend, handlers).concurrency(2).prefetch(3).build().unwrap();
    with_prefetch.start().unwrap();
    tokio::time::sleep(secs(1)).await;
    assert_eq!(queue.size("default").await.unwrap().reserved, 7);
    assert_eq!(with_prefetch.metrics().prefetched, 3);
    for worker in [worker, with_prefetch] {
        worker.stop(Duration::ZERO);
        worker.stopped().await;
    }
}

#[tokio::test(start_paused = true)]
async fn the_idempotency_key_is_the_same_for_every_attempt_of_a_job() {
    let backend = backend();
    let queue = Queue::new(backend.clone());
    let first = queue.dispatch(Task { n: 1 }).max_attempts(3).backoff(vec![secs(1)]).await.unwrap();
    let second = queue.push(Task { n: 2 }).await.unwrap();
    let keys = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&keys);
    let handlers = JobHandlers::new().handle(move |job: Task, ctx: JobContext| {
        seen.lock().unwrap().push((job.n, ctx.idempotency_key(), ctx.idempotency_key_for("mail")));
        async move {
            if job.n == 1 && ctx.attempt() < 3 { Err(JobError::retry("again")) } else { Ok(()) }
        }
    });
    let worker = Worker::builder(backend, handlers).build().unwrap();
    drain(&worker, &queue, &["default"]).await;
    let keys = keys.lock().unwrap();
    let of = |n: u32| {
        keys.iter()
            .filter(|(m, ..)| *m == n)
            .map(|(_, key, step)| (key.clone(), step.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(of(1), vec![(format!("task:{first}"), format!("task:{first}:mail")); 3]);
    assert_eq!(of(2), [(format!("task:{second}"), format!("task:{second}:mail"))]);
}
