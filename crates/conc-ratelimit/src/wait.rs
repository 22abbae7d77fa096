//! Waiting for capacity: try, sleep for the wait the refusal named, try again.
//!
//! Nothing is reserved while sleeping, so dropping the future at any point
//! consumes nothing. The first wait is exactly the one named, so a lone
//! caller gets its units at the earliest instant; after a second refusal
//! (someone else took what it waited for) each wait is staggered
//! ([`conc_core::backoff::stagger`]), so many callers waiting on one key do
//! not retry in lockstep.

use std::time::Duration;

use crate::RateLimitError;
use crate::stats::Stats;

/// Calls `attempt` until it stops answering [`RateLimitError::Limited`],
/// sleeping on tokio's clock for the wait each refusal names (staggered from
/// the second refusal on, see [`pause`]). While it
/// sleeps the caller counts as waiting in `stats` (until this future ends
/// or is dropped); the outcome is counted as allowed or rejected.
pub(crate) async fn until_ready<T>(
    stats: Option<&Stats>,
    mut attempt: impl FnMut() -> Result<T, RateLimitError>,
) -> Result<T, RateLimitError> {
    let mut started = None;
    let mut waiting = None;
    loop {
        match attempt() {
            Err(RateLimitError::Limited { retry_after }) => {
                let refused_before = started.is_some();
                started.get_or_insert_with(tokio::time::Instant::now);
                if waiting.is_none() {
                    waiting = stats.map(Stats::waiting);
                }
                tokio::time::sleep(pause(retry_after, refused_before)).await;
            }
            other => {
                drop(waiting);
                if let Some(started) = started {
                    metrics::histogram!(conc_core::metrics::RATELIMIT_WAIT)
                        .record(started.elapsed().as_secs_f64());
                }
                return match stats {
                    Some(stats) => stats.record(other),
                    None => other,
                };
            }
        }
    }
}

/// How long a waiting caller sleeps after a refusal naming `retry_after`:
/// exactly that on the first refusal, staggered after a later one (the
/// caller lost a race for the instant it was given, and so did the others
/// that were given it). Never zero: a coarse clock can lag its retry-after
/// by up to its resolution, and a zero sleep would spin.
pub(crate) fn pause(retry_after: Duration, refused_before: bool) -> Duration {
    let pause = if refused_before { conc_core::backoff::stagger(retry_after) } else { retry_after };
    pause.max(Duration::from_nanos(1))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use conc_test_support::lockstep::Crowds;
    use tokio::time::Instant;

    use super::until_ready;
    use crate::{Gcra, Quota, TokioClock};

    /// 100 callers wait on one limiter that frees a unit every 100 ms. Once
    /// a caller has been refused twice, its retries must not land on the
    /// same instant as everyone else's (without the stagger, all the
    /// remaining callers retry together every 100 ms).
    #[tokio::test(start_paused = true)]
    async fn a_hundred_waiters_on_one_key_do_not_retry_in_lockstep() {
        let limiter =
            Arc::new(Gcra::builder(Quota::per_second(10).unwrap()).clock(TokioClock).build());
        limiter.try_acquire(10).unwrap();
        let origin = Instant::now();
        let attempts: Arc<Mutex<Vec<(usize, u128)>>> = Arc::default();
        let waiters: Vec<_> = (0..100)
            .map(|waiter| {
                let (limiter, attempts) = (Arc::clone(&limiter), Arc::clone(&attempts));
                tokio::spawn(async move {
                    until_ready(None, || {
                        let at = origin.elapsed().as_millis();
                        attempts.lock().unwrap().push((waiter, at));
                        limiter.try_acquire(1)
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
