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

pub async fn batches_are_listed_by_state_name_and_cursor<B: WorkflowBackend>(w: W<B>) {
    use std::time::Duration;

    use conc_bus::batch::{BatchId, BatchInfo, BatchQuery, BatchState, PendingBatch};

    // Newest last: import 0..4 and export 5..6; the empty ones (1, 5) are
    // finished at once, 2 and 6 are cancelled, the rest pending.
    let mut ids: Vec<BatchId> = Vec::new();
    for n in 0..7 {
        let name = if n < 5 { format!("import {n}") } else { format!("export {n}") };
        let mut batch = PendingBatch::new().name(name.clone());
        if n != 1 && n != 5 {
            batch = batch.add(super::step(&name));
        }
        let id = w.queue.dispatch_batch(batch).await.unwrap();
        if n == 2 || n == 6 {
            w.backend.cancel_batch(id).await.unwrap();
        }
        ids.push(id);
        w.clock.advance(Duration::from_millis(3));
    }
    let listed = async |query: BatchQuery| -> Vec<usize> {
        let found: Vec<BatchInfo> = w.backend.list_batches(&query).await.unwrap();
        // The same as filtering the newest-first listing.
        let newest = w.backend.batches(1_000).await.unwrap();
        let mut expected: Vec<BatchId> = newest
            .iter()
            .filter(|info| query.before.is_none_or(|before| info.id < before))
            .filter(|info| query.matches(info))
            .map(|info| info.id)
            .collect();
        expected.truncate(query.limit);
        assert_eq!(found.iter().map(|b| b.id).collect::<Vec<_>>(), expected, "{query:?}");
        found.iter().map(|b| ids.iter().position(|id| *id == b.id).unwrap()).collect()
    };
    assert_eq!(listed(BatchQuery::new()).await, [6, 5, 4, 3, 2, 1, 0]);
    assert_eq!(listed(BatchQuery::new().state(BatchState::Pending)).await, [4, 3, 0]);
    assert_eq!(listed(BatchQuery::new().state(BatchState::Finished)).await, [5, 1]);
    assert_eq!(listed(BatchQuery::new().state(BatchState::Cancelled)).await, [6, 2]);
    assert_eq!(listed(BatchQuery::new().name("export")).await, [6, 5]);
    assert_eq!(listed(BatchQuery::new().name("port 3")).await, [3]);
    let cancelled_imports = BatchQuery::new().name("import").state(BatchState::Cancelled);
    assert_eq!(listed(cancelled_imports).await, [2]);
    assert!(listed(BatchQuery::new().name("Import")).await.is_empty(), "case-sensitive");

    // Pages of two after a cursor, through every pending or cancelled one.
    let mut pages = Vec::new();
    let mut query = BatchQuery::new().limit(2);
    loop {
        let page = listed(query.clone()).await;
        let Some(&last) = page.last() else { break };
        pages.push(page);
        query = query.before(ids[last]);
    }
    assert_eq!(pages, [vec![6, 5], vec![4, 3], vec![2, 1], vec![0]]);
    let after = BatchQuery::new().before(ids[4]).state(BatchState::Pending);
    assert_eq!(listed(after).await, [3, 0]);
}
