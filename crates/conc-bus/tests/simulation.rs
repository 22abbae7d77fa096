//! `conc_bus::testing::Simulation`: each fault of a chaos plan does what it
//! says to real workers on tokio's paused clock; a seed replays the same run;
//! the properties "no job lost" and "duplicates within faults" hold for an
//! idempotent handler whatever the seed, and catch a handler or a setup that
//! breaks them.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conc_bus::testing::{
    ChaosPlan, Fault, FaultKind, LostState, PausedTime, Simulation, SimulationError,
    SimulationReport, Violation,
};
use conc_bus::{FailReason, Job, JobContext, JobError, JobHandlers, JobId, JobOptions};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use static_assertions::assert_impl_all;
use tokio::time::Instant;

assert_impl_all!(Simulation: Send, Sync);
assert_impl_all!(conc_bus::testing::FaultRecord: Send, Sync);
assert_impl_all!(conc_bus::testing::LostJob: Send, Sync);
assert_impl_all!(Violation: Send, Sync, std::error::Error);
assert_impl_all!(SimulationReport: Send, Sync);
assert_impl_all!(ChaosPlan: Send, Sync);
assert_impl_all!(SimulationError: Send, Sync);
assert_impl_all!(PausedTime: Send, Sync, Copy);

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A job of `steps` steps of `step_ms` each, saving a checkpoint after each.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Work {
    id: u32,
    steps: u32,
    step_ms: u64,
}

impl Job for Work {
    const NAME: &'static str = "work";
    fn options() -> JobOptions {
        JobOptions::new().max_attempts(50)
    }
}

/// A step a handler finished.
#[derive(Debug, Clone, Copy)]
struct Step {
    job: u32,
    attempt: u32,
    reached: u32,
    /// Whether its checkpoint landed.
    saved: bool,
    /// Seconds since the start.
    at: f64,
}

/// What the handlers did: the steps they finished and the effects applied.
#[derive(Clone, Default)]
struct Log {
    steps: Arc<Mutex<Vec<Step>>>,
    effects: Arc<Mutex<HashMap<u32, u32>>>,
}

impl Log {
    /// (attempt, step reached, checkpoint saved) of `job`'s steps.
    fn steps_of(&self, job: u32) -> Vec<(u32, u32, bool)> {
        let steps = self.steps.lock().unwrap();
        steps.iter().filter(|s| s.job == job).map(|s| (s.attempt, s.reached, s.saved)).collect()
    }
    fn effects(&self) -> HashMap<u32, u32> {
        self.effects.lock().unwrap().clone()
    }
}

/// An idempotent handler: resumes from its checkpoint, stops when a
/// checkpoint is refused, and applies its effect (a count per job) at the end.
fn stepper(log: &Log) -> JobHandlers {
    let log = log.clone();
    let start = Instant::now();
    JobHandlers::new().handle(move |job: Work, ctx: JobContext| {
        let log = log.clone();
        async move {
            let from: u32 = ctx.resume_from().unwrap_or(0);
            for step in from..job.steps {
                tokio::time::sleep(Duration::from_millis(job.step_ms)).await;
                let saved = ctx.checkpoint(&(step + 1)).await;
                let at = start.elapsed().as_secs_f64();
                let attempt = ctx.attempt();
                let done =
                    Step { job: job.id, attempt, reached: step + 1, saved: saved.is_ok(), at };
                log.steps.lock().unwrap().push(done);
                saved?;
            }
            *log.effects.lock().unwrap().entry(job.id).or_default() += 1;
            Ok::<(), JobError>(())
        }
    })
}

/// One worker with leases of `lease` running one job of `steps` steps of
/// `step_ms`, through `fault`.
async fn alone(log: &Log, lease: u64, steps: u32, step_ms: u64, fault: Fault) -> SimulationReport {
    Simulation::new(stepper(log))
        .workers(1)
        .lease(secs(lease))
        .jobs([Work { id: 1, steps, step_ms }])
        .plan(ChaosPlan::new().fault(fault))
        .run()
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_killed_worker_s_handler_stops_at_its_await_point_and_the_job_resumes_elsewhere() {
    let log = Log::default();
    let kill = Fault::new(1, 0, FaultKind::Kill { after: secs(3) });
    let report = alone(&log, 5, 3, 2_000, kill).await;
    // Attempt 1 saved step 1 at 2 s and was killed at 3 s, asleep before
    // step 2: it never reached step 2. Attempt 2 resumed from step 1.
    assert_eq!(log.steps_of(1), [(1, 1, true), (2, 2, true), (2, 3, true)]);
    assert_eq!(log.effects(), HashMap::from([(1, 1)]));
    assert_eq!(report.faults.len(), 1);
    let fired = &report.faults[0];
    assert_eq!((fired.at, fired.worker.as_str()), (secs(3), "sim-worker-0.0"));
    assert_eq!(fired.hit, [JobId::from_u128(1)]);
    assert_eq!((report.runs, report.duplicates, report.retries, report.acked), (2, 1, 0, 1));
    // The dead worker's lease ran out before anyone took the job again.
    let resumed_at = log.steps.lock().unwrap()[1].at;
    assert!(resumed_at >= 3.0 + 2.0 + 1.0, "resumed at {resumed_at}");
    report.assert_holds();
}

#[tokio::test(start_paused = true)]
async fn a_kill_waits_for_its_worker_to_hold_a_job() {
    let log = Log::default();
    // Due at once, on worker 1, which holds nothing until the second job.
    let kill = Fault::new(1, 1, FaultKind::Kill { after: Duration::ZERO });
    let report = Simulation::new(stepper(&log))
        .workers(2)
        .jobs(vec![Work { id: 1, steps: 1, step_ms: 500 }, Work { id: 2, steps: 1, step_ms: 500 }])
        .plan(ChaosPlan::new().fault(kill))
        .run()
        .await
        .unwrap();
    assert_eq!(report.faults.len(), 1);
    assert_eq!(report.faults[0].worker, "sim-worker-1.1");
    assert_eq!(report.faults[0].hit.len(), 1);
    assert_eq!((report.runs, report.duplicates), (3, 1));
    report.assert_holds();
}

#[tokio::test(start_paused = true)]
async fn a_dropped_acknowledgement_brings_the_job_back_after_its_lease() {
    let log = Log::default();
    let report = alone(&log, 3, 1, 100, Fault::new(1, 0, FaultKind::DropAck)).await;
    // The second run resumed from the first one's checkpoint: nothing left
    // but the effect, applied again.
    assert_eq!(log.steps_of(1), [(1, 1, true)]);
    assert_eq!(log.effects(), HashMap::from([(1, 2)]), "handlers must be idempotent");
    assert_eq!(report.runs, 2);
    assert!(report.elapsed >= secs(3), "the job came back once its lease expired");
    assert_eq!((report.duplicates, report.fault_hits(), report.acked), (1, 1, 1));
    report.assert_holds();
}

#[tokio::test(start_paused = true)]
async fn a_delayed_acknowledgement_past_the_lease_runs_the_job_again() {
    let log = Log::default();
    let delay = FaultKind::DelayAck { delay: secs(10) };
    let report = alone(&log, 3, 1, 100, Fault::new(1, 0, delay)).await;
    // The late acknowledgement was refused: the job ran again and was
    // acknowledged once.
    assert_eq!(log.effects(), HashMap::from([(1, 2)]));
    assert_eq!((report.runs, report.duplicates, report.acked), (2, 1, 1));
    assert!(report.elapsed >= secs(10));
    report.assert_holds();

    // Held for less than the lease, it lands: nothing runs twice.
    let log = Log::default();
    let delay = FaultKind::DelayAck { delay: secs(1) };
    let report = alone(&log, 5, 1, 100, Fault::new(1, 0, delay)).await;
    assert_eq!((report.runs, report.duplicates, report.faults.len()), (1, 0, 1));
    report.assert_holds();
}

#[tokio::test(start_paused = true)]
async fn an_expired_lease_is_refused_under_the_running_handler() {
    let log = Log::default();
    let expire = FaultKind::ExpireLease { window: secs(20) };
    let report = alone(&log, 3, 5, 2_000, Fault::new(1, 0, expire)).await;
    // Renewals dropped from 1 s, the lease ran out at 3 s: attempt 1's
    // checkpoint at 4 s was refused, and attempt 2 resumed from step 1.
    assert_eq!(
        log.steps_of(1),
        [(1, 1, true), (1, 2, false), (2, 2, true), (2, 3, true), (2, 4, true), (2, 5, true)]
    );
    assert_eq!(report.faults[0].at, secs(1));
    assert_eq!((report.duplicates, report.fault_hits(), report.acked), (1, 1, 1));
    report.assert_holds();
}

#[tokio::test(start_paused = true)]
async fn a_fault_whose_moment_never_comes_does_not_fire() {
    let log = Log::default();
    let plan = ChaosPlan::new().fault(Fault::new(100, 0, FaultKind::DropAck)).fault(Fault::new(
        1,
        0,
        FaultKind::ExpireLease { window: secs(60) },
    ));
    let report = Simulation::new(stepper(&log))
        .workers(1)
        .jobs([Work { id: 1, steps: 1, step_ms: 100 }]) // never renewed: done in a tenth of a second
        .plan(plan)
        .run()
        .await
        .unwrap();
    assert!(report.faults.is_empty());
    assert_eq!(report.plan.faults().len(), 2);
    assert_eq!(report.seed, None);
    assert!(report.to_string().contains("faults fired 0 of 2 planned"), "{report}");
    report.assert_holds();
}

fn mixed_jobs(n: u32) -> impl Iterator<Item = Work> {
    (0..n).map(|id| Work { id, steps: 1 + id % 4, step_ms: 300 * u64::from(1 + id % 7) })
}

async fn seeded(seed: u64, concurrency: usize, log: &Log) -> SimulationReport {
    Simulation::new(stepper(log))
        .seed(seed)
        .workers(3)
        .concurrency(concurrency)
        .lease(secs(5))
        .jobs(mixed_jobs(40))
        .faults(15)
        .run()
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_seed_replays_the_same_run() {
    let first = seeded(11, 1, &Log::default()).await;
    let second = seeded(11, 1, &Log::default()).await;
    assert_eq!(first, second);
    assert_eq!(first.plan, ChaosPlan::seeded(11, 15, 40, 3, secs(5)));
    assert_eq!(first.seed, Some(11));
    assert!(!first.faults.is_empty());
    let other = seeded(12, 1, &Log::default()).await;
    assert_ne!(first.plan, other.plan);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn an_idempotent_handler_loses_nothing_and_runs_again_only_for_faults(
        seed in any::<u64>(),
        concurrency in 1_usize..=3,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        let log = Log::default();
        let report = runtime.block_on(seeded(seed, concurrency, &log));
        prop_assert!(report.finished, "{report}");
        prop_assert!(report.no_job_lost(), "{report}");
        prop_assert!(report.duplicates_within_faults(), "{report}");
        prop_assert_eq!(report.acked, 40);
        prop_assert_eq!(report.retries, 0);
        prop_assert!(report.duplicates <= report.runs);
        let effects = log.effects();
        prop_assert_eq!(effects.len(), 40, "every job's effect was applied");
        let extra: u32 = effects.values().map(|n| n - 1).sum();
        prop_assert!(u64::from(extra) <= report.fault_hits(), "{report}");
    }
}

/// Fails the first run of job 3 with a retryable error: a rerun no fault caused.
fn fails_job_3_once(log: &Log) -> JobHandlers {
    let log = log.clone();
    JobHandlers::new().handle(move |job: Work, ctx: JobContext| {
        let log = log.clone();
        async move {
            if job.id == 3 && ctx.attempt() == 1 {
                return Err(JobError::retry("flaky first run"));
            }
            *log.effects.lock().unwrap().entry(job.id).or_default() += 1;
            Ok(())
        }
    })
}

#[tokio::test(start_paused = true)]
async fn a_rerun_no_fault_caused_breaks_duplicates_within_faults() {
    let log = Log::default();
    let report = Simulation::new(fails_job_3_once(&log))
        .jobs(mixed_jobs(5))
        .plan(ChaosPlan::new())
        .run()
        .await
        .unwrap();
    assert!(report.no_job_lost());
    assert!(!report.duplicates_within_faults());
    assert_eq!((report.duplicates, report.retries, report.redeliveries()), (1, 1, 0));
    assert_eq!(report.violations(), [Violation::TooManyDuplicates { duplicates: 1, hits: 0 }]);
    let message = catch_unwind(AssertUnwindSafe(|| report.assert_holds())).unwrap_err();
    let message = message.downcast_ref::<String>().unwrap();
    assert!(
        message.starts_with(
            "the simulation broke its properties: 1 handler run(s) beyond the first of their \
             job, more than the 0 job(s) the faults hit\nsimulation of a hand-written plan:"
        ),
        "{message}"
    );
}

#[derive(Serialize, Deserialize)]
struct OneShot {
    id: u32,
}

impl Job for OneShot {
    const NAME: &'static str = "one-shot";
    fn options() -> JobOptions {
        JobOptions::new().max_attempts(1)
    }
}

#[tokio::test(start_paused = true)]
async fn a_job_crashed_out_of_its_attempts_is_reported_lost() {
    let handlers = JobHandlers::new().handle(|_: OneShot, _: JobContext| async {
        tokio::time::sleep(secs(10)).await;
        Ok::<(), JobError>(())
    });
    let kill = Fault::new(1, 0, FaultKind::Kill { after: secs(1) });
    let report = Simulation::new(handlers)
        .workers(1)
        .jobs((1..=2).map(|id| OneShot { id }))
        .plan(ChaosPlan::new().fault(kill))
        .run()
        .await
        .unwrap();
    assert!(!report.no_job_lost());
    assert_eq!(report.lost.len(), 1);
    let lost = &report.lost[0];
    assert_eq!((lost.id, lost.name.as_str()), (JobId::from_u128(1), "one-shot"));
    assert_eq!(lost.state, LostState::Failed(FailReason::Abandoned));
    assert_eq!(report.acked, 1);
    match report.violations().as_slice() {
        [Violation::JobsLost(jobs)] => assert_eq!(jobs, &report.lost),
        other => panic!("expected lost jobs, got {other:?}"),
    }
    assert!(
        report
            .to_string()
            .contains("lost: `one-shot` 1 (in the failed store because its attempts ran out")
    );
}

#[tokio::test(start_paused = true)]
async fn jobs_still_held_or_waiting_at_the_time_limit_are_lost() {
    #[derive(Serialize, Deserialize)]
    struct Later;
    impl Job for Later {
        const NAME: &'static str = "later";
        fn options() -> JobOptions {
            JobOptions::new().delay(secs(3600))
        }
    }
    let handlers = JobHandlers::new()
        .handle(|job: OneShot, _: JobContext| async move {
            if job.id == 2 {
                tokio::time::sleep(secs(3600)).await; // still running at the limit
            }
            Ok::<(), JobError>(())
        })
        .handle(|_: Later, _: JobContext| async { Ok::<(), JobError>(()) });
    let report = Simulation::new(handlers)
        .lease(secs(600))
        .time_limit(secs(60))
        .workers(2)
        .jobs([OneShot { id: 1 }, OneShot { id: 2 }])
        .jobs([Later])
        .plan(ChaosPlan::new().fault(Fault::new(1, 0, FaultKind::DropAck)))
        .run()
        .await
        .unwrap();
    assert!(!report.finished);
    assert_eq!(report.elapsed, secs(60));
    let states: Vec<_> = report.lost.iter().map(|job| (job.id.as_u128(), job.state)).collect();
    assert_eq!(states, [(1, LostState::Held), (2, LostState::Held), (3, LostState::Waiting)]);
    assert!(report.to_string().contains("stopped by the time limit"), "{report}");
}

#[derive(Serialize, Deserialize)]
struct Unwritable(HashMap<(u8, u8), u8>);

impl Job for Unwritable {
    const NAME: &'static str = "unwritable";
}

#[derive(Serialize, Deserialize)]
struct TooUrgent;

impl Job for TooUrgent {
    const NAME: &'static str = "too-urgent";
    fn options() -> JobOptions {
        JobOptions::new().priority(10)
    }
}

#[tokio::test(start_paused = true)]
async fn bad_settings_plans_and_jobs_are_refused_before_anything_runs() {
    let field = |err: SimulationError| match err {
        SimulationError::Config(error) => error.field.into_owned(),
        other => panic!("expected a setting refused, got {other:?}"),
    };
    let sim = || Simulation::new(JobHandlers::new());
    assert_eq!(field(sim().workers(0).run().await.unwrap_err()), "workers");
    assert_eq!(field(sim().time_limit(Duration::ZERO).run().await.unwrap_err()), "time_limit");
    assert_eq!(field(sim().concurrency(0).run().await.unwrap_err()), "concurrency");
    assert_eq!(field(sim().lease(Duration::ZERO).run().await.unwrap_err()), "lease");
    let plan = ChaosPlan::new().fault(Fault::new(1, 5, FaultKind::DropAck));
    let err = sim().workers(2).plan(plan).run().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid `plan` 5: fault `after run 1, worker 5: drop an acknowledgement` names a worker \
         past the 2 simulated (0 to 1)"
    );
    assert_eq!(field(sim().jobs([TooUrgent]).run().await.unwrap_err()), "priority");
    let unwritable = Unwritable(HashMap::from([((1, 2), 3)]));
    let err = sim().jobs([unwritable]).run().await.unwrap_err();
    assert!(matches!(err, SimulationError::Encode(_)), "{err:?}");
    assert!(err.to_string().starts_with("a simulated job does not serialize"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_simulation_without_jobs_reports_nothing_done() {
    let report = Simulation::new(JobHandlers::new()).run().await.unwrap();
    assert_eq!((report.jobs, report.runs, report.finished), (0, 0, true));
    assert!(report.faults.is_empty());
    report.assert_holds();
}

#[test]
fn the_run_future_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    let run = Simulation::new(JobHandlers::new()).run();
    assert_send(&run);
}
