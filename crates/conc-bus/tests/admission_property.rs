//! Property: a unique key never admits two jobs. Random interleavings of
//! dispatches (two keys, both release policies), reservations, every
//! settlement (ack, retry, release, failure), stale settlements from
//! workers whose leases ran out (killed workers) and passing time are run
//! against a model of who holds each key; the backend must admit exactly
//! when the model says the key is free — never two holders, and no lock
//! leaked. Run on the memory queue, on SQLite files and on a real
//! `redis-server` (one per case; skipped when the binary is missing unless
//! `CONC_REQUIRE_SERVICES=1`).

use std::collections::HashMap;
use std::time::Duration;

use conc_bus::admission::Admission;
use conc_bus::queue::WorkflowBackend;
use conc_bus::{
    EnqueueError, FailReason, Job, JobId, Lease, MemoryQueue, Queue, RedisQueue, ReserveRequest,
    Settlement, SqliteQueue, Transition,
};
use conc_core::time::ManualClock;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Unique;

impl Job for Unique {
    const NAME: &'static str = "unique";
}

const LEASE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
enum Op {
    Dispatch {
        key: u8,
        until_processing: bool,
    },
    Reserve {
        max: usize,
    },
    Settle {
        lease: usize,
        how: u8,
    },
    /// Every lease runs out (their workers died); their settlements go stale.
    Expire,
    Wait,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..2_u8, any::<bool>()).prop_map(|(key, until_processing)| Op::Dispatch { key, until_processing }),
        3 => (1..3_usize).prop_map(|max| Op::Reserve { max }),
        4 => (0..4_usize, 0..4_u8).prop_map(|(lease, how)| Op::Settle { lease, how }),
        1 => Just(Op::Expire),
        1 => Just(Op::Wait),
    ]
}

/// What the model knows of one admitted job.
struct Known {
    key: u8,
    until_processing: bool,
    reserved: bool,
    done: bool,
}

impl Known {
    fn holds(&self) -> bool {
        !(self.done || self.until_processing && self.reserved)
    }
}

async fn check<B: WorkflowBackend>(backend: B, clock: &ManualClock, ops: Vec<Op>) {
    let queue = Queue::new(backend);
    let backend = queue.backend();
    let mut jobs: HashMap<JobId, Known> = HashMap::new();
    let mut leases: Vec<Lease> = Vec::new();
    let queues = vec!["default".to_owned()];
    for op in ops {
        match op {
            Op::Dispatch { key, until_processing } => {
                let mut admission = Admission::unique(format!("key-{key}"));
                if until_processing {
                    admission = admission.until_processing();
                }
                let holder =
                    jobs.iter().find(|(_, k)| k.key == key && k.holds()).map(|(id, _)| *id);
                match queue.dispatch(Unique).admission(admission).await {
                    Ok(id) => {
                        assert_eq!(
                            holder, None,
                            "key {key} admitted a second job while {holder:?} holds it"
                        );
                        jobs.insert(
                            id,
                            Known { key, until_processing, reserved: false, done: false },
                        );
                    }
                    Err(EnqueueError::Locked { held_by, .. }) => {
                        assert_eq!(
                            holder,
                            Some(held_by),
                            "key {key} refused, but the model says it is free"
                        );
                    }
                    Err(other) => panic!("unexpected {other}"),
                }
            }
            Op::Reserve { max } => {
                let reservation =
                    backend.reserve(ReserveRequest::new(&queues, max, LEASE)).await.unwrap();
                for dead in &reservation.dead {
                    jobs.get_mut(&dead.envelope.id).expect("known").done = true;
                }
                for reserved in reservation.jobs {
                    jobs.get_mut(&reserved.lease.job).expect("known").reserved = true;
                    leases.push(reserved.lease);
                }
            }
            Op::Settle { lease, how } => {
                if leases.is_empty() {
                    continue;
                }
                let lease = leases.remove(lease % leases.len());
                let transition = match how {
                    0 => Transition::Ack,
                    1 => Transition::Retry {
                        delay: Duration::ZERO,
                        error: "x".into(),
                        timed_out: false,
                    },
                    2 => Transition::Release { delay: Duration::ZERO },
                    _ => Transition::Fail { reason: FailReason::Fatal, error: "x".into() },
                };
                let settled = backend.settle(vec![(lease.clone(), transition)]).await.unwrap();
                if let Ok(Settlement::Acked | Settlement::Dead(_)) = settled[0] {
                    jobs.get_mut(&lease.job).expect("known").done = true;
                }
            }
            Op::Expire => clock.advance(LEASE + Duration::from_secs(1)),
            Op::Wait => clock.advance(Duration::from_secs(1)),
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn unique_never_admits_two_on_memory(ops in prop::collection::vec(op(), 1..80)) {
        let clock = ManualClock::new();
        let backend = MemoryQueue::builder().clock(clock.clone()).build().unwrap();
        runtime().block_on(check(backend, &clock, ops));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn unique_never_admits_two_on_sqlite(ops in prop::collection::vec(op(), 1..60)) {
        let clock = ManualClock::new();
        let dir = tempfile::tempdir().unwrap();
        let backend = SqliteQueue::builder(dir.path().join("jobs.db")).clock(clock.clone()).open().unwrap();
        runtime().block_on(check(backend, &clock, ops));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn unique_never_admits_two_on_redis(ops in prop::collection::vec(op(), 1..60)) {
        let Some(redis) = conc_test_support::require_redis() else { return Ok(()) };
        let clock = ManualClock::new();
        runtime().block_on(async {
            let backend =
                RedisQueue::builder(redis.url()).clock(clock.clone()).connect().await.unwrap();
            check(backend, &clock, ops).await;
        });
    }
}
