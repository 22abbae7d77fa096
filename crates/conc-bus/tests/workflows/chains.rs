//! The chain checks of the workflow suite, and the end-to-end run.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use conc_bus::batch::{BatchJobs, PendingBatch};
use conc_bus::chain::Chain;
use conc_bus::job::TriggerKind;
use conc_bus::queue::WorkflowBackend;
use conc_bus::{JobContext, JobError, JobHandlers, JobOptions, Transition, Worker};

use super::{Callback, Step, W, callback, kind, kinds, name, step};

pub async fn a_chain_runs_link_after_link<B: WorkflowBackend>(w: W<B>) {
    let chain = Chain::new(step("a")).then(step("b")).then(step("c")).catch(callback("catch"));
    let first = w.queue.dispatch_chain(chain).await.unwrap();
    let mut order = Vec::new();
    loop {
        let (steps, calls) = w.take().await;
        assert!(calls.is_empty(), "nothing failed");
        if steps.is_empty() {
            break;
        }
        assert_eq!(steps.len(), 1, "one link at a time");
        order.push(name(&steps[0]));
        w.ack(&steps[0]).await;
    }
    assert_eq!(order, ["a", "b", "c"]);
    assert_ne!(first, conc_bus::JobId::from_u128(0));
}

pub async fn a_chain_stops_at_a_failed_link_and_catches_once<B: WorkflowBackend>(w: W<B>) {
    let chain = Chain::new(step("a")).then(step("b")).then(step("c")).catch(callback("catch"));
    w.queue.dispatch_chain(chain).await.unwrap();
    let a = w.reserve(1).await.remove(0);
    w.ack(&a).await;
    let b = w.reserve(1).await.remove(0);
    assert_eq!(name(&b), "b");
    w.fail(&b, "parse error").await;
    let (steps, calls) = w.take().await;
    assert!(steps.is_empty(), "c never runs");
    assert_eq!(calls.len(), 1);
    assert_eq!(kind(&calls[0]), TriggerKind::ChainCatch);
    let trigger = calls[0].envelope.flow.as_ref().unwrap().trigger.clone().unwrap();
    assert_eq!((trigger.job, trigger.error.as_deref()), (Some(b.lease.job), Some("parse error")));
    w.ack(&calls[0]).await;
    assert!(w.drain().await.is_empty());
}

pub async fn a_released_link_holds_its_chain<B: WorkflowBackend>(w: W<B>) {
    w.queue.dispatch_chain(Chain::new(step("a")).then(step("b"))).await.unwrap();
    let a = w.reserve(1).await.remove(0);
    let release = Transition::Release { delay: Duration::from_secs(10) };
    w.settle(&a.lease, release).await.unwrap();
    assert!(w.reserve(10).await.is_empty(), "b waits for a");
    w.clock.advance(Duration::from_secs(11));
    let again = w.reserve(10).await;
    assert_eq!(again.iter().map(name).collect::<Vec<_>>(), ["a"]);
}

pub async fn a_link_prepends_and_appends<B: WorkflowBackend>(w: W<B>) {
    w.queue.dispatch_chain(Chain::new(step("a")).then(step("b"))).await.unwrap();
    let a = w.reserve(1).await.remove(0);
    let envelope =
        |name: &str| conc_bus::Envelope::new(&step(name), &conc_bus::JobOptions::new(), 0).unwrap();
    let edit = Transition::AckChain {
        prepend: vec![envelope("first"), envelope("second")],
        append: vec![envelope("last")],
    };
    w.settle(&a.lease, edit).await.unwrap();
    let mut order = Vec::new();
    loop {
        let (steps, _) = w.take().await;
        let Some(link) = steps.first() else { break };
        order.push(name(link));
        w.ack(link).await;
    }
    assert_eq!(order, ["first", "second", "b", "last"]);
}

pub async fn a_chain_inside_a_batch_with_a_failing_middle_link_fires_finally<B: WorkflowBackend>(
    w: W<B>,
) {
    let chain = Chain::new(step("a")).then(step("b")).then(step("c"));
    let batch = super::batch(&["solo"]).allow_failures(true).add_chain(chain);
    let id = w.queue.dispatch_batch(batch).await.unwrap();
    assert_eq!(w.info(id).await.total, 2, "a chain is one member");
    let (steps, _) = w.take().await;
    for reserved in &steps {
        w.ack(reserved).await;
    }
    let (steps, early) = w.take().await;
    let b = &steps[0];
    assert_eq!((steps.len(), name(b).as_str()), (1, "b"));
    w.fail(b, "middle failed").await;
    let info = w.info(id).await;
    assert_eq!((info.succeeded, info.failed, info.is_finished()), (1, 1, true));
    let mut callbacks = w.drain().await;
    callbacks.extend(early.into_iter().map(|r| (kind(&r), r)));
    assert_eq!(
        kinds(&callbacks),
        [TriggerKind::Catch, TriggerKind::Finally, TriggerKind::Progress, TriggerKind::Progress]
    );
}

pub async fn a_worker_runs_a_batch_with_progress_and_adds_from_a_member<B: WorkflowBackend>(
    w: W<B>,
) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let queue = w.queue.clone();
    let log = Arc::clone(&seen);
    let log2 = Arc::clone(&seen);
    let handlers = JobHandlers::new()
        .handle(move |job: Step, ctx: JobContext| {
            let queue = queue.clone();
            let log = Arc::clone(&log);
            async move {
                if job.name == "parent" {
                    // Each attempt adds a child, then a grandchild; the
                    // first attempt fails after adding: the retry adds nothing new.
                    for name in ["child", "grandchild"] {
                        let jobs = BatchJobs::new().add(step(name));
                        queue.add_to_batch_from(&ctx, jobs).await.map_err(JobError::retry)?;
                    }
                    if ctx.attempt() == 1 {
                        return Err(JobError::retry("first attempt fails after adding"));
                    }
                    ctx.append_to_chain(step("appended")).map_err(JobError::retry)?;
                }
                log.lock().unwrap().push(job.name);
                Ok::<(), JobError>(())
            }
        })
        .handle(move |job: Callback, ctx: JobContext| {
            let log = Arc::clone(&log2);
            async move {
                let kind = ctx.trigger().map(|t| t.kind);
                log.lock().unwrap().push(format!("{}:{kind:?}", job.name));
                Ok::<(), JobError>(())
            }
        });
    let quick = JobOptions::new().backoff(vec![Duration::ZERO]);
    let batch = PendingBatch::new()
        .jobs(BatchJobs::new().add_with(step("parent"), &quick))
        .add(step("other"))
        .progress(callback("progress"))
        .then(callback("then"));
    let id = w.queue.dispatch_batch(batch).await.unwrap();
    let worker = Worker::builder_shared(Arc::clone(&w.backend), handlers)
        .stop_when_empty(true)
        .build()
        .unwrap();
    worker.run().await.unwrap();
    let info = w.info(id).await;
    assert_eq!((info.total, info.succeeded, info.is_finished()), (4, 4, true));
    let mut log = seen.lock().unwrap().clone();
    log.sort();
    assert_eq!(
        log,
        [
            "appended",
            "child",
            "grandchild",
            "other",
            "parent",
            "progress:Some(Progress)",
            "progress:Some(Progress)",
            "progress:Some(Progress)",
            "progress:Some(Progress)",
            "then:Some(Then)",
        ]
    );
}
