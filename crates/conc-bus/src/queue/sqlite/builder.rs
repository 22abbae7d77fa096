//! [`SqliteQueueBuilder`]: the settings of a [`SqliteQueue`] and opening its file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use conc_core::config;
use conc_core::time::Clock;
use rusqlite::Connection;
use tokio::sync::Notify;

use super::error::OpenError;
use super::schema::{self, SchemaError};
use super::writer::{self, Settings, Shared};
use super::{Inner, SqliteQueue, Synchronous, admin, admit, flow, store, workers};
use crate::clock::{WallClock, millis};
use crate::queue::error::QueueError;
use crate::queue::memory::{DEFAULT_FAILED_MAX_AGE, DEFAULT_FAILED_MAX_JOBS};

/// The longest busy timeout SQLite takes: `i32::MAX` milliseconds, about 24.8 days.
const MAX_BUSY_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

/// How many prepared statements the connection keeps: every statement the
/// backend runs, with room to spare.
const STATEMENT_CACHE: usize = 64;

/// Settings for a [`SqliteQueue`], made by [`SqliteQueue::builder`];
/// [`open`](Self::open) opens the file.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_bus::{SqliteQueue, Synchronous};
/// use conc_core::time::ManualClock;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let backend = SqliteQueue::builder(dir.path().join("jobs.db"))
///     .clock(ManualClock::new())
///     .busy_timeout(Duration::from_secs(2))
///     .synchronous(Synchronous::Full)
///     .failed_retention(1_000, Duration::from_secs(7 * 24 * 3600))
///     .open()?;
/// assert_eq!(backend.synchronous(), Synchronous::Full);
/// # Ok(()) }
/// ```
#[must_use = "a builder does nothing until `open` is called"]
pub struct SqliteQueueBuilder {
    path: PathBuf,
    clock: Option<Arc<dyn Clock>>,
    busy_timeout: Duration,
    synchronous: Synchronous,
    failed_max_jobs: usize,
    failed_max_age: Duration,
}

impl std::fmt::Debug for SqliteQueueBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteQueueBuilder")
            .field("path", &self.path)
            .field("busy_timeout", &self.busy_timeout)
            .field("synchronous", &self.synchronous)
            .field("failed_max_jobs", &self.failed_max_jobs)
            .field("failed_max_age", &self.failed_max_age)
            .finish_non_exhaustive()
    }
}

impl SqliteQueueBuilder {
    pub(super) fn new(path: PathBuf) -> Self {
        Self {
            path,
            clock: None,
            busy_timeout: Duration::from_secs(5),
            synchronous: Synchronous::default(),
            failed_max_jobs: DEFAULT_FAILED_MAX_JOBS,
            failed_max_age: DEFAULT_FAILED_MAX_AGE,
        }
    }

    /// The clock every stored time is read from (availability, leases,
    /// failures), as Unix milliseconds. Processes sharing a file must read
    /// the same time: keep the default outside tests. Defaults to the
    /// process-wide coarse clock, anchored to the system's Unix time.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_bus::{QueueBackend, SqliteQueue};
    /// use conc_core::time::ManualClock;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let clock = ManualClock::new();
    /// let backend = SqliteQueue::builder(dir.path().join("jobs.db")).clock(clock.clone()).open()?;
    /// let before = backend.now();
    /// clock.advance(Duration::from_secs(30)); // leases expire without waiting
    /// assert_eq!(backend.now(), before + 30_000);
    /// # Ok(()) }
    /// ```
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// How long a transaction waits for another process's write to the file
    /// before it fails with [`QueueError::Backend`] ("database is locked").
    /// Writes take microseconds plus a flush, so this runs out only when
    /// another process holds the write lock for long. Defaults to 5 s; at
    /// most `i32::MAX` milliseconds.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_bus::SqliteQueue;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("jobs.db");
    /// let backend = SqliteQueue::builder(&path).busy_timeout(Duration::from_secs(1)).open()?;
    /// assert_eq!(backend.busy_timeout(), Duration::from_secs(1));
    /// assert!(SqliteQueue::builder(&path).busy_timeout(Duration::MAX).open().is_err());
    /// # Ok(()) }
    /// ```
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Which commits are flushed to disk. Defaults to
    /// [`Synchronous::Balanced`].
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{SqliteQueue, Synchronous};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// // Nothing acknowledged may be lost, even to a power cut.
    /// let backend =
    ///     SqliteQueue::builder(dir.path().join("jobs.db")).synchronous(Synchronous::Full).open()?;
    /// assert_eq!(backend.synchronous(), Synchronous::Full);
    /// # Ok(()) }
    /// ```
    pub fn synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// How many failed jobs are kept, and for how long: past either bound
    /// the oldest failures are dropped when new ones arrive. Defaults to
    /// [`DEFAULT_FAILED_MAX_JOBS`](crate::queue::DEFAULT_FAILED_MAX_JOBS) and
    /// [`DEFAULT_FAILED_MAX_AGE`](crate::queue::DEFAULT_FAILED_MAX_AGE); at
    /// least one job and one millisecond.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_bus::{QueueError, SqliteQueue};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("jobs.db");
    /// let week = Duration::from_secs(7 * 24 * 3600);
    /// let backend = SqliteQueue::builder(&path).failed_retention(1_000, week).open()?;
    /// # drop(backend);
    /// let refused = SqliteQueue::builder(&path).failed_retention(0, week).open();
    /// assert!(matches!(refused, Err(QueueError::Config(_))));
    /// # Ok(()) }
    /// ```
    pub fn failed_retention(mut self, max_jobs: usize, max_age: Duration) -> Self {
        self.failed_max_jobs = max_jobs;
        self.failed_max_age = max_age;
        self
    }

    /// Opens (creating when missing) the file, brings its schema to this
    /// version, and starts the queue's connection thread.
    ///
    /// This does blocking file I/O on the calling thread; it is quick, but
    /// call it at startup or from `spawn_blocking` rather than in the middle
    /// of async work.
    ///
    /// # Errors
    ///
    /// [`QueueError::Config`] for a refused setting;
    /// [`QueueError::Backend`] naming the file and the failing step when it
    /// cannot be opened or set up: the directory is missing, the file is not
    /// a SQLite database, WAL mode is unavailable (a network file system), its
    /// tables have another shape, or it was written by a newer version of
    /// this crate (its schema version is higher than this one knows).
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{QueueError, SqliteQueue};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let missing = dir.path().join("no-such-dir").join("jobs.db");
    /// let error = SqliteQueue::builder(&missing).open().unwrap_err();
    /// assert!(matches!(error, QueueError::Backend(_)));
    /// // The error names the file and the step that failed.
    /// let cause = std::error::Error::source(&error).unwrap().to_string();
    /// assert!(cause.contains("no-such-dir"), "{cause}");
    /// # Ok(()) }
    /// ```
    pub fn open(self) -> Result<SqliteQueue, QueueError> {
        let Self { path, clock, busy_timeout, synchronous, failed_max_jobs, failed_max_age } = self;
        config::at_most("busy_timeout", busy_timeout, MAX_BUSY_TIMEOUT)?;
        config::at_least("failed_max_jobs", failed_max_jobs, 1)?;
        config::at_least("failed_max_age", failed_max_age, Duration::from_millis(1))?;
        let connection = open_connection(&path, busy_timeout).map_err(backend)?;
        let shared = Arc::new(Shared {
            clock: clock.map_or_else(WallClock::default, WallClock::new),
            wake: Notify::new(),
            settings: Settings {
                failed_max_jobs,
                failed_max_age_ms: millis(failed_max_age),
                synchronous,
            },
            progress: crate::batch::progress::ProgressFeed::default(),
        });
        let (requests, receiver) = mpsc::channel();
        let thread_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("conc-bus-sqlite".to_owned())
            .spawn(move || writer::run(connection, &receiver, &thread_shared))
            .map_err(|error| {
                backend(OpenError::other(
                    path.clone(),
                    format!("cannot start the connection thread: {error}"),
                ))
            })?;
        let inner = Inner { requests, shared, path, busy_timeout };
        Ok(SqliteQueue { inner: Arc::new(inner) })
    }
}

fn backend(error: OpenError) -> QueueError {
    QueueError::Backend(Box::new(error))
}

/// Whether `error` is SQLite's "database is busy" or "locked".
fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Opens and sets up the connection: busy timeout, WAL, `synchronous=FULL`
/// (the thread lowers it for the commits its setting does not flush), the
/// schema, and every statement prepared once.
fn open_connection(path: &Path, busy_timeout: Duration) -> Result<Connection, OpenError> {
    let failed = |what: &str| {
        let path = path.to_path_buf();
        let what = what.to_owned();
        move |error| OpenError::sqlite(path, what, error)
    };
    let connection = Connection::open(path).map_err(failed("the file cannot be opened"))?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
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
    schema::migrate(&connection).map_err(|error| match error {
        SchemaError::Sql(what, error) => OpenError::sqlite(path.to_path_buf(), what, error),
        SchemaError::Newer(version) => OpenError::other(
            path.to_path_buf(),
            format!(
                "its schema version is {version}, newer than the version {} this build of \
                 conc-bus reads: it was written by a newer release, open it with that release",
                schema::VERSION
            ),
        ),
    })?;
    for statement in store::STATEMENTS
        .iter()
        .chain(&admin::STATEMENTS)
        .chain(&flow::STATEMENTS)
        .chain(&admit::STATEMENTS)
        .chain(&workers::STATEMENTS)
    {
        connection
            .prepare_cached(statement)
            .map_err(failed("the queue tables have an unexpected shape"))?;
    }
    Ok(connection)
}
