//! Batch extras on every backend: timeouts, progress notifications,
//! archiving, recovery of failed members.

use std::time::Duration;

use conc_bus::batch::{BatchPrune, MemberOutcome, PendingBatch, WorkflowError};
use conc_bus::job::TriggerKind;
use conc_bus::queue::WorkflowBackend;
use conc_bus::{FailedQuery, ReserveRequest, Settlement, Transition};
use tokio::sync::broadcast::error::TryRecvError;

use super::{LEASE, W, batch, callback, kind, kinds, name, step};

impl<B: WorkflowBackend> W<B> {
    /// A reservation from a queue nobody pushes to: runs the backend's
    /// per-reservation housekeeping (batch deadlines) and takes nothing.
    pub async fn poll(&self) {
        let queues = vec!["nothing-here".to_owned()];
        let taken = self.backend.reserve(ReserveRequest::new(&queues, 1, LEASE)).await.unwrap();
        assert!(taken.jobs.is_empty());
    }
}

pub async fn a_batch_past_its_deadline_cancels_what_is_unfinished_and_fires_catch_and_finally_once<
    B: WorkflowBackend,
>(
    w: W<B>,
) {
    // Shorter than the lease: `b` is still leased when the batch times out.
    let timeout = Duration::from_secs(20);
    let minute = Duration::from_secs(60);
    let pending = batch(&["a", "b", "c"]).allow_failures(true).timeout(timeout);
    let id = w.queue.dispatch_batch(pending).await.unwrap();
    let info = w.info(id).await;
    assert_eq!(info.deadline, Some(info.created_at + 20_000));
    // `a` succeeds, `b` is running, `c` waits.
    let a = w.reserve(1).await.remove(0);
    w.ack(&a).await;
    let b = w.reserve(1).await.remove(0);
    assert_eq!(name(&b), "b");
    w.clock.advance(Duration::from_millis(19_999));
    w.poll().await;
    assert!(!w.info(id).await.is_timed_out(), "not before its deadline");

    w.clock.advance(Duration::from_millis(1));
    w.poll().await;
    let info = w.info(id).await;
    assert!(info.is_timed_out() && info.is_cancelled() && info.is_finished());
    assert_eq!((info.succeeded, info.cancelled, info.pending), (1, 2, 0));
    let (steps, calls) = w.take().await;
    assert!(steps.is_empty(), "the waiting member was deleted");
    let mut seen: Vec<TriggerKind> = calls.iter().map(kind).collect();
    seen.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(seen, [TriggerKind::Catch, TriggerKind::Finally, TriggerKind::Progress]);
    let catch = calls.iter().find(|c| kind(c) == TriggerKind::Catch).unwrap();
    let trigger = catch.envelope.flow.as_ref().unwrap().trigger.clone().unwrap();
    assert_eq!((trigger.job, trigger.error.as_deref()), (None, Some("batch timed out")));
    for call in &calls {
        w.ack(call).await;
    }
    // The running member is asked to stop; finishing anyway changes nothing.
    let extend = Transition::Extend { lease: LEASE };
    let answer = w.settle(&b.lease, extend).await.unwrap();
    assert!(matches!(answer, Settlement::StopAsked { .. }), "{answer:?}");
    w.ack(&b).await;
    assert_eq!(w.info(id).await.cancelled, 2);
    w.clock.advance(60 * minute);
    w.poll().await;
    assert!(w.drain().await.is_empty(), "nothing fires twice");

    // A batch that finishes in time never times out.
    let quick = w.queue.dispatch_batch(batch(&["d"]).timeout(minute)).await.unwrap();
    let callbacks = w.drain().await;
    assert_eq!(kinds(&callbacks), [TriggerKind::Finally, TriggerKind::Progress, TriggerKind::Then]);
    w.clock.advance(2 * minute);
    w.poll().await;
    let info = w.info(quick).await;
    assert!(!info.is_timed_out() && !info.is_cancelled());
    assert!(w.drain().await.is_empty());

    // A zero timeout is refused, naming the field.
    let refused = w.queue.dispatch_batch(batch(&["e"]).timeout(Duration::ZERO)).await;
    match refused {
        Err(WorkflowError::Invalid(error)) => assert_eq!(error.field, "timeout"),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

pub async fn subscribers_hear_each_member_outcome_once_after_it_is_stored<B: WorkflowBackend>(
    w: W<B>,
) {
    let mut progress = w.queue.subscribe_batches();
    let id = w.queue.dispatch_batch(batch(&["a", "b", "c"]).allow_failures(true)).await.unwrap();
    assert!(matches!(progress.try_recv(), Err(TryRecvError::Empty)), "nothing yet");
    let (steps, _) = w.take().await;
    w.ack(&steps[0]).await;
    let heard = progress.try_recv().expect("announced with the acknowledgement");
    assert_eq!(
        (heard.batch, heard.member, heard.outcome, heard.pending, heard.finished),
        (id, steps[0].lease.job, MemberOutcome::Succeeded, 2, false)
    );
    // A second settlement of the same member is refused and announces nothing.
    assert!(w.settle(&steps[0].lease, Transition::Ack).await.is_err());
    w.fail(&steps[1], "boom").await;
    let heard = progress.try_recv().unwrap();
    assert_eq!((heard.outcome, heard.failed, heard.progress()), (MemberOutcome::Failed, 1, 66));
    // A late subscriber hears only what comes after it.
    let mut late = w.queue.subscribe_batches();
    w.ack(&steps[2]).await;
    for receiver in [&mut progress, &mut late] {
        let heard = receiver.try_recv().unwrap();
        assert_eq!(
            (heard.member, heard.finished, heard.progress()),
            (steps[2].lease.job, true, 100)
        );
        assert!(matches!(receiver.try_recv(), Err(TryRecvError::Empty)));
    }
    // Cancellations are announced too.
    let other = w.queue.dispatch_batch(batch(&["d", "e"])).await.unwrap();
    w.queue.cancel_batch(other).await.unwrap();
    let cancelled: Vec<_> = std::iter::from_fn(|| progress.try_recv().ok()).collect();
    assert_eq!(cancelled.len(), 2);
    assert!(cancelled.iter().all(|p| p.batch == other && p.outcome == MemberOutcome::Cancelled));
    assert!(cancelled[1].finished);
}

pub async fn a_pruned_finished_batch_keeps_its_member_outcomes_in_the_archive<
    B: WorkflowBackend,
>(
    w: W<B>,
) {
    let hour = Duration::from_secs(3600);
    let id = w.queue.dispatch_batch(batch(&["a", "b"]).allow_failures(true)).await.unwrap();
    let (steps, _) = w.take().await;
    let (a, b) =
        if name(&steps[0]) == "a" { (&steps[0], &steps[1]) } else { (&steps[1], &steps[0]) };
    w.ack(a).await;
    w.fail(b, "boom").await;
    w.drain().await;
    let live = w.info(id).await;
    let unfinished = w.queue.dispatch_batch(batch(&["c"])).await.unwrap();
    w.clock.advance(2 * hour);

    let prune = BatchPrune::finished(hour).unfinished(hour).archive();
    assert_eq!(w.queue.prune_batches(prune).await.unwrap(), 2);
    assert!(w.queue.batch(id).await.unwrap().is_none(), "the live state is gone");
    let archived = w.queue.archived_batch(id).await.unwrap().expect("archived");
    assert_eq!(archived.info, live);
    assert_eq!(archived.members.len(), 2);
    assert_eq!(archived.outcome(a.lease.job), Some(MemberOutcome::Succeeded));
    assert_eq!(archived.outcome(b.lease.job), Some(MemberOutcome::Failed));
    assert_eq!(archived.archived_at, w.backend.now());
    assert!(w.queue.archived_batch(unfinished).await.unwrap().is_none(), "only finished ones");

    // Without `archive`, a prune deletes; `archived(age)` drops old archives.
    w.clock.advance(2 * hour);
    assert_eq!(w.queue.prune_batches(BatchPrune::default().archived(3 * hour)).await.unwrap(), 0);
    assert_eq!(w.queue.prune_batches(BatchPrune::default().archived(hour)).await.unwrap(), 1);
    assert!(w.queue.archived_batch(id).await.unwrap().is_none());
}

pub async fn a_recovered_member_gets_its_own_progress_job_while_the_first_is_queued<
    B: WorkflowBackend,
>(
    w: W<B>,
) {
    let id = w.queue.dispatch_batch(batch(&["a"]).allow_failures(true)).await.unwrap();
    let (steps, _) = w.take().await;
    w.fail(&steps[0], "once").await;
    // The failure's catch, finally and progress jobs are still queued when
    // the member is recovered and succeeds.
    assert_eq!(w.queue.recover_batch(id).await.unwrap(), 1);
    let callbacks = w.drain().await;
    assert_eq!(
        kinds(&callbacks),
        [
            TriggerKind::Catch,
            TriggerKind::Finally,
            TriggerKind::Progress,
            TriggerKind::Progress,
            TriggerKind::Then
        ]
    );
    assert!(w.info(id).await.is_finished());
}

pub async fn a_batch_info_carries_the_first_failed_members_only<B: WorkflowBackend>(w: W<B>) {
    let many = conc_bus::batch::MAX_FAILED_JOBS + 20;
    let names: Vec<String> = (0..many).map(|i| format!("m{i}")).collect();
    let members: Vec<&str> = names.iter().map(String::as_str).collect();
    let id = w.queue.dispatch_batch(batch(&members).allow_failures(true)).await.unwrap();
    let (steps, _) = w.take().await;
    assert_eq!(steps.len(), many);
    for step in &steps {
        w.fail(step, "no").await;
    }
    let info = w.info(id).await;
    assert_eq!(info.failed, many as u64, "every failure is counted");
    assert_eq!(info.failed_jobs.len(), conc_bus::batch::MAX_FAILED_JOBS, "the first ones listed");
    assert_eq!(info.failed_jobs[0], steps[0].lease.job, "oldest failure first");
    assert!(info.is_finished());
}

pub async fn recovery_redispatches_the_failed_members_and_then_fires_once<B: WorkflowBackend>(
    w: W<B>,
) {
    let id = w.queue.dispatch_batch(batch(&["a", "b", "c"]).allow_failures(true)).await.unwrap();
    let refused = w.queue.recover_batch(id).await;
    assert!(
        matches!(refused, Err(WorkflowError::NotRecoverable { reason: "it is not finished", .. })),
        "{refused:?}"
    );
    let (steps, _) = w.take().await;
    w.ack(&steps[0]).await;
    w.fail(&steps[1], "one").await;
    w.fail(&steps[2], "two").await;
    let first = w.drain().await;
    assert_eq!(
        kinds(&first),
        [
            TriggerKind::Catch,
            TriggerKind::Finally,
            TriggerKind::Progress,
            TriggerKind::Progress,
            TriggerKind::Progress
        ]
    );
    assert_eq!(w.queue.failed_count(None).await.unwrap(), 2);

    let mut progress = w.queue.subscribe_batches();
    assert_eq!(w.queue.recover_batch(id).await.unwrap(), 2);
    let info = w.info(id).await;
    assert_eq!((info.pending, info.failed, info.succeeded), (2, 0, 1));
    assert!(info.failed_jobs.is_empty() && !info.is_finished() && !info.is_cancelled());
    assert_eq!(w.queue.failed_count(None).await.unwrap(), 0, "taken out of the failed store");
    let (again, calls) = w.take().await;
    assert!(calls.is_empty());
    let mut ids: Vec<_> = again.iter().map(|r| r.lease.job).collect();
    ids.sort();
    let mut failed: Vec<_> = steps[1..].iter().map(|r| r.lease.job).collect();
    failed.sort();
    assert_eq!(ids, failed, "the same members, back in the same batch");
    for reserved in &again {
        w.ack(reserved).await;
    }
    let heard: Vec<_> = std::iter::from_fn(|| progress.try_recv().ok()).collect();
    assert_eq!(heard.len(), 2);
    assert!(heard.iter().all(|p| p.outcome == MemberOutcome::Succeeded));
    assert!(heard[1].finished);
    // `then` fires once; `catch` and `finally` fired the first time.
    let second = w.drain().await;
    assert_eq!(kinds(&second), [TriggerKind::Progress, TriggerKind::Progress, TriggerKind::Then]);
    let info = w.info(id).await;
    assert_eq!((info.succeeded, info.failed, info.is_finished()), (3, 0, true));
    // Five `progress` jobs in all: three outcomes, then two after recovery.
    let dispatched = |kind| info.callbacks.iter().find(|c| c.kind == kind).map(|c| c.dispatched);
    assert_eq!(dispatched(TriggerKind::Progress), Some(5));
    assert_eq!(dispatched(TriggerKind::Then), Some(1));
    assert_eq!(w.queue.recover_batch(id).await.unwrap(), 0, "nothing left to recover");
    assert!(w.drain().await.is_empty());

    // A batch whose failure cancelled its other members cannot be recovered.
    let other = w.queue.dispatch_batch(batch(&["d", "e"])).await.unwrap();
    let d = w.reserve(1).await.remove(0);
    w.fail(&d, "boom").await;
    let refused = w.queue.recover_batch(other).await;
    assert!(matches!(refused, Err(WorkflowError::NotRecoverable { .. })), "{refused:?}");
    let missing = w.queue.recover_batch(conc_bus::batch::BatchId::new()).await;
    assert!(matches!(missing, Err(WorkflowError::NotFound { .. })), "{missing:?}");
}

pub async fn a_cancelled_batchs_member_whose_worker_died_is_dropped_not_run_again<
    B: WorkflowBackend,
>(
    w: W<B>,
) {
    let id = w.queue.dispatch_batch(batch(&["a", "b"])).await.unwrap();
    let running = w.reserve(2).await;
    assert_eq!(running.len(), 2);
    assert!(w.queue.cancel_batch(id).await.unwrap());
    // Both workers die: their leases run out and the jobs come back.
    w.clock.advance(LEASE + Duration::from_secs(1));
    let (steps, mut calls) = w.take().await;
    assert!(steps.is_empty(), "a cancelled batch's members are not run again");
    // The reservation that dropped them fired `finally` (handed out then or next).
    let (more_steps, more) = w.take().await;
    assert!(more_steps.is_empty());
    calls.extend(more);
    assert_eq!(calls.iter().map(kind).collect::<Vec<_>>(), [TriggerKind::Finally]);
    let info = w.info(id).await;
    assert_eq!((info.cancelled, info.pending, info.is_finished()), (2, 0, true));
    // A late acknowledgement of a dead worker is refused.
    assert!(w.settle(&running[0].lease, Transition::Ack).await.is_err());
}

pub async fn a_cancelled_member_out_of_attempts_whose_worker_died_counts_as_cancelled<
    B: WorkflowBackend,
>(
    w: W<B>,
) {
    let member = PendingBatch::new().finally(callback("finally")).add(step("a"));
    let id = w.queue.dispatch_batch(member).await.unwrap();
    // Two workers die; the third attempt runs while the batch is cancelled,
    // and its worker dies too.
    for _ in 0..2 {
        assert_eq!(w.reserve(1).await.len(), 1);
        w.clock.advance(LEASE + Duration::from_secs(1));
    }
    assert_eq!(w.reserve(1).await.len(), 1);
    assert!(w.queue.cancel_batch(id).await.unwrap());
    w.clock.advance(LEASE + Duration::from_secs(1));
    // Out of attempts, but its batch is cancelled: dropped, not failed.
    let mut calls = w.reserve(1).await;
    calls.extend(w.reserve(1).await);
    assert_eq!(calls.iter().map(kind).collect::<Vec<_>>(), [TriggerKind::Finally]);
    let info = w.info(id).await;
    assert_eq!((info.cancelled, info.failed, info.is_finished()), (1, 0, true));
    assert!(w.queue.failed(&FailedQuery::default()).await.unwrap().is_empty());
}
