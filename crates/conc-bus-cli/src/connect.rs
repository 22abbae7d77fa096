//! [`connect`]: a backend from its URL.

use conc_bus::{AnyBackend, MemoryQueue};

use crate::AdminError;

/// Opens the backend `url` names, without creating anything:
///
/// | URL | backend |
/// |---|---|
/// | `sqlite:PATH`, `sqlite://PATH`, or a path to an existing file | the SQLite queue file at `PATH`, batches included (feature `sqlite`, on by default) |
/// | `memory:` | a new, empty in-memory queue, batches included (for tests and trials) |
/// | `redis://…`, `rediss://…`, `redis+unix://…` | the Redis queues on that server, under conc-bus's default key prefix (feature `redis`, on by default), batches included |
///
/// A SQLite file must exist and hold conc-bus's tables; it is checked read
/// only before it is opened, so a wrong path or a foreign database is
/// refused with nothing created or changed. A Redis server must answer:
/// connecting writes nothing (Redis queues exist once a job was pushed).
///
/// # Errors
///
/// [`AdminError::BadUrl`] for a URL this build does not understand,
/// [`AdminError::NotFound`] for a missing file, [`AdminError::NotAQueue`]
/// for a file that is not a queue file, [`AdminError::Unreachable`] when
/// opening fails or the Redis server does not answer within 5 s (one
/// connection attempt and one retry).
///
/// # Examples
///
/// ```
/// use conc_bus_cli::{AdminError, connect};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), std::io::Error> {
/// let dir = tempfile::tempdir()?;
/// let missing = dir.path().join("jobs.db");
/// let error = connect(&format!("sqlite:{}", missing.display())).await.unwrap_err();
/// assert!(matches!(error, AdminError::NotFound { .. }));
/// assert!(!missing.exists(), "nothing was created");
/// # Ok(()) }
/// ```
pub async fn connect(url: &str) -> Result<AnyBackend, AdminError> {
    let bad = |reason: &str| AdminError::BadUrl { url: url.to_owned(), reason: reason.to_owned() };
    let url = url.trim();
    if url.is_empty() {
        return Err(bad("it is empty: give `sqlite:PATH`, a path, or `memory:`"));
    }
    if url == "memory:" || url == "memory://" {
        return Ok(AnyBackend::with_workflows(MemoryQueue::new()));
    }
    if url.starts_with("redis://")
        || url.starts_with("rediss://")
        || url.starts_with("redis+unix://")
        || url.starts_with("unix://")
    {
        return redis(url).await;
    }
    let path = if let Some(path) = url.strip_prefix("sqlite://") {
        path
    } else if let Some(path) = url.strip_prefix("sqlite:") {
        path
    } else if url.contains("://") || url.ends_with(':') {
        return Err(bad("unknown scheme: give `sqlite:PATH`, a path, or `memory:`"));
    } else {
        url
    };
    if path.is_empty() {
        return Err(bad("the SQLite path is empty"));
    }
    sqlite(url, std::path::Path::new(path))
}

#[cfg(feature = "redis")]
async fn redis(url: &str) -> Result<AnyBackend, AdminError> {
    // A URL that does not parse is the operator's typo (exit code 2), not an
    // unreachable server (3).
    if let Err(error) = redis::Client::open(url) {
        return Err(bad_redis_url(url, &error));
    }
    // An operator waiting on a wrong host learns it in seconds, not after the
    // queue's patient reconnect schedule.
    conc_bus::RedisQueue::builder(url)
        .connection_timeout(std::time::Duration::from_secs(5))
        .reconnect_retries(1)
        .connect()
        .await
        .map(AnyBackend::with_workflows)
        .map_err(|source| AdminError::Unreachable { url: url.to_owned(), source })
}

#[cfg(feature = "redis")]
fn bad_redis_url(url: &str, error: &redis::RedisError) -> AdminError {
    AdminError::BadUrl { url: url.to_owned(), reason: format!("not a Redis URL: {error}") }
}

#[cfg(not(feature = "redis"))]
#[allow(clippy::unused_async, reason = "the same signature as with the feature")]
async fn redis(url: &str) -> Result<AnyBackend, AdminError> {
    Err(AdminError::BadUrl {
        url: url.to_owned(),
        reason: "this build has no Redis support (feature `redis`)".to_owned(),
    })
}

#[cfg(feature = "sqlite")]
fn sqlite(url: &str, path: &std::path::Path) -> Result<AnyBackend, AdminError> {
    use rusqlite::{Connection, OpenFlags};

    if !path.is_file() {
        return Err(AdminError::NotFound { path: path.to_path_buf() });
    }
    let not_a_queue = |reason: String| AdminError::NotAQueue { path: path.to_path_buf(), reason };
    {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(path, flags)
            .map_err(|error| not_a_queue(error.to_string()))?;
        let tables: i64 = connection
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' \
                 AND name IN ('conc_bus_jobs', 'conc_bus_failed', 'conc_bus_queues')",
                [],
                |row| row.get(0),
            )
            .map_err(|error| not_a_queue(error.to_string()))?;
        if tables != 3 {
            return Err(not_a_queue("it has no conc-bus queue tables".to_owned()));
        }
    }
    conc_bus::SqliteQueue::open(path)
        .map(AnyBackend::with_workflows)
        .map_err(|source| AdminError::Unreachable { url: url.to_owned(), source })
}

#[cfg(not(feature = "sqlite"))]
fn sqlite(url: &str, _path: &std::path::Path) -> Result<AnyBackend, AdminError> {
    Err(AdminError::BadUrl {
        url: url.to_owned(),
        reason: "this build has no SQLite support (feature `sqlite`)".to_owned(),
    })
}
