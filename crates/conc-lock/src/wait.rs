//! Waiting for a lock or a funnel slot: retry with backoff until a deadline.

use std::future::Future;
use std::time::Duration;

use conc_core::backoff::{Backoff, stagger};
use tokio::time::Instant;

use crate::LockError;

/// One attempt's result as the waiting loop sees it.
pub(crate) enum Try<T> {
    /// Got it.
    Acquired(T),
    /// Busy; the current hold expires in this long, when known.
    Busy(Option<Duration>),
}

/// Calls `attempt` until it acquires or `wait` has passed, sleeping between
/// attempts by `backoff`, never past the deadline and never longer than the
/// current hold has left. Waking as the hold expires is exact the first
/// time and staggered ([`conc_core::backoff::stagger`]) after that: callers
/// that lost the race for one expiry do not all come back for the next one
/// at the same instant.
pub(crate) async fn block<T, F, Fut>(
    name: &str,
    wait: Duration,
    backoff: &Backoff,
    mut attempt: F,
) -> Result<T, LockError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Try<T>, LockError>>,
{
    let started = Instant::now();
    let deadline = started.checked_add(wait);
    let mut delays = backoff.delays();
    let mut refused_before = false;
    loop {
        let retry_after = match attempt().await? {
            Try::Acquired(value) => return Ok(value),
            Try::Busy(retry_after) => retry_after,
        };
        let now = Instant::now();
        let left =
            deadline.map_or(Duration::MAX, |deadline| deadline.saturating_duration_since(now));
        if left.is_zero() {
            return Err(LockError::Timeout { name: name.to_owned(), waited: now - started });
        }
        let mut pause = delays.next().unwrap_or(Duration::from_millis(250)).min(left);
        if let Some(expires_in) = retry_after {
            // Try again just as the current hold expires.
            let expires_in = expires_in.max(Duration::from_millis(1));
            let expires_in = if refused_before { stagger(expires_in) } else { expires_in };
            pause = pause.min(expires_in);
        }
        refused_before = true;
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use conc_core::backoff::Backoff;
    use conc_test_support::lockstep::Crowds;
    use tokio::time::Instant;

    use super::{Try, block};

    /// 100 callers wait for one lock whose every hold lasts until its ttl
    /// (100 ms) expires, with a backoff longer than that, so each waits for
    /// the expiry it is told. After losing once, their retries must not
    /// all land on the same instant.
    #[tokio::test(start_paused = true)]
    async fn a_hundred_waiters_on_one_lock_do_not_retry_in_lockstep() {
        let ttl = Duration::from_millis(100);
        let backoff = Backoff::fixed(Duration::from_secs(1)).build().unwrap();
        let origin = Instant::now();
        let held_until = Arc::new(Mutex::new(origin + ttl));
        let attempts: Arc<Mutex<Vec<(usize, u128)>>> = Arc::default();
        let waiters: Vec<_> = (0..100)
            .map(|waiter| {
                let (backoff, held_until, attempts) =
                    (backoff.clone(), Arc::clone(&held_until), Arc::clone(&attempts));
                tokio::spawn(async move {
                    block("report", Duration::from_secs(3_600), &backoff, || {
                        let now = Instant::now();
                        attempts.lock().unwrap().push((waiter, (now - origin).as_millis()));
                        let mut held_until = held_until.lock().unwrap();
                        let outcome = if now >= *held_until {
                            *held_until = now + ttl;
                            Try::Acquired(())
                        } else {
                            Try::Busy(Some(*held_until - now))
                        };
                        std::future::ready(Ok(outcome))
                    })
                    .await
                })
            })
            .collect();
        for waiter in waiters {
            waiter.await.unwrap().unwrap();
        }

        // Attempts 1 and 2 follow no wait and the exact first wait.
        let late = Crowds::after(&attempts.lock().unwrap(), 2);
        assert!(late.largest() <= 20, "{} callers retried at one instant", late.largest());
        assert!(late.instants() > 50, "late retries landed on {} instants", late.instants());
    }
}
