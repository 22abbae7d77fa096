//! The one decision the reservation script takes in Lua, checked against the
//! crate's settle logic on a real server: over every combination of attempts
//! made, attempt limit and retry deadline around the reservation's time, the
//! script refuses exactly the reservations `refuse_reservation` refuses, and
//! the failed job read back is the one `refused_job` makes.

use std::time::{Duration, UNIX_EPOCH};

use conc_core::time::ManualClock;

use super::RedisQueue;
use crate::job::{Envelope, JobOptions};
use crate::queue::backend::{FailedStore, Pushed, QueueBackend, ReserveRequest};
use crate::queue::settle;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reservation_refuses_exactly_what_the_settle_logic_refuses() {
    let Some(redis) = conc_test_support::require_redis() else { return };
    let clock = ManualClock::new();
    let backend =
        RedisQueue::builder(redis.url()).clock(clock.clone()).connect().await.expect("connects");
    let client = redis::Client::open(redis.url()).expect("a url");
    let mut raw = client.get_multiplexed_async_connection().await.expect("connects");
    let queues = vec!["default".to_owned()];
    let mut cases = 0;
    for max_attempts in 1..=3_u32 {
        for made in 0..=4_u32 {
            for deadline in [None, Some(-1_i64), Some(0), Some(1)] {
                let now = backend.now();
                let mut options = JobOptions::new().max_attempts(max_attempts);
                if let Some(delta) = deadline {
                    let at = now.saturating_add_signed(delta);
                    options = options.retry_until(UNIX_EPOCH + Duration::from_millis(at));
                }
                let envelope =
                    Envelope::raw(crate::JobId::new(), "t", 1, "1".into(), &options, now);
                let id = envelope.id;
                backend.push(vec![Pushed::new(envelope.clone(), now)]).await.expect("pushes");
                // The attempts already made, as the hash records them.
                let key = format!("{}job:{id}", backend.queue_keys("default"));
                let () = redis::cmd("HSET")
                    .arg(&key)
                    .arg("a")
                    .arg(made)
                    .query_async(&mut raw)
                    .await
                    .expect("sets the attempts");
                let request = ReserveRequest::new(&queues, 1, Duration::from_secs(30));
                let reservation = backend.reserve(request).await.expect("reserves");
                let attempt = made + 1;
                let expected = settle::refused_job(&envelope, attempt, now);
                let case = format!("max {max_attempts}, made {made}, deadline {deadline:?}");
                match expected {
                    None => {
                        assert_eq!(reservation.jobs.len(), 1, "{case}: leased");
                        assert_eq!(reservation.jobs[0].attempt, attempt, "{case}");
                        let ack = (reservation.jobs[0].lease.clone(), settle::Transition::Ack);
                        backend.settle(vec![ack]).await.expect("acks")[0].expect("held");
                    }
                    Some(expected) => {
                        assert!(reservation.jobs.is_empty(), "{case}: refused");
                        assert_eq!(reservation.dead, std::slice::from_ref(&expected), "{case}");
                        let stored = backend.failed_job(id).await.expect("reads");
                        assert_eq!(stored, Some(expected), "{case}");
                    }
                }
                cases += 1;
                clock.advance(Duration::from_millis(7));
            }
        }
    }
    assert_eq!(cases, 60);
    assert!(backend.failed_count(None).await.expect("counts") > 0, "some were refused");
}
