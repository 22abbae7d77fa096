//! The lease cycle in SQL: push, reserve (recovery, batched claim), settle
//! (token-checked transitions) and the failed store's intake with its
//! retention bounds. Each function runs inside the batch's transaction, in
//! its request's savepoint.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::{OptionalExtension, params};

use super::row::{
    DELAYED, Failure, READY, Refusal, decode, encode, id_at, id_bytes, int_at, reason_name,
    sql_int, text_at, u64_at,
};
use super::writer::Tx;
use crate::clock::Millis;
use crate::failed::FailedJob;
use crate::id::JobId;
use crate::job::MAX_PRIORITY;
use crate::queue::backend::{Pushed, Reservation, Settled};
use crate::queue::error::LeaseLost;
use crate::queue::lease::{Lease, LeaseToken, Reserved};
use crate::queue::settle::{self, Effect, Transition};

/// The most due delayed jobs, and the most expired leases, one reservation
/// moves back to a queue's ready jobs.
///
/// (Every `LIMIT` of a bound value is written `LIMIT CAST(?n AS INTEGER)`:
/// SQLite recompiles a statement whose plain `LIMIT ?n` is bound again, at
/// every call.)
pub(super) const RECOVERY_CHUNK: i64 = 1024;

const FAILED_HAS: &str = "SELECT 1 FROM conc_bus_failed WHERE id = ?1";
const INSERT_JOB: &str =
    "INSERT INTO conc_bus_jobs (id, queue, state, priority, available_at, envelope, batch)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
pub(super) const NOTE_QUEUE: &str = "INSERT OR IGNORE INTO conc_bus_queues (name) VALUES (?1)";
const QUEUE_SETTINGS: &str = "SELECT paused, capacity FROM conc_bus_queues WHERE name = ?1";
const DEPTH: &str = "SELECT (SELECT count(*) FROM conc_bus_jobs WHERE queue = ?1 AND state = 0)
     + (SELECT count(*) FROM conc_bus_jobs WHERE queue = ?1 AND state = 1)";
const PROMOTE_DUE: &str = "UPDATE conc_bus_jobs SET state = 0 WHERE seq IN (
     SELECT seq FROM conc_bus_jobs WHERE queue = ?1 AND state = 1 AND available_at <= ?2
     ORDER BY available_at LIMIT CAST(?3 AS INTEGER))";
const RECOVER_EXPIRED: &str = "UPDATE conc_bus_jobs SET state = 0, available_at = expires_at
     WHERE seq IN (
     SELECT seq FROM conc_bus_jobs WHERE queue = ?1 AND state = 2 AND expires_at <= ?2
     ORDER BY expires_at LIMIT CAST(?3 AS INTEGER))";
const NEXT_TOKEN: &str = "SELECT value FROM conc_bus_meta WHERE key = 'next_token'";
const SET_NEXT_TOKEN: &str = "UPDATE conc_bus_meta SET value = ?1 WHERE key = 'next_token'";
/// Leases the first `?2` ready jobs of queue `?1` in reservation order until
/// `?3`, the `n`th of them with token `?4 + n`, counting the attempt.
const CLAIM: &str = "WITH picked AS MATERIALIZED (
         SELECT seq, priority, available_at FROM conc_bus_jobs
         WHERE queue = ?1 AND state = 0
         ORDER BY priority DESC, available_at, seq LIMIT CAST(?2 AS INTEGER)
     ), numbered AS (
         SELECT seq, row_number() OVER (ORDER BY priority DESC, available_at, seq) AS n
         FROM picked
     )
     UPDATE conc_bus_jobs
     SET state = 2, attempts = attempts + 1, expires_at = ?3, token = ?4 + numbered.n
     FROM numbered WHERE conc_bus_jobs.seq = numbered.seq
     RETURNING conc_bus_jobs.seq, conc_bus_jobs.id, conc_bus_jobs.attempts,
         conc_bus_jobs.token, conc_bus_jobs.available_at, conc_bus_jobs.envelope";
const DELETE_SEQ: &str = "DELETE FROM conc_bus_jobs WHERE seq = ?1";
/// The leased row of job `?1` if token `?2` holds it unexpired at `?3`.
const HELD: &str = "SELECT seq, attempts, envelope FROM conc_bus_jobs
     WHERE id = ?1 AND state = 2 AND token = ?2 AND expires_at > ?3";
const ACK: &str = "DELETE FROM conc_bus_jobs
     WHERE id = ?1 AND state = 2 AND token = ?2 AND expires_at > ?3 RETURNING envelope";
const EXTEND: &str = "UPDATE conc_bus_jobs SET expires_at = ?4
     WHERE id = ?1 AND state = 2 AND token = ?2 AND expires_at > ?3 RETURNING batch";
const REQUEUE: &str =
    "UPDATE conc_bus_jobs SET state = ?2, available_at = ?3, envelope = ?4 WHERE seq = ?1";
const KEEP: &str = "UPDATE conc_bus_jobs SET envelope = ?2 WHERE seq = ?1";
/// Gives back a lease nobody received: the job is ready again, in its place,
/// and the reservation no longer counts.
const UNCLAIM: &str = "UPDATE conc_bus_jobs SET state = 0, attempts = max(attempts - 1, 0)
     WHERE id = ?1 AND state = 2 AND token = ?2";
const BURY: &str = "INSERT OR REPLACE INTO conc_bus_failed
     (id, queue, name, failed_at, attempts, reason, error, envelope)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
const PRUNE_OLD: &str = "DELETE FROM conc_bus_failed WHERE failed_at < ?1";
const FAILED_TOTAL: &str = "SELECT count(*) FROM conc_bus_failed";
const PRUNE_OLDEST: &str = "DELETE FROM conc_bus_failed WHERE rowid IN (
     SELECT rowid FROM conc_bus_failed ORDER BY failed_at, id LIMIT CAST(?1 AS INTEGER))";

/// Every constant statement of this module, prepared at open so that a file
/// whose tables have another shape is refused there.
pub(super) const STATEMENTS: [&str; 22] = [
    FAILED_HAS,
    INSERT_JOB,
    NOTE_QUEUE,
    QUEUE_SETTINGS,
    DEPTH,
    PROMOTE_DUE,
    RECOVER_EXPIRED,
    NEXT_TOKEN,
    SET_NEXT_TOKEN,
    CLAIM,
    DELETE_SEQ,
    HELD,
    ACK,
    EXTEND,
    REQUEUE,
    KEEP,
    UNCLAIM,
    BURY,
    PRUNE_OLD,
    FAILED_TOTAL,
    PRUNE_OLDEST,
    super::admin::SIZE,
];

/// Stores `jobs`, all or none.
pub(super) fn push(tx: &Tx<'_>, jobs: &[Pushed]) -> Result<(), Failure> {
    let mut failed_has = tx.conn.prepare_cached(FAILED_HAS)?;
    let mut insert = tx.conn.prepare_cached(INSERT_JOB)?;
    let mut queues: Vec<&str> = Vec::new();
    for job in jobs {
        let envelope = &job.envelope;
        let id = id_bytes(envelope.id);
        if failed_has.exists([&id])? {
            return Err(Failure::Refused(Refusal::Duplicate { id: envelope.id }));
        }
        let available_at = super::admit::admit(tx, job)?;
        let (state, available_at) =
            if available_at > tx.now { (DELAYED, available_at) } else { (READY, tx.now) };
        let priority = envelope.priority.min(MAX_PRIORITY);
        let text = encode(envelope)?;
        match insert.execute(params![
            id,
            envelope.queue,
            state,
            priority,
            sql_int(available_at),
            text,
            super::flow::batch_column(envelope)
        ]) {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => {
                return Err(Failure::Refused(Refusal::Duplicate { id: envelope.id }));
            }
            Err(error) => return Err(error.into()),
        }
        if !queues.contains(&envelope.queue.as_str()) {
            queues.push(&envelope.queue);
        }
    }
    let mut note = tx.conn.prepare_cached(NOTE_QUEUE)?;
    let mut settings = tx.conn.prepare_cached(QUEUE_SETTINGS)?;
    for queue in queues {
        note.execute([queue])?;
        let capacity: Option<i64> = settings.query_row([queue], |row| row.get(1))?;
        if let Some(capacity) = capacity {
            let depth: i64 = tx.conn.prepare_cached(DEPTH)?.query_row([queue], |row| row.get(0))?;
            if depth > capacity {
                let capacity = u64::try_from(capacity).unwrap_or(0);
                return Err(Failure::Refused(Refusal::Full { queue: queue.to_owned(), capacity }));
            }
        }
    }
    tx.wake();
    Ok(())
}

/// Whether `error` is a `UNIQUE` constraint refusing a row.
fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

/// One claimed row, as `RETURNING` gave it.
struct Claimed {
    seq: i64,
    id: JobId,
    attempts: u32,
    token: u64,
    available_at: Millis,
    envelope: String,
}

/// Leases up to `max` jobs of `queues` (in order) for `lease_ms`; jobs out of
/// attempts or past their deadline go to the failed store instead.
pub(super) fn reserve(
    tx: &Tx<'_>,
    queues: &[String],
    max: usize,
    lease_ms: Millis,
) -> Result<Reservation, Failure> {
    super::flow::expire(tx)?;
    let mut reservation = Reservation::default();
    let first_token: i64 = tx.conn.prepare_cached(NEXT_TOKEN)?.query_row([], |row| row.get(0))?;
    let mut next_token = first_token;
    // Whether each batch met so far is cancelled.
    let mut batches = Vec::new();
    let expires_at = tx.now.saturating_add(lease_ms);
    for queue in queues {
        if reservation.jobs.len() >= max {
            break;
        }
        recover(tx, queue)?;
        let paused: Option<bool> = tx
            .conn
            .prepare_cached(QUEUE_SETTINGS)?
            .query_row([queue], |row| row.get(0))
            .optional()?;
        if paused == Some(true) {
            continue;
        }
        loop {
            let want = max - reservation.jobs.len();
            if want == 0 {
                break;
            }
            let claimed = claim(tx, queue, want, expires_at, next_token)?;
            next_token = next_token.saturating_add(i64::try_from(claimed.len()).unwrap_or(0));
            let short = claimed.len() < want;
            for row in claimed {
                let envelope = decode(&row.envelope, row.id, Some(row.seq))?;
                // A member of a cancelled batch that came back (its worker
                // died) is dropped before its attempts or deadline are
                // looked at: cancelled, not failed (as the memory queue).
                if super::flow::drop_if_cancelled(tx, &envelope, &mut batches)? {
                    tx.conn.prepare_cached(DELETE_SEQ)?.execute([row.seq])?;
                    continue;
                }
                if let Some(failed) = settle::refused_job(&envelope, row.attempts, tx.now) {
                    tx.conn.prepare_cached(DELETE_SEQ)?.execute([row.seq])?;
                    if failed.envelope.flow.is_some() {
                        let effect =
                            Effect::Dead { reason: failed.reason, error: failed.error.clone() };
                        let mut follow = Vec::new();
                        super::flow::settled(tx, &failed.envelope, effect, &mut follow)?;
                        super::flow::push_follow(tx, &follow)?;
                    }
                    reservation.dead.push(failed);
                    // A failure may have cancelled a batch.
                    batches.clear();
                    continue;
                }
                super::admit::step(tx, &envelope, crate::admission::machine::Step::Reserved)?;
                let lease =
                    Lease::new(row.id, queue.as_str(), LeaseToken::new(row.token), expires_at);
                let waited = Duration::from_millis(tx.now.saturating_sub(row.available_at));
                let reserved = Reserved::new(Arc::new(envelope), row.attempts, lease, waited);
                reservation.jobs.push(reserved);
            }
            if short {
                break;
            }
        }
    }
    if next_token != first_token {
        tx.conn.prepare_cached(SET_NEXT_TOKEN)?.execute([next_token])?;
    }
    bury(tx, &reservation.dead)?;
    Ok(reservation)
}

/// Moves due delayed jobs and expired leases of `queue` back to its ready
/// jobs, at most [`RECOVERY_CHUNK`] of each.
fn recover(tx: &Tx<'_>, queue: &str) -> Result<(), Failure> {
    let now = sql_int(tx.now);
    tx.conn.prepare_cached(PROMOTE_DUE)?.execute(params![queue, now, RECOVERY_CHUNK])?;
    tx.conn.prepare_cached(RECOVER_EXPIRED)?.execute(params![queue, now, RECOVERY_CHUNK])?;
    Ok(())
}

/// Leases up to `want` ready jobs of `queue`, with tokens after `after`, in
/// reservation order.
fn claim(
    tx: &Tx<'_>,
    queue: &str,
    want: usize,
    expires_at: Millis,
    after: i64,
) -> Result<Vec<Claimed>, Failure> {
    let mut statement = tx.conn.prepare_cached(CLAIM)?;
    let limit = i64::try_from(want).unwrap_or(i64::MAX);
    let mut rows = statement.query(params![queue, limit, sql_int(expires_at), after])?;
    let mut claimed = Vec::with_capacity(want.min(1024));
    while let Some(row) = rows.next()? {
        let seq = int_at(row, 0, "row number")?;
        let with_seq = |failure: Failure| failure.of_row(seq);
        let id = id_at(row, 1).map_err(with_seq)?;
        let attempts = u64_at(row, 2, "attempts").map_err(with_seq)?;
        claimed.push(Claimed {
            seq,
            id,
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            token: u64_at(row, 3, "token").map_err(with_seq)?,
            available_at: u64_at(row, 4, "available_at").map_err(with_seq)?,
            envelope: text_at(row, 5, "envelope").map_err(with_seq)?,
        });
    }
    // `RETURNING` gives rows in no set order; the tokens follow reservation order.
    claimed.sort_unstable_by_key(|row| row.token);
    Ok(claimed)
}

/// Applies each transition in order.
pub(super) fn settle(
    tx: &Tx<'_>,
    batch: Vec<(Lease, Transition)>,
) -> Result<Vec<Settled>, Failure> {
    let mut out = Vec::with_capacity(batch.len());
    let mut dead = Vec::new();
    for (lease, transition) in batch {
        out.push(settle_one(tx, &lease, transition, &mut dead)?);
    }
    bury(tx, &dead)?;
    Ok(out)
}

fn settle_one(
    tx: &Tx<'_>,
    lease: &Lease,
    transition: Transition,
    dead: &mut Vec<FailedJob>,
) -> Result<Settled, Failure> {
    let id = id_bytes(lease.job);
    let token = sql_int(lease.token.get());
    let now = sql_int(tx.now);
    let lost = Err(LeaseLost::new(lease.job));
    if let Some(effect) = settle::apply_blind(&transition, tx.now) {
        if let Effect::Extended { expires_at } = effect {
            let mut statement = tx.conn.prepare_cached(EXTEND)?;
            let mut rows = statement.query(params![id, token, now, sql_int(expires_at)])?;
            let Some(row) = rows.next()? else { return Ok(lost) };
            let batch: Option<Vec<u8>> = row.get(0)?;
            drop(rows);
            let stop = match batch {
                Some(batch) => super::flow::cancelled(tx, &batch)?,
                None => false,
            };
            return Ok(Ok(if stop {
                crate::queue::backend::Settlement::StopAsked { expires_at }
            } else {
                effect.settlement()
            }));
        }
        let text: Option<String> = tx
            .conn
            .prepare_cached(ACK)?
            .query_row(params![id, token, now], |row| row.get(0))
            .optional()?;
        let Some(text) = text else { return Ok(lost) };
        // Only a job with a workflow has one to carry on.
        if text.contains("\"flow\"") {
            let envelope = decode(&text, lease.job, None)?;
            let mut follow = Vec::new();
            super::flow::settled(tx, &envelope, Effect::Delete, &mut follow)?;
            super::flow::push_follow(tx, &follow)?;
        }
        return Ok(Ok(effect.settlement()));
    }
    let held = {
        let mut statement = tx.conn.prepare_cached(HELD)?;
        let mut rows = statement.query(params![id, token, now])?;
        match rows.next()? {
            None => None,
            Some(row) => {
                let seq = int_at(row, 0, "row number")?;
                let with_seq = |failure: Failure| failure.of_row(seq);
                let attempts = u64_at(row, 1, "attempts").map_err(with_seq)?;
                Some((seq, attempts, text_at(row, 2, "envelope").map_err(with_seq)?))
            }
        }
    };
    let Some((seq, attempts, text)) = held else { return Ok(lost) };
    let mut envelope = decode(&text, lease.job, Some(seq))?;
    let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
    let effect = settle::apply(&mut envelope, attempts, tx.now, transition);
    let mut settlement = effect.settlement();
    let mut follow = Vec::new();
    let effect = if envelope.flow.is_some() {
        let (effect, instead) = super::flow::settled(tx, &envelope, effect, &mut follow)?;
        settlement = instead.unwrap_or(settlement);
        effect
    } else {
        effect
    };
    super::flow::push_follow(tx, &follow)?;
    match effect {
        Effect::Delete => {
            tx.conn.prepare_cached(DELETE_SEQ)?.execute([seq])?;
        }
        // Extensions were applied blind above; nothing else keeps the lease
        // but changes the envelope.
        Effect::Extended { .. } | Effect::Kept => {
            tx.conn.prepare_cached(KEEP)?.execute(params![seq, encode(&envelope)?])?;
        }
        Effect::Requeue { available_at } => {
            let state = if available_at > tx.now { DELAYED } else { READY };
            let text = encode(&envelope)?;
            tx.conn.prepare_cached(REQUEUE)?.execute(params![
                seq,
                state,
                sql_int(available_at),
                text
            ])?;
            tx.wake();
        }
        Effect::Dead { reason, error } => {
            tx.conn.prepare_cached(DELETE_SEQ)?.execute([seq])?;
            dead.push(FailedJob::new(envelope, attempts, tx.now, reason, error));
        }
    }
    Ok(Ok(settlement))
}

/// Gives back leases whose reservation reached nobody.
pub(super) fn unclaim(tx: &Tx<'_>, leases: &[(JobId, LeaseToken)]) -> Result<(), Failure> {
    let mut statement = tx.conn.prepare_cached(UNCLAIM)?;
    for (id, token) in leases {
        statement.execute(params![id_bytes(*id), sql_int(token.get())])?;
    }
    tx.wake();
    Ok(())
}

/// Stores `dead` in the failed store, then applies its bounds.
pub(super) fn bury(tx: &Tx<'_>, dead: &[FailedJob]) -> Result<(), Failure> {
    if dead.is_empty() {
        return Ok(());
    }
    let mut insert = tx.conn.prepare_cached(BURY)?;
    for job in dead {
        let envelope = &job.envelope;
        insert.execute(params![
            id_bytes(envelope.id),
            envelope.queue,
            envelope.name,
            sql_int(job.failed_at),
            job.attempts,
            reason_name(job.reason),
            job.error,
            encode(envelope)?
        ])?;
    }
    let settings = tx.settings;
    let min_failed_at = tx.now.saturating_sub(settings.failed_max_age_ms);
    tx.conn.prepare_cached(PRUNE_OLD)?.execute([sql_int(min_failed_at)])?;
    let total: i64 = tx.conn.prepare_cached(FAILED_TOTAL)?.query_row([], |row| row.get(0))?;
    let excess = total - i64::try_from(settings.failed_max_jobs).unwrap_or(i64::MAX);
    if excess > 0 {
        tx.conn.prepare_cached(PRUNE_OLDEST)?.execute([excess])?;
    }
    Ok(())
}
