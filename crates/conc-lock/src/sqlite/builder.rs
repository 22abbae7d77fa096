//! [`SqliteBackendBuilder`]: the settings of a [`SqliteBackend`] and opening the file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::SqliteBackend;
use super::connection::{self, SCHEMA, STATEMENTS};
use super::error::OpenError;
use crate::LockError;

/// The longest busy timeout SQLite takes: `i32::MAX` milliseconds, about 24.8 days.
const MAX_BUSY_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

/// Settings for a [`SqliteBackend`], made by [`SqliteBackend::builder`];
/// [`open`](SqliteBackendBuilder::open) opens the file.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_lock::{LockStore, SqliteBackend};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let backend = SqliteBackend::builder(dir.path().join("locks.db"))
///     .busy_timeout(Duration::from_secs(2))
///     .open()?;
/// let store = LockStore::new(backend);
/// # drop(store);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `open` is called"]
pub struct SqliteBackendBuilder {
    path: PathBuf,
    busy_timeout: Duration,
}

impl SqliteBackendBuilder {
    pub(super) fn new(path: PathBuf) -> Self {
        Self { path, busy_timeout: Duration::from_secs(5) }
    }

    /// Sets how long an operation waits for another process that is writing
    /// to the file before it fails with [`LockError::Backend`] ("database is
    /// locked"). Writes take microseconds (plus a disk flush), so this only
    /// runs out when another process holds the file's write lock for long.
    ///
    /// Defaults to 5 seconds. At most `i32::MAX` milliseconds (about 24.8
    /// days); [`open`](SqliteBackendBuilder::open) refuses more.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_lock::SqliteBackend;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// // Fail fast rather than queue behind a long write of another process.
    /// let backend = SqliteBackend::builder(dir.path().join("locks.db"))
    ///     .busy_timeout(Duration::from_millis(100))
    ///     .open()?;
    /// assert_eq!(backend.busy_timeout(), Duration::from_millis(100));
    /// # Ok(()) }
    /// ```
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Opens (creating when missing) the file and its `conc_locks` table, and
    /// starts the backend's connection thread.
    ///
    /// This does blocking file I/O on the calling thread; it is quick, but
    /// call it at startup or from `spawn_blocking` rather than in the middle
    /// of async work.
    ///
    /// # Errors
    ///
    /// [`LockError::Backend`] naming the path and the failing step: the
    /// directory is missing or not writable, the file is not a SQLite
    /// database, WAL mode is not available (a network file system, say), an
    /// existing `conc_locks` table has another shape, or the busy timeout is
    /// too long.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::error::Error as _;
    /// use conc_lock::{LockError, SqliteBackend};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let missing = dir.path().join("no-such-dir").join("locks.db");
    /// let error = SqliteBackend::builder(&missing).open().unwrap_err();
    /// assert!(matches!(error, LockError::Backend(_)));
    /// // The source names the file and the step that failed.
    /// let cause = error.source().unwrap().to_string();
    /// assert!(cause.contains("no-such-dir"), "{cause}");
    /// # Ok(()) }
    /// ```
    pub fn open(self) -> Result<SqliteBackend, LockError> {
        let Self { path, busy_timeout } = self;
        conc_core::config::at_most("busy_timeout", busy_timeout, MAX_BUSY_TIMEOUT)?;
        let connection = open_connection(&path, busy_timeout).map_err(LockError::backend)?;
        let (requests, receiver) = mpsc::channel();
        std::thread::Builder::new()
            .name("conc-lock-sqlite".to_owned())
            .spawn(move || connection::run(connection, &receiver))
            .map_err(|error| {
                LockError::backend(OpenError::other(
                    path.clone(),
                    format!("cannot start the connection thread: {error}"),
                ))
            })?;
        Ok(SqliteBackend { requests, path: Arc::from(path), busy_timeout })
    }
}

/// Opens and sets up the connection: busy timeout, WAL, `synchronous=FULL`
/// (the connection thread lowers it for commits that hand out no fence),
/// the table, and every statement prepared once.
/// Whether `error` is SQLite's "database is busy" or "locked".
fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn open_connection(path: &Path, busy_timeout: Duration) -> Result<Connection, OpenError> {
    let failed = |what: &str| {
        let path = path.to_path_buf();
        let what = what.to_owned();
        move |error| OpenError::sqlite(path, what, error)
    };
    let connection = Connection::open(path).map_err(failed("the file cannot be opened"))?;
    connection.busy_timeout(busy_timeout).map_err(failed("cannot set the busy timeout"))?;
    // Switching a new file to WAL needs an exclusive lock, and SQLite can
    // report "busy" for it at once, without the busy handler, while other
    // processes open the same new file: retry within the busy timeout.
    let started = Instant::now();
    let mode: String = loop {
        match connection.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)) {
            Err(error) if is_busy(&error) && started.elapsed() < busy_timeout => {
                std::thread::sleep(Duration::from_millis(5));
            }
            result => break result.map_err(failed("cannot switch to WAL journal mode"))?,
        }
    };
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(OpenError::other(
            path.to_path_buf(),
            format!("cannot switch to WAL journal mode: SQLite kept `{mode}`"),
        ));
    }
    connection
        .pragma_update(None, "synchronous", "FULL")
        .map_err(failed("cannot set `synchronous=FULL`"))?;
    connection.execute_batch(SCHEMA).map_err(failed("cannot create the `conc_locks` table"))?;
    for statement in STATEMENTS {
        connection
            .prepare_cached(statement)
            .map_err(failed("the `conc_locks` table has an unexpected shape"))?;
    }
    Ok(connection)
}
