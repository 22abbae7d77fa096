//! Transactional enqueue on SQLite: jobs dispatched inside the application's
//! own transaction on the queue's file (`PendingDispatch::within`), on real
//! files. A rollback drops the job and its unique lock; a commit shows both
//! at once; a refusal hands the job back and leaves the transaction usable;
//! another connection's worker sees the job only after the commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use conc_bus::admission::Admission;
use conc_bus::rusqlite::{Connection, TransactionBehavior};
use conc_bus::{
    EnqueueError, Job, JobContext, JobError, JobHandlers, Queue, QueueBackend, SqliteQueue, Worker,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Ship {
    order: u64,
}

impl Job for Ship {
    const NAME: &'static str = "ship";
}

struct Setup {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    queue: Queue<SqliteQueue>,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("app.db");
    let queue = Queue::new(SqliteQueue::open(&path).expect("opens"));
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE orders (id INTEGER PRIMARY KEY)").unwrap();
    Setup { _dir: dir, path, queue }
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |row| row.get(0)).unwrap()
}

const LOCKS: &str = "SELECT count(*) FROM conc_bus_locks";
const JOBS: &str = "SELECT count(*) FROM conc_bus_jobs";
const ORDERS: &str = "SELECT count(*) FROM orders";

#[tokio::test]
async fn a_rollback_drops_the_job_and_its_unique_lock() {
    let s = setup();
    let mut conn = Connection::open(&s.path).unwrap();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).unwrap();
    tx.execute("INSERT INTO orders (id) VALUES (1)", []).unwrap();
    s.queue
        .dispatch(Ship { order: 1 })
        .admission(Admission::unique("ship:1"))
        .within(&tx)
        .expect("admitted inside the transaction");
    // Inside the transaction the job and its lock are there.
    assert_eq!(count(&tx, JOBS), 1);
    assert_eq!(count(&tx, LOCKS), 1);
    tx.rollback().unwrap();

    assert_eq!(count(&conn, JOBS), 0);
    assert_eq!(count(&conn, LOCKS), 0);
    assert_eq!(count(&conn, ORDERS), 0);
    assert_eq!(s.queue.size("default").await.unwrap().ready, 0);
    // The key is free: the next dispatch of it is admitted.
    s.queue.dispatch(Ship { order: 1 }).admission(Admission::unique("ship:1")).await.unwrap();
}

#[tokio::test]
async fn a_commit_shows_the_job_and_its_lock_together() {
    let s = setup();
    let mut conn = Connection::open(&s.path).unwrap();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).unwrap();
    tx.execute("INSERT INTO orders (id) VALUES (2)", []).unwrap();
    let id = s
        .queue
        .dispatch(Ship { order: 2 })
        .admission(Admission::unique("ship:2"))
        .within(&tx)
        .unwrap();
    // Not yet visible to the queue's own connection.
    assert_eq!(s.queue.size("default").await.unwrap().ready, 0);
    let other = Connection::open(&s.path).unwrap();
    assert_eq!(count(&other, LOCKS), 0);
    tx.commit().unwrap();

    assert_eq!(count(&other, ORDERS), 1);
    assert_eq!(count(&other, LOCKS), 1);
    let peeked = s.queue.peek("default", 10).await.unwrap();
    assert_eq!(peeked.iter().map(|e| e.id).collect::<Vec<_>>(), vec![id]);
    // The committed lock refuses the next dispatch of its key.
    let refused = s.queue.dispatch(Ship { order: 2 }).admission(Admission::unique("ship:2")).await;
    match refused {
        Err(EnqueueError::Locked { held_by, key, job }) => {
            assert_eq!((held_by, key.as_str(), job), (id, "ship:2", Ship { order: 2 }));
        }
        other => panic!("expected Locked, got {other:?}"),
    }
}

#[tokio::test]
async fn a_refusal_hands_the_job_back_and_leaves_the_transaction_usable() {
    let s = setup();
    let holder =
        s.queue.dispatch(Ship { order: 3 }).admission(Admission::unique("ship:3")).await.unwrap();
    let mut conn = Connection::open(&s.path).unwrap();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).unwrap();
    tx.execute("INSERT INTO orders (id) VALUES (3)", []).unwrap();
    let refused =
        s.queue.dispatch(Ship { order: 33 }).admission(Admission::unique("ship:3")).within(&tx);
    match refused {
        Err(EnqueueError::Locked { held_by, job, .. }) => {
            assert_eq!((held_by, job), (holder, Ship { order: 33 }));
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    // The transaction goes on: the caller's row and a job of another key.
    tx.execute("INSERT INTO orders (id) VALUES (4)", []).unwrap();
    s.queue.dispatch(Ship { order: 4 }).admission(Admission::unique("ship:4")).within(&tx).unwrap();
    tx.commit().unwrap();
    assert_eq!(count(&conn, ORDERS), 2);
    assert_eq!(count(&conn, JOBS), 2);
    assert_eq!(count(&conn, LOCKS), 2);
}

#[tokio::test]
async fn a_worker_on_another_connection_sees_the_job_only_after_the_commit() {
    let s = setup();
    // The worker's handle: its own connection to the file.
    let worker_backend = SqliteQueue::open(&s.path).unwrap();
    let ran = Arc::new(AtomicU32::new(0));
    let run_worker = || {
        let ran = Arc::clone(&ran);
        let handlers = JobHandlers::new().handle(move |job: Ship, _: JobContext| {
            let ran = Arc::clone(&ran);
            async move {
                assert_eq!(job.order, 5);
                ran.fetch_add(1, Ordering::SeqCst);
                Ok::<(), JobError>(())
            }
        });
        Worker::builder(worker_backend.clone(), handlers).stop_when_empty(true).build().unwrap()
    };

    let mut conn = Connection::open(&s.path).unwrap();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).unwrap();
    s.queue.dispatch(Ship { order: 5 }).within(&tx).unwrap();
    // Reads on the worker's connection do not see it while the
    // transaction is open (WAL: readers go on beside the writer).
    assert_eq!(worker_backend.size("default").await.unwrap().ready, 0);
    assert!(worker_backend.peek("default", 10).await.unwrap().is_empty());
    tx.commit().unwrap();

    run_worker().run().await.unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    assert_eq!(worker_backend.size("default").await.unwrap().ready, 0);
}

#[tokio::test]
async fn a_transaction_on_another_file_or_schema_is_refused_with_the_job() {
    let s = setup();
    // A file the queue never opened: no schema.
    let dir = tempfile::tempdir().unwrap();
    let mut foreign = Connection::open(dir.path().join("other.db")).unwrap();
    let tx = foreign.transaction().unwrap();
    match s.queue.dispatch(Ship { order: 6 }).within(&tx) {
        Err(EnqueueError::Invalid { error, job }) => {
            assert_eq!(error.field, "transaction");
            assert!(error.value.contains("other.db"), "{error}");
            assert_eq!(job, Ship { order: 6 });
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    drop(tx);
    // An in-memory database is not the queue's file either.
    let mut memory = Connection::open_in_memory().unwrap();
    let tx = memory.transaction().unwrap();
    assert!(matches!(
        s.queue.dispatch(Ship { order: 7 }).within(&tx),
        Err(EnqueueError::Invalid { .. })
    ));
    drop(tx);
    // The queue's file at another schema version (as a newer release would
    // leave it) is refused too.
    let mut conn = Connection::open(&s.path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    let tx = conn.transaction().unwrap();
    match s.queue.dispatch(Ship { order: 8 }).within(&tx) {
        Err(EnqueueError::Invalid { error, .. }) => {
            assert_eq!(error.value, "99");
            assert!(error.reason.contains("schema version"), "{error}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn a_debounced_job_superseded_inside_a_rolled_back_transaction_comes_back() {
    let s = setup();
    let debounce = || Admission::debounce("digest", std::time::Duration::from_secs(60));
    let first = s.queue.dispatch(Ship { order: 9 }).admission(debounce()).await.unwrap();
    let mut conn = Connection::open(&s.path).unwrap();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).unwrap();
    s.queue.dispatch(Ship { order: 10 }).admission(debounce()).within(&tx).unwrap();
    assert_eq!(count(&tx, JOBS), 1, "the first is superseded inside the transaction");
    tx.rollback().unwrap();
    assert_eq!(s.queue.size("default").await.unwrap().delayed, 1);
    let id: Vec<u8> = conn.query_row("SELECT id FROM conc_bus_jobs", [], |row| row.get(0)).unwrap();
    assert_eq!(id, first.as_u128().to_be_bytes().to_vec());
}

#[tokio::test]
async fn a_batch_and_a_chain_inside_a_transaction_land_with_its_commit_only() {
    use conc_bus::batch::{PendingBatch, WorkflowError};
    use conc_bus::chain::Chain;
    let s = setup();
    s.queue.set_capacity("tiny", Some(1)).await.unwrap();
    let mut conn = Connection::open(&s.path).unwrap();
    // Rolled back: no batch, no members, no chain.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).unwrap();
    let batch = PendingBatch::new().add(Ship { order: 20 }).add(Ship { order: 21 });
    let gone = s.queue.dispatch_batch_within(batch, &tx).unwrap();
    s.queue
        .dispatch_chain_within(Chain::new(Ship { order: 22 }).then(Ship { order: 23 }), &tx)
        .unwrap();
    assert_eq!(count(&tx, JOBS), 3);
    tx.rollback().unwrap();
    assert!(s.queue.batch(gone).await.unwrap().is_none());
    assert_eq!(count(&conn, JOBS), 0);
    assert_eq!(count(&conn, "SELECT count(*) FROM conc_bus_batch_members"), 0);

    // Committed: the batch and its members, visible together.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).unwrap();
    let kept =
        s.queue.dispatch_batch_within(PendingBatch::new().add(Ship { order: 24 }), &tx).unwrap();
    assert!(s.queue.batch(kept).await.unwrap().is_none(), "not before the commit");
    // A refused batch (its queue is full) hands its members back and leaves
    // the transaction usable.
    let too_big =
        PendingBatch::new().on_queue("tiny").add(Ship { order: 25 }).add(Ship { order: 26 });
    match s.queue.dispatch_batch_within(too_big, &tx) {
        Err(WorkflowError::Push(conc_bus::PushError::Full { jobs, capacity, .. })) => {
            assert_eq!((jobs.len(), capacity), (2, 1));
        }
        other => panic!("expected Full, got {other:?}"),
    }
    tx.execute("INSERT INTO orders (id) VALUES (24)", []).unwrap();
    tx.commit().unwrap();
    assert_eq!(s.queue.batch(kept).await.unwrap().map(|b| b.pending), Some(1));
    assert_eq!(count(&conn, JOBS), 1);
    assert_eq!(count(&conn, ORDERS), 1);
    // On another file: refused with the members.
    let dir = tempfile::tempdir().unwrap();
    let mut foreign = Connection::open(dir.path().join("other.db")).unwrap();
    let tx = foreign.transaction().unwrap();
    let refused = s.queue.dispatch_batch_within(PendingBatch::new().add(Ship { order: 27 }), &tx);
    match refused {
        Err(WorkflowError::Push(conc_bus::PushError::Invalid { jobs, .. })) => {
            assert_eq!(jobs.len(), 1);
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}
