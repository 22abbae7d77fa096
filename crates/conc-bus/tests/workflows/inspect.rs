//! What operators read of a batch: each member's outcome, each callback and
//! how often it was dispatched.

use conc_bus::batch::{BatchCallback, MemberOutcome};
use conc_bus::job::TriggerKind;
use conc_bus::queue::WorkflowBackend;

use super::{W, batch};

fn dispatched(callbacks: &[BatchCallback], kind: TriggerKind) -> u64 {
    callbacks.iter().find(|c| c.kind == kind).map_or(u64::MAX, |c| c.dispatched)
}

pub async fn members_and_callbacks_are_shown_as_they_settle<B: WorkflowBackend>(w: W<B>) {
    let id = w.queue.dispatch_batch(batch(&["a", "b", "c"]).allow_failures(true)).await.unwrap();
    let info = w.info(id).await;
    let kinds: Vec<TriggerKind> = info.callbacks.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [TriggerKind::Then, TriggerKind::Catch, TriggerKind::Finally, TriggerKind::Progress]
    );
    assert!(info.callbacks.iter().all(|c| c.job == "callback" && c.dispatched == 0));
    let members = w.queue.batch_members(id, 0, 10).await.unwrap();
    assert_eq!(members.len(), 3);
    assert!(members.iter().all(|(_, outcome)| outcome.is_none()));

    let (steps, _) = w.take().await;
    w.ack(&steps[0]).await;
    w.fail(&steps[1], "boom").await;
    let info = w.info(id).await;
    assert_eq!(dispatched(&info.callbacks, TriggerKind::Progress), 2);
    assert_eq!(dispatched(&info.callbacks, TriggerKind::Catch), 1);
    assert_eq!(dispatched(&info.callbacks, TriggerKind::Finally), 0);
    let members = w.queue.batch_members(id, 0, 10).await.unwrap();
    let outcome = |job| members.iter().find(|(id, _)| *id == job).map(|(_, o)| *o);
    assert_eq!(outcome(steps[0].envelope.id), Some(Some(MemberOutcome::Succeeded)));
    assert_eq!(outcome(steps[1].envelope.id), Some(Some(MemberOutcome::Failed)));
    assert_eq!(outcome(steps[2].envelope.id), Some(None));

    let mut ids: Vec<_> = steps.iter().map(|s| s.envelope.id).collect();
    ids.sort();
    let page = w.queue.batch_members(id, 1, 1).await.unwrap();
    assert_eq!(page.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [ids[1]]);

    w.ack(&steps[2]).await;
    let info = w.info(id).await;
    assert_eq!(dispatched(&info.callbacks, TriggerKind::Finally), 1);
    assert_eq!(dispatched(&info.callbacks, TriggerKind::Then), 0, "a member failed");
    let missing = conc_bus::batch::BatchId::new();
    assert!(w.queue.batch_members(missing, 0, 10).await.unwrap().is_empty());
}

pub async fn progress_holds_for_counts_that_do_not_add_up<B: WorkflowBackend>(w: W<B>) {
    let id = w.queue.dispatch_batch(batch(&["a", "b"])).await.unwrap();
    let mut info = w.info(id).await;
    assert_eq!(info.progress(), 0);
    // An info read from elsewhere (deserialized) may say anything.
    info.pending = info.total + 5;
    assert_eq!(info.progress(), 0);
    info.total = u64::MAX;
    info.pending = 1;
    assert_eq!(info.progress(), 99);
}
