//! The workflow suite every [`WorkflowBackend`] passes: batches, chains and
//! chains inside batches, driven through the lease cycle by hand on a
//! manual clock (nothing sleeps), plus an end-to-end run with a real worker.
//!
//! ```ignore
//! mod workflows;
//! workflows::suite!(|clock: ManualClock| async move { /* backend, keep-alive */ });
//! ```

#![allow(dead_code, reason = "each test binary uses the part of the suite it instantiates")]
#![allow(unreachable_pub, reason = "the checks are the suite's interface to the macro")]

mod admission;
mod chains;
mod extras;
mod inspect;
mod middleware;

use std::sync::Arc;
use std::time::Duration;

use conc_bus::batch::{
    BatchId, BatchInfo, BatchJobs, BatchPrune, MemberOutcome, PendingBatch, WorkflowError,
};
use conc_bus::job::TriggerKind;
use conc_bus::queue::WorkflowBackend;
use conc_bus::{
    FailReason, Job, JobId, Lease, Queue, ReserveRequest, Reserved, Selection, Settlement,
    Transition,
};
use conc_core::time::ManualClock;
use serde::{Deserialize, Serialize};

pub use admission::*;
pub use chains::*;
pub use extras::*;
pub use inspect::*;
pub use middleware::*;

/// What keeps a backend's resources alive for the length of a test.
pub type KeepAlive = Box<dyn std::any::Any + Send>;

/// The backend under test, its typed front and its clock.
pub struct W<B> {
    pub backend: Arc<B>,
    pub queue: Queue<B>,
    pub clock: ManualClock,
}

/// Declares one `#[tokio::test]` per check, each on a fresh backend from `$factory`.
macro_rules! suite {
    ($factory:expr) => {
        $crate::workflows::suite!(@tests $factory;
            an_empty_batch_is_finished_at_once,
            then_and_finally_fire_once_when_every_member_succeeds,
            a_member_run_twice_counts_once,
            a_failure_catches_once_and_cancels_the_waiting_members,
            allow_failures_keeps_going_and_skips_then,
            cancel_drops_waiting_members_and_asks_running_ones_to_stop,
            a_member_adds_before_it_counts_and_a_finished_batch_takes_no_more,
            a_member_that_crashes_its_workers_fails_the_batch,
            prune_removes_batches_by_age_and_kind,
            batches_are_listed_newest_first,
            batches_are_listed_by_state_name_and_cursor,
            members_and_callbacks_are_shown_as_they_settle,
            a_chain_runs_link_after_link,
            a_chain_stops_at_a_failed_link_and_catches_once,
            a_released_link_holds_its_chain,
            a_link_prepends_and_appends,
            a_chain_inside_a_batch_with_a_failing_middle_link_fires_finally,
            a_worker_runs_a_batch_with_progress_and_adds_from_a_member,
            unique_until_processed_holds_through_retries_and_releases,
            unique_until_processing_is_never_freed_by_an_older_job,
            unique_for_holds_for_its_duration_and_a_ttl_lapses,
            a_refused_push_holds_no_lock_and_a_cleared_job_frees_its_own,
            an_until_processing_job_dropped_before_it_runs_frees_its_lock,
            only_the_last_debounced_dispatch_runs_and_max_wait_forces_a_run,
            a_superseded_debounced_chain_never_runs,
            a_batch_past_its_deadline_cancels_what_is_unfinished_and_fires_catch_and_finally_once,
            subscribers_hear_each_member_outcome_once_after_it_is_stored,
            a_pruned_finished_batch_keeps_its_member_outcomes_in_the_archive,
            recovery_redispatches_the_failed_members_and_then_fires_once,
            a_recovered_member_gets_its_own_progress_job_while_the_first_is_queued,
            a_batch_info_carries_the_first_failed_members_only,
            a_cancelled_batchs_member_whose_worker_died_is_dropped_not_run_again,
            a_cancelled_batch_releases_the_locks_of_the_members_it_drops,
            batch_members_are_admitted_like_any_push,
            a_superseded_batch_member_counts_as_cancelled_and_its_batch_finishes,
            a_cleared_queue_cancels_the_batch_members_it_deletes,
            progress_holds_for_counts_that_do_not_add_up,
            a_cancelled_member_out_of_attempts_whose_worker_died_counts_as_cancelled,
            a_member_superseded_by_another_of_its_batch_counts_once_as_cancelled,
            a_batch_stamps_its_middleware_on_every_member_and_link,
            a_bad_middleware_name_is_refused_and_nothing_is_stored,
            a_worker_runs_members_through_the_named_layer_and_fails_unknown_names,
        );
    };
    (@tests $factory:expr; $($check:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let clock = conc_core::time::ManualClock::new();
                let factory = $factory;
                let Some((backend, _keep_alive)) = factory(clock.clone()).await else { return };
                let backend = std::sync::Arc::new(backend);
                $crate::workflows::$check($crate::workflows::W {
                    queue: conc_bus::Queue::from_arc(std::sync::Arc::clone(&backend)),
                    backend,
                    clock,
                })
                .await;
            }
        )*
    };
}
pub(crate) use suite;

/// A member or link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
}

impl Job for Step {
    const NAME: &'static str = "step";
}

/// A callback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Callback {
    pub name: String,
}

impl Job for Callback {
    const NAME: &'static str = "callback";
}

pub fn step(name: &str) -> Step {
    Step { name: name.into() }
}

pub fn callback(name: &str) -> Callback {
    Callback { name: name.into() }
}

pub const LEASE: Duration = Duration::from_secs(30);

/// A batch of `members` with every callback.
pub fn batch(members: &[&str]) -> PendingBatch {
    let mut batch = PendingBatch::new()
        .then(callback("then"))
        .catch(callback("catch"))
        .finally(callback("finally"))
        .progress(callback("progress"));
    for member in members {
        batch = batch.add(step(member));
    }
    batch
}

impl<B: WorkflowBackend> W<B> {
    pub async fn reserve(&self, max: usize) -> Vec<Reserved> {
        let queues = vec!["default".to_owned()];
        self.backend.reserve(ReserveRequest::new(&queues, max, LEASE)).await.unwrap().jobs
    }

    /// Reserves every ready job, and splits them into steps (by name) and callbacks.
    pub async fn take(&self) -> (Vec<Reserved>, Vec<Reserved>) {
        self.reserve(1000).await.into_iter().partition(|r| r.envelope.name == "step")
    }

    pub async fn settle(&self, lease: &Lease, transition: Transition) -> Result<Settlement, ()> {
        self.backend
            .settle(vec![(lease.clone(), transition)])
            .await
            .unwrap()
            .remove(0)
            .map_err(drop)
    }

    pub async fn ack(&self, reserved: &Reserved) {
        self.settle(&reserved.lease, Transition::Ack).await.expect("the lease holds");
    }

    pub async fn fail(&self, reserved: &Reserved, error: &str) {
        let fail = Transition::Fail { reason: FailReason::Fatal, error: error.into() };
        self.settle(&reserved.lease, fail).await.expect("the lease holds");
    }

    pub async fn info(&self, id: BatchId) -> BatchInfo {
        self.queue.batch(id).await.unwrap().expect("the batch is stored")
    }

    /// Runs every step to success and returns the callbacks seen, by kind.
    pub async fn drain(&self) -> Vec<(TriggerKind, Reserved)> {
        let mut callbacks = Vec::new();
        loop {
            let (steps, calls) = self.take().await;
            if steps.is_empty() && calls.is_empty() {
                return callbacks;
            }
            for reserved in steps.iter().chain(&calls) {
                self.ack(reserved).await;
            }
            callbacks.extend(calls.into_iter().map(|r| (kind(&r), r)));
        }
    }
}

pub fn name(reserved: &Reserved) -> String {
    serde_json::from_str::<Step>(&reserved.envelope.payload).unwrap().name
}

pub fn kind(reserved: &Reserved) -> TriggerKind {
    reserved.envelope.flow.as_ref().and_then(|f| f.trigger.as_ref()).expect("a callback").kind
}

pub fn kinds(callbacks: &[(TriggerKind, Reserved)]) -> Vec<TriggerKind> {
    let mut kinds: Vec<TriggerKind> = callbacks.iter().map(|(k, _)| *k).collect();
    kinds.sort_by_key(|k| format!("{k:?}"));
    kinds
}

pub async fn an_empty_batch_is_finished_at_once<B: WorkflowBackend>(w: W<B>) {
    let id = w.queue.dispatch_batch(batch(&[])).await.unwrap();
    let info = w.info(id).await;
    assert_eq!((info.total, info.pending, info.progress()), (0, 0, 100));
    assert!(info.is_finished());
    let callbacks = w.drain().await;
    assert_eq!(kinds(&callbacks), [TriggerKind::Finally, TriggerKind::Then]);
}

pub async fn then_and_finally_fire_once_when_every_member_succeeds<B: WorkflowBackend>(w: W<B>) {
    let id = w.queue.dispatch_batch(batch(&["a", "b", "c"]).name("three")).await.unwrap();
    let info = w.info(id).await;
    assert_eq!((info.total, info.pending, info.name.as_deref()), (3, 3, Some("three")));
    let (steps, calls) = w.take().await;
    assert_eq!((steps.len(), calls.len()), (3, 0));
    w.ack(&steps[0]).await;
    w.ack(&steps[1]).await;
    let (_, calls) = w.take().await;
    assert_eq!(calls.iter().map(kind).collect::<Vec<_>>(), [TriggerKind::Progress; 2]);
    assert_eq!(w.info(id).await.progress(), 66);
    w.ack(&steps[2]).await;
    let (_, calls) = w.take().await;
    let mut seen: Vec<TriggerKind> = calls.iter().map(kind).collect();
    seen.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(seen, [TriggerKind::Finally, TriggerKind::Progress, TriggerKind::Then]);
    for call in &calls {
        let trigger = call.envelope.flow.as_ref().unwrap().trigger.as_ref().unwrap();
        assert_eq!(trigger.batch, Some(id));
    }
    let info = w.info(id).await;
    assert_eq!((info.succeeded, info.pending, info.is_finished()), (3, 0, true));
    for call in &calls {
        w.ack(call).await;
    }
    assert!(w.drain().await.is_empty(), "no callback fires twice");
}

pub async fn a_member_run_twice_counts_once<B: WorkflowBackend>(w: W<B>) {
    let id = w.queue.dispatch_batch(batch(&["a", "b"]).allow_failures(true)).await.unwrap();
    // `a` runs, its lease runs out, it runs again and succeeds; the first
    // run's late acknowledgement is refused.
    let first = w.reserve(1).await.remove(0);
    w.clock.advance(LEASE + Duration::from_secs(1));
    let (again, _) = w.take().await;
    let second = again.iter().find(|r| r.lease.job == first.lease.job).expect("back");
    w.ack(second).await;
    assert!(w.settle(&first.lease, Transition::Ack).await.is_err());
    // `b` fails for good, is retried from the failed store and succeeds:
    // its first outcome stands.
    let b = again.iter().find(|r| r.lease.job != first.lease.job).expect("b");
    w.fail(b, "boom").await;
    let retried = w.queue.retry_failed(&Selection::Ids(vec![b.lease.job])).await.unwrap();
    assert_eq!(retried, [b.lease.job]);
    let callbacks = w.drain().await;
    let info = w.info(id).await;
    assert_eq!((info.total, info.succeeded, info.failed, info.pending), (2, 1, 1, 0));
    assert_eq!(info.failed_jobs, [b.lease.job]);
    assert_eq!(
        kinds(&callbacks),
        [TriggerKind::Catch, TriggerKind::Finally, TriggerKind::Progress, TriggerKind::Progress]
    );
}

pub async fn a_failure_catches_once_and_cancels_the_waiting_members<B: WorkflowBackend>(w: W<B>) {
    let id = w.queue.dispatch_batch(batch(&["a", "b", "c"])).await.unwrap();
    let a = w.reserve(1).await.remove(0);
    w.fail(&a, "disk full").await;
    let info = w.info(id).await;
    assert!(info.is_cancelled() && info.is_finished());
    assert_eq!((info.failed, info.cancelled, info.succeeded), (1, 2, 0));
    let (steps, calls) = w.take().await;
    assert!(steps.is_empty(), "the waiting members were dropped");
    let catch = calls.iter().find(|c| kind(c) == TriggerKind::Catch).expect("catch fired");
    let trigger = catch.envelope.flow.as_ref().unwrap().trigger.clone().unwrap();
    assert_eq!((trigger.job, trigger.error.as_deref()), (Some(a.lease.job), Some("disk full")));
    let mut seen: Vec<TriggerKind> = calls.iter().map(kind).collect();
    seen.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(seen, [TriggerKind::Catch, TriggerKind::Finally, TriggerKind::Progress]);
}

pub async fn allow_failures_keeps_going_and_skips_then<B: WorkflowBackend>(w: W<B>) {
    let id = w.queue.dispatch_batch(batch(&["a", "b", "c"]).allow_failures(true)).await.unwrap();
    let (steps, _) = w.take().await;
    w.fail(&steps[0], "one").await;
    w.fail(&steps[1], "two").await;
    assert!(!w.info(id).await.is_cancelled());
    w.ack(&steps[2]).await;
    let callbacks = w.drain().await;
    assert_eq!(
        kinds(&callbacks),
        [
            TriggerKind::Catch,
            TriggerKind::Finally,
            TriggerKind::Progress,
            TriggerKind::Progress,
            TriggerKind::Progress
        ]
    );
    let info = w.info(id).await;
    assert_eq!((info.failed, info.succeeded, info.failed_jobs.len()), (2, 1, 2));
}

pub async fn cancel_drops_waiting_members_and_asks_running_ones_to_stop<B: WorkflowBackend>(
    w: W<B>,
) {
    let id = w.queue.dispatch_batch(batch(&["a", "b", "c"])).await.unwrap();
    let running = w.reserve(2).await;
    assert!(w.queue.cancel_batch(id).await.unwrap());
    assert!(!w.queue.cancel_batch(id).await.unwrap(), "a second cancel changes nothing");
    let info = w.info(id).await;
    assert_eq!((info.cancelled, info.pending), (1, 2));
    assert!(info.cancelled_at.is_some() && !info.is_finished());
    // A renewal tells the running members to stop.
    let extend = Transition::Extend { lease: LEASE };
    let answer = w.settle(&running[0].lease, extend).await.unwrap();
    assert!(matches!(answer, Settlement::StopAsked { .. }), "{answer:?}");
    // One stops and would be retried: it is dropped instead. The other
    // finishes its work: that counts.
    let retry =
        Transition::Retry { delay: Duration::ZERO, error: "stopped".into(), timed_out: false };
    assert_eq!(w.settle(&running[0].lease, retry).await, Ok(Settlement::Skipped));
    w.ack(&running[1]).await;
    let info = w.info(id).await;
    assert_eq!((info.cancelled, info.succeeded, info.pending), (2, 1, 0));
    let callbacks = w.drain().await;
    assert_eq!(kinds(&callbacks), [TriggerKind::Finally, TriggerKind::Progress]);
    assert!(w.queue.add_to_batch(id, BatchJobs::new().add(step("late"))).await.is_err());
}

pub async fn a_member_adds_before_it_counts_and_a_finished_batch_takes_no_more<
    B: WorkflowBackend,
>(
    w: W<B>,
) {
    let id = w.queue.dispatch_batch(batch(&["a"])).await.unwrap();
    let a = w.reserve(1).await.remove(0);
    let added = w.queue.add_to_batch(id, BatchJobs::new().add(step("b"))).await.unwrap();
    assert_eq!(added, 1);
    w.ack(&a).await;
    let info = w.info(id).await;
    assert_eq!((info.total, info.pending, info.is_finished()), (2, 1, false));
    let callbacks = w.drain().await;
    assert_eq!(
        kinds(&callbacks),
        [TriggerKind::Finally, TriggerKind::Progress, TriggerKind::Progress, TriggerKind::Then]
    );
    let refused = w.queue.add_to_batch(id, BatchJobs::new().add(step("c"))).await;
    assert!(matches!(refused, Err(WorkflowError::Closed { state: "finished", .. })), "{refused:?}");
    assert!(matches!(
        w.queue.add_to_batch(BatchId::new(), BatchJobs::new()).await,
        Err(WorkflowError::NotFound { .. })
    ));
}

pub async fn a_member_that_crashes_its_workers_fails_the_batch<B: WorkflowBackend>(w: W<B>) {
    let member = PendingBatch::new().finally(callback("finally")).add(step("a"));
    let id = w.queue.dispatch_batch(member).await.unwrap();
    // Every attempt is abandoned (the worker dies): the reservation after the
    // last one fails the job, and the batch with it.
    for _ in 0..3 {
        assert_eq!(w.reserve(1).await.len(), 1);
        w.clock.advance(LEASE + Duration::from_secs(1));
    }
    // The reservation that finds it dead may hand out the callback it fired.
    let mut calls = w.reserve(1).await;
    let (steps, later) = w.take().await;
    calls.extend(later);
    assert!(steps.is_empty() && calls.iter().all(|r| r.envelope.name == "callback"));
    assert_eq!(calls.iter().map(kind).collect::<Vec<_>>(), [TriggerKind::Finally]);
    let info = w.info(id).await;
    assert_eq!((info.failed, info.is_finished()), (1, true));
}

pub async fn prune_removes_batches_by_age_and_kind<B: WorkflowBackend>(w: W<B>) {
    let hour = Duration::from_secs(3600);
    let finished = w.queue.dispatch_batch(batch(&[])).await.unwrap();
    let unfinished = w.queue.dispatch_batch(batch(&["a"])).await.unwrap();
    let cancelled = w.queue.dispatch_batch(batch(&["b"])).await.unwrap();
    w.queue.cancel_batch(cancelled).await.unwrap();
    w.clock.advance(2 * hour);
    assert_eq!(w.queue.prune_batches(BatchPrune::finished(3 * hour)).await.unwrap(), 0);
    assert_eq!(w.queue.prune_batches(BatchPrune::finished(hour)).await.unwrap(), 1);
    assert!(w.queue.batch(finished).await.unwrap().is_none());
    let rest = BatchPrune::default().unfinished(hour).cancelled(3 * hour);
    assert_eq!(w.queue.prune_batches(rest).await.unwrap(), 1);
    assert!(w.queue.batch(unfinished).await.unwrap().is_none());
    assert!(w.queue.batch(cancelled).await.unwrap().is_some());
    let all = BatchPrune::default().cancelled(hour);
    assert_eq!(w.queue.prune_batches(all).await.unwrap(), 1);
}

pub async fn batches_are_listed_newest_first<B: WorkflowBackend>(w: W<B>) {
    let mut ids = Vec::new();
    for name in ["one", "two", "three"] {
        ids.push(
            w.queue.dispatch_batch(PendingBatch::new().name(name).add(step(name))).await.unwrap(),
        );
        w.clock.advance(Duration::from_millis(5));
    }
    let listed: Vec<BatchId> = w.queue.batches(2).await.unwrap().iter().map(|b| b.id).collect();
    assert_eq!(listed, [ids[2], ids[1]]);
    assert_eq!(w.info(ids[0]).await.queue, "default");
    let _ = MemberOutcome::Succeeded;
    let _: Option<JobId> = None;
}

pub async fn a_cleared_queue_cancels_the_batch_members_it_deletes<B: WorkflowBackend>(w: W<B>) {
    let id = w.queue.dispatch_batch(batch(&["a", "b"])).await.unwrap();
    assert_eq!(w.queue.clear("default").await.unwrap(), 2);
    let info = w.info(id).await;
    assert_eq!((info.cancelled, info.pending, info.is_finished()), (2, 0, true));
    // The callbacks it fires are pushed after the clear, not cleared with it.
    assert_eq!(kinds(&w.drain().await), [TriggerKind::Finally]);
}
