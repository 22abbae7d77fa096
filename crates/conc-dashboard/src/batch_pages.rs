//! The batch pages, as HTML: the list with progress bars, and one batch with
//! its callbacks and members.

use std::fmt::Write as _;

use conc_bus::batch::MemberOutcome;
use conc_bus::job::TriggerKind;
use conc_bus_cli::{BatchDetail, BatchReport, BatchState, utc};

use crate::html::{Frame, button, esc, page, table, url};
use crate::model::BatchList;

/// A progress bar for `progress` percent; `id` names it for scripts and tests.
pub(crate) fn bar(id: &str, progress: u8) -> String {
    format!(
        "<span class=prog><span class=bar id=\"{}\" data-progress={progress} role=progressbar \
         aria-valuenow={progress} aria-valuemin=0 aria-valuemax=100>\
         <span style=\"width:{progress}%\"></span></span> <span class=pct>{progress}%</span></span>",
        esc(id)
    )
}

fn state(state: BatchState) -> String {
    let class = match state {
        BatchState::Cancelled => "bad",
        BatchState::Finished => "ok",
        _ => "muted",
    };
    format!("<span class=\"state {class}\">{state}</span>")
}

fn outcome(outcome: Option<MemberOutcome>) -> &'static str {
    match outcome {
        None => "pending",
        Some(MemberOutcome::Succeeded) => "succeeded",
        Some(MemberOutcome::Failed) => "failed",
        Some(MemberOutcome::Cancelled) => "cancelled",
        Some(_) => "other",
    }
}

fn callback(kind: TriggerKind) -> &'static str {
    match kind {
        TriggerKind::Then => "then",
        TriggerKind::Catch => "catch",
        TriggerKind::Finally => "finally",
        TriggerKind::Progress => "progress",
        _ => "other",
    }
}

/// The query of the list's filters, encoded (`key=value&`).
pub(crate) fn filter_query(state: Option<BatchState>, name: Option<&str>) -> String {
    let mut query = String::new();
    if let Some(state) = state {
        let _ = write!(query, "state={state}&");
    }
    if let Some(name) = name {
        let _ = write!(query, "name={}&", url(name));
    }
    query
}

pub(crate) fn list(
    frame: &Frame<'_>,
    view: &BatchList,
    state_filter: Option<BatchState>,
    name: Option<&str>,
) -> String {
    let base = esc(frame.base);
    let mut body = String::from("<p class=filters>");
    for (label, state) in [
        ("all", None),
        ("pending", Some(BatchState::Pending)),
        ("finished", Some(BatchState::Finished)),
        ("cancelled", Some(BatchState::Cancelled)),
    ] {
        let query = filter_query(state, name);
        let class = if state == state_filter { " class=on" } else { "" };
        let _ = write!(body, "<a{class} href=\"{base}/batches?{}\">{label}</a> ", esc(&query));
    }
    if let Some(name) = name {
        let _ = write!(body, "· name contains <b>{}</b>", esc(name));
    }
    body.push_str("</p>");
    let rows: Vec<_> = view
        .items
        .iter()
        .map(|b| {
            let info = &b.info;
            let id = info.id.to_string();
            (
                format!("batch-{id}"),
                vec![
                    format!("<a href=\"{base}/batches/{id}\">{id}</a>"),
                    esc(info.name.as_deref().unwrap_or("")),
                    esc(&info.queue),
                    state(b.state),
                    bar(&format!("progress-{id}"), b.progress),
                    info.total.to_string(),
                    info.pending.to_string(),
                    info.succeeded.to_string(),
                    info.failed.to_string(),
                    info.cancelled.to_string(),
                    esc(&utc(info.created_at)),
                ],
            )
        })
        .collect();
    body.push_str(&table(
        &[
            "id",
            "name",
            "queue",
            "state",
            "progress",
            "#total",
            "#pending",
            "#succeeded",
            "#failed",
            "#cancelled",
            "created",
        ],
        &rows,
    ));
    let query = filter_query(state_filter, name);
    let _ = write!(
        body,
        "<div class=pager><span class=muted>{} shown</span> \
         <a href=\"{base}/batches?{}\">first page</a>",
        view.items.len(),
        esc(&query)
    );
    if let Some(next) = &view.next {
        let _ = write!(
            body,
            "<a id=next-page href=\"{base}/batches?{}before={}\">next page</a>",
            esc(&query),
            esc(&url(next))
        );
    }
    body.push_str("</div>");
    page(frame, "batches", "Batches", &body)
}

pub(crate) fn batch(frame: &Frame<'_>, detail: &BatchDetail, next: Option<usize>) -> String {
    let base = esc(frame.base);
    let report: &BatchReport = &detail.batch;
    let info = &report.info;
    let id = info.id.to_string();
    let mut body = format!("<p>{}</p>", bar("batch-progress", report.progress));
    let fields = [
        ("id", esc(&id)),
        ("name", esc(info.name.as_deref().unwrap_or("–"))),
        ("queue", esc(&info.queue)),
        ("state", state(report.state)),
        (
            "members",
            format!(
                "<span id=batch-counts>{} total: {} pending, {} succeeded, {} failed, {} cancelled</span>",
                info.total, info.pending, info.succeeded, info.failed, info.cancelled
            ),
        ),
        (
            "a failure",
            if info.allow_failures { "leaves the others running" } else { "cancels the batch" }
                .to_owned(),
        ),
        ("created", esc(&utc(info.created_at))),
        ("cancelled", info.cancelled_at.map_or_else(|| "–".to_owned(), |at| esc(&utc(at)))),
        ("finished", info.finished_at.map_or_else(|| "–".to_owned(), |at| esc(&utc(at)))),
    ];
    let rows: Vec<_> = fields.into_iter().map(|(k, v)| (String::new(), vec![esc(k), v])).collect();
    body.push_str(&table(&["", ""], &rows));
    if report.state == BatchState::Pending {
        let _ = write!(
            body,
            "<p>{} <span class=muted>waiting members are deleted, running ones asked to stop</span></p>",
            button(frame, &format!("/batches/{id}/cancel"), "cancel-batch", "cancel batch", true)
        );
    }
    body.push_str("<h2>Callbacks</h2>");
    let rows: Vec<_> = info
        .callbacks
        .iter()
        .map(|c| {
            let fired = if c.dispatched > 0 { "<span class=ok>yes</span>" } else { "no" };
            (
                format!("callback-{}", callback(c.kind)),
                vec![
                    callback(c.kind).to_owned(),
                    esc(&c.job),
                    fired.to_owned(),
                    c.dispatched.to_string(),
                ],
            )
        })
        .collect();
    body.push_str(&table(&["callback", "job", "fired", "#times"], &rows));
    body.push_str("<h2>Members</h2>");
    let rows: Vec<_> = detail
        .members
        .iter()
        .map(|m| {
            let member = m.id.to_string();
            let (job, error) = match &m.failed {
                Some(failed) => (
                    format!("<a href=\"{base}/failed/{member}\">{}</a>", esc(&failed.name)),
                    format!("<span class=error>{}</span>", esc(&failed.error)),
                ),
                None => (String::new(), String::new()),
            };
            (
                format!("member-{member}"),
                vec![
                    esc(&member),
                    format!("<span class=outcome>{}</span>", outcome(m.outcome)),
                    job,
                    error,
                ],
            )
        })
        .collect();
    body.push_str(&table(&["member", "outcome", "failed job", "error"], &rows));
    // Saturating: `offset` comes from the query string.
    let first = detail.members_offset.saturating_add(1);
    let last = detail.members_offset.saturating_add(detail.members.len());
    let _ = write!(
        body,
        "<div class=pager><span class=muted>members {first}–{last} of {}</span> \
         <a href=\"{base}/batches/{id}\">first page</a>",
        info.total
    );
    if let Some(next) = next {
        let _ = write!(
            body,
            "<a id=next-page href=\"{base}/batches/{id}?offset={next}\">next page</a>"
        );
    }
    body.push_str("</div>");
    page(frame, "batches", &format!("Batch {}", info.name.as_deref().unwrap_or(&id)), &body)
}
