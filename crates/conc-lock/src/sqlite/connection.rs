//! The connection thread: it owns the backend's one SQLite connection and
//! runs the requests it receives in batches, one `BEGIN IMMEDIATE`
//! transaction per batch.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::oneshot;

use super::error;
use crate::{Fence, LockError, Owner, SlotAcquisition};

/// The table, created when missing. Rows are never deleted: a name's row
/// carries its fence, which must keep growing across releases.
pub(super) const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS conc_locks (
    name TEXT PRIMARY KEY NOT NULL,
    owner TEXT,
    fence INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID";

/// Takes `?1` for owner `?2` until `?3` if nobody holds it at `?4`;
/// returns the new fence, or no row when the name is held.
const ACQUIRE: &str =
    "INSERT INTO conc_locks (name, owner, fence, expires_at) VALUES (?1, ?2, 1, ?3)
    ON CONFLICT (name) DO UPDATE
    SET owner = excluded.owner, fence = conc_locks.fence + 1, expires_at = excluded.expires_at
    WHERE conc_locks.owner IS NULL OR conc_locks.expires_at <= ?4
    RETURNING fence";

/// When the hold on `?1` expires (asked after a refused acquisition).
const EXPIRES_AT: &str = "SELECT expires_at FROM conc_locks WHERE name = ?1";

/// Releases `?1` if owner `?2` holds it unexpired at `?3`.
const RELEASE: &str =
    "UPDATE conc_locks SET owner = NULL WHERE name = ?1 AND owner = ?2 AND expires_at > ?3";

/// Releases `?1` if owner `?2` holds it unexpired at `?3` under fence `?4`.
const RELEASE_HOLD: &str = "UPDATE conc_locks SET owner = NULL \
     WHERE name = ?1 AND owner = ?2 AND expires_at > ?3 AND fence = ?4";

/// Releases the hold of `?1` by `?2` with fence `?3`, expired or not: the
/// hold of a caller that went away before hearing it had acquired.
const ABANDON: &str =
    "UPDATE conc_locks SET owner = NULL WHERE name = ?1 AND owner = ?2 AND fence = ?3";

/// Moves the expiry of `?1` to `?4` if owner `?2` holds it unexpired at `?3`.
const EXTEND: &str =
    "UPDATE conc_locks SET expires_at = ?4 WHERE name = ?1 AND owner = ?2 AND expires_at > ?3";

/// The owner of the unexpired hold on `?1` at `?2`.
const OWNER: &str =
    "SELECT owner FROM conc_locks WHERE name = ?1 AND owner IS NOT NULL AND expires_at > ?2";

/// Releases `?1` whoever holds it unexpired at `?2`.
const FORCE_RELEASE: &str =
    "UPDATE conc_locks SET owner = NULL WHERE name = ?1 AND owner IS NOT NULL AND expires_at > ?2";

/// Every statement the thread runs, prepared once at open so a file with an
/// incompatible `conc_locks` table is refused there.
pub(super) const STATEMENTS: [&str; 8] =
    [ACQUIRE, EXPIRES_AT, RELEASE, RELEASE_HOLD, ABANDON, EXTEND, OWNER, FORCE_RELEASE];

/// The most requests run in one transaction. Bounds how long the batch
/// keeps other processes from writing.
const MAX_BATCH: usize = 64;

/// Where a request's answer goes.
type Reply<T> = oneshot::Sender<Result<T, LockError>>;

/// One operation for the connection thread.
pub(super) enum Request {
    /// Take the first free name of `names` (one name for a plain acquire).
    Acquire { names: Vec<Arc<str>>, owner: Owner, ttl_ms: i64, reply: Reply<SlotAcquisition> },
    /// Release `name` if `owner` holds it (under `fence`, when given). No
    /// reply for a dropped guard.
    Release { name: Arc<str>, owner: Owner, fence: Option<u64>, reply: Option<Reply<bool>> },
    /// Reset `owner`'s hold on `name` to `ttl_ms` from now.
    Extend { name: Arc<str>, owner: Owner, ttl_ms: i64, reply: Reply<bool> },
    /// Who holds `name`.
    Owner { name: Arc<str>, reply: Reply<Option<Owner>> },
    /// Release `name` whoever holds it.
    ForceRelease { name: Arc<str>, reply: Reply<bool> },
    /// Undo an acquisition whose caller stopped waiting for the answer.
    Abandon { name: Arc<str>, owner: Owner, fence: u64 },
}

/// What a request did, before its transaction commits.
enum Outcome {
    /// Nothing: an acquisition nobody waits for any more.
    Skipped,
    Slot(SlotAcquisition),
    Flag(bool),
    Owner(Option<Owner>),
}

/// Why a batch failed.
enum BatchError {
    /// `BEGIN IMMEDIATE` or `COMMIT` failed: every request of the batch failed.
    Transaction(rusqlite::Error),
    /// One request failed, and the transaction was rolled back.
    Request(rusqlite::Error),
}

/// The connection and the `synchronous` level it commits with now.
struct Writer {
    connection: Connection,
    /// Whether commits flush to disk (`synchronous=FULL`, set at open) or
    /// not (`NORMAL`).
    flushing: bool,
}

impl Writer {
    /// Sets whether the next commits flush to disk.
    fn flush(&mut self, flush: bool) -> rusqlite::Result<()> {
        if self.flushing != flush {
            let level = if flush { "FULL" } else { "NORMAL" };
            self.connection.pragma_update(None, "synchronous", level)?;
            self.flushing = flush;
        }
        Ok(())
    }
}

/// The thread's loop: runs until every sender is gone and the queue is empty,
/// then closes the connection (opened with `synchronous=FULL`).
pub(super) fn run(connection: Connection, requests: &Receiver<Request>) {
    let mut writer = Writer { connection, flushing: true };
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut abandoned = Vec::new();
    loop {
        batch.append(&mut abandoned);
        if batch.is_empty() {
            match requests.recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        run_batch(&mut writer, &mut batch, &mut abandoned);
    }
    if let Err((_, error)) = writer.connection.close() {
        tracing::debug!(%error, "closing the SQLite lock file failed");
    }
}

/// Runs `batch` in one transaction and answers every request once it has
/// committed. When one request fails, runs each on its own so that only the
/// failing one fails.
fn run_batch(writer: &mut Writer, batch: &mut Vec<Request>, abandoned: &mut Vec<Request>) {
    match execute(writer, batch) {
        Ok(outcomes) => {
            for (request, outcome) in batch.drain(..).zip(outcomes) {
                request.answer(Ok(outcome), abandoned);
            }
        }
        Err(BatchError::Request(_)) if batch.len() > 1 => {
            for request in batch.drain(..) {
                let result = match execute(writer, std::slice::from_ref(&request)) {
                    Ok(mut outcomes) => Ok(outcomes.pop().unwrap_or(Outcome::Skipped)),
                    Err(BatchError::Transaction(error) | BatchError::Request(error)) => Err(error),
                };
                request.answer(result, abandoned);
            }
        }
        Err(BatchError::Transaction(error) | BatchError::Request(error)) => {
            for request in batch.drain(..) {
                request.answer(Err(error::copy(&error)), abandoned);
            }
        }
    }
}

/// Runs `requests` in one `BEGIN IMMEDIATE` transaction and commits it.
///
/// The commit flushes to disk when the batch may hand out a fence, so no
/// fence is ever handed out twice, even across a power loss. Releases and
/// extensions alone are not flushed: losing the last of them to a power loss
/// only brings back holds whose holders died with the machine, until their
/// time to live ends. A later flushed commit makes them durable too (the WAL
/// is flushed up to that commit).
fn execute(writer: &mut Writer, requests: &[Request]) -> Result<Vec<Outcome>, BatchError> {
    let flush = requests.iter().any(|request| matches!(request, Request::Acquire { .. }));
    writer.flush(flush).map_err(BatchError::Transaction)?;
    let transaction = writer
        .connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(BatchError::Transaction)?;
    let mut outcomes = Vec::with_capacity(requests.len());
    for request in requests {
        // Dropping the transaction on error rolls it back.
        outcomes.push(request.execute(&transaction).map_err(BatchError::Request)?);
    }
    transaction.commit().map_err(BatchError::Transaction)?;
    Ok(outcomes)
}

impl Request {
    /// Runs the request inside the open transaction.
    fn execute(&self, connection: &Connection) -> rusqlite::Result<Outcome> {
        match self {
            Self::Acquire { names, owner, ttl_ms, reply } => {
                if reply.is_closed() {
                    return Ok(Outcome::Skipped);
                }
                acquire(connection, names, owner, *ttl_ms).map(Outcome::Slot)
            }
            Self::Release { name, owner, fence, .. } => {
                let released = match fence {
                    Some(fence) => connection.prepare_cached(RELEASE_HOLD)?.execute(params![
                        name,
                        owner.as_str(),
                        now_ms(),
                        i64::try_from(*fence).unwrap_or(i64::MAX)
                    ])?,
                    None => connection.prepare_cached(RELEASE)?.execute(params![
                        name,
                        owner.as_str(),
                        now_ms()
                    ])?,
                };
                Ok(Outcome::Flag(released > 0))
            }
            Self::Extend { name, owner, ttl_ms, .. } => {
                let now = now_ms();
                let extended = connection.prepare_cached(EXTEND)?.execute(params![
                    name,
                    owner.as_str(),
                    now,
                    now + ttl_ms
                ])?;
                Ok(Outcome::Flag(extended > 0))
            }
            Self::Owner { name, .. } => {
                let owner: Option<String> = connection
                    .prepare_cached(OWNER)?
                    .query_row(params![name, now_ms()], |row| row.get(0))
                    .optional()?;
                let owner = owner.map(Owner::new).transpose().map_err(|error| {
                    rusqlite::Error::FromSqlConversionFailure(
                        0,
                        rusqlite::types::Type::Text,
                        Box::new(error),
                    )
                })?;
                Ok(Outcome::Owner(owner))
            }
            Self::ForceRelease { name, .. } => {
                let released =
                    connection.prepare_cached(FORCE_RELEASE)?.execute(params![name, now_ms()])?;
                Ok(Outcome::Flag(released > 0))
            }
            Self::Abandon { name, owner, fence } => {
                connection.prepare_cached(ABANDON)?.execute(params![
                    name,
                    owner.as_str(),
                    fence
                ])?;
                Ok(Outcome::Skipped)
            }
        }
    }

    /// Sends the answer. An acquisition whose caller stopped waiting after
    /// it ran is queued for undoing in `abandoned`.
    fn answer(self, result: rusqlite::Result<Outcome>, abandoned: &mut Vec<Request>) {
        let result = result.map_err(LockError::backend);
        match (self, result) {
            (Self::Acquire { names, owner, reply, .. }, result) => {
                let result = result.map(|outcome| match outcome {
                    Outcome::Slot(attempt) => attempt,
                    _ => SlotAcquisition::Busy { retry_after: None },
                });
                if let Err(Ok(SlotAcquisition::Acquired { slot, fence })) = reply.send(result) {
                    let name = Arc::clone(&names[slot]);
                    abandoned.push(Self::Abandon { name, owner, fence: fence.get() });
                }
            }
            (
                Self::Release { reply: Some(reply), .. }
                | Self::Extend { reply, .. }
                | Self::ForceRelease { reply, .. },
                result,
            ) => {
                let _ = reply.send(result.map(|outcome| matches!(outcome, Outcome::Flag(true))));
            }
            (Self::Release { name, reply: None, .. }, result) => {
                if let Err(error) = result {
                    tracing::debug!(lock = ?name, %error, "release of a dropped lock guard failed");
                }
            }
            (Self::Owner { reply, .. }, result) => {
                let _ = reply.send(result.map(|outcome| match outcome {
                    Outcome::Owner(owner) => owner,
                    _ => None,
                }));
            }
            (Self::Abandon { name, .. }, result) => {
                if let Err(error) = result {
                    tracing::debug!(lock = ?name, %error, "undoing an abandoned acquisition failed");
                }
            }
        }
    }
}

/// Takes the first free name of `names` for `owner`.
fn acquire(
    connection: &Connection,
    names: &[Arc<str>],
    owner: &Owner,
    ttl_ms: i64,
) -> rusqlite::Result<SlotAcquisition> {
    let now = now_ms();
    let mut acquire = connection.prepare_cached(ACQUIRE)?;
    let mut soonest: Option<Duration> = None;
    for (slot, name) in names.iter().enumerate() {
        let fence: Option<u64> = acquire
            .query_row(params![name, owner.as_str(), now + ttl_ms, now], |row| row.get(0))
            .optional()?;
        if let Some(fence) = fence {
            return Ok(SlotAcquisition::Acquired { slot, fence: Fence::new(fence) });
        }
        let expires_at: i64 =
            connection.prepare_cached(EXPIRES_AT)?.query_row(params![name], |row| row.get(0))?;
        // Refused, so the hold is unexpired: `expires_at > now`.
        let left = Duration::from_millis(u64::try_from(expires_at - now).unwrap_or(1).max(1));
        soonest = Some(soonest.map_or(left, |soonest| soonest.min(left)));
    }
    Ok(SlotAcquisition::Busy { retry_after: soonest })
}

/// Milliseconds since the UNIX epoch on the system clock: the time every
/// process sharing the file agrees on.
fn now_ms() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX / 2)
}
