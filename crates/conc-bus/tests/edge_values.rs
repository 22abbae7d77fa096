//! Bad input never panics, aborts or hangs: the bus's builders and options
//! fed edge values (0, 1, MAX, MAX − 1, MAX / 2, `u32::MAX`, `Duration::MAX`,
//! `u64::MAX` seconds, names with NUL bytes), each refused with the field
//! named or accepted and then used.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use conc_bus::{Job, JobContext, JobError, JobHandlers, JobOptions, MemoryQueue, Queue, Worker};
use conc_test_support::edge::{self, DURATIONS, TEXTS, U64, USIZE, no_panic, within};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Tick;

impl Job for Tick {
    const NAME: &'static str = "tick";
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// A dispatch with any options is refused naming the field, or pushed
    /// and run to an end.
    #[test]
    fn any_job_options_are_refused_or_run(
        queue in edge::texts(),
        delay in edge::durations(),
        priority in any::<u8>(),
        attempts in edge::u32s(),
        exceptions in edge::u32s(),
        timeout in edge::durations(),
        backoff in proptest::collection::vec(edge::durations(), 0..3),
        until in edge::u64s(),
    ) {
        within(Duration::from_secs(30), move || {
            runtime().block_on(async move {
                let backend = MemoryQueue::new();
                let front = Queue::new(backend.clone());
                let deadline = UNIX_EPOCH.checked_add(Duration::from_millis(until)).unwrap_or(SystemTime::now());
                let options = JobOptions::new()
                    .queue(queue.clone())
                    .delay(delay)
                    .priority(priority)
                    .max_attempts(attempts)
                    .max_exceptions(exceptions)
                    .timeout(timeout)
                    .backoff(backoff.clone())
                    .retry_until(deadline);
                let checked = options.check();
                let pushed = front
                    .dispatch(Tick)
                    .on_queue(queue.clone())
                    .delay(delay)
                    .priority(priority)
                    .max_attempts(attempts)
                    .max_exceptions(exceptions)
                    .timeout(timeout)
                    .backoff(backoff)
                    .retry_until(deadline)
                    .await;
                assert_eq!(checked.is_ok(), pushed.is_ok(), "the push checks what `check` checks");
                if let Err(error) = &checked {
                    assert!(!error.field.is_empty());
                    return;
                }
                let handlers = JobHandlers::new()
                    .handle(|_: Tick, _: JobContext| async { Err::<(), _>(JobError::retry("again")) });
                let worker = Worker::builder(backend, handlers).queues([queue.clone()]).build().unwrap();
                worker.start().unwrap();
                tokio::time::sleep(Duration::from_secs(3_600)).await;
                worker.stop(Duration::ZERO);
                worker.stopped().await;
                let size = front.size(&queue).await.unwrap();
                assert_eq!(size.reserved, 0, "nothing is left leased");
            });
        });
    }
}

#[test]
fn worker_and_backend_settings_are_refused_naming_the_field_or_work() {
    within(Duration::from_secs(60), || {
        let mut refused = 0;
        for n in USIZE {
            for d in DURATIONS {
                let built = no_panic(|| {
                    Worker::builder(MemoryQueue::new(), JobHandlers::new())
                        .concurrency(n)
                        .prefetch(n)
                        .lease(d)
                        .poll_interval(d)
                        .grace(d)
                        .max_time(d)
                        .event_capacity(n)
                        .build()
                })
                .unwrap();
                if let Err(error) = built {
                    assert!(!error.field.is_empty());
                    refused += 1;
                }
                let backend =
                    no_panic(|| MemoryQueue::builder().failed_retention(n, d).build()).unwrap();
                if let Err(error) = backend {
                    assert!(error.field.starts_with("failed_max"));
                }
            }
        }
        for text in TEXTS {
            let built = no_panic(|| {
                Worker::builder(MemoryQueue::new(), JobHandlers::new())
                    .name(text)
                    .queues([text])
                    .build()
            })
            .unwrap();
            assert_eq!(
                built.is_ok(),
                !text.is_empty() && !text.contains('\0') && !text.chars().any(char::is_control)
            );
        }
        for jobs in U64 {
            let built = no_panic(|| {
                Worker::builder(MemoryQueue::new(), JobHandlers::new()).max_jobs(jobs).build()
            })
            .unwrap();
            assert_eq!(built.is_ok(), jobs > 0);
        }
        assert!(refused > 0);
    });
}
