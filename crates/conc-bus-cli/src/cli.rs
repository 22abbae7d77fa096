//! The command line: clap definitions and what each command prints.

mod batches;

use std::fmt::Write as _;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use conc_bus::{FailedQuery, JobId, WorkerBeat};
use conc_bus_cli::{
    Admin, AdminError, FailedSummary, QueueReport, RetryFailed, connect, short_duration, table,
    utc, visible_payload,
};
use serde::Serialize;
use serde_json::json;

/// Operate conc-bus queues: sizes and waits, pause, resume, clear, the
/// workers of every process, failed jobs (list, show, retry, forget, flush,
/// prune) and batches (list, show, cancel, prune).
#[derive(Debug, Parser)]
#[command(name = "conc-bus", version)]
pub(crate) struct Cli {
    /// The backend: `sqlite:PATH` (or a path to a queue file), `redis://…`, `memory:`.
    #[arg(long, short, env = "CONC_BUS_BACKEND", global = true, default_value = "")]
    backend: String,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The queues, a page at a time: ready, delayed and reserved jobs, the
    /// oldest wait, paused, failed.
    Queues(QueuesArgs),
    /// The workers of every process, from their heartbeats: host, pid,
    /// queues, state, busy slots, jobs processed and failed, jobs per minute.
    Workers,
    /// One queue: show, pause, resume or clear it.
    Queue {
        #[command(subcommand)]
        action: QueueAction,
    },
    /// The failed store: list, show, retry, forget, flush, prune.
    Failed {
        #[command(subcommand)]
        action: FailedAction,
    },
    /// Batches: list, show, cancel, prune (SQLite and memory backends).
    Batches {
        #[command(subcommand)]
        action: batches::BatchAction,
    },
}

#[derive(Debug, Subcommand)]
enum QueueAction {
    /// Its sizes, wait and failed jobs.
    Show { queue: String },
    /// Stop workers from taking its jobs (running ones finish). A queue the
    /// backend does not know is refused unless `--create` is given.
    Pause {
        queue: String,
        /// Pause it even if it does not exist yet, so its first jobs wait.
        #[arg(long)]
        create: bool,
    },
    /// Let workers take its jobs again.
    Resume { queue: String },
    /// Delete its ready and delayed jobs (not the running ones).
    Clear { queue: String },
}

#[derive(Debug, Args)]
struct QueuesArgs {
    /// The most queues to show.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Queues to skip (they are in name order).
    #[arg(long, default_value_t = 0)]
    offset: usize,
}

#[derive(Debug, Subcommand)]
enum FailedAction {
    /// A page of failed jobs, oldest first.
    List(ListArgs),
    /// One failed job: payload, attempts, error chain.
    Show { id: JobId },
    /// Put failed jobs back on their queues: by id, of a queue, or all.
    Retry(RetryArgs),
    /// Delete one failed job.
    Forget { id: JobId },
    /// Delete every failed job.
    Flush,
    /// Delete the failed jobs older than some hours.
    Prune {
        /// Age in hours; older failed jobs are deleted.
        #[arg(long, default_value_t = 24)]
        hours: u64,
    },
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Only jobs of this queue.
    #[arg(long)]
    queue: Option<String>,
    /// Only jobs of this name.
    #[arg(long)]
    name: Option<String>,
    /// Only jobs after this id (the last of the previous page).
    #[arg(long)]
    after: Option<JobId>,
    /// The most jobs to list.
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct RetryArgs {
    /// These jobs.
    ids: Vec<JobId>,
    /// Every failed job of this queue.
    #[arg(long)]
    queue: Option<String>,
    /// Every failed job.
    #[arg(long)]
    all: bool,
}

/// Runs `cli`; what to print.
pub(crate) async fn run(cli: Cli) -> Result<String, AdminError> {
    let Cli { backend, json, command } = cli;
    let admin = Admin::new(connect(&backend).await?);
    let print = Printer { json };
    match command {
        Command::Queues(args) => {
            let (queues, total) = admin.queues_page(args.offset, args.limit).await?;
            let mut out = print.queues(&queues);
            let shown = args.offset.saturating_add(queues.len()) as u64;
            if !print.json && shown < total {
                let _ = writeln!(
                    out,
                    "{} of {total} queues shown; next page: --offset {shown}",
                    queues.len()
                );
            }
            Ok(out)
        }
        Command::Workers => {
            let workers = admin.workers().await?;
            Ok(print.workers(&workers, admin.now()))
        }
        Command::Queue { action } => queue(&admin, print, action).await,
        Command::Failed { action } => failed(&admin, print, action).await,
        Command::Batches { action } => batches::run(&admin, print, action).await,
    }
}

async fn queue(admin: &Admin, print: Printer, action: QueueAction) -> Result<String, AdminError> {
    match action {
        QueueAction::Show { queue } => Ok(print.queues(&[admin.queue_report(&queue).await?])),
        QueueAction::Pause { queue, create } => {
            if create {
                admin.pause_ahead(&queue).await?;
            } else {
                admin.pause(&queue).await?;
            }
            Ok(print.done(&json!({ "queue": queue, "paused": true }), format!("paused `{queue}`")))
        }
        QueueAction::Resume { queue } => {
            admin.resume(&queue).await?;
            let text = format!("resumed `{queue}`");
            Ok(print.done(&json!({ "queue": queue, "paused": false }), text))
        }
        QueueAction::Clear { queue } => {
            let cleared = admin.clear(&queue).await?;
            let text = format!("cleared {cleared} job(s) from `{queue}`");
            Ok(print.done(&json!({ "queue": queue, "cleared": cleared }), text))
        }
    }
}

async fn failed(admin: &Admin, print: Printer, action: FailedAction) -> Result<String, AdminError> {
    match action {
        FailedAction::List(args) => {
            let mut query = FailedQuery::new().limit(args.limit);
            if let Some(queue) = args.queue {
                query = query.queue(queue);
            }
            if let Some(name) = args.name {
                query = query.name(name);
            }
            if let Some(after) = args.after {
                query = query.after(after);
            }
            let jobs = admin.failed(&query).await?;
            Ok(print.failed(&jobs))
        }
        FailedAction::Show { id } => {
            let job = admin.show(id).await?;
            Ok(print.show(&job))
        }
        FailedAction::Retry(args) => {
            let which = match (args.all, args.queue) {
                (true, _) => RetryFailed::All,
                (false, Some(queue)) => RetryFailed::Queue(queue),
                (false, None) => RetryFailed::Ids(args.ids),
            };
            let retried = admin.retry(&which).await?;
            let text = format!("retried {} job(s)", retried.len());
            Ok(print.done(&json!({ "retried": retried }), text))
        }
        FailedAction::Forget { id } => {
            admin.forget(id).await?;
            Ok(print.done(&json!({ "forgotten": id }), format!("forgot {id}")))
        }
        FailedAction::Flush => {
            let deleted = admin.flush().await?;
            Ok(print
                .done(&json!({ "deleted": deleted }), format!("deleted {deleted} failed job(s)")))
        }
        FailedAction::Prune { hours } => {
            let age = Duration::from_secs(hours.saturating_mul(3600));
            let deleted = admin.prune(age).await?;
            let text = format!("deleted {deleted} failed job(s) older than {hours} hour(s)");
            Ok(print.done(&json!({ "deleted": deleted, "hours": hours }), text))
        }
    }
}

/// Prints as a table or as JSON.
#[derive(Debug, Clone, Copy)]
struct Printer {
    json: bool,
}

impl Printer {
    fn json(value: &impl Serialize) -> String {
        let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|error| {
            json!({ "error": format!("cannot serialize the output: {error}") }).to_string()
        });
        text.push('\n');
        text
    }

    fn done(self, value: &serde_json::Value, text: String) -> String {
        if self.json { Self::json(value) } else { text + "\n" }
    }

    fn queues(self, queues: &[QueueReport]) -> String {
        if self.json {
            return Self::json(&queues);
        }
        if queues.is_empty() {
            return "no queues\n".to_owned();
        }
        let rows: Vec<Vec<String>> = queues
            .iter()
            .map(|q| {
                vec![
                    q.name.clone(),
                    q.ready.to_string(),
                    q.delayed.to_string(),
                    q.reserved.to_string(),
                    short_duration(q.wait_ms),
                    if q.paused { "paused" } else { "running" }.to_owned(),
                    q.failed.to_string(),
                ]
            })
            .collect();
        table(&["queue", "ready", "delayed", "reserved", "wait", "state", "failed"], &rows)
    }

    fn workers(self, workers: &[WorkerBeat], now: u64) -> String {
        let per_minute = |beat: &WorkerBeat| beat.jobs_per_minute().map(|rate| rate.round() as u64);
        if self.json {
            let values: Vec<serde_json::Value> = workers
                .iter()
                .map(|beat| {
                    let mut value = serde_json::to_value(beat).unwrap_or_default();
                    value["jobs_per_minute"] = json!(per_minute(beat));
                    value["last_beat_ms_ago"] = json!(now.saturating_sub(beat.beat_at));
                    value
                })
                .collect();
            return Self::json(&values);
        }
        if workers.is_empty() {
            return "no workers\n".to_owned();
        }
        let rows: Vec<Vec<String>> = workers
            .iter()
            .map(|beat| {
                vec![
                    beat.name.clone(),
                    beat.host.clone(),
                    beat.pid.to_string(),
                    beat.queues.join(","),
                    beat.state.to_string(),
                    format!("{}/{}", beat.busy, beat.concurrency),
                    beat.processed.to_string(),
                    beat.failed.to_string(),
                    per_minute(beat).map_or_else(|| "-".to_owned(), |rate| rate.to_string()),
                    short_duration(now.saturating_sub(beat.started_at)),
                    short_duration(now.saturating_sub(beat.beat_at)) + " ago",
                ]
            })
            .collect();
        table(
            &[
                "worker",
                "host",
                "pid",
                "queues",
                "state",
                "busy",
                "processed",
                "failed",
                "jobs/min",
                "up",
                "last beat",
            ],
            &rows,
        )
    }

    fn failed(self, jobs: &[FailedSummary]) -> String {
        if self.json {
            return Self::json(&jobs);
        }
        if jobs.is_empty() {
            return "no failed jobs\n".to_owned();
        }
        let rows: Vec<Vec<String>> = jobs
            .iter()
            .map(|job| {
                vec![
                    job.id.to_string(),
                    job.queue.clone(),
                    job.name.clone(),
                    job.attempts.to_string(),
                    utc(job.failed_at),
                    reason(job.reason),
                    first_line(&job.error, 60),
                ]
            })
            .collect();
        table(&["id", "queue", "name", "attempts", "failed at", "reason", "error"], &rows)
    }

    fn show(self, job: &conc_bus::FailedJob) -> String {
        let envelope = &job.envelope;
        let payload = visible_payload(envelope);
        if self.json {
            return Self::json(&conc_bus_cli::failed_job_json(job));
        }
        let mut out = String::new();
        let mut field = |name: &str, value: String| {
            let _ = writeln!(out, "{name:<10} {value}");
        };
        field("id", envelope.id.to_string());
        field("name", format!("{} (version {})", envelope.name, envelope.version));
        field("queue", envelope.queue.clone());
        field("attempts", format!("{} of {}", job.attempts, envelope.max_attempts));
        field("pushed", utc(envelope.created_at));
        field("failed", format!("{} ({})", utc(job.failed_at), job.reason));
        field("payload", payload.unwrap_or("(encrypted)").to_owned());
        field("error", job.error.clone());
        for record in &envelope.history {
            field(
                &format!("attempt {}", record.attempt),
                format!("{} {}", utc(record.at), record.error),
            );
        }
        out
    }
}

fn reason(reason: conc_bus::FailReason) -> String {
    serde_json::to_value(reason)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| reason.to_string())
}

fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() <= max {
        line.to_owned()
    } else {
        let cut: String = line.chars().take(max.saturating_sub(1)).collect();
        cut + "…"
    }
}
