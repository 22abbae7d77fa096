//! Workers in 1, 2 and 4 processes on one Redis: jobs per second for each,
//! and the CPU the server spent (from `INFO cpu` before and after).
//!
//! ```text
//! cargo run --release -p conc-bus --features redis --example redis_scale_out
//! cargo run --release -p conc-bus --features redis --example redis_scale_out -- --jobs 200000 --processes 1,2,4,8 --url redis://127.0.0.1:6379/
//! ```
//!
//! Without `--url` it starts its own `redis-server` on a free loopback port
//! (no persistence). For each number of processes it pushes the jobs (no-op,
//! a thousand per push), then starts that many worker processes (this
//! program again; each a `Worker` with concurrency 64 and prefetch 64 on a
//! one-thread runtime, stopping once the queue is empty) and times them from
//! start to the last exit. The server runs every script on one thread, so
//! when its CPU nears 100% of a core, more worker processes add nothing:
//! Redis, not the workers, is the limit. On a machine with fewer cores than
//! processes plus the server, the cores are the limit first.
#![allow(clippy::print_stdout, clippy::print_stderr, reason = "an example prints its figures")]

use std::hint::black_box;
use std::process::Command;
use std::time::Instant;

use conc_bus::{Job, JobContext, JobError, JobHandlers, Queue, RedisQueue, Worker};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Noop {
    n: u64,
}

impl Job for Noop {
    const NAME: &'static str = "noop";
}

type Error = Box<dyn std::error::Error>;

/// The queues of one run, under a key prefix of their own.
async fn backend(url: &str, prefix: &str) -> Result<RedisQueue, Error> {
    Ok(RedisQueue::builder(url).key_prefix(prefix).connect().await?)
}

/// A worker process: drains the queue under `prefix`, then exits.
fn worker(url: &str, prefix: &str) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let handlers = JobHandlers::new().handle(|job: Noop, _: JobContext| async move {
            black_box(job.n);
            Ok::<(), JobError>(())
        });
        Worker::builder(backend(url, prefix).await?, handlers)
            .concurrency(64)
            .prefetch(64)
            .stop_when_empty(true)
            .build()?
            .run()
            .await?;
        Ok(())
    })
}

/// The server's CPU time so far (user + system), in seconds.
async fn server_cpu(raw: &mut redis::aio::MultiplexedConnection) -> Result<f64, Error> {
    let info: String = redis::cmd("INFO").arg("cpu").query_async(raw).await?;
    let mut total = 0.0;
    for line in info.lines() {
        if let Some(value) =
            line.strip_prefix("used_cpu_sys:").or_else(|| line.strip_prefix("used_cpu_user:"))
        {
            total += value.trim().parse::<f64>()?;
        }
    }
    Ok(total)
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("worker") {
        return worker(&args[1], &args[2]);
    }
    let mut jobs: u64 = 100_000;
    let mut counts = vec![1, 2, 4];
    let mut url = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--jobs" => jobs = rest.next().ok_or("--jobs needs a number")?.parse()?,
            "--url" => url = Some(rest.next().ok_or("--url needs a URL")?.clone()),
            "--processes" => {
                let list = rest.next().ok_or("--processes needs a list such as 1,2,4")?;
                counts = list.split(',').map(str::parse).collect::<Result<_, _>>()?;
            }
            other => return Err(format!("unknown argument `{other}`").into()),
        }
    }
    // Kept alive to the end when started here.
    let mut _server = None;
    let url = if let Some(url) = url {
        url
    } else {
        let server = conc_test_support::RedisServer::start()?;
        let url = server.url();
        _server = Some(server);
        url
    };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!("{jobs} no-op jobs per run on {url}; {cores} cores on this machine");
    println!("| worker processes | jobs/s | redis-server CPU | server CPU per job |");
    println!("|---|---|---|---|");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let exe = std::env::current_exe()?;
    for (run, processes) in counts.into_iter().enumerate() {
        let prefix = format!("conc-scale-{run}:");
        let (mut raw, backend) = runtime.block_on(async {
            let raw = redis::Client::open(url.as_str())?.get_multiplexed_async_connection().await?;
            Ok::<_, Error>((raw, backend(&url, &prefix).await?))
        })?;
        runtime.block_on(async {
            let queue = Queue::new(backend.clone());
            let mut n = 0;
            while n < jobs {
                let chunk: Vec<Noop> = (n..jobs.min(n + 1_000)).map(|n| Noop { n }).collect();
                n += chunk.len() as u64;
                queue.push_bulk(chunk).await.map_err(|error| error.to_string())?;
            }
            Ok::<_, Error>(())
        })?;
        let before = runtime.block_on(server_cpu(&mut raw))?;
        let started = Instant::now();
        let children = (0..processes)
            .map(|_| Command::new(&exe).args(["worker", &url, &prefix]).spawn())
            .collect::<Result<Vec<_>, _>>()?;
        for mut child in children {
            let status = child.wait()?;
            if !status.success() {
                return Err(format!("a worker process failed: {status}").into());
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        let cpu = runtime.block_on(server_cpu(&mut raw))? - before;
        let left = runtime.block_on(Queue::new(backend).size("default"))?.total();
        if left != 0 {
            return Err(format!("{left} jobs were left under `{prefix}`").into());
        }
        println!(
            "| {processes} | {:.0} | {:.0}% of a core | {:.1} µs |",
            jobs as f64 / elapsed,
            cpu / elapsed * 100.0,
            cpu / jobs as f64 * 1e6
        );
    }
    Ok(())
}
