//! The SQLite queue's workflows, inside the transaction that settles the
//! job they come from: batches as rows of member outcomes (a member's
//! outcome is set once, from NULL), callbacks claimed in the batch record
//! and pushed in the same transaction, the chain hand-off, cancellation.

use rusqlite::{OptionalExtension, params};

use super::row::{Failure, Refusal, decode, encode, id_at, id_bytes, sql_int};
use super::writer::Tx;
use crate::admission::machine::Step;
use crate::batch::machine::{self, Unrecoverable};
use crate::batch::model::{BatchRecord, Counts, MemberOutcome};
use crate::batch::{ArchivedBatch, BatchId, BatchInfo, BatchProgress, BatchPrune};
use crate::chain::{chain_catch, next_link};
use crate::failed::Selection;
use crate::id::JobId;
use crate::job::{BatchMember, Envelope, MAX_PRIORITY};
use crate::queue::backend::{Pushed, Settlement};
use crate::queue::settle::Effect;

const RECORD: &str = "SELECT record FROM conc_bus_batches WHERE id = ?1";
const SAVE_RECORD: &str = "UPDATE conc_bus_batches SET record = ?2 WHERE id = ?1";
const INSERT_BATCH: &str =
    "INSERT INTO conc_bus_batches (id, created_at, record, deadline) VALUES (?1, ?2, ?3, ?4)";
/// Up to 64 batches whose deadline has passed at `?1`.
const DUE: &str = "SELECT id FROM conc_bus_batches WHERE deadline IS NOT NULL AND deadline <= ?1
     ORDER BY deadline LIMIT 64";
const CLEAR_DEADLINE: &str = "UPDATE conc_bus_batches SET deadline = NULL WHERE id = ?1";
const PENDING_MEMBERS: &str =
    "SELECT job FROM conc_bus_batch_members WHERE batch = ?1 AND outcome IS NULL";
const INSERT_MEMBER: &str =
    "INSERT INTO conc_bus_batch_members (batch, job) VALUES (?1, ?2) ON CONFLICT DO NOTHING";
/// Sets a member's outcome once: nothing changes when it has one.
const SET_OUTCOME: &str = "UPDATE conc_bus_batch_members SET outcome = ?3, at = ?4
     WHERE batch = ?1 AND job = ?2 AND outcome IS NULL";
const COUNTS: &str =
    "SELECT outcome, count(*) FROM conc_bus_batch_members WHERE batch = ?1 GROUP BY outcome";
const FAILED_MEMBERS: &str = "SELECT job FROM conc_bus_batch_members
     WHERE batch = ?1 AND outcome = 2 ORDER BY at, job";
/// The first failed members a `BatchInfo` shows (`MAX_FAILED_JOBS`).
const FIRST_FAILED_MEMBERS: &str = "SELECT job FROM conc_bus_batch_members
     WHERE batch = ?1 AND outcome = 2 ORDER BY at, job LIMIT 100";
const WAITING: &str =
    "SELECT seq, id, envelope FROM conc_bus_jobs WHERE batch = ?1 AND state IN (0, 1)";
const DELETE_SEQ: &str = "DELETE FROM conc_bus_jobs WHERE seq = ?1";
const FOLLOW: &str =
    "INSERT INTO conc_bus_jobs (id, queue, state, priority, available_at, envelope, batch)
     SELECT ?1, ?2, 0, ?3, ?4, ?5, ?6
     WHERE NOT EXISTS (SELECT 1 FROM conc_bus_failed WHERE id = ?1)
     ON CONFLICT (id) DO NOTHING";
const LIST: &str = "SELECT record FROM conc_bus_batches ORDER BY created_at DESC, id DESC
     LIMIT CAST(?1 AS INTEGER)";
const MEMBERS: &str = "SELECT job, outcome FROM conc_bus_batch_members WHERE batch = ?1
     ORDER BY job LIMIT CAST(?2 AS INTEGER) OFFSET CAST(?3 AS INTEGER)";
const ALL: &str = "SELECT id, record FROM conc_bus_batches";
const DELETE_BATCH: &str = "DELETE FROM conc_bus_batches WHERE id = ?1";
const DELETE_MEMBERS: &str = "DELETE FROM conc_bus_batch_members WHERE batch = ?1";
/// Takes failed member `?2`'s outcome back.
const UNFAIL: &str = "UPDATE conc_bus_batch_members SET outcome = NULL, at = NULL
     WHERE batch = ?1 AND job = ?2 AND outcome = 2";
const OUTCOMES: &str =
    "SELECT job, outcome FROM conc_bus_batch_members WHERE batch = ?1 ORDER BY job";
const ARCHIVE: &str = "INSERT OR REPLACE INTO conc_bus_batch_archive (id, archived_at, archive)
     VALUES (?1, ?2, ?3)";
const ARCHIVED: &str = "SELECT archive FROM conc_bus_batch_archive WHERE id = ?1";
const DROP_ARCHIVES: &str = "DELETE FROM conc_bus_batch_archive WHERE archived_at < ?1";

/// Every constant statement of this module, prepared at open.
pub(super) const STATEMENTS: [&str; 24] = [
    UNFAIL,
    OUTCOMES,
    ARCHIVE,
    ARCHIVED,
    DROP_ARCHIVES,
    DUE,
    CLEAR_DEADLINE,
    PENDING_MEMBERS,
    RECORD,
    SAVE_RECORD,
    INSERT_BATCH,
    INSERT_MEMBER,
    SET_OUTCOME,
    COUNTS,
    FAILED_MEMBERS,
    FIRST_FAILED_MEMBERS,
    WAITING,
    DELETE_SEQ,
    FOLLOW,
    LIST,
    MEMBERS,
    ALL,
    DELETE_BATCH,
    DELETE_MEMBERS,
];

/// The `batch` column of a job row.
pub(super) fn batch_column(envelope: &Envelope) -> Option<[u8; 16]> {
    let member = envelope.flow.as_deref()?.batch?;
    Some(id_bytes(member.batch.as_job_id()))
}

pub(super) fn batch_bytes(id: BatchId) -> [u8; 16] {
    id_bytes(id.as_job_id())
}

fn load(tx: &Tx<'_>, id: BatchId) -> Result<Option<BatchRecord>, Failure> {
    let text: Option<String> = tx
        .conn
        .prepare_cached(RECORD)?
        .query_row([batch_bytes(id)], |row| row.get(0))
        .optional()?;
    text.map(|text| parse(&text)).transpose()
}

pub(super) fn parse(text: &str) -> Result<BatchRecord, Failure> {
    serde_json::from_str(text)
        .map_err(|error| Failure::corrupt(format!("a stored batch does not decode: {error}")))
}

fn save(tx: &Tx<'_>, record: &BatchRecord) -> Result<(), Failure> {
    let text = serde_json::to_string(record)
        .map_err(|error| Failure::corrupt(format!("a batch does not encode: {error}")))?;
    tx.conn.prepare_cached(SAVE_RECORD)?.execute(params![batch_bytes(record.id), text])?;
    Ok(())
}

/// The counts of `record`: kept in it, or (in a record written before they
/// were kept) counted from its member set.
fn counted(tx: &Tx<'_>, record: &BatchRecord) -> Result<Counts, Failure> {
    match record.counts {
        Some(counts) => Ok(counts),
        None => tally(tx, record.id),
    }
}

/// The counts of batch `id`, from its member set.
fn tally(tx: &Tx<'_>, id: BatchId) -> Result<Counts, Failure> {
    let mut counts = Counts::default();
    let mut statement = tx.conn.prepare_cached(COUNTS)?;
    let mut rows = statement.query([batch_bytes(id)])?;
    while let Some(row) = rows.next()? {
        let outcome: Option<i64> = row.get(0)?;
        let n: i64 = row.get(1)?;
        let n = u64::try_from(n).unwrap_or(0);
        counts.total += n;
        match outcome.and_then(MemberOutcome::from_code) {
            Some(MemberOutcome::Succeeded) => counts.succeeded += n,
            Some(MemberOutcome::Failed) => counts.failed += n,
            Some(MemberOutcome::Cancelled) => counts.cancelled += n,
            None => {}
        }
    }
    Ok(counts)
}

/// Whether batch `batch` (its stored bytes) is cancelled.
pub(super) fn cancelled(tx: &Tx<'_>, batch: &[u8]) -> Result<bool, Failure> {
    let text: Option<String> =
        tx.conn.prepare_cached(RECORD)?.query_row([batch], |row| row.get(0)).optional()?;
    Ok(match text {
        Some(text) => parse(&text)?.cancelled_at.is_some(),
        None => false,
    })
}

fn member_cancelled(tx: &Tx<'_>, member: Option<BatchMember>) -> Result<bool, Failure> {
    match member {
        Some(member) => cancelled(tx, &batch_bytes(member.batch)),
        None => Ok(false),
    }
}

/// Whether `envelope`, a job just claimed, is a member of a cancelled batch
/// (`seen` caches each batch's answer for one reservation): it then counts
/// as cancelled (if it had no outcome), its admission lock is released, and
/// the caller deletes it instead of leasing it — a member whose worker died
/// after its batch was cancelled is not run again.
pub(super) fn drop_if_cancelled(
    tx: &Tx<'_>,
    envelope: &Envelope,
    seen: &mut Vec<([u8; 16], bool)>,
) -> Result<bool, Failure> {
    let Some(member) = envelope.flow.as_deref().and_then(|f| f.batch) else { return Ok(false) };
    let key = batch_bytes(member.batch);
    let is_cancelled = if let Some((_, answer)) = seen.iter().find(|(batch, _)| *batch == key) {
        *answer
    } else {
        let answer = cancelled(tx, &key)?;
        seen.push((key, answer));
        answer
    };
    if !is_cancelled {
        return Ok(false);
    }
    let mut follow = Vec::new();
    record(tx, member, MemberOutcome::Cancelled, None, &mut follow)?;
    super::admit::step(tx, envelope, Step::Finished)?;
    push_follow(tx, &follow)?;
    Ok(true)
}

/// Carries the workflow of `envelope` on after `effect` (see the memory
/// queue's rules, which these mirror): the effect to apply instead, the
/// settlement to report instead, the jobs to push in `follow`.
pub(super) fn settled(
    tx: &Tx<'_>,
    envelope: &Envelope,
    effect: Effect,
    follow: &mut Vec<Pushed>,
) -> Result<(Effect, Option<Settlement>), Failure> {
    let (effect, instead) = effects(tx, envelope, effect, follow)?;
    let step = match effect {
        Effect::Delete | Effect::Dead { .. } => Some(Step::Finished),
        Effect::Requeue { .. } => Some(Step::Requeued),
        Effect::Extended { .. } | Effect::Kept => None,
    };
    if let Some(step) = step {
        super::admit::step(tx, envelope, step)?;
    }
    Ok((effect, instead))
}

fn effects(
    tx: &Tx<'_>,
    envelope: &Envelope,
    effect: Effect,
    follow: &mut Vec<Pushed>,
) -> Result<(Effect, Option<Settlement>), Failure> {
    let Some(flow) = envelope.flow.as_deref() else { return Ok((effect, None)) };
    let now = tx.now;
    let cancelled = member_cancelled(tx, flow.batch)?;
    Ok(match &effect {
        Effect::Delete => {
            match if cancelled { None } else { next_link(envelope, now) } {
                Some(next) => follow.push(next),
                None => {
                    if let Some(member) = flow.batch {
                        let outcome = if flow.chain.is_empty() {
                            MemberOutcome::Succeeded
                        } else {
                            MemberOutcome::Cancelled
                        };
                        record(tx, member, outcome, None, follow)?;
                    }
                }
            }
            (effect, None)
        }
        Effect::Dead { error, .. } => {
            follow.extend(chain_catch(envelope, error, now));
            if let Some(member) = flow.batch {
                record(tx, member, MemberOutcome::Failed, Some(error), follow)?;
            }
            (effect, None)
        }
        Effect::Requeue { .. } if cancelled => {
            if let Some(member) = flow.batch {
                record(tx, member, MemberOutcome::Cancelled, None, follow)?;
            }
            (Effect::Delete, Some(Settlement::Skipped))
        }
        _ => (effect, None),
    })
}

/// Records `outcome` for `member` unless it has one; claims the callbacks
/// it fires into `follow`; cancels the batch when it says so.
fn record(
    tx: &Tx<'_>,
    member: BatchMember,
    outcome: MemberOutcome,
    error: Option<&str>,
    follow: &mut Vec<Pushed>,
) -> Result<(), Failure> {
    let batch = batch_bytes(member.batch);
    let set = tx.conn.prepare_cached(SET_OUTCOME)?.execute(params![
        batch,
        id_bytes(member.member),
        outcome.code(),
        sql_int(tx.now)
    ])?;
    if set == 0 {
        return Ok(());
    }
    let Some(mut record) = load(tx, member.batch)? else { return Ok(()) };
    let counts = match record.counts {
        // One member moved from no outcome to `outcome`, just now.
        Some(mut counts) => {
            counts.add(outcome);
            counts
        }
        None => tally(tx, member.batch)?,
    };
    record.counts = Some(counts);
    let decision = machine::on_outcome(&mut record, counts, member.member, outcome, error, tx.now);
    follow.extend(machine::callback_jobs(&record, &decision.fire, tx.now));
    save(tx, &record)?;
    tx.announce(BatchProgress::new(&record, counts, member.member, outcome));
    if decision.cancel {
        drop_waiting(tx, member.batch, follow)?;
    }
    Ok(())
}

/// Times out the batches whose deadline has passed (up to 64 per call):
/// their unfinished members count as cancelled (waiting jobs deleted,
/// running ones asked to stop), and `catch` and `finally` fire once.
pub(super) fn expire(tx: &Tx<'_>) -> Result<(), Failure> {
    let due: Vec<JobId> = {
        let mut statement = tx.conn.prepare_cached(DUE)?;
        let mut rows = statement.query([sql_int(tx.now)])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(id_at(row, 0)?);
        }
        out
    };
    let mut follow = Vec::new();
    for id in due {
        let id = BatchId::from_job_id(id);
        tx.conn.prepare_cached(CLEAR_DEADLINE)?.execute([batch_bytes(id)])?;
        let Some(mut stored) = load(tx, id)? else { continue };
        let Some(fires) = machine::time_out(&mut stored, tx.now) else { continue };
        follow.extend(machine::callback_jobs(&stored, &fires, tx.now));
        save(tx, &stored)?;
        drop_waiting(tx, id, &mut follow)?;
        let running: Vec<JobId> = {
            let mut statement = tx.conn.prepare_cached(PENDING_MEMBERS)?;
            let mut rows = statement.query([batch_bytes(id)])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(id_at(row, 0)?);
            }
            out
        };
        for member in running {
            let member = BatchMember::new(id, member);
            record(tx, member, MemberOutcome::Cancelled, None, &mut follow)?;
        }
    }
    push_follow(tx, &follow)
}

/// Deletes the waiting jobs of batch `id`; their members count as cancelled
/// and their unique locks are released.
fn drop_waiting(tx: &Tx<'_>, id: BatchId, follow: &mut Vec<Pushed>) -> Result<(), Failure> {
    let waiting: Vec<(i64, JobId, String)> = {
        let mut statement = tx.conn.prepare_cached(WAITING)?;
        let mut rows = statement.query([batch_bytes(id)])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push((row.get(0)?, id_at(row, 1)?, row.get(2)?));
        }
        out
    };
    for (seq, job, text) in waiting {
        tx.conn.prepare_cached(DELETE_SEQ)?.execute([seq])?;
        let envelope = decode(&text, job, None)?;
        super::admit::step(tx, &envelope, Step::Finished)?;
        if let Some(member) = envelope.flow.as_deref().and_then(|f| f.batch) {
            record(tx, member, MemberOutcome::Cancelled, None, follow)?;
        }
    }
    Ok(())
}

/// A waiting job the backend deleted itself (superseded by a debounced
/// dispatch, cleared): a batch member counts as cancelled, and the
/// callbacks that fires are pushed.
pub(super) fn dropped(tx: &Tx<'_>, envelope: &Envelope) -> Result<(), Failure> {
    let Some(member) = envelope.flow.as_deref().and_then(|f| f.batch) else { return Ok(()) };
    let mut follow = Vec::new();
    record(tx, member, MemberOutcome::Cancelled, None, &mut follow)?;
    push_follow(tx, &follow)
}

/// Stores jobs the backend pushes itself (next links, callbacks): never
/// refused by a bound, skipped when their id is stored already.
pub(super) fn push_follow(tx: &Tx<'_>, follow: &[Pushed]) -> Result<(), Failure> {
    if follow.is_empty() {
        return Ok(());
    }
    let mut insert = tx.conn.prepare_cached(FOLLOW)?;
    let mut note = tx.conn.prepare_cached(super::store::NOTE_QUEUE)?;
    for job in follow {
        let envelope = &job.envelope;
        insert.execute(params![
            id_bytes(envelope.id),
            envelope.queue,
            envelope.priority.min(MAX_PRIORITY),
            sql_int(tx.now),
            encode(envelope)?,
            batch_column(envelope)
        ])?;
        note.execute([&envelope.queue])?;
    }
    tx.wake();
    Ok(())
}

fn insert_members(tx: &Tx<'_>, id: BatchId, jobs: &[Pushed]) -> Result<(), Failure> {
    let mut insert = tx.conn.prepare_cached(INSERT_MEMBER)?;
    for job in jobs {
        if let Some(member) = job.envelope.flow.as_deref().and_then(|f| f.batch) {
            insert.execute(params![batch_bytes(id), id_bytes(member.member)])?;
        }
    }
    Ok(())
}

/// Stores a batch and pushes its members; an empty one fires at once.
pub(super) fn create(
    tx: &Tx<'_>,
    record: &BatchRecord,
    members: &[Pushed],
) -> Result<u64, Failure> {
    let mut record = record.clone();
    let total = members
        .iter()
        .filter(|job| job.envelope.flow.as_deref().is_some_and(|f| f.batch.is_some()))
        .count();
    let counts = Counts { total: total as u64, ..Counts::default() };
    record.counts = Some(counts);
    let text = serde_json::to_string(&record)
        .map_err(|error| Failure::corrupt(format!("a batch does not encode: {error}")))?;
    tx.conn.prepare_cached(INSERT_BATCH)?.execute(params![
        batch_bytes(record.id),
        sql_int(record.created_at),
        text,
        record.deadline.map(sql_int)
    ])?;
    insert_members(tx, record.id, members)?;
    // Pushed once the batch and its members are stored: a debounced member
    // that supersedes another one counts it as cancelled in its record.
    super::store::push(tx, members)?;
    let Some(mut record) = load(tx, record.id)? else { return Ok(members.len() as u64) };
    let counts = counted(tx, &record)?;
    let fires = machine::on_settled(&mut record, counts, tx.now);
    if !fires.is_empty() || record.finished_at.is_some() {
        save(tx, &record)?;
        push_follow(tx, &machine::callback_jobs(&record, &fires, tx.now))?;
    }
    Ok(members.len() as u64)
}

/// Adds the members of `jobs` not in batch `id` yet and pushes them.
pub(super) fn add(tx: &Tx<'_>, id: BatchId, jobs: &[Pushed]) -> Result<u64, Failure> {
    let Some(mut record) = load(tx, id)? else {
        return Err(Failure::Refused(Refusal::NoBatch(id)));
    };
    if record.cancelled_at.is_some() {
        return Err(Failure::Refused(Refusal::Closed(id, "cancelled")));
    }
    if record.finished_at.is_some() {
        return Err(Failure::Refused(Refusal::Closed(id, "finished")));
    }
    let mut insert = tx.conn.prepare_cached(INSERT_MEMBER)?;
    let mut fresh = Vec::new();
    for job in jobs {
        let Some(member) = job.envelope.flow.as_deref().and_then(|f| f.batch) else { continue };
        if insert.execute(params![batch_bytes(id), id_bytes(member.member)])? > 0 {
            fresh.push(job.clone());
        }
    }
    if !fresh.is_empty() {
        let mut counts = counted(tx, &record)?;
        if record.counts.is_some() {
            counts.total += fresh.len() as u64;
        }
        record.counts = Some(counts);
        save(tx, &record)?;
    }
    // Pushed once counted: a debounced member that supersedes another one
    // counts it as cancelled in the saved record.
    super::store::push(tx, &fresh)?;
    Ok(fresh.len() as u64)
}

pub(super) fn info(tx: &Tx<'_>, record: &BatchRecord) -> Result<BatchInfo, Failure> {
    let counts = counted(tx, record)?;
    let mut failed = Vec::new();
    let mut statement = tx.conn.prepare_cached(FIRST_FAILED_MEMBERS)?;
    let mut rows = statement.query([batch_bytes(record.id)])?;
    while let Some(row) = rows.next()? {
        failed.push(id_at(row, 0)?);
    }
    Ok(BatchInfo::new(record, counts, failed))
}

/// Batch `id` as it stands.
pub(super) fn find(tx: &Tx<'_>, id: BatchId) -> Result<Option<BatchInfo>, Failure> {
    load(tx, id)?.map(|record| info(tx, &record)).transpose()
}

/// Up to `limit` batches, newest first.
pub(super) fn list(tx: &Tx<'_>, limit: usize) -> Result<Vec<BatchInfo>, Failure> {
    let records: Vec<String> = {
        let mut statement = tx.conn.prepare_cached(LIST)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        statement.query_map([limit], |row| row.get(0))?.collect::<Result<_, _>>()?
    };
    records.iter().map(|text| info(tx, &parse(text)?)).collect()
}

/// Members of batch `id` with their outcome, in id order.
pub(super) fn members(
    tx: &Tx<'_>,
    id: BatchId,
    offset: usize,
    limit: usize,
) -> Result<Vec<(JobId, Option<MemberOutcome>)>, Failure> {
    let mut statement = tx.conn.prepare_cached(MEMBERS)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    let mut rows = statement.query(params![batch_bytes(id), limit, offset])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let job = id_at(row, 0)?;
        let outcome: Option<i64> = row.get(1)?;
        out.push((job, outcome.and_then(MemberOutcome::from_code)));
    }
    Ok(out)
}

/// Cancels batch `id`; whether it was running.
pub(super) fn cancel(tx: &Tx<'_>, id: BatchId) -> Result<bool, Failure> {
    let Some(mut record) = load(tx, id)? else { return Ok(false) };
    if !machine::cancel(&mut record, tx.now) {
        return Ok(false);
    }
    save(tx, &record)?;
    let mut follow = Vec::new();
    drop_waiting(tx, id, &mut follow)?;
    // Nothing may have been waiting: the batch may be finished already.
    if let Some(mut record) = load(tx, id)? {
        let counts = counted(tx, &record)?;
        let fires = machine::on_settled(&mut record, counts, tx.now);
        follow.extend(machine::callback_jobs(&record, &fires, tx.now));
        save(tx, &record)?;
    }
    push_follow(tx, &follow)?;
    Ok(true)
}

/// Deletes (or archives) the batches `prune` selects, and the archives it
/// drops; how many of both.
pub(super) fn prune(tx: &Tx<'_>, prune: BatchPrune) -> Result<u64, Failure> {
    let doomed: Vec<(Vec<u8>, BatchRecord)> = {
        let mut statement = tx.conn.prepare_cached(ALL)?;
        let mut rows = statement.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let id: Vec<u8> = row.get(0)?;
            let text: String = row.get(1)?;
            let record = parse(&text)?;
            if prune.selects(&record, tx.now) {
                out.push((id, record));
            }
        }
        out
    };
    for (id, record) in &doomed {
        if prune.archive && record.finished_at.is_some() {
            archive(tx, id, record)?;
        }
        tx.conn.prepare_cached(DELETE_MEMBERS)?.execute([id])?;
        tx.conn.prepare_cached(DELETE_BATCH)?.execute([id])?;
    }
    let mut dropped = 0;
    if let Some(age) = prune.archived_age {
        let before = tx.now.saturating_sub(crate::clock::millis(age));
        dropped = tx.conn.prepare_cached(DROP_ARCHIVES)?.execute([sql_int(before)])?;
    }
    Ok((doomed.len() + dropped) as u64)
}

/// Stores batch `id`'s archive: its info and every member's outcome.
fn archive(tx: &Tx<'_>, id: &[u8], record: &BatchRecord) -> Result<(), Failure> {
    let info = info(tx, record)?;
    let mut members = Vec::new();
    {
        let mut statement = tx.conn.prepare_cached(OUTCOMES)?;
        let mut rows = statement.query([id])?;
        while let Some(row) = rows.next()? {
            let outcome: Option<i64> = row.get(1)?;
            if let Some(outcome) = outcome.and_then(MemberOutcome::from_code) {
                members.push((id_at(row, 0)?, outcome));
            }
        }
    }
    let archived = ArchivedBatch::new(info, members, tx.now);
    let text = serde_json::to_string(&archived)
        .map_err(|error| Failure::corrupt(format!("a batch archive does not encode: {error}")))?;
    tx.conn.prepare_cached(ARCHIVE)?.execute(params![id, sql_int(tx.now), text])?;
    Ok(())
}

/// The archive of batch `id`, if it has one.
pub(super) fn archived(tx: &Tx<'_>, id: BatchId) -> Result<Option<ArchivedBatch>, Failure> {
    let text: Option<String> = tx
        .conn
        .prepare_cached(ARCHIVED)?
        .query_row([batch_bytes(id)], |row| row.get(0))
        .optional()?;
    text.map(|text| {
        serde_json::from_str(&text).map_err(|error| {
            Failure::corrupt(format!("a stored batch archive does not decode: {error}"))
        })
    })
    .transpose()
}

/// Re-dispatches the failed members of finished batch `id` whose jobs are
/// in the failed store, and reopens it; how many.
pub(super) fn recover(tx: &Tx<'_>, id: BatchId) -> Result<Result<u64, Unrecoverable>, Failure> {
    let Some(mut record) = load(tx, id)? else { return Ok(Err(Unrecoverable::NotFound)) };
    let mut counts = counted(tx, &record)?;
    if let Err(refusal) = machine::check_recover(&record, counts) {
        return Ok(Err(refusal));
    }
    let failed: Vec<JobId> = {
        let mut statement = tx.conn.prepare_cached(FAILED_MEMBERS)?;
        let mut rows = statement.query([batch_bytes(id)])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(id_at(row, 0)?);
        }
        out
    };
    let recovered = super::admin::retry_failed(tx, &Selection::Ids(failed))?;
    if recovered.is_empty() {
        return Ok(Ok(0));
    }
    let mut unfail = tx.conn.prepare_cached(UNFAIL)?;
    for member in &recovered {
        unfail.execute(params![batch_bytes(id), id_bytes(*member)])?;
    }
    counts.failed = counts.failed.saturating_sub(recovered.len() as u64);
    record.counts = Some(counts);
    machine::reopen(&mut record, recovered.len() as u64);
    save(tx, &record)?;
    Ok(Ok(recovered.len() as u64))
}
