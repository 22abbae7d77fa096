//! The Redis backend: the conformance suite (each test on its own
//! `redis-server`, with a manual clock handed to the scripts), and what only
//! Redis shows: a durable server restarted keeps every acknowledged job;
//! scripts flushed from the server are loaded again; a paused server makes
//! calls fail, not hang or panic; every key of a queue is on one cluster
//! slot and the scripts run on a cluster node (where workflows, whose keys
//! span slots, are refused with the jobs handed back); the global concurrency of a
//! queue holds across workers; a push wakes an idle worker on another
//! connection; a renewed lease keeps a long job from running twice, and a
//! graceful stop releases the lease at once (scenarios 12 and 16 of the
//! crate's fault list, with real workers).
//!
//! Every test starts its own `redis-server` through `conc-test-support` and
//! skips when the binary is missing, unless `CONC_REQUIRE_SERVICES=1`.

mod conformance;

use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use conc_bus::admission::{Release, Ticket};
use conc_bus::batch::{PendingBatch, WorkflowError};
use conc_bus::{
    Envelope, FailReason, FailedQuery, FailedStore, JobContext, JobError, JobHandlers, JobOptions,
    PushError, Pushed, Queue, QueueBackend, QueueError, RedisQueue, RedisQueueBuilder,
    ReserveRequest, Reserved, Selection, Settlement, Transition, Worker,
};
use conc_core::time::ManualClock;
use conc_test_support::RedisServer;
use conformance::Note;
use redis::aio::MultiplexedConnection;

conformance::suite!(|clock: ManualClock| async move {
    let redis = conc_test_support::require_redis()?;
    let backend = RedisQueue::builder(redis.url()).clock(clock).connect().await.expect("connects");
    Some((backend, Box::new(redis) as conformance::KeepAlive))
});

static_assertions::assert_impl_all!(RedisQueue: Send, Sync, Clone, std::fmt::Debug);
static_assertions::assert_impl_all!(RedisQueueBuilder: Send, Sync, std::fmt::Debug);

const LEASE: Duration = Duration::from_secs(30);

async fn raw(redis: &RedisServer) -> MultiplexedConnection {
    let client = redis::Client::open(redis.url()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

async fn query<T: redis::FromRedisValue>(raw: &mut MultiplexedConnection, args: &[&str]) -> T {
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query_async(raw).await.unwrap_or_else(|error| panic!("{args:?}: {error}"))
}

/// The hash tag Redis Cluster hashes for `key`.
fn cluster_tag(key: &str) -> &str {
    let Some(open) = key.find('{') else { return key };
    match key[open + 1..].find('}') {
        Some(len) if len > 0 => &key[open + 1..open + 1 + len],
        _ => key,
    }
}

fn envelope(backend: &RedisQueue, text: &str, options: &JobOptions) -> Envelope {
    Envelope::new(&Note { text: text.into() }, options, backend.now()).unwrap()
}

async fn push(backend: &RedisQueue, text: &str, options: &JobOptions, delay: Duration) {
    let at = backend.now() + delay.as_millis() as u64;
    backend.push(vec![Pushed::new(envelope(backend, text, options), at)]).await.unwrap();
}

async fn reserve_from(backend: &RedisQueue, queue: &str, max: usize) -> Vec<Reserved> {
    let queues = vec![queue.to_owned()];
    backend.reserve(ReserveRequest::new(&queues, max, LEASE)).await.unwrap().jobs
}

fn text(reserved: &Reserved) -> String {
    serde_json::from_str::<Note>(&reserved.envelope.payload).unwrap().text
}

/// Calls `call` until it succeeds, for at most 30 s (a server coming back).
async fn eventually<T, E: std::fmt::Debug, F, Fut>(what: &str, mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match call().await {
            Ok(value) => return value,
            Err(error) if tokio::time::Instant::now() < deadline => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("{what} never succeeded: {error:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_server_restarted_keeps_every_acknowledged_job() {
    let Some(mut redis) = conc_test_support::require_durable_redis() else { return };
    let clock = ManualClock::new();
    let backend = RedisQueue::builder(redis.url()).clock(clock.clone()).connect().await.unwrap();
    let options = JobOptions::new();
    for name in ["held", "doomed", "ready"] {
        push(&backend, name, &options, Duration::ZERO).await;
    }
    push(&backend, "later", &options, Duration::from_secs(60)).await;
    backend.set_capacity("default", Some(100)).await.unwrap();
    let jobs = reserve_from(&backend, "default", 2).await;
    assert_eq!(jobs.iter().map(text).collect::<Vec<_>>(), ["held", "doomed"]);
    let fail = Transition::Fail { reason: FailReason::Fatal, error: "no such card".into() };
    let settled = backend.settle(vec![(jobs[1].lease.clone(), fail)]).await.unwrap();
    assert_eq!(settled[0], Ok(Settlement::Dead(FailReason::Fatal)));
    let (held, doomed) = (jobs[0].lease.clone(), jobs[1].envelope.id);

    redis.kill().unwrap();
    redis.restart().unwrap();

    // The same backend reconnects; everything acknowledged is there.
    let size = eventually("size", || backend.size("default")).await;
    assert_eq!((size.ready, size.delayed, size.reserved), (1, 1, 1));
    let failed = backend.failed_job(doomed).await.unwrap().expect("kept");
    assert_eq!((failed.reason, failed.error.as_str()), (FailReason::Fatal, "no such card"));
    assert_eq!(backend.queues().await.unwrap(), ["default"]);
    let full: Vec<Pushed> = (0..100)
        .map(|i| Pushed::new(envelope(&backend, &i.to_string(), &options), backend.now()))
        .collect();
    assert!(matches!(backend.push(full).await, Err(PushError::Full { capacity: 100, .. })));
    let ready = reserve_from(&backend, "default", 10).await;
    assert_eq!(ready.iter().map(text).collect::<Vec<_>>(), ["ready"]);
    backend.settle(vec![(ready[0].lease.clone(), Transition::Ack)]).await.unwrap();
    // The lease taken before the crash still holds, then comes back with a
    // token no earlier reservation had.
    clock.advance(LEASE);
    let again = reserve_from(&backend, "default", 10).await;
    assert_eq!(again.iter().map(text).collect::<Vec<_>>(), ["held"]);
    assert_eq!(again[0].attempt, 2);
    assert!(again[0].lease.token > held.token.max(ready[0].lease.token));
    assert!(backend.settle(vec![(held, Transition::Ack)]).await.unwrap()[0].is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_flushed_from_the_server_are_loaded_again() {
    let Some(redis) = conc_test_support::require_redis() else { return };
    let backend = RedisQueue::connect(&redis.url()).await.unwrap();
    let mut raw = raw(&redis).await;
    let cycle = |n: usize| {
        let backend = backend.clone();
        async move {
            push(&backend, &n.to_string(), &JobOptions::new(), Duration::ZERO).await;
            let job = reserve_from(&backend, "default", 1).await.remove(0);
            let settled = backend.settle(vec![(job.lease, Transition::Ack)]).await.unwrap();
            assert_eq!(settled[0], Ok(Settlement::Acked));
        }
    };
    cycle(1).await;
    let () = query(&mut raw, &["SCRIPT", "FLUSH"]).await;
    cycle(2).await;
    let () = query(&mut raw, &["SCRIPT", "FLUSH"]).await;
    assert_eq!(backend.size("default").await.unwrap().total(), 0);
    cycle(3).await;
    // The server answered NOSCRIPT, and the backend loaded the scripts again.
    let errors: String = query(&mut raw, &["INFO", "errorstats"]).await;
    let noscript = errors
        .lines()
        .find_map(|line| line.strip_prefix("errorstat_NOSCRIPT:count="))
        .map_or(0, |count| count.parse::<u64>().unwrap());
    assert!(noscript >= 3, "{errors}");
    let loaded: String = query(&mut raw, &["INFO", "commandstats"]).await;
    assert!(loaded.contains("cmdstat_script|load:calls="), "{loaded}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_server_makes_calls_fail_with_the_jobs_handed_back() {
    let Some(redis) = conc_test_support::require_redis() else { return };
    let backend = RedisQueue::builder(redis.url())
        .response_timeout(Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    push(&backend, "before", &JobOptions::new(), Duration::ZERO).await;
    let held = reserve_from(&backend, "default", 1).await.remove(0);

    redis.pause().unwrap();
    let pushed = envelope(&backend, "during", &JobOptions::new());
    match backend.push(vec![Pushed::new(pushed.clone(), 0)]).await {
        Err(PushError::Backend { jobs, .. }) => assert_eq!(jobs[0].envelope, pushed),
        other => panic!("expected a backend error, got {other:?}"),
    }
    let queues = vec!["default".to_owned()];
    let short = Duration::from_secs(1);
    let reserved = backend.reserve(ReserveRequest::new(&queues, 1, short)).await;
    assert!(matches!(reserved, Err(QueueError::Backend(_))), "{reserved:?}");
    let settled = backend.settle(vec![(held.lease.clone(), Transition::Ack)]).await;
    assert!(matches!(settled, Err(QueueError::Backend(_))), "{settled:?}");
    assert!(matches!(backend.size("default").await, Err(QueueError::Backend(_))));
    assert!(matches!(backend.failed_count(None).await, Err(QueueError::Backend(_))));
    // A wait on a paused server ends (at its timeout plus a margin).
    backend.wait(&queues, Duration::from_millis(100)).await;

    redis.resume().unwrap();
    // The calls that timed out were sent, so the server may run them now: the
    // push may have landed (pushing it again is then refused as a
    // duplicate), the reservation may have leased the job to nobody for a
    // second, the ack may have applied.
    eventually("size", || backend.size("default")).await;
    match backend.push(vec![Pushed::new(pushed.clone(), 0)]).await {
        Ok(()) | Err(PushError::Duplicate { .. }) => {}
        Err(error) => panic!("the push again: {error}"),
    }
    let settled = backend.settle(vec![(held.lease.clone(), Transition::Ack)]).await.unwrap();
    assert!(matches!(settled[0], Ok(Settlement::Acked) | Err(_)), "{settled:?}");
    let job = eventually("the job pushed while paused", || async {
        let jobs = reserve_from(&backend, "default", 1).await;
        jobs.into_iter().next().ok_or("none yet")
    })
    .await;
    assert_eq!(text(&job), "during");
    backend.settle(vec![(job.lease, Transition::Ack)]).await.unwrap();
    assert_eq!(backend.size("default").await.unwrap().total(), 0, "the held job was acked");
}

/// Runs a queue through every operation, with awkward names.
async fn full_cycle(backend: &RedisQueue, queue: &str) {
    let on = JobOptions::new().queue(queue.to_owned());
    push(backend, "a", &on, Duration::ZERO).await;
    push(backend, "b", &on.clone().priority(7), Duration::ZERO).await;
    push(backend, "c", &on, Duration::from_secs(60)).await;
    backend.set_capacity(queue, Some(10)).await.unwrap();
    backend.set_global_concurrency(queue, Some(5)).await.unwrap();
    backend.set_paused(queue, true).await.unwrap();
    backend.set_paused(queue, false).await.unwrap();
    assert_eq!(backend.peek(queue, 10).await.unwrap().len(), 2);
    let jobs = reserve_from(backend, queue, 2).await;
    assert_eq!(jobs.len(), 2);
    let fail = Transition::Fail { reason: FailReason::Fatal, error: "x".into() };
    let batch = vec![
        (jobs[0].lease.clone(), Transition::Progress(5)),
        (jobs[0].lease.clone(), Transition::Extend { lease: LEASE }),
        (jobs[0].lease.clone(), fail),
        (jobs[1].lease.clone(), Transition::Release { delay: Duration::ZERO }),
    ];
    for settled in backend.settle(batch).await.unwrap() {
        assert!(settled.is_ok(), "{settled:?}");
    }
    let failed = backend.failed(&FailedQuery::new().queue(queue).name("note")).await.unwrap();
    assert_eq!(failed.len(), 1);
    backend.retry_failed(&Selection::Queue(queue.to_owned())).await.unwrap();
    let jobs = reserve_from(backend, queue, 5).await;
    let fail = Transition::Fail { reason: FailReason::Fatal, error: "y".into() };
    backend.settle(vec![(jobs[0].lease.clone(), fail)]).await.unwrap();
    assert_eq!(backend.failed_count(Some(queue)).await.unwrap(), 1);
    assert_eq!(backend.size(queue).await.unwrap().total(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_of_a_queue_shares_its_hash_tag() {
    let Some(redis) = conc_test_support::require_redis() else { return };
    let backend = RedisQueue::connect(&redis.url()).await.unwrap();
    let mut raw = raw(&redis).await;
    let queue = "mail{eu}%:x";
    full_cycle(&backend, queue).await;
    let base = backend.queue_keys(queue);
    assert_eq!(base, "conc:bus:{mail%7Beu%7D%25:x}:");
    let keys: BTreeSet<String> =
        query::<Vec<String>>(&mut raw, &["KEYS", "*"]).await.into_iter().collect();
    assert!(keys.contains("conc:bus:queues"), "{keys:?}");
    let tags: HashSet<&str> =
        keys.iter().filter(|key| *key != "conc:bus:queues").map(|key| cluster_tag(key)).collect();
    assert_eq!(tags, HashSet::from([cluster_tag(&base)]), "{keys:?}");
    for kind in ["delayed", "reserved", "meta", "seq", "failed", "failed:data", "failed:name:note"]
    {
        assert!(keys.contains(&format!("{base}{kind}")), "{kind}: {keys:?}");
    }
}

/// On a one-node Redis Cluster (cluster mode on, every slot assigned), a
/// script whose keys hash to different slots fails with `CROSSSLOT`; the
/// whole lease cycle runs there, for awkward queue names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scripts_run_on_a_cluster_node() {
    let bus_port =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
    let Some(redis) = RedisServer::builder()
        .arg("--cluster-enabled", "yes")
        .arg("--cluster-port", bus_port.to_string())
        .require()
    else {
        return;
    };
    let mut raw = raw(&redis).await;
    let () = query(&mut raw, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let info: String = query(&mut raw, &["CLUSTER", "INFO"]).await;
        if info.contains("cluster_state:ok") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the one-node cluster never came up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let backend = RedisQueue::connect(&redis.url()).await.unwrap();
    for queue in ["plain", "a{b}c", "}{", "{x}:failed"] {
        full_cycle(&backend, queue).await;
    }
    // A push across queues crosses slots: refused there, the jobs handed back.
    let two = vec![
        Pushed::new(envelope(&backend, "1", &JobOptions::new().queue("one")), 0),
        Pushed::new(envelope(&backend, "2", &JobOptions::new().queue("two")), 0),
    ];
    match backend.push(two).await {
        Err(PushError::Backend { error, jobs }) => {
            assert!(error.to_string().to_lowercase().contains("crossslot"), "{error}");
            assert_eq!(jobs.len(), 2);
        }
        other => panic!("expected CROSSSLOT, got {other:?}"),
    }
    // A workflow's scripts touch keys of several slots (a lock, a batch):
    // refused there, the jobs handed back, while plain jobs keep working.
    let mut unique = envelope(&backend, "u", &JobOptions::new());
    unique.flow_mut().admission = Some(Ticket::new("k", Release::Processed));
    match backend.push(vec![Pushed::new(unique, 0)]).await {
        Err(PushError::Backend { error, jobs }) => {
            assert!(error.to_string().to_lowercase().contains("crossslot"), "{error}");
            assert_eq!(jobs.len(), 1);
        }
        other => panic!("expected CROSSSLOT, got {other:?}"),
    }
    let batch = PendingBatch::new().add(Note { text: "member".into() });
    match Queue::new(backend.clone()).dispatch_batch(batch).await {
        Err(WorkflowError::Push(PushError::Backend { error, jobs })) => {
            assert!(error.to_string().to_lowercase().contains("crossslot"), "{error}");
            assert_eq!(jobs.len(), 1);
        }
        other => panic!("expected CROSSSLOT, got {other:?}"),
    }
    push(&backend, "after", &JobOptions::new().queue("still-plain"), Duration::ZERO).await;
    assert_eq!(reserve_from(&backend, "still-plain", 1).await.len(), 1);
    // A worker of several queues falls back to polling.
    let queues = vec!["one".to_owned(), "two".to_owned()];
    backend.wait(&queues, Duration::from_millis(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_are_checked() {
    let Some(redis) = conc_test_support::require_redis() else { return };
    let url = redis.url();
    let config_field = |result: Result<RedisQueue, QueueError>| match result {
        Err(QueueError::Config(error)) => error.field.into_owned(),
        other => panic!("expected a refused setting, got {other:?}"),
    };
    let refused = RedisQueue::builder(&url).key_prefix("a{b").connect().await;
    assert_eq!(config_field(refused), "key_prefix");
    let refused = RedisQueue::builder(&url).response_timeout(Duration::ZERO).connect().await;
    assert_eq!(config_field(refused), "response_timeout");
    let refused = RedisQueue::builder(&url).connection_timeout(Duration::MAX).connect().await;
    assert_eq!(config_field(refused), "connection_timeout");
    let refused = RedisQueue::builder(&url).reconnect_retries(usize::MAX).connect().await;
    assert_eq!(config_field(refused), "reconnect_retries");
    let refused = RedisQueue::builder(&url).failed_retention(0, LEASE).connect().await;
    assert_eq!(config_field(refused), "failed_max_jobs");
    let refused = RedisQueue::builder(&url).failed_retention(1, Duration::ZERO).connect().await;
    assert_eq!(config_field(refused), "failed_max_age");
    let refused = RedisQueue::builder("not a url").connect().await;
    assert!(matches!(refused, Err(QueueError::Backend(_))), "{refused:?}");

    let backend = RedisQueue::builder(&url).key_prefix("app:jobs:").connect().await.unwrap();
    assert_eq!(backend.queue_keys("q"), "app:jobs:{q}:");
    assert!(backend.clone().with_key_prefix("x}").is_err());
    let other = backend.clone().with_key_prefix("other:").unwrap();
    push(&backend, "mine", &JobOptions::new(), Duration::ZERO).await;
    assert_eq!(other.size("default").await.unwrap().total(), 0, "prefixes do not share");
    assert!(matches!(
        backend.set_global_concurrency("q", Some(0)).await,
        Err(QueueError::Config(_))
    ));
    assert!(matches!(backend.set_paused("", true).await, Err(QueueError::Config(_))));
    let invalid = envelope(&backend, "x", &JobOptions::new());
    let mut bad = invalid.clone();
    bad.queue = String::new();
    assert!(matches!(
        backend.push(vec![Pushed::new(bad, 0)]).await,
        Err(PushError::Invalid { .. })
    ));
    let from_manager = {
        let client = redis::Client::open(url.as_str()).unwrap();
        let manager = redis::aio::ConnectionManager::new(client.clone()).await.unwrap();
        RedisQueue::from_manager(client, manager).with_key_prefix("app:jobs:").unwrap()
    };
    assert_eq!(from_manager.size("default").await.unwrap().ready, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_concurrency_of_a_queue_holds_across_workers() {
    const JOBS: usize = 40;
    const LIMIT: usize = 3;
    let Some(redis) = conc_test_support::require_redis() else { return };
    let setup = RedisQueue::connect(&redis.url()).await.unwrap();
    setup.set_global_concurrency("exports", Some(LIMIT as u32)).await.unwrap();
    assert_eq!(setup.global_concurrency("exports").await.unwrap(), Some(LIMIT as u32));
    let on = JobOptions::new().queue("exports");
    for i in 0..JOBS {
        push(&setup, &i.to_string(), &on, Duration::ZERO).await;
    }
    // One reservation alone cannot take more than the bound.
    let held = reserve_from(&setup, "exports", 10).await;
    assert_eq!(held.len(), LIMIT);
    assert!(reserve_from(&setup, "exports", 10).await.is_empty());
    let release =
        |job: &Reserved| (job.lease.clone(), Transition::Release { delay: Duration::ZERO });
    setup.settle(held.iter().map(release).collect()).await.unwrap();

    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let backend = RedisQueue::connect(&redis.url()).await.unwrap();
        let (running, most, done) = (Arc::clone(&running), Arc::clone(&most), Arc::clone(&done));
        let handlers = JobHandlers::new().handle(move |_: Note, _: JobContext| {
            let (running, most, done) =
                (Arc::clone(&running), Arc::clone(&most), Arc::clone(&done));
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                done.fetch_add(1, Ordering::SeqCst);
                Ok::<(), JobError>(())
            }
        });
        let worker = Worker::builder(backend, handlers)
            .queues(["exports"])
            .concurrency(4)
            .prefetch(4)
            .poll_interval(Duration::from_millis(20))
            .build()
            .unwrap();
        worker.start().unwrap();
        workers.push(worker);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while done.load(Ordering::SeqCst) < JOBS {
        assert!(tokio::time::Instant::now() < deadline, "the workers never finished");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for worker in &workers {
        worker.stop(Duration::from_secs(1));
    }
    for worker in &workers {
        worker.stopped().await;
    }
    assert_eq!(done.load(Ordering::SeqCst), JOBS);
    assert_eq!(setup.size("exports").await.unwrap().total(), 0);
    let most = most.load(Ordering::SeqCst);
    assert!((1..=LIMIT).contains(&most), "{most} jobs ran at once, more than {LIMIT}");
    setup.set_global_concurrency("exports", None).await.unwrap();
    assert_eq!(setup.global_concurrency("exports").await.unwrap(), None);
}

/// The acknowledgements sent with a reservation are applied first (once the
/// scripts are loaded: a script the server does not know yet is loaded and
/// run again after the reservation): the room they free under a global
/// concurrency bound is taken by that reservation, round after round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_sent_with_acknowledgements_sees_the_room_they_freed() {
    let Some(redis) = conc_test_support::require_redis() else { return };
    let backend = RedisQueue::connect(&redis.url()).await.unwrap();
    backend.set_global_concurrency("exports", Some(3)).await.unwrap();
    let on = JobOptions::new().queue("exports");
    for i in 0..30 {
        push(&backend, &i.to_string(), &on, Duration::ZERO).await;
    }
    let mut held = reserve_from(&backend, "exports", 10).await;
    assert_eq!(held.len(), 3);
    // Loads the settle script.
    let extend = held.iter().map(|job| (job.lease.clone(), Transition::Extend { lease: LEASE }));
    backend.settle(extend.collect()).await.unwrap();
    let queues = vec!["exports".to_owned()];
    for round in 0..9 {
        let acks = held.iter().map(|job| (job.lease.clone(), Transition::Ack)).collect();
        let request = ReserveRequest::new(&queues, 10, LEASE);
        let (settled, reserved) = backend.settle_and_reserve(acks, request).await;
        assert!(settled.unwrap().iter().all(Result::is_ok));
        held = reserved.unwrap().jobs;
        assert_eq!(
            held.len(),
            3,
            "round {round}: the reservation went before the acknowledgements"
        );
    }
    let acks = held.iter().map(|job| (job.lease.clone(), Transition::Ack)).collect();
    backend.settle(acks).await.unwrap();
    assert_eq!(backend.size("exports").await.unwrap().total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_wakes_an_idle_worker_on_another_connection() {
    let Some(redis) = conc_test_support::require_redis() else { return };
    let waiter = RedisQueue::connect(&redis.url()).await.unwrap();
    let pusher = RedisQueue::connect(&redis.url()).await.unwrap();
    for round in 0..3 {
        let waiting = waiter.clone();
        let wait = tokio::spawn(async move {
            let queues = vec!["other".to_owned(), "default".to_owned()];
            waiting.wait(&queues, Duration::from_secs(24 * 3600)).await;
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        push(&pusher, &round.to_string(), &JobOptions::new(), Duration::ZERO).await;
        // A guard against a hang, not a timing assertion: without the
        // wake-up the wait would last a day.
        tokio::time::timeout(Duration::from_secs(60), wait)
            .await
            .expect("the push wakes the wait")
            .unwrap();
    }
    assert_eq!(waiter.size("default").await.unwrap().ready, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failed_store_keeps_its_bounds_per_queue() {
    let Some(redis) = conc_test_support::require_redis() else { return };
    let clock = ManualClock::new();
    let backend = RedisQueue::builder(redis.url())
        .clock(clock.clone())
        .failed_retention(3, Duration::from_secs(3600))
        .connect()
        .await
        .unwrap();
    let queue = Queue::new(backend.clone());
    let fail = Transition::Fail { reason: FailReason::Fatal, error: "x".into() };
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(queue.dispatch(Note { text: i.to_string() }).await.unwrap());
        let job = reserve_from(&backend, "default", 1).await.remove(0);
        backend.settle(vec![(job.lease, fail.clone())]).await.unwrap();
        clock.advance(Duration::from_secs(1));
    }
    // Another queue has bounds of its own.
    queue.dispatch(Note { text: "mail".into() }).on_queue("mail").await.unwrap();
    let job = reserve_from(&backend, "mail", 1).await.remove(0);
    backend.settle(vec![(job.lease, fail.clone())]).await.unwrap();
    let kept: HashSet<_> = backend
        .failed(&FailedQuery::new().queue("default"))
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.envelope.id)
        .collect();
    assert_eq!(kept, ids[2..].iter().copied().collect(), "the oldest go past the count bound");
    assert_eq!(backend.failed_count(None).await.unwrap(), 4);
    clock.advance(Duration::from_secs(3600));
    queue.dispatch(Note { text: "late".into() }).await.unwrap();
    let job = reserve_from(&backend, "default", 1).await.remove(0);
    backend.settle(vec![(job.lease, fail)]).await.unwrap();
    assert_eq!(backend.failed_count(Some("default")).await.unwrap(), 1, "older than an hour");
    assert_eq!(backend.forget_failed(&Selection::All).await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_does_not_decode_is_set_aside_not_a_panic() {
    let Some(redis) = conc_test_support::require_redis() else { return };
    let backend = RedisQueue::connect(&redis.url()).await.unwrap();
    let mut raw = raw(&redis).await;
    push(&backend, "broken", &JobOptions::new(), Duration::ZERO).await;
    push(&backend, "fine", &JobOptions::new(), Duration::ZERO).await;
    let broken = backend.peek("default", 1).await.unwrap().remove(0).id;
    let key = format!("{}job:{broken}", backend.queue_keys("default"));
    let () = query(&mut raw, &["HSET", &key, "e", "{\"id\": 12"]).await;

    assert!(matches!(backend.peek("default", 10).await, Err(QueueError::Corrupt(_))));
    let queues = vec!["default".to_owned()];
    let error = backend.reserve(ReserveRequest::new(&queues, 10, LEASE)).await.unwrap_err();
    let QueueError::Corrupt(message) = &error else { panic!("expected corrupt, got {error:?}") };
    assert!(message.contains(&broken.to_string()) && message.contains("set aside"), "{message}");
    // The reservation that met it left nothing leased, and the queue moves on.
    let jobs = reserve_from(&backend, "default", 10).await;
    assert_eq!(jobs.iter().map(text).collect::<Vec<_>>(), ["fine"]);
    assert_eq!(jobs[0].attempt, 1, "the reservation given back is not counted");
    let kept: Option<String> = query(
        &mut raw,
        &["HGET", &format!("{}corrupt", backend.queue_keys("default")), &broken.to_string()],
    )
    .await;
    assert_eq!(kept.as_deref(), Some("{\"id\": 12"), "kept for inspection");
}

/// A job the lease tests run: how long the handler holds it, in milliseconds.
#[derive(serde::Serialize, serde::Deserialize)]
struct Hold {
    ms: u64,
}

impl conc_bus::Job for Hold {
    const NAME: &'static str = "hold";
}

/// Handlers that count each start of a `Hold` job and hold it as told,
/// deaf to cancellation (so a stopping worker must abandon it).
fn holding(starts: &Arc<AtomicUsize>) -> JobHandlers {
    let starts = Arc::clone(starts);
    JobHandlers::new().handle(move |job: Hold, _: JobContext| {
        let starts = Arc::clone(&starts);
        async move {
            starts.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(job.ms)).await;
            Ok::<(), JobError>(())
        }
    })
}

/// Scenario 12 on Redis: a job that runs longer than its lease keeps it
/// (renewed every third of it), so a second worker polling the same queue
/// never runs it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_lease_keeps_a_long_job_from_running_twice() {
    let Some(redis) = conc_test_support::require_redis() else { return };
    let backend = RedisQueue::connect(&redis.url()).await.unwrap();
    let id = Queue::new(backend.clone()).push(Hold { ms: 3_000 }).await.unwrap();
    let starts = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..2 {
        let backend = RedisQueue::connect(&redis.url()).await.unwrap();
        let worker = Worker::builder(backend, holding(&starts))
            .lease(Duration::from_secs(1))
            .poll_interval(Duration::from_millis(50))
            .max_jobs(1)
            .build()
            .unwrap();
        worker.start().unwrap();
        workers.push(worker);
    }
    eventually("the job is done", || {
        let backend = backend.clone();
        async move {
            let size = backend.size("default").await.map_err(|e| e.to_string())?;
            if size.total() == 0 { Ok(()) } else { Err(format!("{size:?}")) }
        }
    })
    .await;
    for worker in &workers {
        worker.stop(Duration::from_secs(1));
        worker.stopped().await;
    }
    assert_eq!(starts.load(Ordering::SeqCst), 1, "job {id} ran more than once");
    assert_eq!(backend.failed_count(None).await.unwrap(), 0);
}

/// Scenario 16 on Redis: a worker stopped with a grace shorter than its job
/// signals cancellation and releases the lease at once, so the job is ready
/// again (with the stopped attempt counted) long before its 30 s lease would
/// have expired, and another worker runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_releases_the_lease_at_once() {
    let Some(redis) = conc_test_support::require_redis() else { return };
    let backend = RedisQueue::connect(&redis.url()).await.unwrap();
    let queue = Queue::new(backend.clone());
    queue.push(Hold { ms: 10_000 }).await.unwrap();
    let starts = Arc::new(AtomicUsize::new(0));
    let first = Worker::builder(backend.clone(), holding(&starts))
        .lease(LEASE)
        .grace(Duration::from_millis(200))
        .build()
        .unwrap();
    first.start().unwrap();
    eventually("the first worker starts the job", || {
        let starts = Arc::clone(&starts);
        async move { if starts.load(Ordering::SeqCst) == 1 { Ok(()) } else { Err("not yet") } }
    })
    .await;
    first.stop(Duration::from_millis(200));
    first.stopped().await;
    let size = queue.size("default").await.unwrap();
    assert_eq!((size.reserved, size.ready), (0, 1), "released, not left leased: {size:?}");

    let done = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&done);
    let handlers = JobHandlers::new().handle(move |_: Hold, ctx: JobContext| {
        let done = Arc::clone(&counted);
        async move {
            assert_eq!(ctx.attempt(), 2, "the stopped attempt was counted");
            done.fetch_add(1, Ordering::SeqCst);
            Ok::<(), JobError>(())
        }
    });
    let second = Worker::builder(backend.clone(), handlers)
        .lease(LEASE)
        .poll_interval(Duration::from_millis(20))
        .stop_when_empty(true)
        .build()
        .unwrap();
    second.run().await.unwrap();
    assert_eq!(done.load(Ordering::SeqCst), 1);
    assert_eq!(queue.size("default").await.unwrap().total(), 0);
}
