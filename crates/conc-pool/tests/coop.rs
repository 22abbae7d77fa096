//! On a current-thread runtime, a pool that always has work still lets the
//! rest of the runtime run: its workers and its submissions take part in
//! tokio's cooperative budget, so they yield after a bounded run and the
//! I/O and timer driver and the other tasks get their turn.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use conc_pool::AsyncPool;
use tokio::sync::oneshot;

/// How many always-ready tasks a test lets run before it gives up waiting.
const LIMIT: usize = 1_000_000;

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A chain of tasks, each submitting the next until `seen` is set (or
/// [`LIMIT`] ran): the queue is never empty, every task is ready at once.
fn chain(
    pool: &AsyncPool,
    seen: Arc<AtomicBool>,
    rounds: Arc<AtomicUsize>,
    done: oneshot::Sender<()>,
) {
    let next = pool.clone();
    pool.try_spawn(async move {
        if seen.load(Ordering::SeqCst) || rounds.fetch_add(1, Ordering::SeqCst) >= LIMIT {
            let _ = done.send(());
        } else {
            chain(&next, seen, rounds, done);
        }
    })
    .unwrap();
}

/// An I/O event that is ready from the start (a byte already written) is
/// seen only once the driver polls: while the worker serves an endless chain
/// of ready tasks it must still let the driver run.
#[cfg(unix)]
#[test]
fn a_worker_serving_ready_tasks_lets_the_io_driver_run() {
    use std::io::Write;

    current_thread().block_on(async {
        let pool = AsyncPool::builder().workers(1).build().unwrap();
        let (mut writer, reader) = std::os::unix::net::UnixStream::pair().unwrap();
        writer.write_all(b"!").unwrap();
        reader.set_nonblocking(true).unwrap();
        let reader = tokio::net::UnixStream::from_std(reader).unwrap();
        let seen = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&seen);
        tokio::spawn(async move {
            reader.readable().await.unwrap();
            flag.store(true, Ordering::SeqCst);
        });
        let rounds = Arc::new(AtomicUsize::new(0));
        let (done, finished) = oneshot::channel();
        chain(&pool, Arc::clone(&seen), Arc::clone(&rounds), done);
        finished.await.unwrap();
        let rounds = rounds.load(Ordering::SeqCst);
        assert!(seen.load(Ordering::SeqCst), "the driver never ran during {rounds} ready tasks");
        assert!(pool.shutdown(std::time::Duration::from_secs(5)).await.is_clean());
    });
}

/// A producer submitting in a loop to an unbounded queue is never refused
/// and never waits; it must still let the workers (and everything else on
/// the thread) run.
#[test]
fn a_producer_submitting_in_a_loop_lets_the_workers_run() {
    current_thread().block_on(async {
        let pool = AsyncPool::builder().workers(1).build().unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let mut submitted = 0;
        while ran.load(Ordering::SeqCst) == 0 && submitted < LIMIT {
            let ran = Arc::clone(&ran);
            pool.spawn(async move {
                ran.fetch_add(1, Ordering::SeqCst);
            })
            .await
            .unwrap();
            submitted += 1;
        }
        assert!(ran.load(Ordering::SeqCst) > 0, "no task ran during {submitted} submissions");
        let report = pool.shutdown_now().await;
        assert_eq!(report.still_running, 0);
    });
}
