//! The Redis limiter across real processes: this test binary re-executes
//! itself as several clients, each with its own connection, all charging one
//! key on one `redis-server`. Together they never pass more than the limit.
//!
//! The environment variable `CONC_RATELIMIT_CHILD` holds the server's URL in
//! a child. The child's role is the entry point
//! [`child_entry_point_for_the_multi_process_test`]: it is not a test of its
//! own, and without that variable (a normal run) it only says so and returns;
//! the parent checks that every child ran it and reported its count.

#![cfg(unix)]
#![allow(clippy::print_stdout, reason = "a child reports to its parent on stdout")]

use std::process::{Command, Stdio};
use std::time::Instant;

use conc_ratelimit::{Quota, RedisLimiter};

/// The server a child charges; absent in the parent.
const CHILD: &str = "CONC_RATELIMIT_CHILD";
/// Marks the line a child reports on (libtest writes around it).
const MARK: &str = "@conc admitted ";

const CLIENTS: usize = 4;
const CHECKS_PER_CLIENT: u32 = 60;

/// 100 per hour: one unit every 36 s, so while the test runs only the burst
/// of 100 (plus one unit per 36 s elapsed) may pass.
fn quota() -> Quota {
    Quota::per_hour(100).unwrap()
}

/// Not a test on its own: the entry point of each child process
/// [`clients_in_several_processes_never_exceed_the_limit_together`] starts.
/// With `CONC_RATELIMIT_CHILD` set it charges the shared key and reports on
/// stdout how many units passed; the parent fails unless every child did.
/// In a normal run (no such variable) there is nothing to do.
#[test]
fn child_entry_point_for_the_multi_process_test() {
    let Ok(url) = std::env::var(CHILD) else {
        println!("child entry point only: run by the multi-process test with {CHILD} set");
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let admitted = runtime.block_on(async {
        let limiter = RedisLimiter::connect(url).await.unwrap();
        let mut admitted = 0;
        for _ in 0..CHECKS_PER_CLIENT {
            if limiter.try_acquire("shared", quota(), 1).await.is_ok() {
                admitted += 1;
            }
        }
        admitted
    });
    println!("{MARK}{admitted}");
}

#[test]
fn clients_in_several_processes_never_exceed_the_limit_together() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let Some(redis) = conc_test_support::require_redis() else { return };
    let started = Instant::now();
    let children: Vec<_> = (0..CLIENTS)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "child_entry_point_for_the_multi_process_test",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD, redis.url())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut admitted = 0;
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "a client failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let line = stdout
            .lines()
            .find_map(|line| line.split_once(MARK).map(|(_, count)| count))
            .unwrap_or_else(|| panic!("no report in {stdout}"));
        admitted += line.trim().parse::<u64>().unwrap();
    }
    let refills = started.elapsed().as_secs() / 36;
    let checks = CLIENTS as u64 * u64::from(CHECKS_PER_CLIENT);
    assert!(checks > 100 + refills, "the clients ask for more than the limit");
    assert!(
        (100..=100 + refills).contains(&admitted),
        "admitted {admitted} of {checks}, limit 100 + {refills}"
    );
    // Keep the server until every client is done.
    drop(redis);
}
