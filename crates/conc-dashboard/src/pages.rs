//! The pages, as HTML: each takes the data the JSON API returns for the same
//! route and the page [`Frame`].

use std::fmt::Write as _;

use conc_bus::FailedJob;
use conc_bus_cli::{FailedSummary, QueueReport, short_duration, utc};

use crate::html::{Frame, button, chart, esc, millis, page, pager, table, url};
use crate::model::{Overview, Page, RecentJob, Sample, Timing, WorkerReport};

/// Why the throughput figures are blank without workers.
const NO_WORKERS: &str = "<p class=note>No worker has recorded a heartbeat in this backend \
    in the last three of its intervals, and none is attached, so there is no throughput to show: \
    the backend keeps queued and failed jobs, not finished ones. Workers of any process list \
    themselves here while they run; attach the workers of this process with \
    <code>DashboardBuilder::worker</code> to see their runtimes and recent jobs too.</p>";

/// Why the recent jobs are missing without attached workers.
const NO_ATTACHED: &str = "<p class=note>No worker is attached to this dashboard, so it lists \
    no recent jobs: a job is deleted from the backend when it is acknowledged, and only the \
    workers of this process report their attempts. Attach them with \
    <code>DashboardBuilder::worker</code>; the workers page lists every process's workers from \
    their heartbeats.</p>";

fn opt(value: Option<u64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| v.to_string())
}

fn card(id: &str, label: &str, value: &str) -> String {
    format!("<div class=card id=\"{}\"><b>{}</b>{}</div>", esc(id), esc(value), esc(label))
}

pub(crate) fn overview(frame: &Frame<'_>, view: &Overview) -> String {
    let mut body = String::from("<div class=cards>");
    body.push_str(&card("card-processed", "processed / min", &opt(view.processed_per_minute)));
    body.push_str(&card("card-failed", "failed attempts / min", &opt(view.failed_per_minute)));
    body.push_str(&card(
        "card-failed-total",
        "in the failed store",
        &view.failed_total.to_string(),
    ));
    body.push_str(&card("card-queues", "queues", &view.queues.total.to_string()));
    body.push_str(&card("card-workers", "workers", &view.workers.total.to_string()));
    if let Some(pending) = view.batches_pending {
        let label = if view.batches_seen >= crate::OVERVIEW_BATCHES as u64 {
            format!("batches pending (of the newest {})", view.batches_seen)
        } else {
            "batches pending".to_owned()
        };
        let _ = write!(
            body,
            "<a class=card id=card-batches href=\"{}/batches?state=pending\"><b>{pending}</b>{}</a>",
            esc(frame.base),
            esc(&label)
        );
    }
    body.push_str("</div>");
    if view.workers.total == 0 {
        body.push_str(NO_WORKERS);
    }
    body.push_str("<h2>Queues</h2>");
    body.push_str(&queue_table(frame, &view.queues.items));
    if view.queues.next.is_some() {
        let _ = write!(body, "<p><a href=\"{}/queues\">all queues</a></p>", esc(frame.base));
    }
    body.push_str("<h2>Workers</h2>");
    body.push_str(&worker_table(&view.workers.items));
    if view.workers.next.is_some() {
        let _ = write!(body, "<p><a href=\"{}/workers\">all workers</a></p>", esc(frame.base));
    }
    body.push_str("<h2>Runtime per job</h2>");
    body.push_str(&timing_table("job", &view.runtimes));
    body.push_str("<h2>Wait per queue (available to started)</h2>");
    body.push_str(&timing_table("queue", &view.waits));
    page(frame, "", "Overview", &body)
}

fn timing_table(key: &str, timings: &[Timing]) -> String {
    let rows: Vec<_> = timings
        .iter()
        .map(|t| {
            (
                String::new(),
                vec![
                    esc(&t.worker),
                    esc(&t.key),
                    t.count.to_string(),
                    millis(t.p50_ms),
                    millis(t.p99_ms),
                ],
            )
        })
        .collect();
    table(&["worker", key, "#count", "#p50", "#p99"], &rows)
}

fn queue_table(frame: &Frame<'_>, queues: &[QueueReport]) -> String {
    let rows: Vec<_> = queues
        .iter()
        .map(|q| {
            let action = if q.paused {
                button(
                    frame,
                    &format!("/queues/{}/resume", url(&q.name)),
                    &format!("resume-{}", q.name),
                    "resume",
                    false,
                )
            } else {
                button(
                    frame,
                    &format!("/queues/{}/pause", url(&q.name)),
                    &format!("pause-{}", q.name),
                    "pause",
                    false,
                )
            };
            let state = if q.paused { "<span class=bad>paused</span>" } else { "active" };
            (
                format!("queue-{}", q.name),
                vec![
                    esc(&q.name),
                    format!("<span class=ready>{}</span>", q.ready),
                    q.delayed.to_string(),
                    q.reserved.to_string(),
                    short_duration(q.wait_ms),
                    format!(
                        "<a href=\"{}/failed?queue={}\">{}</a>",
                        esc(frame.base),
                        esc(&url(&q.name)),
                        q.failed
                    ),
                    format!("<span class=state>{state}</span>"),
                    action,
                ],
            )
        })
        .collect();
    table(
        &["queue", "#ready", "#delayed", "#running", "#oldest wait", "#failed", "state", ""],
        &rows,
    )
}

fn worker_table(workers: &[WorkerReport]) -> String {
    let rows: Vec<_> = workers
        .iter()
        .map(|w| {
            let reach = if w.backend_reachable {
                "<span class=ok>yes</span>".to_owned()
            } else {
                format!("<span class=bad>no</span> {}", esc(w.last_error.as_deref().unwrap_or("")))
            };
            let busy = if w.concurrency > 0 {
                format!("{}/{}", w.running, w.concurrency)
            } else {
                w.running.to_string()
            };
            let seen = w.since_last_contact_ms.map_or_else(String::new, short_duration);
            (
                format!("worker-{}", w.name),
                vec![
                    esc(&w.name),
                    esc(&w.queues.join(", ")),
                    esc(&w.state),
                    reach,
                    busy,
                    w.processed.to_string(),
                    w.failed.to_string(),
                    w.processed_last_minute.to_string(),
                    esc(&w.host),
                    w.pid.to_string(),
                    seen,
                    if w.attached { "yes" } else { "" }.to_owned(),
                ],
            )
        })
        .collect();
    table(
        &[
            "worker",
            "queues",
            "state",
            "backend",
            "#running",
            "#processed",
            "#failed",
            "#processed / min",
            "host",
            "#pid",
            "#last contact",
            "attached",
        ],
        &rows,
    )
}

pub(crate) fn queues(frame: &Frame<'_>, view: &Page<QueueReport>) -> String {
    let mut body = queue_table(frame, &view.items);
    body.push_str(&pager(
        frame.base,
        "/queues",
        "",
        "page",
        view.next.as_deref(),
        view.items.len(),
        view.total,
    ));
    page(frame, "queues", "Queues", &body)
}

pub(crate) fn workers(frame: &Frame<'_>, view: &Page<WorkerReport>) -> String {
    let mut body = String::new();
    if view.total == 0 {
        body.push_str(NO_WORKERS);
    }
    body.push_str(&worker_table(&view.items));
    body.push_str(&pager(
        frame.base,
        "/workers",
        "",
        "page",
        view.next.as_deref(),
        view.items.len(),
        view.total,
    ));
    page(frame, "", "Workers", &body)
}

pub(crate) fn recent(frame: &Frame<'_>, view: &Page<RecentJob>, has_workers: bool) -> String {
    let mut body = String::new();
    if !has_workers {
        body.push_str(NO_ATTACHED);
    }
    let rows: Vec<_> = view
        .items
        .iter()
        .map(|job| {
            (
                String::new(),
                vec![
                    esc(&utc(job.at)),
                    esc(&job.id.to_string()),
                    esc(&job.name),
                    esc(&job.queue),
                    format!("<span class=outcome>{}</span>", esc(job.outcome.as_str())),
                    job.attempt.map_or_else(String::new, |a| a.to_string()),
                    job.runtime_ms.map_or_else(String::new, |ms| millis(ms as f64)),
                    esc(job.error.as_deref().unwrap_or("")),
                    esc(&job.worker),
                ],
            )
        })
        .collect();
    body.push_str(&table(
        &["at", "id", "job", "queue", "outcome", "#attempt", "#runtime", "error", "worker"],
        &rows,
    ));
    body.push_str(&pager(
        frame.base,
        "/recent",
        "",
        "page",
        view.next.as_deref(),
        view.items.len(),
        view.total,
    ));
    page(frame, "recent", "Recent jobs", &body)
}

pub(crate) fn failed(frame: &Frame<'_>, view: &Page<FailedSummary>, queue: Option<&str>) -> String {
    let mut body = String::new();
    if let Some(queue) = queue {
        let _ = write!(
            body,
            "<p>Queue <b>{}</b> · <a href=\"{}/failed\">every queue</a></p>",
            esc(queue),
            esc(frame.base)
        );
    }
    let rows: Vec<_> = view
        .items
        .iter()
        .map(|job| {
            let id = job.id.to_string();
            (
                format!("failed-{id}"),
                vec![
                    format!("<a href=\"{}/failed/{id}\">{id}</a>", esc(frame.base)),
                    esc(&job.name),
                    esc(&job.queue),
                    job.attempts.to_string(),
                    esc(&utc(job.failed_at)),
                    esc(&job.reason.to_string()),
                    format!("<span class=error>{}</span>", esc(&job.error)),
                    format!(
                        "{} {}",
                        button(
                            frame,
                            &format!("/failed/{id}/retry"),
                            &format!("retry-{id}"),
                            "retry",
                            false
                        ),
                        button(
                            frame,
                            &format!("/failed/{id}/forget"),
                            &format!("forget-{id}"),
                            "forget",
                            true
                        )
                    ),
                ],
            )
        })
        .collect();
    body.push_str(&table(
        &["id", "job", "queue", "#attempts", "failed at", "why", "error", ""],
        &rows,
    ));
    let query = queue.map_or_else(String::new, |q| format!("queue={}&", url(q)));
    if view.total > 0 {
        let label = match queue {
            Some(_) => format!("retry all {} of this queue", view.total),
            None => format!("retry all {}", view.total),
        };
        let action = format!("/failed/retry?{}", query.trim_end_matches('&'));
        let _ = write!(
            body,
            "<p>{}</p>",
            button(frame, action.trim_end_matches('?'), "retry-all", &label, false)
        );
    }
    body.push_str(&pager(
        frame.base,
        "/failed",
        &query,
        "after",
        view.next.as_deref(),
        view.items.len(),
        view.total,
    ));
    page(frame, "failed", "Failed jobs", &body)
}

pub(crate) fn failed_job(frame: &Frame<'_>, job: &FailedJob, payload: Option<&str>) -> String {
    let envelope = &job.envelope;
    let id = envelope.id.to_string();
    let mut body = String::new();
    let fields = [
        ("id", id.clone()),
        ("job", format!("{} (version {})", envelope.name, envelope.version)),
        ("queue", envelope.queue.clone()),
        ("attempts", format!("{} of {}", job.attempts, envelope.max_attempts)),
        ("failed attempts", envelope.exceptions.to_string()),
        ("pushed at", utc(envelope.created_at)),
        ("failed at", utc(job.failed_at)),
        ("why", job.reason.to_string()),
        ("progress", envelope.progress.map_or_else(|| "–".to_owned(), |p| format!("{p} %"))),
    ];
    let rows: Vec<_> = fields.iter().map(|(k, v)| (String::new(), vec![esc(k), esc(v)])).collect();
    body.push_str(&table(&["", ""], &rows));
    let _ = write!(
        body,
        "<p>{} {}</p><h2>Error (with its chain of sources)</h2><pre id=error>{}</pre><h2>Payload</h2>",
        button(frame, &format!("/failed/{id}/retry"), &format!("retry-{id}"), "retry", false),
        button(frame, &format!("/failed/{id}/forget"), &format!("forget-{id}"), "forget", true),
        esc(&job.error),
    );
    match payload {
        Some(payload) => {
            let pretty = serde_json::from_str::<serde_json::Value>(payload)
                .ok()
                .and_then(|value| serde_json::to_string_pretty(&value).ok())
                .unwrap_or_else(|| payload.to_owned());
            let _ = write!(body, "<pre id=payload>{}</pre>", esc(&pretty));
        }
        None => body.push_str("<p id=payload class=muted>encrypted: not shown</p>"),
    }
    body.push_str("<h2>Attempts</h2>");
    let rows: Vec<_> = envelope
        .history
        .iter()
        .map(|r| (String::new(), vec![r.attempt.to_string(), esc(&utc(r.at)), esc(&r.error)]))
        .collect();
    body.push_str(&table(&["#attempt", "ended at", "error"], &rows));
    page(frame, "failed", &format!("Failed job {id}"), &body)
}

pub(crate) fn metrics(frame: &Frame<'_>, samples: &[Sample], every: std::time::Duration) -> String {
    let line = |f: fn(&Sample) -> u64| -> Vec<(u64, f64)> {
        samples.iter().map(|s| (s.at, f(s) as f64)).collect()
    };
    let mut names: Vec<&str> =
        samples.iter().flat_map(|s| s.queues.iter().map(|q| q.name.as_str())).collect();
    names.sort_unstable();
    names.dedup();
    names.truncate(6);
    let per_queue = |f: fn(&crate::model::QueueSample) -> f64| -> Vec<(String, Vec<(u64, f64)>)> {
        names
            .iter()
            .map(|name| {
                let points = samples
                    .iter()
                    .filter_map(|s| s.queues.iter().find(|q| q.name == *name).map(|q| (s.at, f(q))))
                    .collect();
                ((*name).to_owned(), points)
            })
            .collect()
    };
    let mut body = format!(
        "<p class=muted>{} samples, one every {}, kept in this process.</p>",
        samples.len(),
        millis(every.as_secs_f64() * 1e3)
    );
    body.push_str(&chart(
        "chart-throughput",
        "Jobs per minute (every worker)",
        &[
            ("processed".to_owned(), line(|s| s.processed_per_minute)),
            ("failed".to_owned(), line(|s| s.failed_per_minute)),
        ],
    ));
    body.push_str(&chart("chart-ready", "Ready jobs per queue", &per_queue(|q| q.ready as f64)));
    body.push_str(&chart(
        "chart-wait",
        "Oldest wait per queue (s)",
        &per_queue(|q| q.wait_ms as f64 / 1000.0),
    ));
    body.push_str(&chart(
        "chart-failed",
        "Failed store",
        &[("failed jobs".to_owned(), line(|s| s.failed_total))],
    ));
    page(frame, "metrics", "Metrics", &body)
}

/// A short page for errors (bad input, a backend failure).
pub(crate) fn error(frame: &Frame<'_>, status: u16, message: &str) -> String {
    page(frame, "", &format!("Error {status}"), &format!("<p class=bad>{}</p>", esc(message)))
}
