//! `conc-process`: spawning and waiting for real processes beside
//! `std::process::Command`, `tokio::process::Command` and `xargs -P`.
//!
//! - `process/spawn_true`: one `true` spawned and waited for, output to
//!   `/dev/null` on every side (`Process::quiet`, `Stdio::null()`).
//! - `process/capture_true`: the same with both output pipes captured.
//! - `process/pool_500_true/<N>`: 500 `true` jobs at concurrency N, against
//!   `xargs -P N -n 1 true` fed 500 lines, and against the usual tokio
//!   hand-roll (`futures::stream::iter(..).buffer_unordered(N)`).
//! - `process/spawn_parent_rss`: the cost of a spawn once the parent has
//!   1 GiB resident. The "peer" of this group is the same spawn from the
//!   small parent, measured first, so the printed ratio is the slowdown the
//!   target bounds (≤ 2x); `peer/std_command_large_parent` shows what the
//!   same large parent costs std's `Command`. `ours/forced_fork` adds a resource limit, which
//!   forces fork + exec, to show the cliff the default path avoids.
//! - `process/supervisor_restart`: a supervised child that exits 1 at once,
//!   restarted after a fixed 1 ms backoff until it has run 10 times (the
//!   intensity limit then gives up). The floor, `peer/tokio_respawn_loop`, is
//!   the loop a user writes by hand: spawn the same child through
//!   `tokio::process` in its own process group, wait, sleep 1 ms, 10 times.
//! - `process/pipe`: `head -c 1048576 /dev/zero | wc -c` through `Pipe`,
//!   against the same two commands joined by hand with `tokio::process`
//!   (the first stage's stdout handed to the second as its stdin).
#![allow(missing_docs, reason = "criterion's macros generate undocumented items")]

use std::hint::black_box;
use std::io::Write;
use std::process::{Command, Stdio};

use std::time::Duration;

use conc_core::backoff::Backoff;
use conc_core::time::ManualClock;
use conc_process::{Pipe, Process, ProcessPool, Supervisor, SupervisorEvent};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use futures::StreamExt;
use tokio::runtime::Runtime;

const JOBS: usize = 500;

fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime")
}

fn multi_thread() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn spawn_true(c: &mut Criterion) {
    let rt = current_thread();
    let mut group = c.benchmark_group("process/spawn_true");
    group.bench_function("ours", |b| {
        b.to_async(&rt).iter(|| async {
            let output = Process::new("true").quiet().run().await.expect("true runs");
            assert!(output.successful());
        });
    });
    group.bench_function("peer/std_command", |b| {
        b.iter(|| {
            let status = Command::new("true")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("true runs");
            assert!(status.success());
        });
    });
    group.bench_function("peer/tokio_command", |b| {
        b.to_async(&rt).iter(|| async {
            let status = tokio::process::Command::new("true")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await
                .expect("true runs");
            assert!(status.success());
        });
    });
    group.finish();
}

fn capture_true(c: &mut Criterion) {
    let rt = current_thread();
    let mut group = c.benchmark_group("process/capture_true");
    group.bench_function("ours", |b| {
        b.to_async(&rt).iter(|| async {
            let output = Process::new("true").run().await.expect("true runs");
            black_box(output.stdout());
        });
    });
    group.bench_function("peer/std_output", |b| {
        b.iter(|| {
            let output = Command::new("true").stdin(Stdio::null()).output().expect("true runs");
            black_box(output.stdout);
        });
    });
    group.bench_function("peer/tokio_output", |b| {
        b.to_async(&rt).iter(|| async {
            let output = tokio::process::Command::new("true")
                .stdin(Stdio::null())
                .output()
                .await
                .expect("true runs");
            black_box(output.stdout);
        });
    });
    group.finish();
}

fn pool(c: &mut Criterion) {
    let rt = multi_thread();
    let mut group = c.benchmark_group("process/pool_500_true");
    group.sample_size(10);
    let lines = "x\n".repeat(JOBS);
    for concurrency in [2, 8] {
        let pool = ProcessPool::builder().concurrency(concurrency).build().expect("a valid pool");
        group.bench_with_input(BenchmarkId::new("ours", concurrency), &concurrency, |b, _| {
            b.to_async(&rt).iter(|| async {
                let jobs = (0..JOBS).map(|i| (i.to_string(), Process::new("true").quiet()));
                let results = pool.run(jobs).await.expect("unique names");
                assert!(results.successful());
            });
        });
        group.bench_with_input(
            BenchmarkId::new("peer/xargs", concurrency),
            &concurrency,
            |b, &n| {
                b.iter(|| {
                    let mut xargs = Command::new("xargs")
                        .args(["-P", &n.to_string(), "-n", "1", "true"])
                        .stdin(Stdio::piped())
                        .stdout(Stdio::null())
                        .spawn()
                        .expect("xargs runs");
                    xargs
                        .stdin
                        .take()
                        .expect("piped")
                        .write_all(lines.as_bytes())
                        .expect("xargs reads");
                    assert!(xargs.wait().expect("xargs exits").success());
                });
            },
        );
        group.bench_with_input(
            BenchmarkId::new("peer/tokio_buffer_unordered", concurrency),
            &concurrency,
            |b, &n| {
                b.to_async(&rt).iter(|| async move {
                    let ok = futures::stream::iter(0..JOBS)
                        .map(|_| async {
                            tokio::process::Command::new("true")
                                .stdin(Stdio::null())
                                .stdout(Stdio::null())
                                .stderr(Stdio::null())
                                .status()
                                .await
                                .expect("true runs")
                                .success()
                        })
                        .buffer_unordered(n)
                        .all(|ok| async move { ok })
                        .await;
                    assert!(ok);
                });
            },
        );
    }
    group.finish();
}

fn parent_rss(c: &mut Criterion) {
    let rt = current_thread();
    let mut group = c.benchmark_group("process/spawn_parent_rss");
    let spawn = || async {
        let output = Process::new("true").quiet().run().await.expect("true runs");
        assert!(output.successful());
    };
    group.bench_function("peer/small_parent", |b| b.to_async(&rt).iter(spawn));

    // 1 GiB, every page written so it is resident.
    let mut resident = vec![0u8; 1 << 30];
    for page in resident.chunks_mut(4096) {
        page[0] = 1;
    }
    black_box(&resident);
    group.bench_function("ours", |b| b.to_async(&rt).iter(spawn));
    group.bench_function("peer/std_command_large_parent", |b| {
        b.iter(|| {
            let status = Command::new("true")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("true runs");
            assert!(status.success());
        });
    });
    group.sample_size(10);
    group.bench_function("ours/forced_fork", |b| {
        b.to_async(&rt).iter(|| async {
            let output =
                Process::new("true").quiet().limit_open_files(1024).run().await.expect("true runs");
            assert!(output.successful());
        });
    });
    group.finish();
    drop(resident);
}

/// Runs of the crashing child per iteration of `process/supervisor_restart`.
const RUNS: u32 = 10;
/// The backoff before each restart, waited for by ours and the floor alike.
const RESTART_DELAY: Duration = Duration::from_millis(1);

fn supervisor_restart(c: &mut Criterion) {
    let rt = current_thread();
    let mut group = c.benchmark_group("process/supervisor_restart");
    group.sample_size(10);
    group.bench_function("ours", |b| {
        b.to_async(&rt).iter(|| async {
            let supervisor = Supervisor::builder()
                .backoff(Backoff::fixed(RESTART_DELAY).build().expect("a valid backoff"))
                .intensity(RUNS - 1, Duration::from_secs(3600))
                .clock(ManualClock::new())
                .build()
                .expect("a valid supervisor");
            let mut events = supervisor.events();
            supervisor.supervise("crasher", || Process::new("false").quiet()).expect("supervised");
            loop {
                match events.recv().await.expect("the supervisor is alive") {
                    SupervisorEvent::GaveUp { restarts, .. } => {
                        assert_eq!(restarts, RUNS - 1);
                        break;
                    }
                    event => drop(black_box(event)),
                }
            }
            supervisor.shutdown().await;
        });
    });
    group.bench_function("peer/tokio_respawn_loop", |b| {
        b.to_async(&rt).iter(|| async {
            for run in 1..=RUNS {
                let status = tokio::process::Command::new("false")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .process_group(0)
                    .kill_on_drop(true)
                    .status()
                    .await
                    .expect("false runs");
                assert!(!status.success());
                if run < RUNS {
                    tokio::time::sleep(RESTART_DELAY).await;
                }
            }
        });
    });
    group.finish();
}

fn pipe(c: &mut Criterion) {
    const BYTES: &str = "1048576";
    let rt = current_thread();
    let mut group = c.benchmark_group("process/pipe");
    group.bench_function("ours", |b| {
        b.to_async(&rt).iter(|| async {
            let output = Pipe::new()
                .pipe(Process::new("head").args(["-c", BYTES, "/dev/zero"]).quiet())
                .pipe(Process::new("wc").arg("-c"))
                .run()
                .await
                .expect("the pipe runs");
            assert!(output.successful());
            assert_eq!(output.stdout_str().trim(), BYTES);
        });
    });
    group.bench_function("peer/tokio_pipe", |b| {
        b.to_async(&rt).iter(|| async {
            let mut head = tokio::process::Command::new("head")
                .args(["-c", BYTES, "/dev/zero"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("head runs");
            let between: Stdio =
                head.stdout.take().expect("piped").try_into().expect("a pipe to hand on");
            let wc = tokio::process::Command::new("wc")
                .arg("-c")
                .stdin(between)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("wc runs");
            let (head, wc) = tokio::join!(head.wait(), wc.wait_with_output());
            assert!(head.expect("head exits").success());
            let wc = wc.expect("wc exits");
            assert!(wc.status.success());
            assert_eq!(String::from_utf8_lossy(&wc.stdout).trim(), BYTES);
        });
    });
    group.finish();
}

criterion_group!(benches, spawn_true, capture_true, pool, parent_rss, supervisor_restart, pipe);
criterion_main!(benches);
