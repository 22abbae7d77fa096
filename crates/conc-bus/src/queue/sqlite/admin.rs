//! Everything but the lease cycle: sizes, peeks, clearing, pausing and
//! bounding queues, and the failed store's reads, retries and deletes. Each
//! function runs inside its batch's transaction, in its request's savepoint.

use std::fmt::Write as _;

use rusqlite::types::Value;
use rusqlite::{Row, params, params_from_iter};

use super::row::{
    Failure, READY, decode, encode, id_at, id_bytes, int_at, reason_from, sql_int, text_at, u64_at,
};
use super::writer::Tx;
use crate::failed::{FailedJob, FailedQuery, Selection};
use crate::id::JobId;
use crate::job::{Envelope, MAX_PRIORITY, check_queue_name};
use crate::queue::backend::QueueSize;

/// Sets a job row aside: it does not decode, and must stop blocking its queue.
pub(super) const SET_ASIDE_ROW: &str = "UPDATE conc_bus_jobs SET state = 3 WHERE seq = ?1";

/// Queue `?1` at `?2`: ready, oldest ready, delayed, due delayed, oldest
/// delayed, leased, expired leases, paused.
pub(super) const SIZE: &str = "SELECT
    (SELECT count(*) FROM conc_bus_jobs WHERE queue = ?1 AND state = 0),
    (SELECT min(available_at) FROM conc_bus_jobs WHERE queue = ?1 AND state = 0),
    (SELECT count(*) FROM conc_bus_jobs WHERE queue = ?1 AND state = 1),
    (SELECT count(*) FROM conc_bus_jobs WHERE queue = ?1 AND state = 1 AND available_at <= ?2),
    (SELECT min(available_at) FROM conc_bus_jobs WHERE queue = ?1 AND state = 1),
    (SELECT count(*) FROM conc_bus_jobs WHERE queue = ?1 AND state = 2),
    (SELECT count(*) FROM conc_bus_jobs WHERE queue = ?1 AND state = 2 AND expires_at <= ?2),
    (SELECT paused FROM conc_bus_queues WHERE name = ?1)";

const PEEK: &str = "SELECT id, envelope FROM conc_bus_jobs WHERE queue = ?1 AND state = 0
     ORDER BY priority DESC, available_at, seq LIMIT CAST(?2 AS INTEGER)";
const CLEAR: &str = "DELETE FROM conc_bus_jobs WHERE queue = ?1 AND state IN (0, 1)";
/// The waiting jobs of queue `?1` with a unique lock or a batch.
const CLEAR_ADMITTED: &str = "SELECT id, envelope FROM conc_bus_jobs
     WHERE queue = ?1 AND state IN (0, 1)
       AND (batch IS NOT NULL OR envelope LIKE '%\"admission\"%')";
const SET_PAUSED: &str = "INSERT INTO conc_bus_queues (name, paused) VALUES (?1, ?2)
     ON CONFLICT (name) DO UPDATE SET paused = excluded.paused";
const SET_CAPACITY: &str = "INSERT INTO conc_bus_queues (name, capacity) VALUES (?1, ?2)
     ON CONFLICT (name) DO UPDATE SET capacity = excluded.capacity";
const QUEUES: &str = "SELECT name FROM conc_bus_queues ORDER BY name";
const FAILED_COLUMNS: &str =
    "SELECT id, failed_at, attempts, reason, error, envelope FROM conc_bus_failed";
const FAILED_ONE: &str = "SELECT id, failed_at, attempts, reason, error, envelope
     FROM conc_bus_failed WHERE id = ?1";
const FAILED_COUNT: &str = "SELECT count(*) FROM conc_bus_failed";
const FAILED_COUNT_QUEUE: &str = "SELECT count(*) FROM conc_bus_failed WHERE queue = ?1";
const REVIVE: &str =
    "INSERT INTO conc_bus_jobs (id, queue, state, priority, available_at, envelope, batch)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING";
const FORGET_ONE: &str = "DELETE FROM conc_bus_failed WHERE id = ?1";

/// Every constant statement of this module, prepared at open.
pub(super) const STATEMENTS: [&str; 11] = [
    PEEK,
    CLEAR,
    SET_PAUSED,
    SET_CAPACITY,
    QUEUES,
    FAILED_ONE,
    FAILED_COUNT,
    FAILED_COUNT_QUEUE,
    REVIVE,
    FORGET_ONE,
    SET_ASIDE_ROW,
];

/// Sets the job row `seq` aside.
pub(super) fn set_aside(tx: &Tx<'_>, seq: i64) -> rusqlite::Result<()> {
    tx.conn.prepare_cached(SET_ASIDE_ROW)?.execute([seq])?;
    Ok(())
}

/// The jobs of `queue`, by state.
pub(super) fn size(tx: &Tx<'_>, queue: &str) -> Result<QueueSize, Failure> {
    let now = tx.now;
    let mut statement = tx.conn.prepare_cached(SIZE)?;
    let mut rows = statement.query(params![queue, sql_int(now)])?;
    let Some(row) = rows.next()? else { return Ok(QueueSize::default()) };
    let count = |index| u64_at(row, index, "a count");
    let oldest = |index| -> Result<Option<u64>, Failure> {
        match row.get_ref(index)? {
            rusqlite::types::ValueRef::Null => Ok(None),
            _ => u64_at(row, index, "available_at").map(Some),
        }
    };
    let (ready, delayed, due) = (count(0)?, count(2)?, count(3)?);
    let (leased, expired) = (count(5)?, count(6)?);
    let oldest_due = oldest(4)?.filter(|at| *at <= now);
    let oldest = match (oldest(1)?, oldest_due) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let paused = match row.get_ref(7)? {
        rusqlite::types::ValueRef::Null => false,
        _ => int_at(row, 7, "paused")? != 0,
    };
    Ok(QueueSize {
        ready: ready + due + expired,
        delayed: delayed - due,
        reserved: leased - expired,
        paused,
        oldest_wait_ms: oldest.map_or(0, |since| now.saturating_sub(since)),
    })
}

/// Up to `limit` ready jobs of `queue`, in reservation order.
pub(super) fn peek(tx: &Tx<'_>, queue: &str, limit: usize) -> Result<Vec<Envelope>, Failure> {
    let mut statement = tx.conn.prepare_cached(PEEK)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows = statement.query(params![queue, limit])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let id = id_at(row, 0)?;
        out.push(decode(&text_at(row, 1, "envelope")?, id, None)?);
    }
    Ok(out)
}

/// Deletes the ready and delayed jobs of `queue`; how many.
pub(super) fn clear(tx: &Tx<'_>, queue: &str) -> Result<u64, Failure> {
    // A cleared job is done: its unique lock goes with it, and a batch
    // member counts as cancelled (after the delete: the callbacks that
    // fires may go to this queue).
    let admitted: Vec<(JobId, String)> = {
        let mut statement = tx.conn.prepare_cached(CLEAR_ADMITTED)?;
        let mut rows = statement.query([queue])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push((id_at(row, 0)?, row.get(1)?));
        }
        out
    };
    let cleared = tx.conn.prepare_cached(CLEAR)?.execute([queue])? as u64;
    for (id, text) in admitted {
        if let Ok(envelope) = decode(&text, id, None) {
            super::admit::step(tx, &envelope, crate::admission::machine::Step::Finished)?;
            super::flow::dropped(tx, &envelope)?;
        }
    }
    Ok(cleared)
}

/// Pauses or resumes `queue`.
pub(super) fn set_paused(tx: &Tx<'_>, queue: &str, paused: bool) -> Result<(), Failure> {
    check_queue_name(queue)?;
    tx.conn.prepare_cached(SET_PAUSED)?.execute(params![queue, paused])?;
    if !paused {
        tx.wake();
    }
    Ok(())
}

/// Bounds `queue` (or lifts its bound).
pub(super) fn set_capacity(tx: &Tx<'_>, queue: &str, capacity: Option<u64>) -> Result<(), Failure> {
    check_queue_name(queue)?;
    let capacity = match capacity {
        Some(capacity) => {
            conc_core::config::between("capacity", capacity, 1, i64::MAX as u64)?;
            Some(sql_int(capacity))
        }
        None => None,
    };
    tx.conn.prepare_cached(SET_CAPACITY)?.execute(params![queue, capacity])?;
    Ok(())
}

/// The queues, by name.
pub(super) fn queues(tx: &Tx<'_>) -> Result<Vec<String>, Failure> {
    let mut statement = tx.conn.prepare_cached(QUEUES)?;
    let mut rows = statement.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(text_at(row, 0, "queue name")?);
    }
    Ok(out)
}

/// The failed job of a row of [`FAILED_COLUMNS`].
fn failed_job(row: &Row<'_>) -> Result<FailedJob, Failure> {
    let id = id_at(row, 0)?;
    let in_job = |failure: Failure| match failure {
        Failure::Corrupt { message, .. } => Failure::corrupt(format!("failed job {id}: {message}")),
        other => other,
    };
    let failed_at = u64_at(row, 1, "failed_at").map_err(in_job)?;
    let attempts = u64_at(row, 2, "attempts").map_err(in_job)?;
    let reason = reason_from(&text_at(row, 3, "reason").map_err(in_job)?).map_err(in_job)?;
    let error = text_at(row, 4, "error").map_err(in_job)?;
    let envelope = decode(&text_at(row, 5, "envelope").map_err(in_job)?, id, None)?;
    let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
    Ok(FailedJob::new(envelope, attempts, failed_at, reason, error))
}

/// Runs `sql` with `values` and reads every row as a failed job.
fn failed_rows(tx: &Tx<'_>, sql: &str, values: Vec<Value>) -> Result<Vec<FailedJob>, Failure> {
    let mut statement = tx.conn.prepare_cached(sql)?;
    let mut rows = statement.query(params_from_iter(values))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(failed_job(row)?);
    }
    Ok(out)
}

/// A page of failed jobs, by id.
pub(super) fn failed(tx: &Tx<'_>, query: &FailedQuery) -> Result<Vec<FailedJob>, Failure> {
    let mut sql = format!("{FAILED_COLUMNS} WHERE 1");
    let mut values = Vec::new();
    let mut filter = |column: &str, operator: &str, value: Value| {
        values.push(value);
        let _ = write!(sql, " AND {column} {operator} ?{}", values.len());
    };
    if let Some(queue) = &query.queue {
        filter("queue", "=", Value::Text(queue.clone()));
    }
    if let Some(name) = &query.name {
        filter("name", "=", Value::Text(name.clone()));
    }
    if let Some(after) = query.after {
        filter("id", ">", Value::Blob(id_bytes(after).to_vec()));
    }
    values.push(Value::Integer(i64::try_from(query.limit).unwrap_or(i64::MAX)));
    let _ = write!(sql, " ORDER BY id LIMIT CAST(?{} AS INTEGER)", values.len());
    failed_rows(tx, &sql, values)
}

/// The failed job `id`.
pub(super) fn failed_one(tx: &Tx<'_>, id: JobId) -> Result<Option<FailedJob>, Failure> {
    Ok(failed_rows(tx, FAILED_ONE, vec![Value::Blob(id_bytes(id).to_vec())])?.pop())
}

/// How many failed jobs are stored (of `queue`).
pub(super) fn failed_count(tx: &Tx<'_>, queue: Option<&str>) -> Result<u64, Failure> {
    let count: i64 = match queue {
        None => tx.conn.prepare_cached(FAILED_COUNT)?.query_row([], |row| row.get(0))?,
        Some(queue) => {
            tx.conn.prepare_cached(FAILED_COUNT_QUEUE)?.query_row([queue], |row| row.get(0))?
        }
    };
    Ok(u64::try_from(count).unwrap_or(0))
}

/// The failed jobs `selection` picks, by id.
fn selected(tx: &Tx<'_>, selection: &Selection) -> Result<Vec<FailedJob>, Failure> {
    let (sql, values) = match selection {
        Selection::Ids(ids) => {
            let mut ids = ids.clone();
            ids.sort_unstable();
            ids.dedup();
            let mut out = Vec::new();
            for id in ids {
                out.extend(failed_one(tx, id)?);
            }
            return Ok(out);
        }
        Selection::Queue(queue) => (
            format!("{FAILED_COLUMNS} WHERE queue = ?1 ORDER BY id"),
            vec![Value::Text(queue.clone())],
        ),
        Selection::FailedBefore(cutoff) => (
            format!("{FAILED_COLUMNS} WHERE failed_at < ?1 ORDER BY id"),
            vec![Value::Integer(sql_int(*cutoff))],
        ),
        Selection::All => (format!("{FAILED_COLUMNS} ORDER BY id"), Vec::new()),
    };
    failed_rows(tx, &sql, values)
}

/// Puts the selected failed jobs back on their queues, available now, with
/// their exceptions reset; the ids put back.
pub(super) fn retry_failed(tx: &Tx<'_>, selection: &Selection) -> Result<Vec<JobId>, Failure> {
    let jobs = selected(tx, selection)?;
    let mut revive = tx.conn.prepare_cached(REVIVE)?;
    let mut forget = tx.conn.prepare_cached(FORGET_ONE)?;
    let mut note = tx.conn.prepare_cached(super::store::NOTE_QUEUE)?;
    let mut retried = Vec::with_capacity(jobs.len());
    for job in jobs {
        let mut envelope = job.envelope;
        envelope.exceptions = 0;
        let id = id_bytes(envelope.id);
        let stored = revive.execute(params![
            id,
            envelope.queue,
            READY,
            envelope.priority.min(MAX_PRIORITY),
            sql_int(tx.now),
            encode(&envelope)?,
            super::flow::batch_column(&envelope)
        ])?;
        // A job of that id is queued already: the failed copy stays.
        if stored == 0 {
            continue;
        }
        forget.execute([id])?;
        note.execute([&envelope.queue])?;
        retried.push(envelope.id);
    }
    if !retried.is_empty() {
        tx.wake();
    }
    Ok(retried)
}

/// Deletes the selected failed jobs; how many.
pub(super) fn forget_failed(tx: &Tx<'_>, selection: &Selection) -> Result<u64, Failure> {
    let deleted = match selection {
        Selection::Ids(ids) => {
            let mut forget = tx.conn.prepare_cached(FORGET_ONE)?;
            let mut deleted = 0;
            for id in ids {
                deleted += forget.execute([id_bytes(*id)])?;
            }
            deleted
        }
        Selection::Queue(queue) => {
            tx.conn.execute("DELETE FROM conc_bus_failed WHERE queue = ?1", [queue])?
        }
        Selection::FailedBefore(cutoff) => tx
            .conn
            .execute("DELETE FROM conc_bus_failed WHERE failed_at < ?1", [sql_int(*cutoff)])?,
        Selection::All => tx.conn.execute("DELETE FROM conc_bus_failed", [])?,
    };
    Ok(deleted as u64)
}
