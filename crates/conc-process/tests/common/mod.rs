//! Helpers shared by the behaviour tests: observing real processes via `/proc`.
#![allow(dead_code, unreachable_pub, reason = "each test binary uses a subset")]

use std::time::Duration;

/// Whether a process with this id exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| !rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// Whether any entry (a live process or a zombie) with this id exists.
pub fn exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Polls `condition` until it holds or `limit` passes; returns whether it held.
/// The limit is a failure bound, not a measurement.
pub async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Kills a process left behind by a test, so a failing test does not leak it.
pub fn kill(pid: u32) {
    // SAFETY: `kill` has no memory-safety preconditions.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(libc::pid_t::try_from(pid).expect("a pid"), libc::SIGKILL);
    }
}
