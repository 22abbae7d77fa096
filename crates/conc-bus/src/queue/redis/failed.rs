//! The failed store on Redis: each queue's failed jobs under its own hash
//! tag, read over every queue by merging the queues' pages by id.
//!
//! A record is `F<json>`, a [`FailedJob`] stored by a settlement, or
//! `R<attempt>:<at>:<envelope>`, a job the reservation script refused: the
//! failed job (reason, message, history) is made from it by the crate's one
//! refusal logic when it is read, so every backend words it alike.

use super::Inner;
use super::cycle::decode;
use super::reply::{Reply, backend, unexpected};
use super::scripts::{FAILED_GET_SCRIPT, FAILED_PAGE_SCRIPT, FORGET_SCRIPT, REVIVE_SCRIPT};
use crate::clock::Millis;
use crate::failed::{FailReason, FailedJob, FailedQuery, Selection};
use crate::id::JobId;
use crate::job::{Envelope, MAX_PRIORITY};
use crate::queue::error::QueueError;
use crate::queue::settle;

/// Failed jobs read per call when a selection walks a whole queue.
const PAGE: usize = 500;
/// Failed jobs put back per call.
const REVIVE_CHUNK: usize = 256;

/// The record of `job`, as stored.
pub(super) fn record(job: &FailedJob) -> Result<String, QueueError> {
    let json = serde_json::to_string(job).map_err(|error| {
        QueueError::Corrupt(format!("failed job {} cannot be stored: {error}", job.envelope.id))
    })?;
    Ok(format!("F{json}"))
}

/// The failed job the reservation made of `envelope` when it refused attempt
/// `attempt` at `at`.
pub(super) fn refused(envelope: Envelope, attempt: u32, at: Millis) -> FailedJob {
    settle::refused_job(&envelope, attempt, at).unwrap_or_else(|| {
        // The script refuses on the same two comparisons as the settle
        // logic, so this is not reached; a record is never dropped for it.
        let error = format!("attempt {attempt} was refused at reservation");
        FailedJob::new(envelope, attempt.saturating_sub(1), at, FailReason::Abandoned, error)
    })
}

/// The failed job stored as `text` for job `id`.
pub(super) fn read_record(id: &str, text: &str) -> Result<FailedJob, QueueError> {
    let corrupt = |detail: &str| QueueError::Corrupt(format!("failed job {id}: {detail}"));
    if let Some(json) = text.strip_prefix('F') {
        let job: FailedJob = serde_json::from_str(json)
            .map_err(|error| corrupt(&format!("the record does not decode: {error}")))?;
        if job.envelope.id.to_string() != id {
            return Err(corrupt(&format!("the record carries another id, {}", job.envelope.id)));
        }
        return Ok(job);
    }
    let mut parts = text.strip_prefix('R').map(|rest| rest.splitn(3, ':'));
    let mut field = || parts.as_mut().and_then(Iterator::next);
    let (Some(attempt), Some(at), Some(envelope)) = (field(), field(), field()) else {
        return Err(corrupt("the record is neither a failure nor a refusal"));
    };
    let (Ok(attempt), Ok(at)) = (attempt.parse::<u32>(), at.parse::<Millis>()) else {
        return Err(corrupt("the refusal's attempt or time is not a number"));
    };
    let envelope = decode(id, envelope).map_err(QueueError::Corrupt)?;
    Ok(refused(envelope, attempt, at))
}

/// Reads `{[id, record]...}` pairs, the rest of a reply.
fn read_records(mut reply: Reply) -> Result<Vec<FailedJob>, QueueError> {
    let mut out = Vec::with_capacity(reply.remaining() / 2);
    while reply.remaining() > 0 {
        let id = reply.text("id")?;
        match reply.maybe_text("record")? {
            Some(text) => out.push(read_record(&id, &text)?),
            None => return Err(unexpected("failed page", &format!("no record for {id}"))),
        }
    }
    Ok(out)
}

/// The queues a read covers: `queue`, or every queue.
async fn scope(inner: &Inner, queue: Option<&str>) -> Result<Vec<String>, QueueError> {
    match queue {
        Some(queue) => Ok(vec![queue.to_owned()]),
        None => super::admin::queues(inner).await,
    }
}

/// One page of the failed jobs of `queue`: of `name`, after `after`, at
/// most `limit`, by id.
async fn page(
    inner: &Inner,
    queue: &str,
    name: Option<&str>,
    after: Option<JobId>,
    limit: usize,
) -> Result<Vec<FailedJob>, QueueError> {
    let mut invocation = inner.invocation(&FAILED_PAGE_SCRIPT, &inner.base(queue));
    invocation
        .arg(name.unwrap_or(""))
        .arg(after.map_or_else(String::new, |id| id.to_string()))
        .arg(limit);
    let (_, reply) = inner.call("failed page", &invocation).await?;
    read_records(reply)
}

/// Failed jobs matching `query`, by id, a page at a time.
pub(super) async fn failed(
    inner: &Inner,
    query: &FailedQuery,
) -> Result<Vec<FailedJob>, QueueError> {
    if query.limit == 0 {
        return Ok(Vec::new());
    }
    let queues = scope(inner, query.queue.as_deref()).await?;
    let pages = futures::future::try_join_all(
        queues
            .iter()
            .map(|queue| page(inner, queue, query.name.as_deref(), query.after, query.limit)),
    )
    .await?;
    let mut jobs: Vec<FailedJob> = pages.into_iter().flatten().collect();
    jobs.sort_unstable_by_key(|job| job.envelope.id);
    jobs.truncate(query.limit);
    Ok(jobs)
}

/// The failed jobs `ids` stored with `queue`.
async fn get(inner: &Inner, queue: &str, ids: &[JobId]) -> Result<Vec<FailedJob>, QueueError> {
    let mut invocation = inner.invocation(&FAILED_GET_SCRIPT, &inner.base(queue));
    for id in ids {
        invocation.arg(id.to_string());
    }
    let (_, reply) = inner.call("failed get", &invocation).await?;
    read_records(reply)
}

/// The failed job `id`, whichever queue holds it.
pub(super) async fn failed_job(inner: &Inner, id: JobId) -> Result<Option<FailedJob>, QueueError> {
    let queues = scope(inner, None).await?;
    let ids = [id];
    let found =
        futures::future::try_join_all(queues.iter().map(|queue| get(inner, queue, &ids))).await?;
    Ok(found.into_iter().flatten().next())
}

/// How many failed jobs are stored (of `queue`).
pub(super) async fn failed_count(inner: &Inner, queue: Option<&str>) -> Result<u64, QueueError> {
    let queues = scope(inner, queue).await?;
    let counts = futures::future::try_join_all(queues.iter().map(|queue| async move {
        let key = format!("{}failed", inner.base(queue));
        redis::cmd("ZCARD").arg(key).query_async::<u64>(&mut inner.manager.clone()).await
    }))
    .await
    .map_err(backend)?;
    Ok(counts.into_iter().sum())
}

/// The failed jobs of `queue` that `selection` picks.
async fn selected(
    inner: &Inner,
    queue: &str,
    selection: &Selection,
) -> Result<Vec<FailedJob>, QueueError> {
    if let Selection::Ids(ids) = selection {
        return get(inner, queue, ids).await;
    }
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let jobs = page(inner, queue, None, after, PAGE).await?;
        let full = jobs.len() == PAGE;
        after = jobs.last().map(|job| job.envelope.id);
        out.extend(jobs.into_iter().filter(|job| selection.selects(job)));
        if !full {
            return Ok(out);
        }
    }
}

/// The queues a selection covers.
async fn selection_scope(inner: &Inner, selection: &Selection) -> Result<Vec<String>, QueueError> {
    match selection {
        Selection::Queue(queue) => scope(inner, Some(queue)).await,
        _ => scope(inner, None).await,
    }
}

/// Puts the selected failed jobs back on their queues, available now, their
/// exceptions reset and their history kept; the ids put back, in order.
pub(super) async fn retry_failed(
    inner: &Inner,
    selection: &Selection,
) -> Result<Vec<JobId>, QueueError> {
    let mut retried = Vec::new();
    for queue in selection_scope(inner, selection).await? {
        let jobs = selected(inner, &queue, selection).await?;
        for chunk in jobs.chunks(REVIVE_CHUNK) {
            let mut invocation = inner.invocation(&REVIVE_SCRIPT, &inner.base(&queue));
            for job in chunk {
                let mut envelope = job.envelope.clone();
                envelope.exceptions = 0;
                let text = serde_json::to_string(&envelope).map_err(|error| {
                    QueueError::Corrupt(format!("job {} cannot be stored: {error}", envelope.id))
                })?;
                invocation
                    .arg(envelope.id.to_string())
                    .arg(envelope.priority.min(MAX_PRIORITY))
                    .arg(envelope.max_attempts)
                    .arg(envelope.retry_until.map_or_else(String::new, |until| until.to_string()))
                    .arg(&envelope.name)
                    .arg(text)
                    .arg(super::flow::flow_record(&inner.settings.prefix, &envelope));
            }
            let (_, mut reply) = inner.call("revive", &invocation).await?;
            while reply.remaining() > 0 {
                let id = reply.text("id")?;
                retried.push(id.parse::<JobId>().map_err(|_| unexpected("revive", &id))?);
            }
        }
    }
    retried.sort_unstable();
    Ok(retried)
}

/// Deletes the selected failed jobs; how many.
pub(super) async fn forget_failed(inner: &Inner, selection: &Selection) -> Result<u64, QueueError> {
    let mut deleted = 0;
    for queue in selection_scope(inner, selection).await? {
        let base = inner.base(&queue);
        loop {
            let mut invocation = inner.invocation(&FORGET_SCRIPT, &base);
            match selection {
                Selection::Ids(ids) => {
                    invocation.arg("ids").arg("");
                    for id in ids {
                        invocation.arg(id.to_string());
                    }
                }
                Selection::FailedBefore(cutoff) => {
                    invocation.arg("before").arg(*cutoff);
                }
                Selection::Queue(_) | Selection::All => {
                    invocation.arg("all").arg("");
                }
            }
            let (_, mut reply) = inner.call("forget", &invocation).await?;
            let count = reply.uint("deleted")?;
            deleted += count;
            if count == 0 || matches!(selection, Selection::Ids(_)) {
                break;
            }
        }
    }
    Ok(deleted)
}
