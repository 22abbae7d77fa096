//! The SQLite backend across real processes: this test binary re-executes
//! itself, and the environment variable `CONC_LOCK_SQLITE_CHILD` tells the
//! child which role to play. Without it the child tests return at once.
//!
//! - Several processes take turns on one lock and log what they do while
//!   holding it: no two holds overlap, and fences grow in log order.
//! - Kleppmann's paused client: a holder is stopped (`SIGSTOP`) past its time
//!   to live, another process takes the lock with a greater fence, and the
//!   holder, continued, is told by its release that it lost the lock.
//! - A crashed holder: a process holding a lock and a funnel slot is killed
//!   (`SIGKILL`, no destructor runs); its holds stay until their time to
//!   live runs out, then another process takes both, with greater fences.
//! - A funnel's limit across processes: four processes take slots of one
//!   funnel of 2 over and over; the holds they log never number more than 2.

#![cfg(unix)]

#[path = "support/processes.rs"]
mod processes;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;
use std::time::Duration;

use conc_lock::{LockError, LockStore, SqliteBackend};
use processes::{
    ChildProcess, DB, LOG, ROUNDS, append, check_funnel_log, child_role, env_path, funnel_worker,
    report, reports, runtime, signal, wait_stopped,
};

const WORKERS: usize = 4;
const WORKER_ROUNDS: usize = 25;
const HOLDER_TTL: Duration = Duration::from_millis(300);

#[test]
fn child_worker() {
    if !child_role("worker") {
        return;
    }
    let (db, log) = (env_path(DB), env_path(LOG));
    let rounds: usize = std::env::var(ROUNDS).unwrap().parse().unwrap();
    runtime().block_on(async {
        let store = LockStore::new(SqliteBackend::open(&db).unwrap());
        let lock = store.lock("processes:mutex", Duration::from_secs(10)).unwrap();
        let pid = std::process::id();
        for _ in 0..rounds {
            let guard = lock.block(Duration::from_secs(30)).await.unwrap();
            append(&log, &format!("enter {pid} {}\n", guard.fence()));
            std::thread::sleep(Duration::from_millis(1));
            append(&log, &format!("exit {pid}\n"));
            guard.release().await.unwrap();
            // Let the others in rather than take it straight back.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
}

#[test]
fn processes_take_turns_and_fences_grow_in_log_order() {
    let dir = tempfile::tempdir().unwrap();
    let (db, log) = (dir.path().join("locks.db"), dir.path().join("holds.log"));
    let rounds = WORKER_ROUNDS.to_string();
    // The children race to create the file and its table, too.
    let workers: Vec<ChildProcess> = (0..WORKERS)
        .map(|_| {
            ChildProcess::spawn("child_worker", "worker", &[(DB, &db), (LOG, &log)], |command| {
                command.env(ROUNDS, &rounds);
            })
        })
        .collect();
    for worker in workers {
        worker.wait_success();
    }

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2 * WORKERS * WORKER_ROUNDS, "{text}");
    let mut last_fence = 0;
    let mut holders = std::collections::BTreeMap::<&str, usize>::new();
    for (index, pair) in lines.chunks(2).enumerate() {
        let enter: Vec<&str> = pair[0].split(' ').collect();
        let exit: Vec<&str> = pair[1].split(' ').collect();
        assert!(
            enter.len() == 3 && enter[0] == "enter" && exit == ["exit", enter[1]],
            "hold {index} overlaps another: {:?} then {:?}\n{text}",
            pair[0],
            pair[1]
        );
        let fence: u64 = enter[2].parse().unwrap();
        assert!(fence > last_fence, "fence {fence} after {last_fence} at hold {index}\n{text}");
        last_fence = fence;
        *holders.entry(enter[1]).or_default() += 1;
    }
    assert_eq!(holders.len(), WORKERS, "{holders:?}");
    assert!(holders.values().all(|&rounds| rounds == WORKER_ROUNDS), "{holders:?}");
}

#[test]
fn child_holder() {
    if !child_role("holder") {
        return;
    }
    let db = env_path(DB);
    runtime().block_on(async {
        let store = LockStore::new(SqliteBackend::open(&db).unwrap());
        let lock = store.lock("processes:paused", HOLDER_TTL).unwrap();
        let guard = lock.get().await.unwrap().expect("the lock is free");
        report(&format!("acquired {}", guard.fence()));

        // The "work": wait for the parent, which stops this process meanwhile.
        let mut go = String::new();
        std::io::stdin().read_line(&mut go).unwrap();
        assert_eq!(go.trim(), "go");

        match guard.release().await {
            Err(LockError::Lost { name, fence }) => {
                assert_eq!(name, "processes:paused");
                report(&format!("lost {fence}"));
            }
            other => panic!("the late release must report the lock lost, got {other:?}"),
        }
    });
}

#[test]
fn a_paused_holder_loses_the_lock_and_its_release_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("locks.db");
    let mut holder = ChildProcess::spawn("child_holder", "holder", &[(DB, &db)], |command| {
        command.stdin(Stdio::piped());
    });
    let pid = holder.pid();
    let mut stdout = BufReader::new(holder.child().stdout.take().unwrap());

    let mut output = String::new();
    let held_fence: u64 = loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            let mut stderr = String::new();
            let _ = holder.child().stderr.take().unwrap().read_to_string(&mut stderr);
            panic!("the holder ended before acquiring\n--- stdout\n{output}\n--- stderr\n{stderr}");
        }
        output.push_str(&line);
        if let Some(fence) = reports(&line).find_map(|report| report.strip_prefix("acquired ")) {
            break fence.trim().parse().unwrap();
        }
    };

    signal(pid, libc::SIGSTOP);
    wait_stopped(pid);
    std::thread::sleep(HOLDER_TTL * 2);

    let runtime = runtime();
    let store = LockStore::new(SqliteBackend::open(&db).unwrap());
    let guard = runtime.block_on(async {
        let lock = store.lock("processes:paused", Duration::from_secs(30)).unwrap();
        lock.get().await.unwrap().expect("the stopped holder's ttl ran out")
    });
    assert!(guard.fence().get() > held_fence, "{:?} after {held_fence}", guard.fence());

    let mut stdin = holder.child().stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    signal(pid, libc::SIGCONT);

    stdout.read_to_string(&mut output).unwrap();
    let finished = holder.0.take().unwrap().wait_with_output().unwrap();
    assert!(
        finished.status.success(),
        "holder failed with {}\n--- stdout\n{output}\n--- stderr\n{}",
        finished.status,
        String::from_utf8_lossy(&finished.stderr)
    );
    let lost = reports(&output).find_map(|report| report.strip_prefix("lost "));
    assert_eq!(lost.map(str::trim), Some(held_fence.to_string().as_str()), "{output}");

    runtime.block_on(async {
        assert_eq!(store.owner_of("processes:paused").await.unwrap().as_ref(), Some(guard.owner()));
        guard.release().await.expect("the late release left the new hold alone");
    });
}

const CRASH_TTL: Duration = Duration::from_secs(1);

#[test]
fn child_crasher() {
    if !child_role("crasher") {
        return;
    }
    let db = env_path(DB);
    runtime().block_on(async {
        let store = LockStore::new(SqliteBackend::open(&db).unwrap());
        let guard = store.lock("processes:crashed", CRASH_TTL).unwrap().get().await.unwrap();
        let guard = guard.expect("the lock is free");
        let funnel = store.funnel("processes:crashed-funnel", 1, CRASH_TTL).unwrap();
        let permit = funnel.get().await.unwrap().expect("the slot is free");
        report(&format!("acquired {} {}", guard.fence(), permit.fence()));
        // Hold until killed.
        std::thread::sleep(Duration::from_secs(120));
        drop((guard, permit));
    });
}

#[test]
fn a_holder_killed_with_sigkill_loses_its_holds_when_their_ttl_runs_out() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("locks.db");
    let mut crasher = ChildProcess::spawn("child_crasher", "crasher", &[(DB, &db)], |_| {});
    let pid = crasher.pid();
    let mut stdout = BufReader::new(crasher.child().stdout.take().unwrap());
    let (lock_fence, slot_fence): (u64, u64) = loop {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "the crasher ended before acquiring");
        if let Some(fences) = reports(&line).find_map(|report| report.strip_prefix("acquired ")) {
            let (lock, slot) = fences.trim().split_once(' ').unwrap();
            break (lock.parse().unwrap(), slot.parse().unwrap());
        }
    };
    // The holds were taken before this: they expire at most a ttl from now.
    let reported_at = std::time::Instant::now();
    let store = LockStore::new(SqliteBackend::open(&db).unwrap());
    let runtime = runtime();
    let lock = store.lock("processes:crashed", Duration::from_secs(30)).unwrap();
    let funnel = store.funnel("processes:crashed-funnel", 1, Duration::from_secs(30)).unwrap();
    signal(pid, libc::SIGKILL);
    let status = crasher.0.take().unwrap().wait().unwrap();
    assert!(!status.success(), "killed: {status}");

    runtime.block_on(async {
        // Killed, but still within its time to live (the holds were taken
        // moments before the report; half a ttl leaves room for a slow
        // machine): nobody gets in.
        if reported_at.elapsed() < CRASH_TTL / 2 {
            assert!(lock.get().await.unwrap().is_none(), "the dead holder's hold stands");
            assert!(funnel.get().await.unwrap().is_none(), "so does its funnel slot");
        }
        // Once it has run out, both are free, with greater fences.
        let guard = lock.block(Duration::from_secs(10)).await.unwrap();
        let permit = funnel.block(Duration::from_secs(10)).await.unwrap();
        assert!(guard.fence().get() > lock_fence, "{:?} after {lock_fence}", guard.fence());
        assert!(permit.fence().get() > slot_fence, "{:?} after {slot_fence}", permit.fence());
        guard.release().await.unwrap();
        permit.release().await.unwrap();
    });
}

const FUNNEL_LIMIT: u32 = 2;
const FUNNEL_WORKERS: usize = 4;
const FUNNEL_ROUNDS: usize = 15;

#[test]
fn child_funnel_worker() {
    if !child_role("funnel") {
        return;
    }
    let (db, log) = (env_path(DB), env_path(LOG));
    runtime().block_on(async {
        let store = LockStore::new(SqliteBackend::open(&db).unwrap());
        funnel_worker(store, FUNNEL_LIMIT, &log, FUNNEL_ROUNDS).await;
    });
}

#[test]
fn a_funnel_limits_holders_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let (db, log) = (dir.path().join("locks.db"), dir.path().join("funnel.log"));
    let workers: Vec<ChildProcess> = (0..FUNNEL_WORKERS)
        .map(|_| {
            ChildProcess::spawn("child_funnel_worker", "funnel", &[(DB, &db), (LOG, &log)], |_| {})
        })
        .collect();
    for worker in workers {
        worker.wait_success();
    }
    let text = std::fs::read_to_string(&log).unwrap();
    let most = check_funnel_log(&text, FUNNEL_LIMIT as usize, FUNNEL_WORKERS, FUNNEL_ROUNDS);
    assert!(most >= 1, "{text}");
}
