//! The admission checks of the workflow suite: unique jobs and debounce.

use std::time::Duration;

use conc_bus::admission::Admission;
use conc_bus::batch::{BatchJobs, PendingBatch, WorkflowError};
use conc_bus::chain::Chain;
use conc_bus::job::TriggerKind;
use conc_bus::queue::{PushError, WorkflowBackend};
use conc_bus::{EnqueueError, JobId, Transition};

use super::{W, name, step};

const SEC: Duration = Duration::from_secs(1);

impl<B: WorkflowBackend> W<B> {
    async fn unique(&self, what: &str, admission: Admission) -> Result<JobId, Option<JobId>> {
        match self.queue.dispatch(step(what)).admission(admission).await {
            Ok(id) => Ok(id),
            Err(EnqueueError::Locked { held_by, job, .. }) => {
                assert_eq!(job.name, what, "the job is handed back");
                Err(Some(held_by))
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
}

pub async fn unique_until_processed_holds_through_retries_and_releases<B: WorkflowBackend>(
    w: W<B>,
) {
    let key = || Admission::unique("invoice:7");
    let a = w.unique("a", key()).await.unwrap();
    assert_eq!(w.unique("b", key()).await, Err(Some(a)));
    // A retry and a release keep the lock.
    let first = w.reserve(1).await.remove(0);
    let retry = Transition::Retry { delay: Duration::ZERO, error: "x".into(), timed_out: false };
    w.settle(&first.lease, retry).await.unwrap();
    assert_eq!(w.unique("b", key()).await, Err(Some(a)));
    let second = w.reserve(1).await.remove(0);
    w.settle(&second.lease, Transition::Release { delay: Duration::ZERO }).await.unwrap();
    assert_eq!(w.unique("b", key()).await, Err(Some(a)));
    // Success releases it.
    let third = w.reserve(1).await.remove(0);
    w.ack(&third).await;
    let b = w.unique("b", key()).await.unwrap();
    // So does a failure for good.
    assert_eq!(w.unique("c", key()).await, Err(Some(b)));
    let running = w.reserve(1).await.remove(0);
    w.fail(&running, "fatal").await;
    w.unique("c", key()).await.unwrap();
    // Other keys never collide.
    w.unique("d", Admission::unique("invoice:8")).await.unwrap();
}

pub async fn unique_until_processing_is_never_freed_by_an_older_job<B: WorkflowBackend>(w: W<B>) {
    let key = || Admission::unique("report").until_processing();
    let a = w.unique("a", key()).await.unwrap();
    assert_eq!(w.unique("b", key()).await, Err(Some(a)));
    let first = w.reserve(1).await.remove(0);
    // `b` is dispatched while `a` runs (and waits a minute, so that only
    // `a` is reserved below).
    let b = w.queue.dispatch(step("b")).delay(60 * SEC).admission(key()).await.unwrap();
    // `a` fails and runs again: its second reservation must not free `b`'s lock.
    let retry = Transition::Retry { delay: Duration::ZERO, error: "x".into(), timed_out: false };
    w.settle(&first.lease, retry).await.unwrap();
    let again = w.reserve(10).await;
    assert_eq!(again.iter().map(|r| r.lease.job).collect::<Vec<_>>(), [a]);
    w.ack(&again[0]).await;
    assert_eq!(w.unique("c", key()).await, Err(Some(b)));
    // `b`'s own reservation frees it.
    w.clock.advance(60 * SEC);
    assert_eq!(w.reserve(10).await.len(), 1);
    w.unique("c", key()).await.unwrap();
}

pub async fn unique_for_holds_for_its_duration_and_a_ttl_lapses<B: WorkflowBackend>(w: W<B>) {
    let a = w.unique("a", Admission::unique_for("digest", 60 * SEC)).await.unwrap();
    let running = w.reserve(1).await.remove(0);
    w.ack(&running).await;
    assert_eq!(w.unique("b", Admission::unique_for("digest", 60 * SEC)).await, Err(Some(a)));
    w.clock.advance(60 * SEC);
    w.unique("b", Admission::unique_for("digest", 60 * SEC)).await.unwrap();

    let c = w.unique("c", Admission::unique("lost").ttl(10 * SEC)).await.unwrap();
    assert_eq!(w.unique("d", Admission::unique("lost")).await, Err(Some(c)));
    w.clock.advance(10 * SEC);
    w.unique("d", Admission::unique("lost")).await.unwrap();
}

pub async fn a_refused_push_holds_no_lock_and_a_cleared_job_frees_its_own<B: WorkflowBackend>(
    w: W<B>,
) {
    w.queue.set_capacity("default", Some(1)).await.unwrap();
    w.queue.push(step("filler")).await.unwrap();
    let refused = w.queue.dispatch(step("a")).admission(Admission::unique("k")).await;
    assert!(matches!(refused, Err(EnqueueError::Full { .. })), "{refused:?}");
    assert_eq!(w.queue.clear("default").await.unwrap(), 1);
    // The refused push took nothing.
    w.unique("a", Admission::unique("k")).await.unwrap();
    // A cleared job lets go of its lock.
    assert_eq!(w.queue.clear("default").await.unwrap(), 1);
    w.unique("b", Admission::unique("k")).await.unwrap();
}

pub async fn an_until_processing_job_dropped_before_it_runs_frees_its_lock<B: WorkflowBackend>(
    w: W<B>,
) {
    let until_processing = || Admission::unique("report").until_processing();
    w.unique("a", until_processing()).await.unwrap();
    assert!(w.unique("b", until_processing()).await.is_err(), "held while it waits");
    // Cleared before it ever ran: nothing would release it at a start.
    assert_eq!(w.queue.clear("default").await.unwrap(), 1);
    w.unique("c", until_processing()).await.unwrap();
    // A member of a cancelled batch, dropped before it ran, lets go too.
    assert_eq!(w.queue.clear("default").await.unwrap(), 1);
    let member = Chain::new(step("m")).admission(until_processing());
    let id = w.queue.dispatch_batch(PendingBatch::new().add_chain(member)).await.unwrap();
    assert!(w.unique("n", until_processing()).await.is_err(), "the member holds it");
    assert!(w.queue.cancel_batch(id).await.unwrap());
    w.unique("o", until_processing()).await.unwrap();
}

pub async fn only_the_last_debounced_dispatch_runs_and_max_wait_forces_a_run<B: WorkflowBackend>(
    w: W<B>,
) {
    let debounce = || Admission::debounce("search", 5 * SEC);
    for what in ["a", "b", "c"] {
        w.queue.dispatch(step(what)).admission(debounce()).await.unwrap();
        w.clock.advance(SEC);
    }
    assert_eq!(w.queue.size("default").await.unwrap().total(), 1, "superseded jobs are gone");
    w.clock.advance(3 * SEC);
    assert!(w.reserve(10).await.is_empty(), "the window runs from the last dispatch");
    w.clock.advance(SEC);
    let ran = w.reserve(10).await;
    assert_eq!(ran.iter().map(name).collect::<Vec<_>>(), ["c"]);
    w.ack(&ran[0]).await;

    // Dispatches every 3 s would hold a 5 s window off forever: max_wait
    // (8 s after the first) forces the run.
    let capped = || Admission::debounce("index", 5 * SEC).max_wait(8 * SEC);
    for what in ["d", "e", "f"] {
        w.queue.dispatch(step(what)).admission(capped()).await.unwrap();
        w.clock.advance(3 * SEC);
    }
    // 9 s after the first dispatch, the last one (at 6 s) is due at 8 s.
    let ran = w.reserve(10).await;
    assert_eq!(ran.iter().map(name).collect::<Vec<_>>(), ["f"]);
}

pub async fn a_superseded_debounced_chain_never_runs<B: WorkflowBackend>(w: W<B>) {
    let chain =
        Chain::new(step("a")).then(step("after-a")).admission(Admission::debounce("k", SEC));
    w.queue.dispatch_chain(chain).await.unwrap();
    w.queue.dispatch(step("b")).admission(Admission::debounce("k", SEC)).await.unwrap();
    w.clock.advance(SEC);
    let mut ran = Vec::new();
    loop {
        let (steps, _) = w.take().await;
        if steps.is_empty() {
            break;
        }
        for reserved in &steps {
            ran.push(name(reserved));
            w.ack(reserved).await;
        }
    }
    assert_eq!(ran, ["b"]);
}

/// A batch member holding a unique lock (a chain with an admission).
fn locked_member(key: &str) -> Chain {
    Chain::new(step("locked")).admission(Admission::unique(key))
}

pub async fn a_cancelled_batch_releases_the_locks_of_the_members_it_drops<B: WorkflowBackend>(
    w: W<B>,
) {
    let batch = PendingBatch::new().add_chain(locked_member("k"));
    let id = w.queue.dispatch_batch(batch).await.unwrap();
    assert!(matches!(w.unique("b", Admission::unique("k")).await, Err(Some(_))), "held");
    assert!(w.queue.cancel_batch(id).await.unwrap());
    w.unique("b", Admission::unique("k")).await.unwrap();

    // A failed member cancels its batch: the waiting member it drops lets
    // go of its lock too.
    let batch = PendingBatch::new().add(step("a")).add_chain(locked_member("k2"));
    w.queue.dispatch_batch(batch).await.unwrap();
    assert!(matches!(w.unique("c", Admission::unique("k2")).await, Err(Some(_))), "held");
    let (steps, _) = w.take().await;
    let a = steps.iter().find(|r| name(r) == "a").expect("a");
    let locked = steps.iter().find(|r| name(r) == "locked").expect("locked");
    // `locked` goes back to waiting, then `a` fails for good.
    let release = Transition::Release { delay: Duration::from_secs(60) };
    w.settle(&locked.lease, release).await.unwrap();
    w.fail(a, "boom").await;
    w.unique("c", Admission::unique("k2")).await.unwrap();
}

pub async fn batch_members_are_admitted_like_any_push<B: WorkflowBackend>(w: W<B>) {
    let holder = w.unique("holder", Admission::unique("k")).await.unwrap();
    let refused = w.queue.dispatch_batch(PendingBatch::new().add_chain(locked_member("k"))).await;
    assert!(
        matches!(refused, Err(WorkflowError::Push(PushError::Locked { held_by, .. })) if held_by == holder),
        "{refused:?}"
    );
    let id = w.queue.dispatch_batch(PendingBatch::new().add(step("a"))).await.unwrap();
    let refused = w.queue.add_to_batch(id, BatchJobs::new().add_chain(locked_member("k"))).await;
    assert!(
        matches!(refused, Err(WorkflowError::Push(PushError::Locked { held_by, .. })) if held_by == holder),
        "{refused:?}"
    );
    assert_eq!(w.info(id).await.total, 1, "nothing was added");
    // An admitted member takes the lock.
    let added = w.queue.add_to_batch(id, BatchJobs::new().add_chain(locked_member("k3"))).await;
    assert_eq!(added.unwrap(), 1);
    assert!(matches!(w.unique("b", Admission::unique("k3")).await, Err(Some(_))), "held");
}

pub async fn a_superseded_batch_member_counts_as_cancelled_and_its_batch_finishes<
    B: WorkflowBackend,
>(
    w: W<B>,
) {
    let debounce = || Admission::debounce("d", SEC);
    let member = Chain::new(step("member")).admission(debounce());
    let batch = PendingBatch::new().add_chain(member).finally(super::callback("finally"));
    let id = w.queue.dispatch_batch(batch).await.unwrap();
    w.queue.dispatch(step("b")).admission(debounce()).await.unwrap();
    let info = w.info(id).await;
    assert_eq!((info.cancelled, info.pending, info.is_finished()), (1, 0, true));
    w.clock.advance(SEC);
    let (steps, calls) = w.take().await;
    assert_eq!(steps.iter().map(name).collect::<Vec<_>>(), ["b"]);
    assert_eq!(calls.iter().map(super::kind).collect::<Vec<_>>(), [TriggerKind::Finally]);
}

pub async fn a_member_superseded_by_another_of_its_batch_counts_once_as_cancelled<
    B: WorkflowBackend,
>(
    w: W<B>,
) {
    let member = |what: &str| Chain::new(step(what)).admission(Admission::debounce("d", SEC));
    // Two members of one new batch under one key: the second supersedes the first.
    let batch = PendingBatch::new().add_chain(member("m1")).add_chain(member("m2")).add(step("x"));
    let id = w.queue.dispatch_batch(batch).await.unwrap();
    let info = w.info(id).await;
    assert_eq!((info.total, info.cancelled, info.pending), (3, 1, 2));
    // A member added later supersedes the one still waiting.
    let added = w.queue.add_to_batch(id, BatchJobs::new().add_chain(member("m3"))).await;
    assert_eq!(added.unwrap(), 1);
    let info = w.info(id).await;
    assert_eq!((info.total, info.cancelled, info.pending), (4, 2, 2));
    w.clock.advance(SEC);
    let mut ran: Vec<String> = Vec::new();
    loop {
        let (steps, _) = w.take().await;
        if steps.is_empty() {
            break;
        }
        for reserved in &steps {
            ran.push(name(reserved));
            w.ack(reserved).await;
        }
    }
    ran.sort();
    assert_eq!(ran, ["m3", "x"]);
    let info = w.info(id).await;
    assert_eq!((info.succeeded, info.cancelled, info.is_finished()), (2, 2, true));
}
