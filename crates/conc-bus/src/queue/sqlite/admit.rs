//! The SQLite queue's admission: unique locks and debounce records in their
//! tables, taken in the transaction that pushes the job and released in the
//! one that reserves or settles it, as [`machine`] says.

use rusqlite::{OptionalExtension, params};

use super::row::{Failure, Refusal, decode, id_at, id_bytes, sql_int, text_at};
use super::writer::Tx;
use crate::admission::Ticket;
use crate::admission::machine::{self, Action, Step};
use crate::clock::Millis;
use crate::job::Envelope;
use crate::queue::backend::Pushed;

const LOCK: &str = "SELECT owner, expires_at FROM conc_bus_locks WHERE key = ?1";
const TAKE: &str =
    "INSERT OR REPLACE INTO conc_bus_locks (key, owner, expires_at) VALUES (?1, ?2, ?3)";
const RELEASE: &str = "DELETE FROM conc_bus_locks WHERE key = ?1 AND owner = ?2";
const DEBOUNCED: &str = "SELECT job, first_at FROM conc_bus_debounce WHERE key = ?1";
const DEBOUNCE: &str =
    "INSERT OR REPLACE INTO conc_bus_debounce (key, job, first_at) VALUES (?1, ?2, ?3)";
const END_DEBOUNCE: &str = "DELETE FROM conc_bus_debounce WHERE key = ?1 AND job = ?2";
/// Deletes job `?1` if it still waits (ready or delayed); its envelope.
const SUPERSEDE: &str =
    "DELETE FROM conc_bus_jobs WHERE id = ?1 AND state IN (0, 1) RETURNING id, envelope";

/// Every constant statement of this module, prepared at open.
pub(super) const STATEMENTS: [&str; 7] =
    [LOCK, TAKE, RELEASE, DEBOUNCED, DEBOUNCE, END_DEBOUNCE, SUPERSEDE];

fn ticket(envelope: &Envelope) -> Option<&Ticket> {
    envelope.flow.as_deref()?.admission.as_ref()
}

/// Admits `job`: takes its unique lock (refused when another job holds it),
/// or supersedes the debounced job of its key still waiting. When it
/// becomes available.
pub(super) fn admit(tx: &Tx<'_>, job: &Pushed) -> Result<Millis, Failure> {
    let Some(ticket) = ticket(&job.envelope) else { return Ok(job.available_at) };
    let id = job.envelope.id;
    if machine::is_unique(ticket) {
        let held = {
            let mut statement = tx.conn.prepare_cached(LOCK)?;
            let mut rows = statement.query([&ticket.key])?;
            match rows.next()? {
                Some(row) => {
                    let owner = id_at(row, 0)?;
                    let expires_at: Option<i64> = row.get(1)?;
                    let lock = machine::Lock {
                        owner,
                        expires_at: expires_at.map(|at| u64::try_from(at).unwrap_or(0)),
                    };
                    (lock.holds(tx.now) && owner != id).then_some(owner)
                }
                None => None,
            }
        };
        if let Some(held_by) = held {
            return Err(Failure::Refused(Refusal::Locked { key: ticket.key.clone(), held_by }));
        }
        let lock = machine::lock_for(ticket, id, tx.now);
        tx.conn.prepare_cached(TAKE)?.execute(params![
            ticket.key,
            id_bytes(id),
            lock.expires_at.map(sql_int)
        ])?;
        return Ok(job.available_at);
    }
    let previous: Option<(Vec<u8>, i64)> = tx
        .conn
        .prepare_cached(DEBOUNCED)?
        .query_row([&ticket.key], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let first_at = match previous {
        // Superseded while it waits: deleted, with the chain it carries (a
        // batch member counts as cancelled, in this step).
        Some((old, first_at)) if supersede(tx, &old)? => u64::try_from(first_at).unwrap_or(0),
        _ => tx.now,
    };
    tx.conn.prepare_cached(DEBOUNCE)?.execute(params![
        ticket.key,
        id_bytes(id),
        sql_int(first_at)
    ])?;
    Ok(machine::debounce_at(ticket, first_at, tx.now).max(job.available_at))
}

/// Deletes job `old` if it still waits; whether it did. A superseded batch
/// member counts as cancelled (its batch would wait for it forever
/// otherwise).
fn supersede(tx: &Tx<'_>, old: &[u8]) -> Result<bool, Failure> {
    let gone = {
        let mut statement = tx.conn.prepare_cached(SUPERSEDE)?;
        let mut rows = statement.query([old])?;
        match rows.next()? {
            Some(row) => Some((id_at(row, 0)?, text_at(row, 1, "envelope")?)),
            None => None,
        }
    };
    let Some((id, text)) = gone else { return Ok(false) };
    super::flow::dropped(tx, &decode(&text, id, None)?)?;
    Ok(true)
}

/// Applies `step` of `envelope`'s life to its lock: released only when the
/// job still owns it.
pub(super) fn step(tx: &Tx<'_>, envelope: &Envelope, step: Step) -> Result<(), Failure> {
    let Some(ticket) = ticket(envelope) else { return Ok(()) };
    let id = id_bytes(envelope.id);
    match machine::on(ticket.release, step) {
        Action::Keep => {}
        Action::Release => {
            tx.conn.prepare_cached(RELEASE)?.execute(params![ticket.key, id])?;
        }
        Action::EndDebounce => {
            tx.conn.prepare_cached(END_DEBOUNCE)?.execute(params![ticket.key, id])?;
        }
    }
    Ok(())
}
