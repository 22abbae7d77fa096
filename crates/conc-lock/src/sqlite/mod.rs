//! The SQLite backend: locks in a file shared by the processes of one machine.

mod builder;
mod connection;
mod error;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use tokio::sync::oneshot;

pub use builder::SqliteBackendBuilder;
use connection::Request;

use crate::{Acquisition, Fence, LockBackend, LockError, Owner, SlotAcquisition, ttl};

/// Locks in a SQLite file, shared by every process of the machine that opens
/// the same file.
///
/// Each lock name is one row of the table `conc_locks(name, owner, fence,
/// expires_at)`. Acquiring is one `INSERT … ON CONFLICT DO UPDATE …
/// RETURNING fence` that succeeds only when the row is free or its hold has
/// expired, and adds one to the fence. Releasing clears the owner but keeps
/// the row, so a name's fence keeps growing across releases, restarts and
/// crashes: the file holds one row per name ever locked (a funnel has one
/// per slot). Every statement runs inside a `BEGIN IMMEDIATE` transaction.
///
/// # Time
///
/// Expiry times are milliseconds since the UNIX epoch on the **system
/// clock**, the one clock all processes sharing the file can read. Every
/// process must therefore see the same clock: they must run on one machine
/// (which WAL mode needs anyway: it does not work over a network file
/// system). A step of the system clock moves every expiry with it: a jump
/// forward ends holds early, a jump back makes them last longer.
///
/// # Connection and throughput
///
/// The backend owns one connection, used by one thread of its own (a
/// `rusqlite` connection is not `Sync`). Async calls send their request to
/// that thread and await the answer, so they never block the runtime. The
/// thread runs every request that is waiting when it gets to work (up to 64)
/// in **one transaction**, so concurrent callers of one backend share a
/// commit and its disk flush (group commit), and never wait on each other
/// through SQLite's busy handler. Several backends, in one process or in
/// many, wait for each other's write transactions for up to the busy timeout
/// (see [`SqliteBackendBuilder::busy_timeout`]).
///
/// An acquisition whose caller stops waiting (a dropped future, a timeout)
/// is skipped if the thread has not run it yet, and undone if it ran but the
/// answer found nobody waiting. In the instant between the answer arriving
/// and the caller reading it, a dropped caller's hold is left to expire with
/// its time to live.
///
/// # Durability
///
/// The file is in WAL mode. Every commit survives a crash of the process.
/// A commit that may hand out a fence (any acquisition) is also flushed to
/// disk before the acquisition returns (`synchronous=FULL`), so fences
/// survive power loss too: after a restart no acquisition gets a fence that
/// was handed out before, which a resource may have recorded. Commits of
/// releases and extensions alone are not flushed (`synchronous=NORMAL`): a
/// power loss can undo the last of them, which only brings back, until its
/// time to live ends, a hold whose holder went down with the machine. The
/// next flushed commit makes them durable too.
///
/// So an acquisition costs one disk flush (a fraction of a millisecond on an
/// SSD), and group commit shares that flush among the callers waiting at the
/// same time; releases, extensions and keep-alive cost none. On macOS a
/// flush (`fsync`) does not empty the drive's own cache, so the guarantee
/// against power loss is weaker there.
///
/// # Dropped guards
///
/// A [`LockGuard`](crate::LockGuard) dropped without release queues its
/// release on the connection thread at once, without a runtime, so it works
/// in `Drop` anywhere and runs before any operation queued after it.
///
/// The backend is dropped when its store and every lock, guard and funnel
/// made from it are gone; the thread then finishes the queued operations and
/// closes the file.
///
/// # Fencing data in the same file
///
/// The table is plain SQL, so an application that keeps the protected data
/// in the same SQLite file can check the fence in the very transaction that
/// writes the data, e.g. `UPDATE reports SET … WHERE (SELECT fence FROM
/// conc_locks WHERE name = 'nightly-report') = ?fence`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_lock::{LockStore, SqliteBackend};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("locks.db");
///
/// // Every process that opens this file shares its locks.
/// let store = LockStore::new(SqliteBackend::open(&path)?);
/// let other = LockStore::new(SqliteBackend::open(&path)?);
///
/// let guard = store.lock("nightly-report", Duration::from_secs(60))?.get().await?.unwrap();
/// assert!(other.lock("nightly-report", Duration::from_secs(60))?.get().await?.is_none());
/// guard.release().await?;
///
/// let guard = other.lock("nightly-report", Duration::from_secs(60))?.get().await?.unwrap();
/// assert!(guard.fence().get() > 1, "the fence grows across owners and backends");
/// guard.release().await?;
/// # Ok(()) }
/// ```
pub struct SqliteBackend {
    requests: mpsc::Sender<Request>,
    path: Arc<Path>,
    busy_timeout: Duration,
}

impl SqliteBackend {
    /// Opens (creating when missing) the lock file at `path` with the
    /// default settings; see [`builder`](SqliteBackend::builder) for the others.
    ///
    /// # Errors
    ///
    /// As [`SqliteBackendBuilder::open`]: [`LockError::Backend`] naming the
    /// path when the file cannot be opened or set up.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_lock::{LockStore, SqliteBackend};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let store = LockStore::new(SqliteBackend::open(dir.path().join("locks.db"))?);
    /// assert_eq!(store.backend().path(), dir.path().join("locks.db"));
    /// # Ok(()) }
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LockError> {
        Self::builder(path).open()
    }

    /// Settings for a backend on the file at `path`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_lock::SqliteBackend;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let backend = SqliteBackend::builder(dir.path().join("locks.db"))
    ///     .busy_timeout(Duration::from_millis(500))
    ///     .open()?;
    /// assert_eq!(backend.busy_timeout(), Duration::from_millis(500));
    /// # Ok(()) }
    /// ```
    pub fn builder(path: impl AsRef<Path>) -> SqliteBackendBuilder {
        SqliteBackendBuilder::new(PathBuf::from(path.as_ref()))
    }

    /// The path of the lock file, as given.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_lock::SqliteBackend;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let backend = SqliteBackend::open(dir.path().join("locks.db"))?;
    /// assert!(backend.path().ends_with("locks.db"));
    /// # Ok(()) }
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How long an operation waits for another process's write to the file
    /// (see [`SqliteBackendBuilder::busy_timeout`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_lock::SqliteBackend;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let backend = SqliteBackend::open(dir.path().join("locks.db"))?;
    /// assert_eq!(backend.busy_timeout(), Duration::from_secs(5), "the default");
    /// # Ok(()) }
    /// ```
    pub fn busy_timeout(&self) -> Duration {
        self.busy_timeout
    }

    /// Sends a request to the connection thread and waits for its answer.
    async fn call<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<Result<T, LockError>>) -> Request,
    ) -> Result<T, LockError> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(request(reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// The connection thread is gone (it panicked); no operation can run.
fn stopped() -> LockError {
    LockError::backend("the SQLite lock file's connection thread has stopped")
}

/// A validated time to live in milliseconds, as SQLite stores it.
fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl::millis(ttl)).unwrap_or(i64::MAX / 2)
}

impl LockBackend for SqliteBackend {
    /// The lock's name, shared by its handles.
    type Prepared = Arc<str>;

    fn prepare(&self, name: &str) -> Arc<Arc<str>> {
        Arc::new(Arc::from(name))
    }

    async fn acquire(
        &self,
        name: &Arc<str>,
        owner: &Owner,
        ttl: Duration,
    ) -> Result<Acquisition, LockError> {
        let names = vec![Arc::clone(name)];
        let (owner, ttl_ms) = (owner.clone(), ttl_ms(ttl));
        match self.call(|reply| Request::Acquire { names, owner, ttl_ms, reply }).await? {
            SlotAcquisition::Acquired { fence, .. } => Ok(Acquisition::Acquired(fence)),
            SlotAcquisition::Busy { retry_after } => Ok(Acquisition::Busy { retry_after }),
        }
    }

    /// Tries the slots in order in one transaction.
    async fn acquire_any(
        &self,
        names: &[Arc<Arc<str>>],
        owner: &Owner,
        ttl: Duration,
    ) -> Result<SlotAcquisition, LockError> {
        let names = names.iter().map(|name| Arc::clone(name.as_ref())).collect();
        let (owner, ttl_ms) = (owner.clone(), ttl_ms(ttl));
        self.call(|reply| Request::Acquire { names, owner, ttl_ms, reply }).await
    }

    async fn release(&self, name: &Arc<str>, owner: &Owner) -> Result<bool, LockError> {
        let (name, owner) = (Arc::clone(name), owner.clone());
        self.call(|reply| Request::Release { name, owner, fence: None, reply: Some(reply) }).await
    }

    async fn release_hold(
        &self,
        name: &Arc<str>,
        owner: &Owner,
        fence: Fence,
    ) -> Result<bool, LockError> {
        let (name, owner, fence) = (Arc::clone(name), owner.clone(), Some(fence.get()));
        self.call(|reply| Request::Release { name, owner, fence, reply: Some(reply) }).await
    }

    async fn extend(
        &self,
        name: &Arc<str>,
        owner: &Owner,
        ttl: Duration,
    ) -> Result<bool, LockError> {
        let (name, owner, ttl_ms) = (Arc::clone(name), owner.clone(), ttl_ms(ttl));
        self.call(|reply| Request::Extend { name, owner, ttl_ms, reply }).await
    }

    async fn owner(&self, name: &Arc<str>) -> Result<Option<Owner>, LockError> {
        let name = Arc::clone(name);
        self.call(|reply| Request::Owner { name, reply }).await
    }

    async fn force_release(&self, name: &Arc<str>) -> Result<bool, LockError> {
        let name = Arc::clone(name);
        self.call(|reply| Request::ForceRelease { name, reply }).await
    }

    /// Queues the release on the connection thread; needs no runtime.
    fn release_on_drop(self: Arc<Self>, name: Arc<Arc<str>>, owner: Owner, fence: Fence) {
        let name = Arc::clone(name.as_ref());
        let fence = Some(fence.get());
        if self.requests.send(Request::Release { name, owner, fence, reply: None }).is_err() {
            tracing::debug!("lock guard dropped after the SQLite connection thread stopped");
        }
    }
}

impl fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("path", &self.path)
            .field("busy_timeout", &self.busy_timeout)
            .finish_non_exhaustive()
    }
}
