//! The SQLite backend: the conformance suite on a fresh file per test and a
//! manual clock, and what only a file shows: jobs of every state kept across
//! reopening, two backends on one file never sharing a job, a schema from a
//! newer release refused, and corrupt rows reported instead of panicking.

mod conformance;

use std::collections::HashSet;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use conc_bus::{
    Envelope, FailReason, FailedStore, JobOptions, Pushed, Queue, QueueBackend, QueueError,
    ReserveRequest, Settlement, SqliteQueue, Synchronous, Transition,
};
use conc_core::time::ManualClock;
use conformance::Note;
use rusqlite::Connection;

mod workflows;

workflows::suite!(|clock: ManualClock| async move {
    let dir = tempfile::tempdir().expect("a temp dir");
    let backend =
        SqliteQueue::builder(dir.path().join("jobs.db")).clock(clock).open().expect("opens");
    Some((backend, Box::new(dir) as workflows::KeepAlive))
});

conformance::suite!(|clock: ManualClock| async move {
    let dir = tempfile::tempdir().expect("a temp dir");
    let backend =
        SqliteQueue::builder(dir.path().join("jobs.db")).clock(clock).open().expect("opens");
    Some((backend, Box::new(dir) as conformance::KeepAlive))
});

static_assertions::assert_impl_all!(SqliteQueue: Send, Sync, Clone, std::fmt::Debug);
static_assertions::assert_impl_all!(conc_bus::SqliteQueueBuilder: Send, std::fmt::Debug);

const LEASE: Duration = Duration::from_secs(30);

fn open(path: &Path, clock: &ManualClock) -> SqliteQueue {
    SqliteQueue::builder(path).clock(clock.clone()).open().unwrap()
}

fn envelope(backend: &SqliteQueue, text: &str, options: &JobOptions) -> Envelope {
    Envelope::new(&Note { text: text.into() }, options, backend.now()).unwrap()
}

async fn push(backend: &SqliteQueue, text: &str, options: JobOptions, delay: Duration) {
    let envelope = envelope(backend, text, &options);
    let at = backend.now() + delay.as_millis() as u64;
    backend.push(vec![Pushed::new(envelope, at)]).await.unwrap();
}

async fn reserve(backend: &SqliteQueue, max: usize) -> Vec<conc_bus::Reserved> {
    let queues = vec!["default".to_owned()];
    backend.reserve(ReserveRequest::new(&queues, max, LEASE)).await.unwrap().jobs
}

fn text(reserved: &conc_bus::Reserved) -> String {
    serde_json::from_str::<Note>(&reserved.envelope.payload).unwrap().text
}

/// The full chain of an error's messages, outermost first.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[tokio::test]
async fn reopening_keeps_queued_delayed_leased_and_failed_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let clock = ManualClock::new();
    let (held_token, failed_id) = {
        let backend = open(&path, &clock);
        push(&backend, "held", JobOptions::new(), Duration::ZERO).await;
        push(&backend, "doomed", JobOptions::new(), Duration::ZERO).await;
        push(&backend, "ready", JobOptions::new(), Duration::ZERO).await;
        push(&backend, "later", JobOptions::new(), Duration::from_secs(60)).await;
        let jobs = reserve(&backend, 2).await;
        assert_eq!(jobs.iter().map(text).collect::<Vec<_>>(), ["held", "doomed"]);
        let fail = Transition::Fail { reason: FailReason::Fatal, error: "no such card".into() };
        let settled = backend.settle(vec![(jobs[1].lease.clone(), fail)]).await.unwrap();
        assert_eq!(settled[0], Ok(Settlement::Dead(FailReason::Fatal)));
        (jobs[0].lease.token, jobs[1].envelope.id)
    };

    // The file alone carries everything: a new handle, as after a restart.
    let backend = open(&path, &clock);
    let size = backend.size("default").await.unwrap();
    assert_eq!((size.ready, size.delayed, size.reserved), (1, 1, 1));
    let failed = backend.failed_job(failed_id).await.unwrap().expect("kept");
    assert_eq!((failed.reason, failed.error.as_str()), (FailReason::Fatal, "no such card"));
    let ready = reserve(&backend, 10).await;
    assert_eq!(ready.iter().map(text).collect::<Vec<_>>(), ["ready"]);
    backend.settle(vec![(ready[0].lease.clone(), Transition::Ack)]).await.unwrap();

    // The lease taken before the restart still holds until it expires, then
    // its job comes back with a token no earlier reservation had.
    assert!(reserve(&backend, 10).await.is_empty());
    clock.advance(LEASE);
    let jobs = reserve(&backend, 10).await;
    assert_eq!(jobs.iter().map(text).collect::<Vec<_>>(), ["held"]);
    assert_eq!(jobs[0].attempt, 2);
    assert!(jobs[0].lease.token > held_token, "{:?} after {held_token:?}", jobs[0].lease.token);
    backend.settle(vec![(jobs[0].lease.clone(), Transition::Ack)]).await.unwrap();
    clock.advance(Duration::from_secs(30));
    assert_eq!(reserve(&backend, 10).await.iter().map(text).collect::<Vec<_>>(), ["later"]);
}

#[tokio::test]
async fn tokens_keep_growing_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let clock = ManualClock::new();
    let mut last = None;
    for round in 0..3 {
        let backend = open(&path, &clock);
        push(&backend, &round.to_string(), JobOptions::new(), Duration::ZERO).await;
        let job = reserve(&backend, 1).await.remove(0);
        assert!(last.is_none_or(|last| job.lease.token > last), "round {round}");
        last = Some(job.lease.token);
        backend.settle(vec![(job.lease, Transition::Ack)]).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_backends_on_one_file_never_reserve_the_same_job() {
    const JOBS: usize = 600;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let clock = ManualClock::new();
    let a = open(&path, &clock);
    let b = open(&path, &clock);
    let pushed: Vec<Pushed> = (0..JOBS)
        .map(|i| Pushed::new(envelope(&a, &i.to_string(), &JobOptions::new()), a.now()))
        .collect();
    a.push(pushed).await.unwrap();
    let drain = |backend: SqliteQueue| {
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let jobs = reserve(&backend, 5).await;
                if jobs.is_empty() {
                    return mine;
                }
                let acks = jobs.iter().map(|j| (j.lease.clone(), Transition::Ack)).collect();
                for settled in backend.settle(acks).await.unwrap() {
                    assert_eq!(settled, Ok(Settlement::Acked));
                }
                mine.extend(jobs.into_iter().map(|j| j.envelope.id));
            }
        })
    };
    let tasks = [drain(a.clone()), drain(b.clone()), drain(a), drain(b)];
    let mut seen = HashSet::new();
    let mut per_task = Vec::new();
    for task in tasks {
        let ids = task.await.unwrap();
        per_task.push(ids.len());
        for id in ids {
            assert!(seen.insert(id), "job {id} reserved twice");
        }
    }
    assert_eq!(seen.len(), JOBS, "{per_task:?}");
}

#[tokio::test]
async fn pauses_and_bounds_live_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let clock = ManualClock::new();
    let a = open(&path, &clock);
    let b = open(&path, &clock);
    a.set_paused("default", true).await.unwrap();
    a.set_capacity("default", Some(1)).await.unwrap();
    push(&b, "one", JobOptions::new(), Duration::ZERO).await;
    let full = b.push(vec![Pushed::new(envelope(&b, "two", &JobOptions::new()), 0)]).await;
    assert!(matches!(full, Err(conc_bus::PushError::Full { capacity: 1, .. })), "{full:?}");
    assert!(b.size("default").await.unwrap().paused);
    assert!(reserve(&b, 1).await.is_empty(), "paused by the other handle");
    a.set_paused("default", false).await.unwrap();
    assert_eq!(reserve(&b, 1).await.len(), 1);
}

#[tokio::test]
async fn a_file_of_the_first_schema_is_upgraded_in_place() {
    use conc_bus::batch::PendingBatch;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let clock = ManualClock::new();
    let old = open(&path, &clock);
    push(&old, "kept", JobOptions::new(), Duration::ZERO).await;
    drop(old);
    // The file as the first release left it: no workflow tables, version 1.
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP TABLE conc_bus_workers; DROP TABLE conc_bus_batch_archive;
             DROP TABLE conc_bus_batches; DROP TABLE conc_bus_batch_members;
             DROP TABLE conc_bus_locks; DROP TABLE conc_bus_debounce;
             DROP INDEX conc_bus_jobs_batch; ALTER TABLE conc_bus_jobs DROP COLUMN batch;
             PRAGMA user_version = 1;",
        )
        .unwrap();
    let upgraded = open(&path, &clock);
    let queue = Queue::new(upgraded.clone());
    let id =
        queue.dispatch_batch(PendingBatch::new().add(Note { text: "new".into() })).await.unwrap();
    let jobs = reserve(&upgraded, 10).await;
    assert_eq!(jobs.len(), 2, "the old job is kept, the batch's is stored");
    for job in &jobs {
        upgraded.settle(vec![(job.lease.clone(), Transition::Ack)]).await.unwrap();
    }
    assert_eq!(queue.batch(id).await.unwrap().map(|b| b.succeeded), Some(1));
    let version: i64 = Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, 5);
}

#[tokio::test]
async fn a_file_of_the_second_schema_keeps_its_batches_and_gains_timeouts() {
    use conc_bus::batch::PendingBatch;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let clock = ManualClock::new();
    let old = open(&path, &clock);
    let queue = Queue::new(old.clone());
    let running =
        queue.dispatch_batch(PendingBatch::new().add(Note { text: "old".into() })).await.unwrap();
    drop((queue, old));
    // The file as the workflow release left it: no deadlines, no archive, version 2.
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP TABLE conc_bus_workers;
             DROP INDEX conc_bus_batches_state; ALTER TABLE conc_bus_batches DROP COLUMN state;
             DROP TABLE conc_bus_batch_archive; DROP INDEX conc_bus_batches_deadline;
             ALTER TABLE conc_bus_batches DROP COLUMN deadline;
             PRAGMA user_version = 2;",
        )
        .unwrap();
    let upgraded = open(&path, &clock);
    let queue = Queue::new(upgraded.clone());
    let timed = queue
        .dispatch_batch(
            PendingBatch::new().add(Note { text: "new".into() }).timeout(Duration::from_secs(5)),
        )
        .await
        .unwrap();
    clock.advance(Duration::from_secs(6));
    // The reservation times the new batch out and hands out the old batch's member.
    let jobs = reserve(&upgraded, 10).await;
    assert_eq!(jobs.iter().map(text).collect::<Vec<_>>(), ["old"]);
    assert!(queue.batch(timed).await.unwrap().unwrap().is_timed_out());
    upgraded.settle(vec![(jobs[0].lease.clone(), Transition::Ack)]).await.unwrap();
    assert!(queue.batch(running).await.unwrap().unwrap().is_finished());
    let version: i64 = Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, 5);
}

#[tokio::test]
async fn a_file_of_the_third_schema_keeps_its_jobs_and_gains_worker_heartbeats() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let clock = ManualClock::new();
    let old = open(&path, &clock);
    push(&old, "kept", JobOptions::new(), Duration::ZERO).await;
    drop(old);
    // The file as the batch-timeout release left it: no heartbeats, version 3.
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP INDEX conc_bus_batches_state; ALTER TABLE conc_bus_batches DROP COLUMN state;
             DROP TABLE conc_bus_workers; PRAGMA user_version = 3;",
        )
        .unwrap();
    let upgraded = open(&path, &clock);
    let mut beat = conc_bus::WorkerBeat::new("w-1", "mailer");
    (beat.beat_at, beat.interval_ms) = (upgraded.now(), 1_000);
    upgraded.record_worker(&beat).await.unwrap();
    assert_eq!(upgraded.workers().await.unwrap(), vec![beat]);
    assert_eq!(reserve(&upgraded, 10).await.iter().map(text).collect::<Vec<_>>(), ["kept"]);
    let version: i64 = Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, 5);
}

#[tokio::test]
async fn a_file_of_the_fourth_schema_lists_its_batches_by_state_in_the_store() {
    use conc_bus::batch::{BatchQuery, BatchState, PendingBatch};
    use conc_bus::queue::WorkflowBackend;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let clock = ManualClock::new();
    let old = open(&path, &clock);
    let queue = Queue::new(old.clone());
    let note = |text: &str| Note { text: text.into() };
    let pending = queue.dispatch_batch(PendingBatch::new().name("a").add(note("p"))).await.unwrap();
    let cancelled =
        queue.dispatch_batch(PendingBatch::new().name("b").add(note("c"))).await.unwrap();
    queue.cancel_batch(cancelled).await.unwrap();
    drop((queue, old));
    // The file as the heartbeat release left it: no state column, version 4.
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP INDEX conc_bus_batches_state; ALTER TABLE conc_bus_batches DROP COLUMN state;
             PRAGMA user_version = 4;",
        )
        .unwrap();
    let upgraded = open(&path, &clock);
    let ids =
        |infos: Vec<conc_bus::batch::BatchInfo>| infos.iter().map(|b| b.id).collect::<Vec<_>>();
    let by = |state| BatchQuery::new().state(state);
    assert_eq!(ids(upgraded.list_batches(&by(BatchState::Pending)).await.unwrap()), [pending]);
    assert_eq!(ids(upgraded.list_batches(&by(BatchState::Cancelled)).await.unwrap()), [cancelled]);
    assert!(upgraded.list_batches(&by(BatchState::Finished)).await.unwrap().is_empty());
    let version: i64 = Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, 5);
}

#[tokio::test]
async fn a_file_from_a_newer_release_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    drop(SqliteQueue::open(&path).unwrap());
    Connection::open(&path).unwrap().pragma_update(None, "user_version", 99).unwrap();
    let error = SqliteQueue::open(&path).unwrap_err();
    assert!(matches!(error, QueueError::Backend(_)), "{error:?}");
    let text = chain(&error);
    assert!(text.contains("schema version is 99") && text.contains("newer"), "{text}");
    assert!(text.contains("jobs.db"), "{text}");
    // Nothing was changed: the version is still the newer one.
    let version: i64 = Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, 99);
}

#[tokio::test]
async fn a_file_of_another_shape_or_kind_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-a-db");
    std::fs::write(&path, b"this is not a SQLite database, just text").unwrap();
    let error = SqliteQueue::open(&path).unwrap_err();
    assert!(chain(&error).contains("not-a-db"), "{}", chain(&error));

    let missing = dir.path().join("no-such-dir").join("jobs.db");
    let error = SqliteQueue::open(&missing).unwrap_err();
    assert!(chain(&error).contains("no-such-dir"), "{}", chain(&error));

    let error = SqliteQueue::builder(dir.path().join("a.db"))
        .busy_timeout(Duration::MAX)
        .open()
        .unwrap_err();
    assert!(matches!(&error, QueueError::Config(e) if e.field == "busy_timeout"), "{error:?}");
    let error = SqliteQueue::builder(dir.path().join("a.db"))
        .failed_retention(0, Duration::from_secs(1))
        .open()
        .unwrap_err();
    assert!(matches!(&error, QueueError::Config(e) if e.field == "failed_max_jobs"), "{error:?}");
}

#[tokio::test]
async fn a_corrupt_row_is_reported_and_set_aside_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let clock = ManualClock::new();
    let backend = open(&path, &clock);
    push(&backend, "broken", JobOptions::new(), Duration::ZERO).await;
    push(&backend, "fine", JobOptions::new(), Duration::ZERO).await;
    let broken = backend.peek("default", 1).await.unwrap().remove(0).id;
    let sql = Connection::open(&path).unwrap();
    sql.execute(
        "UPDATE conc_bus_jobs SET envelope = '{\"id\": 12' WHERE seq = (SELECT min(seq) FROM conc_bus_jobs)",
        [],
    )
    .unwrap();

    let error = backend.peek("default", 10).await.unwrap_err();
    assert!(matches!(error, QueueError::Corrupt(_)), "{error:?}");
    let queues = vec!["default".to_owned()];
    let request = ReserveRequest::new(&queues, 10, LEASE);
    let error = backend.reserve(request).await.unwrap_err();
    let QueueError::Corrupt(message) = &error else { panic!("expected corrupt, got {error:?}") };
    assert!(message.contains(&broken.to_string()) && message.contains("set aside"), "{message}");
    // The reservation that met it changed nothing else, and the queue moves on.
    let jobs = reserve(&backend, 10).await;
    assert_eq!(jobs.iter().map(text).collect::<Vec<_>>(), ["fine"]);
    assert_eq!(jobs[0].attempt, 1);
    let size = backend.size("default").await.unwrap();
    assert_eq!((size.ready, size.reserved), (0, 1));

    // A failed job's row that does not decode is reported too.
    let fail = Transition::Fail { reason: FailReason::Fatal, error: "x".into() };
    backend.settle(vec![(jobs[0].lease.clone(), fail)]).await.unwrap();
    sql.execute("UPDATE conc_bus_failed SET reason = 'melted'", []).unwrap();
    let error = backend.failed_job(jobs[0].envelope.id).await.unwrap_err();
    assert!(matches!(&error, QueueError::Corrupt(m) if m.contains("melted")), "{error:?}");
    sql.execute("UPDATE conc_bus_failed SET reason = 'fatal', id = x'0102'", []).unwrap();
    let error = backend.failed(&conc_bus::FailedQuery::new()).await.unwrap_err();
    assert!(matches!(&error, QueueError::Corrupt(m) if m.contains("2 bytes")), "{error:?}");
}

#[tokio::test]
async fn a_lease_lost_between_reservation_and_settle_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let backend = open(&dir.path().join("jobs.db"), &clock);
    push(&backend, "x", JobOptions::new().max_attempts(5), Duration::ZERO).await;
    let first = reserve(&backend, 1).await.remove(0);
    clock.advance(LEASE);
    let second = reserve(&backend, 1).await.remove(0);
    let late = backend
        .settle(vec![
            (first.lease.clone(), Transition::Checkpoint("stale".into())),
            (second.lease.clone(), Transition::Checkpoint("fresh".into())),
            (first.lease.clone(), Transition::Ack),
        ])
        .await
        .unwrap();
    assert!(late[0].is_err() && late[2].is_err());
    assert_eq!(late[1], Ok(Settlement::Saved));
    let retry = Transition::Retry { delay: Duration::ZERO, error: "e".into(), timed_out: false };
    backend.settle(vec![(second.lease, retry)]).await.unwrap();
    let third = reserve(&backend, 1).await.remove(0);
    assert_eq!(third.envelope.checkpoint.as_deref(), Some("fresh"));
}

#[tokio::test]
async fn the_failed_store_keeps_its_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let backend = SqliteQueue::builder(dir.path().join("jobs.db"))
        .clock(clock.clone())
        .failed_retention(3, Duration::from_secs(3600))
        .synchronous(Synchronous::Normal)
        .open()
        .unwrap();
    let queue = Queue::new(backend.clone());
    let fail = Transition::Fail { reason: FailReason::Fatal, error: "x".into() };
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(queue.dispatch(Note { text: i.to_string() }).await.unwrap());
        let job = reserve(&backend, 1).await.remove(0);
        backend.settle(vec![(job.lease, fail.clone())]).await.unwrap();
        clock.advance(Duration::from_secs(1));
    }
    let kept: HashSet<_> = backend
        .failed(&conc_bus::FailedQuery::new())
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.envelope.id)
        .collect();
    assert_eq!(kept, ids[2..].iter().copied().collect(), "the oldest go past the count bound");
    clock.advance(Duration::from_secs(3600));
    queue.dispatch(Note { text: "late".into() }).await.unwrap();
    let job = reserve(&backend, 1).await.remove(0);
    backend.settle(vec![(job.lease, fail)]).await.unwrap();
    assert_eq!(backend.failed_count(None).await.unwrap(), 1, "older than an hour: pruned");
}

#[tokio::test]
async fn a_reservation_nobody_receives_is_given_back() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let backend = Arc::new(open(&dir.path().join("jobs.db"), &clock));
    push(&backend, "x", JobOptions::new().max_attempts(100), Duration::ZERO).await;
    // Reservations whose callers stop waiting: polled once (the request is
    // sent), then dropped before the answer (the thread skips it) or after
    // the answer arrived unread (the jobs are given back).
    let mut context = Context::from_waker(Waker::noop());
    let mut delivered = 0;
    for round in 0..20 {
        let queues = vec!["default".to_owned()];
        let mut reserving = Box::pin(backend.reserve(ReserveRequest::new(&queues, 1, LEASE)));
        if let Poll::Ready(reservation) = reserving.as_mut().poll(&mut context) {
            // Answered within the first poll: the caller got it after all.
            for job in reservation.unwrap().jobs {
                let release = Transition::Release { delay: Duration::ZERO };
                backend.settle(vec![(job.lease, release)]).await.unwrap();
                delivered += 1;
            }
            continue;
        }
        if round % 2 == 1 {
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(reserving);
    }
    let jobs = reserve(&backend, 1).await;
    assert_eq!(jobs.len(), 1, "the job is not held by a reservation nobody got");
    assert_eq!(jobs[0].attempt, 1 + delivered, "a reservation nobody got does not count");
}

#[tokio::test]
async fn waiting_wakes_for_a_push_through_any_clone() {
    let dir = tempfile::tempdir().unwrap();
    let backend = SqliteQueue::open(dir.path().join("jobs.db")).unwrap();
    let waiter = backend.clone();
    let wait = tokio::spawn(async move {
        waiter.wait(&["default".to_owned()], Duration::from_secs(24 * 3600)).await;
    });
    tokio::task::yield_now().await;
    push(&backend, "wake", JobOptions::new(), Duration::ZERO).await;
    // A guard against a hang, not a timing assertion: without the wake-up
    // the wait would last a day.
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .expect("the push wakes the wait")
        .unwrap();
}

/// A batch callback in the cross-handle test.
#[derive(serde::Serialize, serde::Deserialize)]
struct Done;

impl conc_bus::Job for Done {
    const NAME: &'static str = "done";
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_finishing_one_batch_fire_its_callbacks_once() {
    use conc_bus::batch::PendingBatch;
    use conc_bus::job::TriggerKind;
    use conc_bus::queue::WorkflowBackend;

    const MEMBERS: usize = 60;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let clock = ManualClock::new();
    let (a, b) = (open(&path, &clock), open(&path, &clock));
    let mut batch = PendingBatch::new().then(Done).finally(Done).progress(Done);
    for n in 0..MEMBERS {
        batch = batch.add(Note { text: n.to_string() });
    }
    let id = Queue::new(a.clone()).dispatch_batch(batch).await.unwrap();
    let work = |handle: SqliteQueue| {
        tokio::spawn(async move {
            let mut callbacks = Vec::new();
            loop {
                // Finished first, then nothing to reserve: every callback is
                // stored by then (in the step that finished the batch).
                let finished = handle.batch(id).await.unwrap().is_some_and(|b| b.is_finished());
                let jobs = reserve(&handle, 3).await;
                if jobs.is_empty() {
                    if finished {
                        return callbacks;
                    }
                    tokio::task::yield_now().await;
                    continue;
                }
                let acks = jobs.iter().map(|job| (job.lease.clone(), Transition::Ack)).collect();
                for settled in handle.settle(acks).await.unwrap() {
                    assert!(settled.is_ok());
                }
                for job in jobs {
                    if let Some(trigger) =
                        job.envelope.flow.as_ref().and_then(|f| f.trigger.clone())
                    {
                        callbacks.push((trigger.kind, job.lease.job));
                    }
                }
            }
        })
    };
    let (left, right) = (work(a.clone()), work(b));
    let mut callbacks = left.await.unwrap();
    callbacks.extend(right.await.unwrap());
    let count = |kind: TriggerKind| callbacks.iter().filter(|(k, _)| *k == kind).count();
    assert_eq!((count(TriggerKind::Then), count(TriggerKind::Finally)), (1, 1));
    assert_eq!(count(TriggerKind::Progress), MEMBERS);
    let info = a.batch(id).await.unwrap().unwrap();
    assert_eq!((info.succeeded, info.pending), (MEMBERS as u64, 0));
}

#[tokio::test]
async fn a_batch_stored_before_its_counts_were_kept_is_counted_from_its_members() {
    use conc_bus::batch::{BatchJobs, PendingBatch};
    use conc_bus::queue::WorkflowBackend;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let clock = ManualClock::new();
    let backend = open(&path, &clock);
    let queue = Queue::new(backend.clone());
    let batch = PendingBatch::new().add(Note { text: "a".into() }).add(Note { text: "b".into() });
    let id = queue.dispatch_batch(batch).await.unwrap();
    let first = reserve(&backend, 1).await.remove(0);
    backend.settle(vec![(first.lease.clone(), Transition::Ack)]).await.unwrap();
    // The record as the first release with batches wrote it: no counts.
    Connection::open(&path)
        .unwrap()
        .execute("UPDATE conc_bus_batches SET record = json_remove(record, '$.counts')", [])
        .unwrap();
    let info = backend.batch(id).await.unwrap().unwrap();
    assert_eq!((info.total, info.succeeded, info.pending), (2, 1, 1));
    queue.add_to_batch(id, BatchJobs::new().add(Note { text: "c".into() })).await.unwrap();
    for job in reserve(&backend, 10).await {
        backend.settle(vec![(job.lease.clone(), Transition::Ack)]).await.unwrap();
    }
    let info = backend.batch(id).await.unwrap().unwrap();
    assert_eq!((info.total, info.succeeded, info.is_finished()), (3, 3, true));
}
