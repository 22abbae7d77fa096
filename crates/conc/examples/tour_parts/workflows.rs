//! The tour's section 12, workflows (run at the end of section 11): a batch
//! of thumbnails whose progress callback runs after each one, a chain with
//! its catch, and a unique job refused while the first one waits.

use std::sync::{Arc, Mutex};

use conc::BoxError;
use conc::bus::admission::Admission;
use conc::bus::batch::PendingBatch;
use conc::bus::chain::Chain;
use conc::bus::job::TriggerKind;
use conc::bus::{EnqueueError, Job, JobContext, JobError, JobHandlers, MemoryQueue, Queue, Worker};

#[derive(serde::Serialize, serde::Deserialize)]
struct Thumbnail {
    photo: u32,
}
impl Job for Thumbnail {
    const NAME: &'static str = "thumbnail";
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Album;
impl Job for Album {
    const NAME: &'static str = "album";

    // Callbacks jump the queue, so progress shows between the thumbnails.
    fn options() -> conc::bus::JobOptions {
        conc::bus::JobOptions::new().priority(5)
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Step(String);
impl Job for Step {
    const NAME: &'static str = "step";
}

pub(crate) async fn workflows() -> Result<(), BoxError> {
    println!("\n== 12. Workflows: a batch, a chain, a unique job ==\n");
    let backend = MemoryQueue::new();
    let queue = Queue::new(backend.clone());
    let batch = PendingBatch::new()
        .name("album 7")
        .add(Thumbnail { photo: 1 })
        .add(Thumbnail { photo: 2 })
        .add(Thumbnail { photo: 3 })
        .progress(Album)
        .then(Album)
        .finally(Album);
    let id = queue.dispatch_batch(batch).await?;
    let chain = Chain::new(Step("fetch".into()))
        .then(Step("parse".into()))
        .then(Step("store".into()))
        .catch(Step("alert".into()));
    queue.dispatch_chain(chain).await?;

    let unique = || Admission::unique("album-7-export");
    queue.dispatch(Step("export".into())).admission(unique()).await?;
    match queue.dispatch(Step("export".into())).admission(unique()).await {
        Err(EnqueueError::Locked { key, held_by, .. }) => {
            println!("  unique: a second export is refused: job {held_by} holds `{key}`");
        }
        other => println!("  unique: unexpected {other:?}"),
    }

    let steps = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&steps);
    let progress = queue.clone();
    let handlers = JobHandlers::new()
        .handle(|_: Thumbnail, _: JobContext| async { Ok::<(), JobError>(()) })
        .handle(move |_: Album, ctx: JobContext| {
            let queue = progress.clone();
            async move {
                let trigger = ctx.trigger().map(|t| t.kind);
                let info = queue.batch(id).await.map_err(JobError::retry)?;
                let done = info.map_or(0, |b| b.progress());
                match trigger {
                    Some(TriggerKind::Progress) => println!("  batch: progress {done}%"),
                    Some(kind) => println!("  batch: {kind:?} callback ran ({done}% done)"),
                    None => {}
                }
                Ok::<(), JobError>(())
            }
        })
        .handle(move |step: Step, _: JobContext| {
            let seen = Arc::clone(&seen);
            async move {
                seen.lock().map_err(|_| JobError::fatal("poisoned"))?.push(step.0);
                Ok::<(), JobError>(())
            }
        });
    let worker = Worker::builder(backend, handlers).concurrency(1).stop_when_empty(true);
    worker.build()?.run().await?;
    let steps = steps.lock().map_err(|_| "poisoned")?.join(" → ");
    println!("  chain and unique job ran: {steps}");
    Ok(())
}
