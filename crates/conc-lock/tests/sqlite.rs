//! The SQLite backend: the conformance suite on a fresh file per test, and
//! what only a file shows: durable fences, sharing between backends, open
//! errors, the busy timeout, and cancelled acquisitions.

mod conformance;

use std::error::Error as _;
use std::time::Duration;

use conc_lock::{LockError, LockStore, SqliteBackend};
use rusqlite::{Connection, TransactionBehavior};

conformance::suite!(|| async {
    let dir = tempfile::tempdir().expect("a temp dir");
    let backend = SqliteBackend::open(dir.path().join("locks.db")).expect("the file opens");
    Some((LockStore::new(backend), Box::new(dir) as conformance::KeepAlive))
});

static_assertions::assert_impl_all!(SqliteBackend: Send, Sync, std::fmt::Debug);
static_assertions::assert_impl_all!(conc_lock::SqliteBackendBuilder: Send, Sync, Clone);

const TTL: Duration = Duration::from_secs(30);

/// The full chain of an error's messages, outermost first.
fn chain(error: &LockError) -> String {
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
async fn fence_survives_release_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locks.db");

    let store = LockStore::new(SqliteBackend::open(&path).unwrap());
    let first = store.lock("durable", TTL).unwrap().get().await.unwrap().unwrap();
    let first_fence = first.fence();
    first.release().await.unwrap();
    let second = store.lock("durable", TTL).unwrap().get().await.unwrap().unwrap();
    assert!(second.fence() > first_fence, "{:?} after {first_fence:?}", second.fence());
    let second_fence = second.fence();
    second.release().await.unwrap();
    drop(store);

    let store = LockStore::new(SqliteBackend::open(&path).unwrap());
    let third = store.lock("durable", TTL).unwrap().get().await.unwrap().unwrap();
    assert!(
        third.fence() > second_fence,
        "{:?} after reopening, {second_fence:?} before",
        third.fence()
    );
    third.release().await.unwrap();
}

#[tokio::test]
async fn force_release_keeps_the_fence_growing() {
    let dir = tempfile::tempdir().unwrap();
    let store = LockStore::new(SqliteBackend::open(dir.path().join("locks.db")).unwrap());
    let held = store.lock("forced", TTL).unwrap().get().await.unwrap().unwrap();
    assert!(store.force_release("forced").await.unwrap());
    assert!(!store.force_release("forced").await.unwrap(), "nothing left to release");
    let next = store.lock("forced", TTL).unwrap().get().await.unwrap().unwrap();
    assert!(next.fence() > held.fence());
    assert!(matches!(held.release().await, Err(LockError::Lost { .. })));
    next.release().await.unwrap();
}

#[tokio::test]
async fn two_backends_on_one_file_share_locks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locks.db");
    let a = LockStore::new(SqliteBackend::open(&path).unwrap());
    let b = LockStore::new(SqliteBackend::open(&path).unwrap());

    let held = a.lock("shared", TTL).unwrap().get().await.unwrap().unwrap();
    assert!(b.lock("shared", TTL).unwrap().get().await.unwrap().is_none(), "b sees a's hold");
    assert_eq!(b.owner_of("shared").await.unwrap().as_ref(), Some(held.owner()));
    let fence = held.fence();
    held.release().await.unwrap();

    let taken = b.lock("shared", TTL).unwrap().get().await.unwrap().expect("a released it");
    assert!(taken.fence() > fence, "one fence sequence per name, whichever backend");
    assert!(a.lock("shared", TTL).unwrap().get().await.unwrap().is_none(), "a sees b's hold");

    // A funnel spread over both backends still admits its limit in total.
    let from_a = a.funnel("exports", 2, TTL).unwrap();
    let from_b = b.funnel("exports", 2, TTL).unwrap();
    let one = from_a.get().await.unwrap().expect("slot");
    let two = from_b.get().await.unwrap().expect("slot");
    assert_ne!(one.slot(), two.slot());
    assert!(from_a.get().await.unwrap().is_none());
    assert!(from_b.get().await.unwrap().is_none());
    one.release().await.unwrap();
    two.release().await.unwrap();
    taken.release().await.unwrap();
}

#[tokio::test]
async fn an_expired_hold_is_free_and_its_holder_lost() {
    let dir = tempfile::tempdir().unwrap();
    let store = LockStore::new(SqliteBackend::open(dir.path().join("locks.db")).unwrap());
    let ttl = Duration::from_millis(150);
    let held = store.lock("short", ttl).unwrap().get().await.unwrap().unwrap();

    tokio::time::sleep(ttl * 2).await;
    assert_eq!(store.owner_of("short").await.unwrap(), None, "expired");
    let taker = store.lock("short", ttl).unwrap().get().await.unwrap().expect("expired, so free");
    assert!(taker.fence() > held.fence());
    assert!(matches!(held.extend(ttl).await, Err(LockError::Lost { .. })));
    match held.release().await {
        Err(LockError::Lost { name, fence }) => {
            assert_eq!(name, "short");
            assert!(fence < taker.fence());
        }
        other => panic!("expected Lost, got {other:?}"),
    }
    drop(taker);
}

#[tokio::test]
async fn busy_reports_when_the_hold_expires() {
    let dir = tempfile::tempdir().unwrap();
    let store = LockStore::new(SqliteBackend::open(dir.path().join("locks.db")).unwrap());
    let backend = store.backend();
    let name = conc_lock::LockBackend::prepare(backend, "retry-after");
    let owner = conc_lock::Owner::random();
    let ttl = Duration::from_secs(60);
    let attempt = conc_lock::LockBackend::acquire(backend, &name, &owner, ttl).await.unwrap();
    assert!(matches!(attempt, conc_lock::Acquisition::Acquired(_)));
    let other = conc_lock::Owner::random();
    match conc_lock::LockBackend::acquire(backend, &name, &other, ttl).await.unwrap() {
        conc_lock::Acquisition::Busy { retry_after: Some(left) } => {
            assert!(left <= ttl && left > Duration::ZERO, "{left:?}");
        }
        other => panic!("expected Busy with a retry time, got {other:?}"),
    }
}

#[tokio::test]
async fn a_dropped_guard_is_released_before_later_operations() {
    let dir = tempfile::tempdir().unwrap();
    let store = LockStore::new(SqliteBackend::open(dir.path().join("locks.db")).unwrap());
    for _ in 0..3 {
        let guard = store.lock("dropped", TTL).unwrap().get().await.unwrap().unwrap();
        drop(guard);
        // The release was queued ahead of this acquisition.
        assert!(store.lock("dropped", TTL).unwrap().get().await.unwrap().is_some());
    }
}

#[test]
fn a_guard_dropped_outside_a_runtime_is_released() {
    let dir = tempfile::tempdir().unwrap();
    let store = LockStore::new(SqliteBackend::open(dir.path().join("locks.db")).unwrap());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let guard = runtime
        .block_on(async { store.lock("outside", TTL).unwrap().get().await.unwrap().unwrap() });
    drop(runtime);
    drop(guard);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        assert_eq!(store.owner_of("outside").await.unwrap(), None);
    });
}

#[test]
fn a_missing_directory_is_a_backend_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("locks.db");
    let error = SqliteBackend::open(&path).unwrap_err();
    assert!(matches!(error, LockError::Backend(_)), "{error:?}");
    let text = chain(&error);
    assert!(text.contains(&path.display().to_string()), "{text}");
}

#[test]
fn a_file_that_is_not_a_database_is_refused_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "these are not the pages you are looking for ".repeat(100)).unwrap();
    let error = SqliteBackend::open(&path).unwrap_err();
    assert!(matches!(error, LockError::Backend(_)), "{error:?}");
    let text = chain(&error);
    assert!(text.contains(&path.display().to_string()), "{text}");
}

#[test]
fn a_conc_locks_table_of_another_shape_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locks.db");
    Connection::open(&path).unwrap().execute_batch("CREATE TABLE conc_locks (name TEXT)").unwrap();
    let error = SqliteBackend::open(&path).unwrap_err();
    let text = chain(&error);
    assert!(text.contains("unexpected shape") && text.contains("locks.db"), "{text}");
}

#[test]
fn an_oversized_busy_timeout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let error = SqliteBackend::builder(dir.path().join("locks.db"))
        .busy_timeout(Duration::from_secs(30 * 24 * 60 * 60))
        .open()
        .unwrap_err();
    let text = chain(&error);
    assert!(text.contains("busy_timeout") && text.contains("2592000s"), "{text}");
}

/// Holds the file's write lock from a plain connection until dropped.
fn hold_write_lock(path: &std::path::Path) -> Connection {
    let connection = Connection::open(path).unwrap();
    connection.execute_batch("BEGIN IMMEDIATE").unwrap();
    connection
}

#[tokio::test]
async fn the_busy_timeout_bounds_the_wait_for_another_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locks.db");
    let backend =
        SqliteBackend::builder(&path).busy_timeout(Duration::from_millis(50)).open().unwrap();
    let store = LockStore::new(backend);
    let writer = hold_write_lock(&path);
    let error = store.lock("busy", TTL).unwrap().get().await.unwrap_err();
    assert!(matches!(error, LockError::Backend(_)), "{error:?}");
    assert!(chain(&error).contains("locked"), "{}", chain(&error));
    drop(writer);
    let guard = store.lock("busy", TTL).unwrap().get().await.unwrap().expect("the writer is gone");
    guard.release().await.unwrap();
}

#[tokio::test]
async fn a_cancelled_acquisition_takes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locks.db");
    let store = LockStore::new(SqliteBackend::open(&path).unwrap());
    let lock = store.lock("cancelled", TTL).unwrap();

    // The connection thread waits for this writer while the caller gives up.
    let writer = hold_write_lock(&path);
    let attempt = tokio::time::timeout(Duration::from_millis(100), lock.get()).await;
    assert!(attempt.is_err(), "the attempt waits for the writer");
    writer.execute_batch("COMMIT").unwrap();
    drop(writer);

    assert_eq!(store.owner_of("cancelled").await.unwrap(), None);
    let guard = store.lock("cancelled", TTL).unwrap().get().await.unwrap().expect("free");
    guard.release().await.unwrap();
}

#[tokio::test]
async fn a_file_without_the_table_gets_one_and_other_tables_are_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let app = Connection::open(&path).unwrap();
    app.execute_batch("CREATE TABLE jobs (id INTEGER PRIMARY KEY); INSERT INTO jobs VALUES (7);")
        .unwrap();
    let store = LockStore::new(SqliteBackend::open(&path).unwrap());
    let guard = store.lock("job:7", TTL).unwrap().get().await.unwrap().unwrap();

    // The fence is readable next to the application's data, as the docs suggest.
    let mut app = app;
    let transaction = app.transaction_with_behavior(TransactionBehavior::Immediate).unwrap();
    let fence: u64 = transaction
        .query_row("SELECT fence FROM conc_locks WHERE name = 'job:7'", [], |row| row.get(0))
        .unwrap();
    assert_eq!(fence, guard.fence().get());
    let jobs: i64 =
        transaction.query_row("SELECT count(*) FROM jobs", [], |row| row.get(0)).unwrap();
    assert_eq!(jobs, 1);
    transaction.commit().unwrap();
    guard.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_holders_of_one_backend_never_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let store = LockStore::new(SqliteBackend::open(dir.path().join("locks.db")).unwrap());
    let inside = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, inside) = (store.clone(), std::sync::Arc::clone(&inside));
        tasks.push(tokio::spawn(async move {
            let mut fences = Vec::new();
            for _ in 0..10 {
                let lock = store.lock("contended", TTL).unwrap();
                let guard = lock.block(Duration::from_secs(20)).await.unwrap();
                assert_eq!(inside.fetch_add(1, std::sync::atomic::Ordering::SeqCst), 0);
                tokio::task::yield_now().await;
                inside.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                fences.push(guard.fence());
                guard.release().await.unwrap();
            }
            fences
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let count = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), count, "every acquisition got its own fence");
}
