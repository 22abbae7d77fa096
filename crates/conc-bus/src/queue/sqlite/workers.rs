//! Worker heartbeats in the file: one row per live worker, its beat as JSON,
//! indexed by when it counts as gone.

use rusqlite::{OptionalExtension, params};

use super::row::{Failure, sql_int, text_at};
use super::writer::Tx;
use crate::queue::beat::{WorkerBeat, live};

const RECORD: &str = "INSERT INTO conc_bus_workers (id, expires_at, beat) VALUES (?1, ?2, ?3)
     ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at, beat = excluded.beat";
const REMOVE: &str = "DELETE FROM conc_bus_workers WHERE id = ?1";
const PRUNE: &str = "DELETE FROM conc_bus_workers WHERE expires_at < ?1";
const LIST: &str = "SELECT beat FROM conc_bus_workers WHERE expires_at >= ?1";
const PAUSED: &str = "SELECT paused FROM conc_bus_queues WHERE name = ?1";

/// Every constant statement of this module, prepared at open.
pub(super) const STATEMENTS: [&str; 5] = [RECORD, REMOVE, PRUNE, LIST, PAUSED];

/// Whether each of `queues` is paused.
pub(super) fn paused(tx: &Tx<'_>, queues: &[String]) -> Result<Vec<bool>, Failure> {
    let mut statement = tx.conn.prepare_cached(PAUSED)?;
    let mut out = Vec::with_capacity(queues.len());
    for queue in queues {
        let paused: Option<i64> = statement.query_row([queue], |row| row.get(0)).optional()?;
        out.push(paused.is_some_and(|flag| flag != 0));
    }
    Ok(out)
}

/// Stores `beat` and deletes the beats gone.
pub(super) fn record(tx: &Tx<'_>, beat: &WorkerBeat) -> Result<(), Failure> {
    let text = serde_json::to_string(beat)
        .map_err(|error| Failure::corrupt(format!("a heartbeat does not serialize: {error}")))?;
    tx.conn.prepare_cached(PRUNE)?.execute([sql_int(tx.now)])?;
    tx.conn.prepare_cached(RECORD)?.execute(params![beat.id, sql_int(beat.expires_at()), text])?;
    Ok(())
}

/// Deletes the beat of worker `id`; whether there was one.
pub(super) fn remove(tx: &Tx<'_>, id: &str) -> Result<bool, Failure> {
    Ok(tx.conn.prepare_cached(REMOVE)?.execute([id])? > 0)
}

/// The live beats, sorted; the gone ones are deleted. A row that does not
/// decode (written by another release) is left out.
pub(super) fn list(tx: &Tx<'_>) -> Result<Vec<WorkerBeat>, Failure> {
    let now = sql_int(tx.now);
    tx.conn.prepare_cached(PRUNE)?.execute([now])?;
    let mut statement = tx.conn.prepare_cached(LIST)?;
    let mut rows = statement.query([now])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        match serde_json::from_str(&text_at(row, 0, "heartbeat")?) {
            Ok(beat) => out.push(beat),
            Err(error) => {
                tracing::debug!(target: "conc_bus", %error, "a stored heartbeat does not decode");
            }
        }
    }
    Ok(live(out, tx.now))
}
