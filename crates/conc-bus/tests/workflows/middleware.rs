//! Batch middleware: named layers stamped on every member of a batch.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use conc_bus::batch::{BatchJobs, PendingBatch, WorkflowError};
use conc_bus::chain::Chain;
use conc_bus::middleware::{JobRequest, JobService};
use conc_bus::queue::WorkflowBackend;
use conc_bus::{
    DecodeError, FailedQuery, JobContext, JobError, JobHandlers, JobOptions, MAX_MIDDLEWARE_NAME,
    Worker,
};
use conc_core::BoxFuture;
use tower::{Layer, Service};

use super::{Callback, Step, W, callback, name, step};

pub async fn a_batch_stamps_its_middleware_on_every_member_and_link<B: WorkflowBackend>(w: W<B>) {
    let own = JobOptions::new().through("own").through("batch-limit");
    let batch = PendingBatch::new()
        .jobs(BatchJobs::new().add_with(step("a"), &own))
        .add_chain(Chain::new(step("c1")).then(step("c2")))
        .then(callback("then"))
        .through("batch-limit");
    let id = w.queue.dispatch_batch(batch).await.unwrap();
    assert_eq!(w.info(id).await.middleware, ["batch-limit"]);
    let added = w.queue.add_to_batch(id, BatchJobs::new().add(step("added"))).await.unwrap();
    assert_eq!(added, 1);
    let mut seen = Vec::new();
    loop {
        let (steps, calls) = w.take().await;
        if steps.is_empty() && calls.is_empty() {
            break;
        }
        for reserved in &steps {
            seen.push((name(reserved), reserved.envelope.middleware.clone()));
            w.ack(reserved).await;
        }
        for call in &calls {
            assert!(call.envelope.middleware.is_empty(), "callbacks are not members");
            w.ack(call).await;
        }
    }
    seen.sort();
    let batch_only = vec!["batch-limit".to_owned()];
    assert_eq!(
        seen,
        [
            ("a".to_owned(), vec!["batch-limit".to_owned(), "own".to_owned()]),
            ("added".to_owned(), batch_only.clone()),
            ("c1".to_owned(), batch_only.clone()),
            ("c2".to_owned(), batch_only),
        ],
        "the batch's names come first, each name once"
    );
    assert!(w.info(id).await.is_finished());
}

pub async fn a_bad_middleware_name_is_refused_and_nothing_is_stored<B: WorkflowBackend>(w: W<B>) {
    let long = "x".repeat(MAX_MIDDLEWARE_NAME + 1);
    for bad in [String::new(), long] {
        let refused =
            w.queue.dispatch_batch(PendingBatch::new().add(step("a")).through(bad.clone()));
        match refused.await {
            Err(WorkflowError::Invalid(error)) => {
                assert_eq!(error.field, "middleware");
                assert!(error.to_string().contains(&bad), "{error}");
            }
            other => panic!("expected a refusal naming `{bad}`, got {other:?}"),
        }
        let error = w.queue.dispatch(step("b")).through(bad).await.unwrap_err();
        assert_eq!(error.into_job(), step("b"), "the job is handed back");
    }
    assert!(w.queue.batches(10).await.unwrap().is_empty());
    assert!(w.take().await.0.is_empty());
}

/// The batch (if any) and step name of each attempt, in order.
type Log = Arc<Mutex<Vec<(Option<String>, String)>>>;

/// Records the batch and job of every attempt it lets through.
#[derive(Clone, Default)]
struct Record {
    log: Log,
}

impl Layer<JobService> for Record {
    type Service = Recorded;
    fn layer(&self, inner: JobService) -> Recorded {
        Recorded { inner, log: Arc::clone(&self.log) }
    }
}

#[derive(Clone)]
struct Recorded {
    inner: JobService,
    log: Log,
}

impl Service<JobRequest> for Recorded {
    type Response = ();
    type Error = JobError;
    type Future = BoxFuture<'static, Result<(), JobError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), JobError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: JobRequest) -> Self::Future {
        let batch = request.context().batch_id().map(|id| id.to_string());
        let job: Step = request.decode().expect("a step");
        self.log.lock().unwrap().push((batch, job.name));
        Box::pin(self.inner.call(request))
    }
}

pub async fn a_worker_runs_members_through_the_named_layer_and_fails_unknown_names<
    B: WorkflowBackend,
>(
    w: W<B>,
) {
    let record = Record::default();
    let queue = w.queue.clone();
    let handlers = JobHandlers::new()
        .handle(move |job: Step, ctx: JobContext| {
            let queue = queue.clone();
            async move {
                if job.name == "parent" {
                    let jobs = BatchJobs::new().add(step("child"));
                    queue.add_to_batch_from(&ctx, jobs).await.map_err(JobError::retry)?;
                    ctx.append_to_chain(step("appended")).map_err(JobError::retry)?;
                }
                Ok::<(), JobError>(())
            }
        })
        .handle(|_: Callback, _: JobContext| async { Ok::<(), JobError>(()) })
        .named_layer("batch-limit", record.clone());
    let batch = PendingBatch::new()
        .add(step("parent"))
        .add(step("sibling"))
        .then(callback("then"))
        .through("batch-limit");
    let id = w.queue.dispatch_batch(batch).await.unwrap();
    w.queue.dispatch(step("plain")).await.unwrap();
    let lost = w.queue.dispatch(step("lost")).through("nobody-registers-this").await.unwrap();
    let worker = Worker::builder_shared(Arc::clone(&w.backend), handlers)
        .stop_when_empty(true)
        .build()
        .unwrap();
    worker.run().await.unwrap();

    let info = w.info(id).await;
    // The appended link belongs to its parent's member: three members.
    assert_eq!((info.total, info.succeeded, info.is_finished()), (3, 3, true));
    let mut log = record.log.lock().unwrap().clone();
    log.sort();
    let batch = Some(id.to_string());
    assert_eq!(
        log,
        [
            (batch.clone(), "appended".to_owned()),
            (batch.clone(), "child".to_owned()),
            (batch.clone(), "parent".to_owned()),
            (batch, "sibling".to_owned()),
        ],
        "every member passed the batch's layer once; the plain job and the callback did not"
    );
    let failed = w.queue.failed(&FailedQuery::new()).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].envelope.id, lost);
    let expected = DecodeError::UnknownMiddleware {
        name: "step".into(),
        middleware: "nobody-registers-this".into(),
    };
    assert!(failed[0].error.contains(&expected.to_string()), "{}", failed[0].error);
}
