//! A batch larger than one sweep chunk, cancelled, failed and timed out on
//! Redis: the batch is marked at once, its waiting members are swept a
//! chunk per script call (by the cancelling caller, or by the reservations
//! that follow a failure or a timeout), each counts as cancelled once,
//! `finally` fires once, and the other jobs of the queue are left as they
//! were, in order. A reservation that meets members of a cancelled batch
//! not swept yet drops at most its chunk of them; a sweep one process left
//! pending is finished by the reservations of another.

use std::time::Duration;

use conc_bus::batch::{BatchId, BatchJobs, MemberOutcome, PendingBatch};
use conc_bus::job::TriggerKind;
use conc_bus::{JobOptions, Queue, QueueBackend, RedisQueue, ReserveRequest, Reserved, Transition};
use conc_core::time::ManualClock;
use conc_test_support::RedisServer;

use crate::workflows::{LEASE, callback, kind, name, step};

/// The sweep chunk the queues of these tests use.
const CHUNK: u64 = 1_000;
/// Members per batch: two full chunks and a half.
const MEMBERS: u64 = 2_500;
const HOUR: Duration = Duration::from_secs(3_600);

struct Setup {
    redis: RedisServer,
    backend: RedisQueue,
    queue: Queue<RedisQueue>,
    clock: ManualClock,
}

async fn setup() -> Option<Setup> {
    let redis = conc_test_support::require_redis()?;
    let clock = ManualClock::new();
    let backend = RedisQueue::builder(redis.url())
        .clock(clock.clone())
        .sweep_chunk(CHUNK as usize)
        .connect()
        .await
        .expect("connects");
    let queue = Queue::new(backend.clone());
    Some(Setup { redis, backend, queue, clock })
}

/// A batch of [`MEMBERS`] steps with `catch` and `finally`; every tenth
/// member is delayed by an hour.
fn large_batch() -> PendingBatch {
    let later = JobOptions::new().delay(HOUR);
    let mut jobs = BatchJobs::new();
    for i in 0..MEMBERS {
        let member = step(&format!("m{i}"));
        jobs = if i % 10 == 9 { jobs.add_with(member, &later) } else { jobs.add(member) };
    }
    PendingBatch::new().catch(callback("catch")).finally(callback("finally")).jobs(jobs)
}

impl Setup {
    async fn reserve(&self, queue: &str, max: usize) -> Vec<Reserved> {
        let queues = vec![queue.to_owned()];
        self.backend.reserve(ReserveRequest::new(&queues, max, LEASE)).await.unwrap().jobs
    }

    /// A reservation from a queue that holds nothing: it runs the
    /// maintenance step a reservation runs first (deadlines, pending
    /// sweeps) and nothing else.
    async fn maintain(&self) {
        assert!(self.reserve("nothing-here", 1).await.is_empty());
    }

    async fn cancelled(&self, id: BatchId) -> u64 {
        self.queue.batch(id).await.unwrap().expect("stored").cancelled
    }

    /// Every member's outcome, paged in id order.
    async fn outcomes(&self, id: BatchId) -> Vec<Option<MemberOutcome>> {
        let mut out = Vec::new();
        loop {
            let page = self.queue.batch_members(id, out.len(), 1_000).await.unwrap();
            if page.is_empty() {
                return out;
            }
            out.extend(page.into_iter().map(|(_, outcome)| outcome));
        }
    }

    /// Pushes the jobs around the batch: `before` ones, then the batch,
    /// then `after` ones.
    async fn others(&self, names: &[&str]) {
        for other in names {
            self.queue.dispatch(step(other)).await.unwrap();
        }
    }

    /// Two hours later (past the delayed members), takes everything from
    /// `default` and acknowledges it: the steps' names in order, and the
    /// callbacks by kind in order. The queue is empty after.
    async fn rest(&self) -> (Vec<String>, Vec<TriggerKind>) {
        self.clock.advance(2 * HOUR);
        let mut steps = Vec::new();
        let mut calls = Vec::new();
        loop {
            let taken = self.reserve("default", 500).await;
            if taken.is_empty() {
                assert_eq!(self.backend.size("default").await.unwrap().total(), 0);
                return (steps, calls);
            }
            for job in &taken {
                if job.envelope.name == "step" {
                    steps.push(name(job));
                } else {
                    calls.push(kind(job));
                }
                let settled = self.backend.settle(vec![(job.lease.clone(), Transition::Ack)]);
                settled.await.unwrap().remove(0).expect("the lease holds");
            }
        }
    }

    /// Script calls the server has answered.
    async fn script_calls(&self) -> u64 {
        let client = redis::Client::open(self.redis.url()).unwrap();
        let mut raw = client.get_multiplexed_async_connection().await.unwrap();
        let info: String =
            redis::cmd("INFO").arg("commandstats").query_async(&mut raw).await.unwrap();
        info.lines()
            .find_map(|line| line.strip_prefix("cmdstat_evalsha:calls="))
            .and_then(|rest| rest.split(',').next())
            .map_or(0, |calls| calls.parse().unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_sweeps_a_large_batch_a_chunk_per_call_and_fires_finally_once() {
    let Some(s) = setup().await else { return };
    // A small batch cancelled first loads the scripts.
    let small = s.queue.dispatch_batch(PendingBatch::new().add(step("small"))).await.unwrap();
    assert!(s.queue.cancel_batch(small).await.unwrap());

    s.others(&["before-1", "before-2"]).await;
    let id = s.queue.dispatch_batch(large_batch()).await.unwrap();
    s.others(&["after-1", "after-2"]).await;
    let calls = s.script_calls().await;
    assert!(s.queue.cancel_batch(id).await.unwrap());
    // One call per chunk: 1,000, 1,000, then the last 500.
    assert_eq!(s.script_calls().await - calls, MEMBERS.div_ceil(CHUNK));
    assert!(!s.queue.cancel_batch(id).await.unwrap(), "a second cancel changes nothing");

    let info = s.queue.batch(id).await.unwrap().unwrap();
    assert_eq!((info.cancelled, info.pending, info.failed), (MEMBERS, 0, 0));
    assert!(info.is_cancelled() && info.is_finished());
    let outcomes = s.outcomes(id).await;
    assert_eq!(outcomes.len() as u64, MEMBERS);
    assert!(outcomes.iter().all(|o| *o == Some(MemberOutcome::Cancelled)));
    let (steps, calls) = s.rest().await;
    assert_eq!(steps, ["before-1", "before-2", "after-1", "after-2"]);
    assert_eq!(calls, [TriggerKind::Finally]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_member_cancels_a_large_batch_and_reservations_sweep_the_rest_a_chunk_each() {
    let Some(s) = setup().await else { return };
    let id = s.queue.dispatch_batch(large_batch()).await.unwrap();
    s.others(&["after-1", "after-2"]).await;
    let failing = s.reserve("default", 1).await.remove(0);
    let fail = Transition::Fail { reason: conc_bus::FailReason::Fatal, error: "disk full".into() };
    s.backend.settle(vec![(failing.lease.clone(), fail)]).await.unwrap().remove(0).unwrap();

    // The settlement swept one chunk of members in id order; the failed one
    // is among them when its id is among the first chunk's.
    let first: Vec<_> = s.queue.batch_members(id, 0, CHUNK as usize).await.unwrap();
    let among = first.iter().any(|(member, _)| *member == failing.lease.job);
    let swept = CHUNK - u64::from(among);
    let info = s.queue.batch(id).await.unwrap().unwrap();
    assert_eq!((info.failed, info.cancelled), (1, swept));
    assert!(info.is_cancelled() && !info.is_finished());
    // Each reservation goes on with one chunk.
    s.maintain().await;
    assert_eq!(s.cancelled(id).await, swept + CHUNK);
    s.maintain().await;
    assert_eq!(s.cancelled(id).await, MEMBERS - 1);
    let info = s.queue.batch(id).await.unwrap().unwrap();
    assert!(info.is_finished() && info.pending == 0);
    s.maintain().await;
    assert_eq!(s.cancelled(id).await, MEMBERS - 1, "counted once");

    let outcomes = s.outcomes(id).await;
    let cancelled = outcomes.iter().filter(|o| **o == Some(MemberOutcome::Cancelled)).count();
    let failed = outcomes.iter().filter(|o| **o == Some(MemberOutcome::Failed)).count();
    assert_eq!((cancelled as u64, failed), (MEMBERS - 1, 1));
    let (steps, calls) = s.rest().await;
    assert_eq!(steps, ["after-1", "after-2"]);
    assert_eq!(calls, [TriggerKind::Catch, TriggerKind::Finally]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_left_mid_sweep_is_finished_by_reservations_of_the_queue_itself() {
    let Some(s) = setup().await else { return };
    s.others(&["before"]).await;
    let id = s.queue.dispatch_batch(large_batch()).await.unwrap();
    s.others(&["after"]).await;
    let before = s.reserve("default", 1).await.remove(0);
    assert_eq!(name(&before), "before");
    let failing = s.reserve("default", 1).await.remove(0);
    let fail = Transition::Fail { reason: conc_bus::FailReason::Fatal, error: "disk full".into() };
    s.backend.settle(vec![(failing.lease.clone(), fail)]).await.unwrap().remove(0).unwrap();
    s.backend.settle(vec![(before.lease.clone(), Transition::Ack)]).await.unwrap();
    // The members not swept yet are dropped by the reservations (counted
    // cancelled there) or swept by them, each once; only `after` and the
    // callbacks are handed out.
    let (steps, calls) = s.rest().await;
    assert_eq!(steps, ["after"]);
    assert_eq!(calls, [TriggerKind::Catch, TriggerKind::Finally]);
    let info = s.queue.batch(id).await.unwrap().unwrap();
    assert_eq!((info.failed, info.cancelled, info.pending), (1, MEMBERS - 1, 0));
    assert!(info.is_finished());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_batch_past_its_deadline_is_swept_a_chunk_per_reservation() {
    let Some(s) = setup().await else { return };
    s.others(&["before"]).await;
    let id = s.queue.dispatch_batch(large_batch().timeout(Duration::from_secs(20))).await.unwrap();
    s.others(&["after"]).await;
    let before = s.reserve("default", 1).await.remove(0);
    let running = s.reserve("default", 1).await.remove(0);
    s.backend.settle(vec![(before.lease.clone(), Transition::Ack)]).await.unwrap();

    s.clock.advance(Duration::from_secs(20));
    // The timeout is marked at once and sweeps one chunk (running members
    // count too); each later reservation goes on with one more.
    s.maintain().await;
    let info = s.queue.batch(id).await.unwrap().unwrap();
    assert!(info.is_timed_out() && info.is_cancelled() && !info.is_finished());
    assert_eq!(info.cancelled, CHUNK);
    s.maintain().await;
    assert_eq!(s.cancelled(id).await, 2 * CHUNK);
    s.maintain().await;
    assert_eq!(s.cancelled(id).await, MEMBERS);
    assert!(s.queue.batch(id).await.unwrap().unwrap().is_finished());
    // The running member finishing changes nothing.
    s.backend.settle(vec![(running.lease.clone(), Transition::Ack)]).await.unwrap();
    s.maintain().await;
    assert_eq!(s.cancelled(id).await, MEMBERS, "counted once");

    let outcomes = s.outcomes(id).await;
    assert!(outcomes.iter().all(|o| *o == Some(MemberOutcome::Cancelled)));
    let (steps, calls) = s.rest().await;
    assert_eq!(steps, ["after"]);
    assert_eq!(calls, [TriggerKind::Catch, TriggerKind::Finally]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_drops_at_most_a_chunk_of_cancelled_members() {
    let Some(redis) = conc_test_support::require_redis() else { return };
    // A sweep of one member per call leaves the members to the reservations.
    let backend = RedisQueue::builder(redis.url()).sweep_chunk(1).connect().await.unwrap();
    let s = Setup { queue: Queue::new(backend.clone()), backend, redis, clock: ManualClock::new() };
    let mut jobs = BatchJobs::new();
    for i in 0..MEMBERS {
        jobs = jobs.add(step(&format!("m{i}")));
    }
    let id = s.queue.dispatch_batch(PendingBatch::new().finally(callback("finally")).jobs(jobs));
    let id = id.await.unwrap();
    s.others(&["after"]).await;
    let failing = s.reserve("default", 1).await.remove(0);
    let fail = Transition::Fail { reason: conc_bus::FailReason::Fatal, error: "disk full".into() };
    s.backend.settle(vec![(failing.lease.clone(), fail)]).await.unwrap().remove(0).unwrap();
    let mut counted = s.cancelled(id).await;
    assert!(counted <= 1, "one member swept by the failure");
    // Each reservation sweeps one member and drops at most 1,024 reserved
    // ones: the first two hand out nothing and stop at that bound.
    for _ in 0..2 {
        assert!(s.reserve("default", 1).await.is_empty());
        let now = s.cancelled(id).await;
        assert!((1_024..=1_025).contains(&(now - counted)), "{counted} -> {now}");
        counted = now;
    }
    let next = s.reserve("default", 1).await;
    assert_eq!(next.iter().map(name).collect::<Vec<_>>(), ["after"]);
    s.backend.settle(vec![(next[0].lease.clone(), Transition::Ack)]).await.unwrap();
    let info = s.queue.batch(id).await.unwrap().unwrap();
    assert_eq!((info.cancelled, info.failed, info.pending), (MEMBERS - 1, 1, 0));
    let (steps, calls) = s.rest().await;
    assert!(steps.is_empty());
    assert_eq!(calls, [TriggerKind::Finally]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_left_by_one_process_is_finished_by_the_reservations_of_another() {
    let Some(s) = setup().await else { return };
    let id = s.queue.dispatch_batch(large_batch()).await.unwrap();
    let failing = s.reserve("default", 1).await.remove(0);
    let fail = Transition::Fail { reason: conc_bus::FailReason::Fatal, error: "disk full".into() };
    s.backend.settle(vec![(failing.lease.clone(), fail)]).await.unwrap().remove(0).unwrap();
    let swept = s.cancelled(id).await;
    assert!(swept == CHUNK || swept == CHUNK - 1, "{swept}");
    // Another process, which heard nothing of the failure: its first
    // reservation looks for deadlines and pending sweeps, and each next one
    // goes on while a sweep is pending.
    let other = RedisQueue::builder(s.redis.url()).clock(s.clock.clone()).connect().await.unwrap();
    let nothing = vec!["nothing-here".to_owned()];
    for expected in [swept + CHUNK, MEMBERS - 1] {
        let taken = other.reserve(ReserveRequest::new(&nothing, 1, LEASE)).await.unwrap();
        assert!(taken.jobs.is_empty());
        assert_eq!(s.cancelled(id).await, expected);
    }
    let info = s.queue.batch(id).await.unwrap().unwrap();
    assert!(info.is_finished() && info.pending == 0);
    let (steps, calls) = s.rest().await;
    assert!(steps.is_empty());
    assert_eq!(calls, [TriggerKind::Catch, TriggerKind::Finally]);
}
