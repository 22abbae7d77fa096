//! The file's schema and its versioned migrations (`PRAGMA user_version`).
//!
//! Version `n` is reached by running the first `n` entries of [`MIGRATIONS`]
//! in order, each once, inside the `BEGIN IMMEDIATE` transaction that opens
//! the file, so several processes opening a new file at once create it once.
//! A file whose version is newer than this build knows is refused, never
//! guessed at.

use rusqlite::Connection;

/// Version 1: jobs, queues (pause, bound), the failed store, and the token
/// counter.
///
/// - `conc_bus_jobs`: one row per queued job. `seq` orders jobs pushed at the
///   same millisecond; `state` is ready (0), delayed (1), leased (2) or set
///   aside (3: the row does not decode); `available_at` is when it became (or
///   becomes) available; `expires_at` and `token` are its lease's;
///   `attempts` counts its reservations; `envelope` is the job as JSON.
///   One partial index per state serves reservation order, due delayed jobs
///   and expired leases without scanning the others.
/// - `conc_bus_queues`: a row per queue ever pushed to, paused or bounded.
/// - `conc_bus_failed`: the failed store, by id (a job id's 16 bytes,
///   big-endian, so blobs sort by creation time).
/// - `conc_bus_meta`: `next_token`, the last lease token handed out.
const V1: &str = "
CREATE TABLE conc_bus_meta (
    key TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO conc_bus_meta (key, value) VALUES ('next_token', 0);

CREATE TABLE conc_bus_queues (
    name TEXT PRIMARY KEY NOT NULL,
    paused INTEGER NOT NULL DEFAULT 0,
    capacity INTEGER
) WITHOUT ROWID;

CREATE TABLE conc_bus_jobs (
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,
    queue TEXT NOT NULL,
    state INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    available_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL DEFAULT 0,
    token INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    envelope TEXT NOT NULL
);
CREATE INDEX conc_bus_jobs_ready
    ON conc_bus_jobs (queue, priority DESC, available_at, seq) WHERE state = 0;
CREATE INDEX conc_bus_jobs_delayed ON conc_bus_jobs (queue, available_at) WHERE state = 1;
CREATE INDEX conc_bus_jobs_leased ON conc_bus_jobs (queue, expires_at) WHERE state = 2;

CREATE TABLE conc_bus_failed (
    id BLOB NOT NULL UNIQUE,
    queue TEXT NOT NULL,
    name TEXT NOT NULL,
    failed_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    reason TEXT NOT NULL,
    error TEXT NOT NULL,
    envelope TEXT NOT NULL
);
CREATE INDEX conc_bus_failed_time ON conc_bus_failed (failed_at, id);
CREATE INDEX conc_bus_failed_queue ON conc_bus_failed (queue, id);
CREATE INDEX conc_bus_failed_name ON conc_bus_failed (name, id);
";

/// The migrations, in order: entry `i` takes a file from version `i` to `i + 1`.
/// Workflows: the batch of each job row, batches and their member sets,
/// admission locks and debounce records.
const V2: &str = "
ALTER TABLE conc_bus_jobs ADD COLUMN batch BLOB;
CREATE INDEX conc_bus_jobs_batch ON conc_bus_jobs (batch, state) WHERE batch IS NOT NULL;

CREATE TABLE conc_bus_batches (
    id BLOB PRIMARY KEY NOT NULL,
    created_at INTEGER NOT NULL,
    record TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX conc_bus_batches_created ON conc_bus_batches (created_at, id);

CREATE TABLE conc_bus_batch_members (
    batch BLOB NOT NULL,
    job BLOB NOT NULL,
    outcome INTEGER,
    at INTEGER,
    PRIMARY KEY (batch, job)
) WITHOUT ROWID;

CREATE TABLE conc_bus_locks (
    key TEXT PRIMARY KEY NOT NULL,
    owner BLOB NOT NULL,
    expires_at INTEGER
) WITHOUT ROWID;

CREATE TABLE conc_bus_debounce (
    key TEXT PRIMARY KEY NOT NULL,
    job BLOB NOT NULL,
    first_at INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Batch timeouts (each batch's deadline, indexed while it has one) and the
/// archive of finished batches (their settings, counts and member outcomes,
/// kept after the live rows are pruned).
const V3: &str = "
ALTER TABLE conc_bus_batches ADD COLUMN deadline INTEGER;
CREATE INDEX conc_bus_batches_deadline ON conc_bus_batches (deadline) WHERE deadline IS NOT NULL;

CREATE TABLE conc_bus_batch_archive (
    id BLOB PRIMARY KEY NOT NULL,
    archived_at INTEGER NOT NULL,
    archive TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX conc_bus_batch_archive_time ON conc_bus_batch_archive (archived_at, id);
";

/// Worker heartbeats: a row per live worker (its beat as JSON), indexed by
/// when it counts as gone, so listing and pruning never scan old rows.
const V4: &str = "
CREATE TABLE conc_bus_workers (
    id TEXT PRIMARY KEY NOT NULL,
    expires_at INTEGER NOT NULL,
    beat TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX conc_bus_workers_expiry ON conc_bus_workers (expires_at);
";

/// Batch listings filtered in the store: each batch's state (0 pending,
/// 1 finished, 2 cancelled), computed from its record, indexed with its
/// creation time so that a page of one state walks the index newest first.
const V5: &str = "
ALTER TABLE conc_bus_batches ADD COLUMN state INTEGER GENERATED ALWAYS AS (
    CASE
        WHEN json_extract(record, '$.cancelled_at') IS NOT NULL THEN 2
        WHEN json_extract(record, '$.finished_at') IS NOT NULL THEN 1
        ELSE 0
    END
) VIRTUAL;
CREATE INDEX conc_bus_batches_state ON conc_bus_batches (state, created_at, id);
";

const MIGRATIONS: [&str; 5] = [V1, V2, V3, V4, V5];

/// The schema version this build writes and reads.
pub(super) const VERSION: u32 = MIGRATIONS.len() as u32;

/// Lease tokens handed out by one opening of the file stay below the next
/// multiple of this; every opening starts the counter at the next multiple.
/// A power cut can undo the last (unflushed) reservations, and with them the
/// counter's last steps; the opening after it still hands out tokens above
/// every token given before, because the jump it makes is flushed.
const TOKEN_EPOCH: i64 = 1 << 40;

/// Why the schema could not be set up.
#[derive(Debug)]
pub(super) enum SchemaError {
    /// SQLite failed at a step.
    Sql(&'static str, rusqlite::Error),
    /// The file is at a version this build does not know.
    Newer(u32),
}

/// Brings the file's schema to [`VERSION`] and moves the token counter to a
/// new epoch, in one `BEGIN IMMEDIATE` transaction (committed with the
/// connection's `synchronous=FULL`).
pub(super) fn migrate(connection: &Connection) -> Result<(), SchemaError> {
    let step = |what: &'static str| move |error| SchemaError::Sql(what, error);
    connection.execute_batch("BEGIN IMMEDIATE").map_err(step("cannot start the migration"))?;
    let result = migrate_in_transaction(connection);
    match result {
        Ok(()) => connection.execute_batch("COMMIT").map_err(step("cannot commit the migration")),
        Err(error) => {
            let _ = connection.execute_batch("ROLLBACK");
            Err(error)
        }
    }
}

fn migrate_in_transaction(connection: &Connection) -> Result<(), SchemaError> {
    let step = |what: &'static str| move |error| SchemaError::Sql(what, error);
    let version: i64 = connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(step("cannot read the schema version"))?;
    let version = u32::try_from(version).map_err(|_| SchemaError::Newer(u32::MAX))?;
    if version > VERSION {
        return Err(SchemaError::Newer(version));
    }
    for migration in &MIGRATIONS[version as usize..] {
        connection.execute_batch(migration).map_err(step("cannot create the schema"))?;
    }
    if version < VERSION {
        connection
            .pragma_update(None, "user_version", VERSION)
            .map_err(step("cannot record the schema version"))?;
    }
    connection
        .execute(
            "UPDATE conc_bus_meta SET value = (value / ?1 + 1) * ?1 WHERE key = 'next_token'",
            [TOKEN_EPOCH],
        )
        .map_err(step("cannot move the token counter"))?;
    Ok(())
}
