//! One smoke call per module the facade re-exports.

use std::time::Duration;

#[test]
fn core_is_reexported() {
    use conc::core::time::{Clock, ManualClock};

    let clock = ManualClock::new();
    let start = clock.now();
    clock.advance(Duration::from_secs(1));
    assert_eq!(clock.now() - start, Duration::from_secs(1));

    let backoff = conc::core::backoff::Backoff::fixed(Duration::from_millis(5))
        .max_attempts(3)
        .build()
        .unwrap();
    assert_eq!(backoff.delays().count(), 2);

    let error: conc::BoxError = "boxed".into();
    assert_eq!(error.to_string(), "boxed");
    assert!(conc::core::metrics::ALL.len() > 1);
}

#[cfg(feature = "lock")]
#[tokio::test]
async fn lock_is_reexported() {
    let store = conc::lock::LockStore::memory();
    let lock = store.lock("smoke", Duration::from_secs(1)).unwrap();
    let guard = lock.get().await.unwrap().expect("a free lock");
    assert!(store.lock("smoke", Duration::from_secs(1)).unwrap().get().await.unwrap().is_none());
    guard.release().await.unwrap();
}

#[cfg(feature = "process")]
#[tokio::test]
async fn process_is_reexported() {
    let output = conc::process::Process::new("echo").arg("smoke").run().await.unwrap();
    assert!(output.successful());
    assert_eq!(output.stdout_str(), "smoke\n");
}

#[cfg(feature = "ratelimit")]
#[test]
fn ratelimit_is_reexported() {
    use conc::core::time::ManualClock;
    use conc::ratelimit::{Gcra, Quota, RateLimitError};

    let limiter = Gcra::builder(Quota::per_second(2).unwrap()).clock(ManualClock::new()).build();
    limiter.try_acquire(2).unwrap();
    assert_eq!(
        limiter.try_acquire(1),
        Err(RateLimitError::Limited { retry_after: Duration::from_millis(500) })
    );
}

#[cfg(feature = "resilience")]
#[test]
fn resilience_is_reexported() {
    use conc::resilience::{BreakerState, CircuitBreaker};

    let breaker = CircuitBreaker::builder().minimum_calls(1).build().unwrap();
    breaker.try_acquire().unwrap().failure();
    assert_eq!(breaker.state(), BreakerState::Open);
    assert!(breaker.try_acquire().unwrap_err().retry_after().is_some());
}

#[cfg(feature = "pipeline")]
#[tokio::test]
async fn pipeline_is_reexported() {
    let pipeline = conc::pipeline::Pipeline::builder()
        .map("double", 2, 2, |n: u32| async move { n * 2 })
        .filter(|n| *n > 2)
        .build()
        .unwrap();
    assert_eq!(pipeline.process(1).await.unwrap(), None);
    assert_eq!(pipeline.process(3).await.unwrap(), Some(6));
}

#[cfg(feature = "fan")]
#[tokio::test]
async fn fan_is_reexported() {
    use futures::StreamExt;

    let mut fan_in = conc::fan::FanIn::new();
    fan_in.add(futures::stream::iter([1, 3]));
    fan_in.add(futures::stream::iter([2]));
    let fan_out = conc::fan::FanOut::builder()
        .workers(2)
        .build(|n: u32| async move { Ok::<_, std::io::Error>(n * 10) })
        .unwrap();
    let out: Vec<u32> = fan_out.process_stream(fan_in).map(Result::unwrap).collect().await;
    assert_eq!(out, [10, 20, 30]);
}

#[cfg(feature = "pool")]
#[tokio::test]
async fn pool_is_reexported() {
    let pool = conc::pool::AsyncPool::builder().workers(1).build().unwrap();
    let handle = pool.submit(async { 6 * 7 }).await.unwrap();
    assert_eq!(handle.await, Ok(42));
    let blocking = conc::pool::BlockingPool::builder().workers(1).build().unwrap();
    let handle = blocking.submit(|| 7).unwrap();
    assert_eq!(tokio::task::spawn_blocking(move || handle.join()).await.unwrap(), Ok(7));
}

#[cfg(feature = "bus")]
#[tokio::test]
async fn bus_is_reexported() {
    use conc::bus::{Job, JobContext, JobError, JobHandlers, MemoryQueue, Queue, Worker};
    use conc::core::metrics::MetricsSource;

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Ping;
    impl Job for Ping {
        const NAME: &'static str = "ping";
    }
    let backend = MemoryQueue::new();
    Queue::new(backend.clone()).push(Ping).await.unwrap();
    let handlers =
        JobHandlers::new().handle(|_: Ping, _: JobContext| async { Ok::<(), JobError>(()) });
    let worker = Worker::builder(backend, handlers).stop_when_empty(true).build().unwrap();
    worker.run().await.unwrap();
    assert_eq!(worker.metrics().processed, 1);
}
