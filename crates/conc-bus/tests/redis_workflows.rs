//! Workflows on Redis: the shared workflow suite (batches, chains, admission,
//! timeouts, archive, recovery) on a real `redis-server` per test with a
//! manual clock handed to the scripts, and what only Redis shows: the
//! scripts flushed from the server in the middle of a batch are loaded again
//! and the batch finishes with each callback once; a callback and a chain's
//! next link land in another queue than the job that fired them; two
//! processes share unique locks, batches and a batch's deadline, each
//! hearing the member outcomes it recorded.
//!
//! A batch larger than one sweep chunk is cancelled, failed and timed out
//! a chunk per script call (`redis_sweep`).
//!
//! Every test starts its own `redis-server` through `conc-test-support` and
//! skips when the binary is missing, unless `CONC_REQUIRE_SERVICES=1`.

mod redis_sweep;
mod workflows;

use conc_bus::RedisQueue;
use conc_core::time::ManualClock;

workflows::suite!(|clock: ManualClock| async move {
    let redis = conc_test_support::require_redis()?;
    let backend = RedisQueue::builder(redis.url()).clock(clock).connect().await.expect("connects");
    Some((backend, Box::new(redis) as workflows::KeepAlive))
});

/// The workflow suite again through [`conc_bus::AnyBackend::with_workflows`]
/// over Redis.
mod any_backend {
    use conc_bus::{AnyBackend, RedisQueue};
    use conc_core::time::ManualClock;

    crate::workflows::suite!(|clock: ManualClock| async move {
        let redis = conc_test_support::require_redis()?;
        let backend =
            RedisQueue::builder(redis.url()).clock(clock).connect().await.expect("connects");
        Some((AnyBackend::with_workflows(backend), Box::new(redis) as crate::workflows::KeepAlive))
    });
}

mod only_redis {
    use std::time::Duration;

    use conc_bus::batch::PendingBatch;
    use conc_bus::chain::Chain;
    use conc_bus::job::TriggerKind;
    use conc_bus::queue::WorkflowBackend;
    use conc_bus::{
        Job, JobOptions, Queue, QueueBackend, RedisQueue, ReserveRequest, Reserved, Transition,
    };
    use serde::{Deserialize, Serialize};

    use crate::workflows::{callback, kind, step};

    const LEASE: Duration = Duration::from_secs(30);

    /// A callback whose type sends it to its own queue.
    #[derive(Serialize, Deserialize)]
    struct Report;

    impl Job for Report {
        const NAME: &'static str = "report";

        fn options() -> JobOptions {
            JobOptions::new().queue("reports")
        }
    }

    async fn reserve(backend: &RedisQueue, queue: &str) -> Vec<Reserved> {
        let queues = vec![queue.to_owned()];
        backend.reserve(ReserveRequest::new(&queues, 100, LEASE)).await.unwrap().jobs
    }

    async fn ack_all(backend: &RedisQueue, jobs: &[Reserved]) {
        let acks = jobs.iter().map(|job| (job.lease.clone(), Transition::Ack)).collect();
        for settled in backend.settle(acks).await.unwrap() {
            settled.expect("the lease holds");
        }
    }

    async fn flush_scripts(url: &str) {
        let client = redis::Client::open(url).unwrap();
        let mut raw = client.get_multiplexed_async_connection().await.unwrap();
        let _: () = redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut raw).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scripts_flushed_in_the_middle_of_a_batch_are_loaded_again_and_each_callback_fires_once()
     {
        let Some(redis) = conc_test_support::require_redis() else { return };
        let backend = RedisQueue::connect(&redis.url()).await.unwrap();
        let queue = Queue::new(backend.clone());
        let batch = crate::workflows::batch(&["a", "b", "c"]);
        let id = queue.dispatch_batch(batch).await.unwrap();
        let members = reserve(&backend, "default").await;
        assert_eq!(members.len(), 3);
        // Each member settles after the server forgot every script.
        for member in &members {
            flush_scripts(&redis.url()).await;
            ack_all(&backend, std::slice::from_ref(member)).await;
        }
        flush_scripts(&redis.url()).await;
        let callbacks = reserve(&backend, "default").await;
        let mut kinds: Vec<String> = callbacks.iter().map(|c| format!("{:?}", kind(c))).collect();
        kinds.sort();
        assert_eq!(kinds, ["Finally", "Progress", "Progress", "Progress", "Then"]);
        ack_all(&backend, &callbacks).await;
        let info = queue.batch(id).await.unwrap().unwrap();
        assert_eq!((info.succeeded, info.is_finished()), (3, true));
        assert!(reserve(&backend, "default").await.is_empty(), "nothing fires twice");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_member_in_one_queue_fires_a_callback_and_a_link_into_others() {
        let Some(redis) = conc_test_support::require_redis() else { return };
        let backend = RedisQueue::connect(&redis.url()).await.unwrap();
        let queue = Queue::new(backend.clone());
        let intake = JobOptions::new().queue("intake");
        let chain = Chain::new_with(step("first"), &intake)
            .then_with(step("second"), &JobOptions::new().queue("later"));
        let batch = PendingBatch::new().add_chain(chain).then(Report).finally(callback("done"));
        let id = queue.dispatch_batch(batch).await.unwrap();
        // The first link runs in `intake`; its acknowledgement pushes the
        // next link into `later`.
        let first = reserve(&backend, "intake").await;
        assert_eq!(first.len(), 1);
        ack_all(&backend, &first).await;
        assert!(reserve(&backend, "intake").await.is_empty());
        let second = reserve(&backend, "later").await;
        assert_eq!(second.len(), 1);
        assert!(reserve(&backend, "reports").await.is_empty(), "not before the chain is done");
        ack_all(&backend, &second).await;
        // The last link's acknowledgement, in `later`, stored `then` in
        // `reports` (its type's queue) and `finally` in the default queue.
        let reports = reserve(&backend, "reports").await;
        assert_eq!(reports.iter().map(kind).collect::<Vec<_>>(), [TriggerKind::Then]);
        let done = reserve(&backend, "default").await;
        assert_eq!(done.iter().map(kind).collect::<Vec<_>>(), [TriggerKind::Finally]);
        assert!(backend.queues().await.unwrap().contains(&"reports".to_owned()));
        let info = backend.batch(id).await.unwrap().unwrap();
        assert_eq!((info.total, info.succeeded, info.is_finished()), (1, 1, true));
    }

    /// More callbacks fired by one clear than the clear deletes per call
    /// (1,000): the fired ones are kept and do not count as work left, so
    /// the clear ends, and the jobs behind them (another priority, delayed)
    /// are deleted too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_clear_that_fires_more_callbacks_than_a_chunk_ends_and_deletes_everything_else() {
        const BATCHES: u64 = 1_050;
        let Some(redis) = conc_test_support::require_redis() else { return };
        let backend = RedisQueue::connect(&redis.url()).await.unwrap();
        let queue = Queue::new(backend.clone());
        for n in 0..BATCHES {
            let batch = PendingBatch::new()
                .add(step(&format!("member {n}")))
                .finally(callback(&format!("finally {n}")));
            queue.dispatch_batch(batch).await.unwrap();
        }
        queue.dispatch(step("urgent")).priority(7).await.unwrap();
        queue.dispatch(step("later")).delay(Duration::from_secs(3600)).await.unwrap();
        // Before the fix a clear answered "more" for ever once the kept
        // callbacks filled a chunk; the bound turns a hang into a failure.
        let cleared = tokio::time::timeout(Duration::from_secs(120), queue.clear("default"))
            .await
            .expect("the clear ends")
            .unwrap();
        assert_eq!(cleared, BATCHES + 2, "every member, the urgent job and the delayed one");
        let size = queue.size("default").await.unwrap();
        assert_eq!((size.total(), size.delayed), (BATCHES, 0), "only the callbacks it fired");
        let mut left = 0;
        loop {
            let callbacks = reserve(&backend, "default").await;
            if callbacks.is_empty() {
                break;
            }
            assert!(callbacks.iter().all(|c| kind(c) == TriggerKind::Finally));
            left += callbacks.len() as u64;
            ack_all(&backend, &callbacks).await;
        }
        assert_eq!(left, BATCHES);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_processes_share_locks_batches_and_deadlines_but_hear_their_own_outcomes() {
        use conc_bus::admission::Admission;
        use conc_bus::{EnqueueError, Settlement};
        use conc_core::time::ManualClock;

        let Some(redis) = conc_test_support::require_redis() else { return };
        let clock = ManualClock::new();
        let connect = || RedisQueue::builder(redis.url()).clock(clock.clone()).connect();
        let (web, worker) = (connect().await.unwrap(), connect().await.unwrap());
        let (web_queue, worker_queue) = (Queue::new(web.clone()), Queue::new(worker.clone()));
        // A unique lock taken by one process holds for the other.
        let held = web_queue.dispatch(step("a")).admission(Admission::unique("k")).await.unwrap();
        let refused = worker_queue.dispatch(step("b")).admission(Admission::unique("k")).await;
        assert!(matches!(refused, Err(EnqueueError::Locked { held_by, .. }) if held_by == held));
        ack_all(&worker, &reserve(&worker, "default").await).await;
        worker_queue.dispatch(step("b")).admission(Admission::unique("k")).await.unwrap();
        ack_all(&worker, &reserve(&worker, "default").await).await;

        // A batch created by one process, with a deadline, settled and timed
        // out by the other; each process hears the outcomes it recorded.
        let mut web_heard = web.subscribe_batches();
        let mut worker_heard = worker.subscribe_batches();
        let batch = crate::workflows::batch(&["x", "y"]).allow_failures(true);
        let id = web_queue.dispatch_batch(batch.timeout(Duration::from_secs(20))).await.unwrap();
        let running = reserve(&worker, "default").await;
        assert_eq!(running.len(), 2);
        ack_all(&worker, &running[..1]).await;
        assert_eq!(worker_heard.try_recv().unwrap().member, running[0].lease.job);
        assert!(web_heard.try_recv().is_err(), "subscriptions are per process");
        clock.advance(Duration::from_secs(20));
        assert!(reserve(&worker, "nothing-here").await.is_empty());
        let info = web_queue.batch(id).await.unwrap().unwrap();
        assert!(info.is_timed_out() && info.is_finished(), "{info:?}");
        assert_eq!((info.succeeded, info.cancelled), (1, 1));
        let extend = Transition::Extend { lease: LEASE };
        let answer = worker.settle(vec![(running[1].lease.clone(), extend)]).await.unwrap();
        assert!(matches!(answer[0], Ok(Settlement::StopAsked { .. })), "{answer:?}");
        let mut kinds: Vec<String> =
            reserve(&web, "default").await.iter().map(|c| format!("{:?}", kind(c))).collect();
        kinds.sort();
        assert_eq!(kinds, ["Catch", "Finally", "Progress"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancelling_a_large_batch_deletes_its_waiting_members_and_keeps_the_rest_in_order() {
        let Some(redis) = conc_test_support::require_redis() else { return };
        let backend = RedisQueue::connect(&redis.url()).await.unwrap();
        let queue = Queue::new(backend.clone());
        queue.push(step("before")).await.unwrap();
        let mut batch = PendingBatch::new().finally(callback("finally"));
        for n in 0..40 {
            batch = batch.add(step(&format!("member {n}")));
        }
        let id = queue.dispatch_batch(batch).await.unwrap();
        queue.push(step("after")).await.unwrap();
        assert_eq!(queue.size("default").await.unwrap().ready, 42);
        assert!(queue.cancel_batch(id).await.unwrap());
        let info = queue.batch(id).await.unwrap().unwrap();
        assert_eq!((info.cancelled, info.pending, info.is_finished()), (40, 0, true));
        // The list was rewritten once without the 40: what else waited keeps
        // its order, and `finally` comes after it.
        let left = reserve(&backend, "default").await;
        let names: Vec<String> = left
            .iter()
            .map(|r| {
                if r.envelope.name == "step" {
                    crate::workflows::name(r)
                } else {
                    format!("{:?}", kind(r))
                }
            })
            .collect();
        assert_eq!(names, ["before", "after", "Finally"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callbacks_rendered_at_creation_are_stamped_when_they_fire() {
        use conc_core::time::ManualClock;

        let Some(redis) = conc_test_support::require_redis() else { return };
        let clock = ManualClock::new();
        let backend =
            RedisQueue::builder(redis.url()).clock(clock.clone()).connect().await.unwrap();
        let queue = Queue::new(backend.clone());
        let created = backend.now();
        let batch =
            PendingBatch::new().add(step("a")).then(callback("then")).finally(callback("f"));
        queue.dispatch_batch(batch).await.unwrap();
        let member = reserve(&backend, "default").await;
        clock.advance(Duration::from_secs(5));
        ack_all(&backend, &member).await;
        let fired = reserve(&backend, "default").await;
        assert_eq!(fired.len(), 2);
        for callback in &fired {
            assert_eq!(callback.envelope.created_at, created + 5_000, "{:?}", kind(callback));
        }
    }

    /// A reservation handed back (a later queue held a job that does not
    /// decode) gives its jobs the admission the reservation ended: a
    /// debounced job is superseded by a later dispatch as if it had never
    /// been reserved, and a unique-until-processing job holds its key again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reservation_handed_back_gives_its_jobs_their_admission_back() {
        use conc_bus::admission::Admission;
        use conc_bus::{EnqueueError, QueueError};
        use conc_core::time::ManualClock;

        let Some(redis) = conc_test_support::require_redis() else { return };
        let clock = ManualClock::new();
        let backend =
            RedisQueue::builder(redis.url()).clock(clock.clone()).connect().await.unwrap();
        let queue = Queue::new(backend.clone());
        let debounce = || Admission::debounce("search", Duration::from_secs(1));
        let until_processing = || Admission::unique("report").until_processing();
        queue.dispatch(step("d1")).on_queue("fast").admission(debounce()).await.unwrap();
        let u1 = queue.dispatch(step("u1")).on_queue("fast").admission(until_processing());
        let u1 = u1.await.unwrap();
        let broken = queue.dispatch(step("broken")).on_queue("broken").await.unwrap();
        let client = redis::Client::open(redis.url()).unwrap();
        let mut raw = client.get_multiplexed_async_connection().await.unwrap();
        let key = format!("{}job:{broken}", backend.queue_keys("broken"));
        let _: () = redis::cmd("HSET")
            .arg(&key)
            .arg("e")
            .arg("{\"id\": 12")
            .query_async(&mut raw)
            .await
            .unwrap();
        clock.advance(Duration::from_secs(1));

        let queues = vec!["fast".to_owned(), "broken".to_owned()];
        let refused = backend.reserve(ReserveRequest::new(&queues, 10, LEASE)).await;
        assert!(matches!(refused, Err(QueueError::Corrupt(_))), "{refused:?}");

        // The reservation that leased d1 and u1 is undone: d1 can still be
        // superseded, and u1 still holds "report".
        queue.dispatch(step("d2")).on_queue("fast").admission(debounce()).await.unwrap();
        let again = queue.dispatch(step("u2")).on_queue("fast").admission(until_processing()).await;
        assert!(
            matches!(&again, Err(EnqueueError::Locked { held_by, .. }) if *held_by == u1),
            "{again:?}"
        );
        clock.advance(Duration::from_secs(1));
        let mut ran: Vec<String> =
            reserve(&backend, "fast").await.iter().map(crate::workflows::name).collect();
        ran.sort();
        assert_eq!(ran, ["d2", "u1"], "d1 was superseded");
    }
}
