//! Batches on Redis: creating, adding to, reading, cancelling, pruning,
//! archiving and recovering them (the scripts are in
//! [`flow_lua`](super::flow_lua)).

use redis::AsyncCommands;

use super::Inner;
use super::flow::{self, announce, batch_key, callback_spec, spec_fields, wf_base};
use super::flow_lua::{
    BATCH_SCRIPT, CANCEL_SCRIPT, DROP_ARCHIVES_SCRIPT, DROP_SCRIPT, READ_BATCH_SCRIPT,
    RECOVER_SCRIPT,
};
use super::reply::{Reply, backend, unexpected};
use crate::batch::machine::{self, Fire, TIMED_OUT};
use crate::batch::model::{BatchRecord, Counts, Fired, MemberRows};
use crate::batch::{
    ArchivedBatch, BatchId, BatchInfo, BatchPrune, MAX_FAILED_JOBS, MemberOutcome, NewBatch,
    WorkflowError,
};
use crate::clock::millis;
use crate::id::JobId;
use crate::job::check_queue_name;
use crate::queue::backend::Pushed;
use crate::queue::error::{PushError, QueueError};

/// A batch as read: its record (times and claimed flags as stored), its
/// counts, and its first failed members.
pub(super) type Read = (BatchRecord, Counts, Vec<JobId>);

/// Batches read per call when a prune walks them all.
const PRUNE_PAGE: isize = 256;

/// A stored time or count: empty for none.
fn number(text: &str) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.parse::<u64>().ok().or_else(|| {
        let value = text.parse::<f64>().ok()?;
        (value >= 0.0 && value.fract() == 0.0).then_some(value as u64)
    })
}

/// Reads batches `ids` in one script.
pub(super) async fn read_many(
    inner: &Inner,
    ids: &[BatchId],
) -> Result<Vec<Option<Read>>, QueueError> {
    let Some(first) = ids.first() else { return Ok(Vec::new()) };
    let prefix = &*inner.settings.prefix;
    let mut invocation = inner.invocation(&READ_BATCH_SCRIPT, &batch_key(prefix, *first));
    for id in &ids[1..] {
        invocation.key(batch_key(prefix, *id));
    }
    invocation.arg(MAX_FAILED_JOBS);
    let (_, mut reply) = inner.call("read batch", &invocation).await?;
    let mut out = Vec::with_capacity(ids.len());
    for _ in ids {
        out.push(read_batch(&mut reply)?);
    }
    Ok(out)
}

/// Batch `id`, if stored.
pub(super) async fn read_one(inner: &Inner, id: BatchId) -> Result<Option<Read>, QueueError> {
    Ok(read_many(inner, &[id]).await?.pop().flatten())
}

/// Reads one batch as `put_batch` wrote it into a reply.
pub(super) fn read_batch(reply: &mut Reply) -> Result<Option<Read>, QueueError> {
    if reply.int("found")? == 0 {
        return Ok(None);
    }
    let rec = reply.text("record")?;
    let mut record: BatchRecord = serde_json::from_str(&rec).map_err(|error| {
        unexpected("read batch", &format!("a record that does not decode: {error}"))
    })?;
    let mut field = |what: &str| reply.text(what).map(|text| number(&text));
    record.cancelled_at = field("cancelled")?;
    record.finished_at = field("finished")?;
    record.timed_out_at = field("timed out")?;
    record.deadline = field("deadline")?;
    record.recoveries = u32::try_from(field("recoveries")?.unwrap_or(0)).unwrap_or(u32::MAX);
    record.fired = Fired {
        then: field("then")?.is_some(),
        catch: field("catch")?.is_some(),
        finally: field("finally")?.is_some(),
    };
    let succeeded = field("succeeded")?.unwrap_or(0);
    let failed = field("failed")?.unwrap_or(0);
    let cancelled = field("cancelled count")?.unwrap_or(0);
    record.recovered = field("recovered")?.unwrap_or(0);
    let total = reply.uint("total")?;
    record.counts = None;
    let counts = Counts { total, succeeded, failed, cancelled };
    let listed = reply.uint("failed ids")?;
    let mut failed_jobs = Vec::new();
    for _ in 0..listed {
        let id = reply.text("failed id")?;
        failed_jobs.push(id.parse().map_err(|_| unexpected("read batch", &id))?);
    }
    Ok(Some((record, counts, failed_jobs)))
}

/// The info of a batch as read.
pub(super) fn info((record, counts, failed): &Read) -> BatchInfo {
    BatchInfo::new(record, *counts, failed.clone())
}

/// Checks the queue name of every job.
fn check_queues(jobs: &[Pushed]) -> Result<(), conc_core::config::ConfigError> {
    for job in jobs {
        check_queue_name(&job.envelope.queue)?;
    }
    Ok(())
}

/// Stores a new batch (`record` given) or adds to one (`None`): the jobs
/// checked and pushed, all or none. How many were added.
async fn store_members(
    inner: &Inner,
    id: BatchId,
    record: Option<&BatchRecord>,
    jobs: Vec<Pushed>,
) -> Result<u64, WorkflowError> {
    if let Err(error) = check_queues(&jobs) {
        return Err(PushError::Invalid { error, jobs }.into());
    }
    let prefix = &*inner.settings.prefix;
    let now = inner.time.now();
    let mut queues: Vec<String> = Vec::new();
    let mut members = Vec::with_capacity(jobs.len());
    for job in &jobs {
        let queue = &job.envelope.queue;
        let index = queues.iter().position(|known| known == queue).unwrap_or_else(|| {
            queues.push(queue.clone());
            queues.len() - 1
        });
        match spec_fields(prefix, job) {
            Ok(fields) => members.push((index + 3, fields, job)),
            Err(error) => return Err(PushError::Backend { error: error.into(), jobs }.into()),
        }
    }
    let mut fields: Vec<(&str, String)> = Vec::new();
    let mut callback_queues: Vec<&str> = Vec::new();
    if let Some(record) = record {
        let text = |fire| callback_spec(prefix, record, fire, now);
        let rendered = (|| {
            let then = text(Fire::Then)?;
            let finally = text(Fire::Finally)?;
            let timeout = if record.deadline.is_some() {
                text(Fire::Catch { job: None, error: TIMED_OUT.to_owned() })?
            } else {
                String::new()
            };
            let rec = serde_json::to_string(record).map_err(|error| {
                QueueError::Corrupt(format!("batch {id} cannot be stored: {error}"))
            })?;
            Ok::<_, QueueError>((then, finally, timeout, rec))
        })();
        let (then, finally, timeout, rec) = match rendered {
            Ok(parts) => parts,
            Err(error) => return Err(PushError::Backend { error: error.into(), jobs }.into()),
        };
        fields.push(("id", id.to_string()));
        fields.push(("rec", rec));
        fields.push(("allow", if record.allow_failures { "1" } else { "0" }.to_owned()));
        fields.push(("created", record.created_at.to_string()));
        fields.push(("sc", inner.settings.sweep_chunk.to_string()));
        if let Some(deadline) = record.deadline {
            fields.push(("deadline", deadline.to_string()));
        }
        for (name, text) in [("then", then), ("finally", finally), ("tcatch", timeout)] {
            if !text.is_empty() {
                fields.push((name, text));
            }
        }
        let callbacks = &record.callbacks;
        for template in [&callbacks.then, &callbacks.catch, &callbacks.finally, &callbacks.progress]
            .into_iter()
            .flatten()
        {
            callback_queues.push(&template.queue);
        }
    }
    let mut invocation = inner.invocation(&BATCH_SCRIPT, &batch_key(prefix, id));
    invocation.key(wf_base(prefix));
    for queue in &queues {
        invocation.key(inner.base(queue));
    }
    // The locks and debounce records the members name, after the queues.
    let mut declared: Vec<String> = Vec::new();
    for job in &jobs {
        for key in flow::flow_keys(prefix, &job.envelope) {
            if key != batch_key(prefix, id) && !declared.contains(&key) {
                invocation.key(&key);
                declared.push(key);
            }
        }
    }
    invocation.arg(if record.is_some() { "create" } else { "add" }).arg(fields.len());
    for (name, value) in &fields {
        invocation.arg(*name).arg(value);
    }
    for (index, fields, job) in &members {
        invocation.arg(*index);
        for field in &fields[1..] {
            invocation.arg(field);
        }
        let member = job.envelope.flow.as_deref().and_then(|f| f.batch).map(|m| m.member);
        invocation.arg(member.unwrap_or(job.envelope.id).to_string());
    }
    let names = queues.iter().map(String::as_str).chain(callback_queues.iter().copied());
    if let Err(error) = super::register(inner, names).await {
        return Err(PushError::Backend { error: error.into(), jobs }.into());
    }
    let (_, mut reply) = match inner.call("batch", &invocation).await {
        Ok(reply) => reply,
        Err(error) => return Err(PushError::Backend { error: error.into(), jobs }.into()),
    };
    let status = reply.text("status")?;
    match status.as_str() {
        "ok" => {
            let added = reply.uint("added")?;
            announce(inner, &mut reply)?;
            if let Some(deadline) = record.and_then(|r| r.deadline) {
                flow::note_deadline(inner, deadline);
            }
            Ok(added)
        }
        "missing" => Err(WorkflowError::NotFound { id }),
        "closed" => {
            let state = if reply.text("state")? == "cancelled" { "cancelled" } else { "finished" };
            Err(WorkflowError::Closed { id, state })
        }
        "dup" => {
            let text = reply.text("id")?;
            let dup = text.parse::<JobId>().map_err(|_| unexpected("batch", &text))?;
            Err(PushError::Duplicate { id: dup, jobs }.into())
        }
        "full" => {
            let index = usize::try_from(reply.uint("queue")?).unwrap_or(0);
            let capacity = reply.uint("capacity")?;
            let queue = queues.get(index.wrapping_sub(3)).cloned().unwrap_or_default();
            Err(PushError::Full { queue, capacity, jobs }.into())
        }
        "locked" => {
            let (job, holder) = (reply.text("job")?, reply.text("holder")?);
            let held_by = holder.parse::<JobId>().map_err(|_| unexpected("batch", &holder))?;
            let key = jobs
                .iter()
                .find(|j| j.envelope.id.to_string() == job)
                .and_then(|j| j.envelope.flow.as_deref()?.admission.as_ref())
                .map(|ticket| ticket.key.clone())
                .unwrap_or_default();
            Err(PushError::Locked { key, held_by, jobs }.into())
        }
        other => Err(unexpected("batch", other).into()),
    }
}

/// Stores `batch` with its members pushed, all or nothing.
pub(super) async fn create(inner: &Inner, batch: NewBatch) -> Result<(), WorkflowError> {
    let NewBatch { record, members } = batch;
    store_members(inner, record.id, Some(&record), members).await.map(|_| ())
}

/// Adds `jobs` to batch `id` (those not members yet); how many.
pub(super) async fn add(
    inner: &Inner,
    id: BatchId,
    jobs: Vec<Pushed>,
) -> Result<u64, WorkflowError> {
    store_members(inner, id, None, jobs).await
}

/// The newest `limit` batches.
pub(super) async fn list(inner: &Inner, limit: usize) -> Result<Vec<BatchInfo>, QueueError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let key = format!("{}batches", wf_base(&inner.settings.prefix));
    let stop = isize::try_from(limit).unwrap_or(isize::MAX) - 1;
    let ids: Vec<String> = inner.manager.clone().zrevrange(key, 0, stop).await.map_err(backend)?;
    let ids = parse_ids(&ids)?;
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(64) {
        out.extend(read_many(inner, chunk).await?.iter().flatten().map(info));
    }
    Ok(out)
}

fn parse_ids(ids: &[String]) -> Result<Vec<BatchId>, QueueError> {
    ids.iter().map(|id| id.parse().map_err(|_| unexpected("batches", id))).collect()
}

fn outcome(code: &str) -> Option<MemberOutcome> {
    match code {
        "S" => Some(MemberOutcome::Succeeded),
        "F" => Some(MemberOutcome::Failed),
        "C" => Some(MemberOutcome::Cancelled),
        _ => None,
    }
}

/// Members of batch `id` in id order, `limit` after `offset`.
pub(super) async fn members(
    inner: &Inner,
    id: BatchId,
    offset: usize,
    limit: usize,
) -> Result<MemberRows, QueueError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let key = batch_key(&inner.settings.prefix, id);
    let start = isize::try_from(offset).unwrap_or(isize::MAX);
    let stop = start.saturating_add(isize::try_from(limit).unwrap_or(isize::MAX)) - 1;
    let mut connection = inner.manager.clone();
    let ids: Vec<String> =
        connection.zrange(format!("{key}:ids"), start, stop).await.map_err(backend)?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let outcomes: Vec<Option<String>> = redis::cmd("HMGET")
        .arg(format!("{key}:outcomes"))
        .arg(&ids)
        .query_async(&mut connection)
        .await
        .map_err(backend)?;
    ids.iter()
        .zip(outcomes)
        .map(|(id, code)| {
            let job = id.parse::<JobId>().map_err(|_| unexpected("members", id))?;
            Ok((job, code.as_deref().and_then(outcome)))
        })
        .collect()
}

/// Cancels batch `id`; whether it was running. The batch is marked
/// cancelled by the first call, which sweeps a chunk of its waiting
/// members; the rest are swept by further calls, each a chunk, until none
/// is left (a caller that stops in between leaves the rest to the
/// reservations, see `flow::expire_before_reserving`).
pub(super) async fn cancel(inner: &Inner, id: BatchId) -> Result<bool, QueueError> {
    let invocation = inner.invocation(&CANCEL_SCRIPT, &batch_key(&inner.settings.prefix, id));
    let mut cancelled = None;
    loop {
        let (_, mut reply) = inner.call("cancel", &invocation).await?;
        let now = reply.int("cancelled")? == 1;
        let more = reply.int("sweep left")? == 1;
        announce(inner, &mut reply)?;
        let first = *cancelled.get_or_insert(now);
        if !more {
            return Ok(first);
        }
    }
}

/// Every member of batch `key` with its outcome, in id order.
async fn outcomes(inner: &Inner, key: &str) -> Result<Vec<(JobId, MemberOutcome)>, QueueError> {
    let all: Vec<(String, String)> =
        inner.manager.clone().hgetall(format!("{key}:outcomes")).await.map_err(backend)?;
    let mut out = Vec::with_capacity(all.len());
    for (id, code) in all {
        let job = id.parse::<JobId>().map_err(|_| unexpected("outcomes", &id))?;
        if let Some(outcome) = outcome(&code) {
            out.push((job, outcome));
        }
    }
    out.sort_unstable_by_key(|(job, _)| *job);
    Ok(out)
}

/// Deletes (or archives) the batches `prune` selects, and the archives it
/// drops; how many of both.
pub(super) async fn prune(inner: &Inner, prune: BatchPrune) -> Result<u64, QueueError> {
    let prefix = &*inner.settings.prefix;
    let wf = wf_base(prefix);
    let now = inner.time.now();
    let mut ids = Vec::new();
    let mut start = 0;
    loop {
        let page: Vec<String> = inner
            .manager
            .clone()
            .zrange(format!("{wf}batches"), start, start + PRUNE_PAGE - 1)
            .await
            .map_err(backend)?;
        let full = page.len() == PRUNE_PAGE as usize;
        ids.extend(parse_ids(&page)?);
        if !full {
            break;
        }
        start += PRUNE_PAGE;
    }
    let mut pruned = 0;
    for chunk in ids.chunks(64) {
        for (id, read) in chunk.iter().zip(read_many(inner, chunk).await?) {
            let Some(read) = read else { continue };
            let record = &read.0;
            if !prune.selects(record, now) {
                continue;
            }
            let key = batch_key(prefix, *id);
            let archive = if prune.archive && record.finished_at.is_some() {
                let archived = ArchivedBatch::new(info(&read), outcomes(inner, &key).await?, now);
                serde_json::to_string(&archived).map_err(|error| {
                    QueueError::Corrupt(format!("batch {id} cannot be archived: {error}"))
                })?
            } else {
                String::new()
            };
            let at = |time: Option<u64>| time.map_or(-1, |t| i64::try_from(t).unwrap_or(i64::MAX));
            let mut invocation = inner.invocation(&DROP_SCRIPT, &key);
            invocation.key(&wf);
            invocation
                .arg(id.to_string())
                .arg(at(record.cancelled_at))
                .arg(at(record.finished_at))
                .arg(archive)
                .arg(now);
            let (_, mut reply) = inner.call("drop batch", &invocation).await?;
            pruned += reply.uint("deleted")?;
        }
    }
    if let Some(age) = prune.archived_age {
        let cutoff = now.saturating_sub(millis(age));
        loop {
            let mut invocation = inner.invocation(&DROP_ARCHIVES_SCRIPT, &wf);
            invocation.arg(cutoff);
            let (_, mut reply) = inner.call("drop archives", &invocation).await?;
            let dropped = reply.uint("deleted")?;
            pruned += dropped;
            if dropped == 0 {
                break;
            }
        }
    }
    Ok(pruned)
}

/// The archive of batch `id`.
pub(super) async fn archived(
    inner: &Inner,
    id: BatchId,
) -> Result<Option<ArchivedBatch>, QueueError> {
    let key = format!("{}archive", wf_base(&inner.settings.prefix));
    let text: Option<String> =
        inner.manager.clone().hget(key, id.to_string()).await.map_err(backend)?;
    text.map(|text| {
        serde_json::from_str(&text)
            .map_err(|error| QueueError::Corrupt(format!("archive of batch {id}: {error}")))
    })
    .transpose()
}

/// Re-dispatches the failed members of finished batch `id`; how many.
pub(super) async fn recover(inner: &Inner, id: BatchId) -> Result<u64, WorkflowError> {
    let prefix = &*inner.settings.prefix;
    let key = batch_key(prefix, id);
    for _ in 0..16 {
        let Some((record, counts, _)) = read_one(inner, id).await? else {
            return Err(WorkflowError::NotFound { id });
        };
        machine::check_recover(&record, counts).map_err(|u| u.into_error(id))?;
        let mut connection = inner.manager.clone();
        let failed: Vec<String> =
            connection.lrange(format!("{key}:failed"), 0, -1).await.map_err(backend)?;
        if failed.is_empty() {
            return Ok(0);
        }
        // Where each failed member's job is, then the failed records, one
        // call per queue.
        let locations: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(format!("{key}:members"))
            .arg(&failed)
            .query_async(&mut connection)
            .await
            .map_err(backend)?;
        let mut by_base: Vec<(String, Vec<(String, String)>)> = Vec::new();
        for (member, loc) in failed.into_iter().zip(locations) {
            let Some((base, job)) = loc.as_deref().and_then(|loc| loc.split_once('\n')) else {
                continue;
            };
            let entry = (member, job.to_owned());
            match by_base.iter_mut().find(|(known, _)| known == base) {
                Some((_, jobs)) => jobs.push(entry),
                None => by_base.push((base.to_owned(), vec![entry])),
            }
        }
        let mut specs = Vec::new();
        let mut bases = Vec::new();
        for (base, jobs) in by_base {
            let ids: Vec<&str> = jobs.iter().map(|(_, job)| job.as_str()).collect();
            let records: Vec<Option<String>> = redis::cmd("HMGET")
                .arg(format!("{base}failed:data"))
                .arg(&ids)
                .query_async(&mut connection)
                .await
                .map_err(backend)?;
            for ((member, job), text) in jobs.iter().zip(records) {
                let Some(text) = text else { continue };
                let mut envelope = super::failed::read_record(job, &text)?.envelope;
                envelope.exceptions = 0;
                // A recovered member takes no admission lock (a retry does not).
                if let Some(flow) = envelope.flow.as_deref_mut() {
                    flow.admission = None;
                }
                let pushed = Pushed::new(envelope, inner.time.now());
                specs.push((member.clone(), flow::spec(prefix, &pushed)?));
            }
            bases.push(base);
        }
        if specs.is_empty() {
            return Ok(0);
        }
        let mut invocation = inner.invocation(&RECOVER_SCRIPT, &key);
        invocation.key(wf_base(prefix));
        for base in &bases {
            invocation.key(base);
        }
        invocation.arg(record.finished_at.unwrap_or(0));
        for (member, spec) in &specs {
            invocation.arg(member).arg(spec);
        }
        let (_, mut reply) = inner.call("recover", &invocation).await?;
        let recovered = reply.int("recovered")?;
        if recovered >= 0 {
            return Ok(u64::try_from(recovered).unwrap_or(0));
        }
    }
    Err(QueueError::Backend("a batch kept changing while it was recovered".into()).into())
}
