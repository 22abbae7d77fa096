//! Two worker processes sharing one queue on a local redis-server.
//!
//! ```text
//! redis-server &                      # any server you can reach
//! cargo run -p conc-bus --features redis --example redis_workers
//! cargo run -p conc-bus --features redis --example redis_workers -- redis://10.0.0.5:6379/
//! ```
//!
//! This process pushes 20 jobs, then starts two worker processes (this
//! program again, with `worker` as its first argument); each takes jobs no
//! other holds, prints them, and stops once the queue is empty. On several
//! hosts it is the same: point every worker at the same URL. The keys are
//! under a prefix of their own (`conc-example:`); the queue is empty at the
//! end (its counter, wake-up list and name stay). With no server at the URL
//! the example says so and exits.
#![allow(clippy::print_stdout, clippy::print_stderr, reason = "an example prints what happens")]

use std::process::Command;
use std::time::Duration;

use conc_bus::{Job, JobContext, JobError, JobHandlers, Queue, QueueBackend, RedisQueue, Worker};
use serde::{Deserialize, Serialize};

const PREFIX: &str = "conc-example:";

#[derive(Serialize, Deserialize)]
struct Resize {
    image: u32,
}

impl Job for Resize {
    const NAME: &'static str = "resize";
}

async fn backend(url: &str) -> Result<RedisQueue, conc_bus::QueueError> {
    RedisQueue::builder(url).key_prefix(PREFIX).connect().await
}

/// A worker process: runs jobs until the queue is empty.
async fn worker(url: &str, name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let name = name.to_owned();
    let handlers = JobHandlers::new().handle(move |job: Resize, ctx: JobContext| {
        let name = name.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            println!(
                "{name} (pid {}) resized image {} (job {})",
                std::process::id(),
                job.image,
                ctx.id()
            );
            Ok::<(), JobError>(())
        }
    });
    Worker::builder(backend(url).await?, handlers)
        .concurrency(2)
        .stop_when_empty(true)
        .build()?
        .run()
        .await?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("worker") {
        return worker(&args[1], &args[2]).await;
    }
    let url = args
        .first()
        .cloned()
        .or_else(|| std::env::var("REDIS_URL").ok())
        .unwrap_or_else(|| "redis://127.0.0.1:6379/".to_owned());
    let backend = match backend(&url).await {
        Ok(backend) => backend,
        Err(error) => {
            eprintln!("no redis-server answers at {url} ({error}); start one, or pass its URL");
            return Ok(());
        }
    };
    let queue = Queue::new(backend.clone());
    queue.push_bulk((1..=20).map(|image| Resize { image }).collect()).await?;
    println!("pushed 20 jobs to {url} (keys under {})", backend.queue_keys("default"));

    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for name in ["worker-a", "worker-b"] {
        children.push(Command::new(&exe).args(["worker", &url, name]).spawn()?);
    }
    for mut child in children {
        let status = child.wait()?;
        if !status.success() {
            return Err(format!("a worker process failed: {status}").into());
        }
    }
    let size = backend.size("default").await?;
    println!("both workers stopped; {} jobs left", size.total());
    Ok(())
}
