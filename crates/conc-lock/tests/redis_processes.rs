//! The Redis backend across real processes: this test binary re-executes
//! itself (the environment variable `CONC_LOCK_CHILD` names the child's
//! role). Four processes take slots of one funnel of 2 over and over on one
//! `redis-server`; the holds they log never number more than 2.

#![cfg(unix)]

#[path = "support/processes.rs"]
mod processes;

use conc_lock::{LockStore, RedisBackend};
use processes::{
    ChildProcess, LOG, check_funnel_log, child_role, env_path, funnel_worker, runtime,
};

/// The server a child connects to.
const URL: &str = "CONC_LOCK_REDIS_URL";

const LIMIT: u32 = 2;
const WORKERS: usize = 4;
const ROUNDS: usize = 15;

#[test]
fn child_funnel_worker() {
    if !child_role("redis-funnel") {
        return;
    }
    let log = env_path(LOG);
    let url = std::env::var(URL).unwrap();
    runtime().block_on(async {
        let store = LockStore::new(RedisBackend::connect(&url).await.unwrap());
        funnel_worker(store, LIMIT, &log, ROUNDS).await;
    });
}

#[test]
fn a_funnel_limits_holders_across_processes() {
    if std::env::var(processes::ROLE).is_ok() {
        return;
    }
    let Some(redis) = conc_test_support::require_redis() else { return };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("funnel.log");
    let url = redis.url();
    let workers: Vec<ChildProcess> = (0..WORKERS)
        .map(|_| {
            ChildProcess::spawn("child_funnel_worker", "redis-funnel", &[(LOG, &log)], |command| {
                command.env(URL, &url);
            })
        })
        .collect();
    for worker in workers {
        worker.wait_success();
    }
    let text = std::fs::read_to_string(&log).unwrap();
    let most = check_funnel_log(&text, LIMIT as usize, WORKERS, ROUNDS);
    assert!(most >= 1, "{text}");
}
