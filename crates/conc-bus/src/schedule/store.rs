//! [`ScheduleStore`]: where each task's last tick is kept, so a scheduler
//! that starts knows which ticks passed while none ran.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use conc_core::{BoxError, BoxFuture};

/// Where a scheduler keeps the last tick it considered for each task. On
/// start it reads them back to find the ticks missed while no scheduler ran
/// ([`MissedTicks`](super::MissedTicks)); schedulers sharing a store share
/// that knowledge.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use conc_bus::schedule::{MemoryScheduleStore, ScheduleStore};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::BoxError> {
/// let store = MemoryScheduleStore::new();
/// let tick = SystemTime::UNIX_EPOCH + Duration::from_secs(60);
/// store.record_tick("report", tick).await?;
/// store.record_tick("report", SystemTime::UNIX_EPOCH).await?; // never goes back
/// assert_eq!(store.last_tick("report").await?, Some(tick));
/// # Ok(()) }
/// ```
pub trait ScheduleStore: fmt::Debug + Send + Sync + 'static {
    /// The last tick recorded for `task`.
    fn last_tick<'a>(
        &'a self,
        task: &'a str,
    ) -> BoxFuture<'a, Result<Option<SystemTime>, BoxError>>;

    /// Records `tick` for `task`, unless a later one is recorded already.
    fn record_tick<'a>(
        &'a self,
        task: &'a str,
        tick: SystemTime,
    ) -> BoxFuture<'a, Result<(), BoxError>>;
}

/// The last ticks in this process's memory: the default. It sees ticks
/// missed while the process was stalled, not those missed while it was down.
///
/// # Examples
///
/// ```
/// use conc_bus::schedule::{MemoryScheduleStore, Scheduler};
///
/// let scheduler = Scheduler::builder().store(MemoryScheduleStore::new()).build()?;
/// # let _ = scheduler;
/// # Ok::<(), conc_bus::schedule::ScheduleError>(())
/// ```
#[derive(Debug, Default)]
pub struct MemoryScheduleStore {
    ticks: Mutex<HashMap<String, SystemTime>>,
}

impl MemoryScheduleStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl ScheduleStore for MemoryScheduleStore {
    fn last_tick<'a>(
        &'a self,
        task: &'a str,
    ) -> BoxFuture<'a, Result<Option<SystemTime>, BoxError>> {
        let tick = self.ticks.lock().unwrap_or_else(PoisonError::into_inner).get(task).copied();
        Box::pin(std::future::ready(Ok(tick)))
    }

    fn record_tick<'a>(
        &'a self,
        task: &'a str,
        tick: SystemTime,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        let mut ticks = self.ticks.lock().unwrap_or_else(PoisonError::into_inner);
        let last = ticks.entry(task.to_owned()).or_insert(tick);
        *last = (*last).max(tick);
        Box::pin(std::future::ready(Ok(())))
    }
}

#[cfg(feature = "sqlite")]
pub use self::sqlite::SqliteScheduleStore;

#[cfg(feature = "sqlite")]
mod sqlite {
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex, PoisonError};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use conc_core::{BoxError, BoxFuture};
    use rusqlite::{Connection, OptionalExtension, params};

    use super::ScheduleStore;
    use crate::schedule::ScheduleError;

    /// The last ticks in a SQLite file (feature `sqlite`), in a table of
    /// their own (`conc_bus_schedule`); the queue's file serves. Schedulers
    /// of every process sharing the file share what they ran, so one that
    /// starts after a downtime knows which ticks were missed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use conc_bus::schedule::{ScheduleStore, SqliteScheduleStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("jobs.db");
    /// let tick = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    /// SqliteScheduleStore::open(&path)?.record_tick("report", tick).await?;
    /// // Another process, later:
    /// assert_eq!(SqliteScheduleStore::open(&path)?.last_tick("report").await?, Some(tick));
    /// # Ok(()) }
    /// ```
    #[derive(Debug, Clone)]
    pub struct SqliteScheduleStore {
        connection: Arc<Mutex<Connection>>,
        path: PathBuf,
    }

    impl SqliteScheduleStore {
        /// Opens (creating when missing) the file and its table.
        ///
        /// # Errors
        ///
        /// [`ScheduleError::Store`] naming the file when it cannot be opened
        /// or its table created.
        pub fn open(path: impl AsRef<Path>) -> Result<Self, ScheduleError> {
            let path = path.as_ref().to_path_buf();
            let failed = |error: rusqlite::Error| {
                ScheduleError::Store(format!("{}: {error}", path.display()).into())
            };
            let connection = Connection::open(&path).map_err(failed)?;
            connection.busy_timeout(Duration::from_secs(5)).map_err(failed)?;
            connection
                .execute_batch(
                    "CREATE TABLE IF NOT EXISTS conc_bus_schedule (
                         task TEXT PRIMARY KEY NOT NULL,
                         last_tick_ms INTEGER NOT NULL
                     )",
                )
                .map_err(failed)?;
            Ok(Self { connection: Arc::new(Mutex::new(connection)), path })
        }

        /// The file.
        pub fn path(&self) -> &Path {
            &self.path
        }

        async fn with<T: Send + 'static>(
            &self,
            work: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
        ) -> Result<T, BoxError> {
            let connection = Arc::clone(&self.connection);
            let result = tokio::task::spawn_blocking(move || {
                work(&connection.lock().unwrap_or_else(PoisonError::into_inner))
            })
            .await?;
            Ok(result?)
        }
    }

    fn to_ms(tick: SystemTime) -> i64 {
        let ms = tick.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
        i64::try_from(ms).unwrap_or(i64::MAX)
    }

    impl ScheduleStore for SqliteScheduleStore {
        fn last_tick<'a>(
            &'a self,
            task: &'a str,
        ) -> BoxFuture<'a, Result<Option<SystemTime>, BoxError>> {
            let task = task.to_owned();
            Box::pin(async move {
                let ms: Option<i64> = self
                    .with(move |c| {
                        c.query_row(
                            "SELECT last_tick_ms FROM conc_bus_schedule WHERE task = ?1",
                            params![task],
                            |row| row.get(0),
                        )
                        .optional()
                    })
                    .await?;
                Ok(ms.map(|ms| UNIX_EPOCH + Duration::from_millis(ms.max(0).unsigned_abs())))
            })
        }

        fn record_tick<'a>(
            &'a self,
            task: &'a str,
            tick: SystemTime,
        ) -> BoxFuture<'a, Result<(), BoxError>> {
            let task = task.to_owned();
            Box::pin(async move {
                self.with(move |c| {
                    c.execute(
                        "INSERT INTO conc_bus_schedule (task, last_tick_ms) VALUES (?1, ?2)
                         ON CONFLICT (task) DO UPDATE
                         SET last_tick_ms = max(last_tick_ms, excluded.last_tick_ms)",
                        params![task, to_ms(tick)],
                    )
                })
                .await?;
                Ok(())
            })
        }
    }
}
