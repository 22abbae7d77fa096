//! An idle pool burns no CPU: after a burst, once the extra workers retired
//! and the rest went to sleep, the process's CPU time barely moves while the
//! pool sits idle. Measured with the process CPU counter (`getrusage`), in
//! its own test binary so no other test's threads are counted.

use std::time::Duration;

use conc_pool::BlockingPool;

/// User + system CPU time this process has used.
fn process_cpu() -> Duration {
    // SAFETY: `getrusage` fills the zeroed struct we own; RUSAGE_SELF is valid.
    #[allow(unsafe_code)]
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &raw mut usage), 0);
        usage
    };
    let to_duration = |tv: libc::timeval| {
        Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64)
    };
    to_duration(usage.ru_utime) + to_duration(usage.ru_stime)
}

#[test]
fn an_idle_pool_uses_almost_no_cpu() {
    let pool = BlockingPool::builder()
        .workers(2)
        .max_workers(8)
        .keep_alive(Duration::from_millis(50))
        .build()
        .unwrap();
    // A burst that grows the pool.
    let handles: Vec<_> = (0..64)
        .map(|i| {
            pool.submit(move || (0..10_000_u64).fold(i, |a, x| a ^ x.wrapping_mul(31))).unwrap()
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    // Wait for the keep-alive to retire the extra workers.
    for _ in 0..10_000 {
        if pool.workers() == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(pool.workers(), 2);
    let before = process_cpu();
    std::thread::sleep(Duration::from_millis(500));
    let used = process_cpu().saturating_sub(before);
    // Sleeping workers cost nothing; the 1 ms coarse-clock thread a little.
    assert!(used < Duration::from_millis(50), "idle pool used {used:?} of CPU in 500 ms");
}
