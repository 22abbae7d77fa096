//! The Redis backend: locks shared by the processes of many machines through
//! one Redis server.

mod builder;
mod keys;
mod scripts;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;

pub use builder::RedisBackendBuilder;
pub use keys::RedisKeys;

use crate::{Acquisition, Fence, LockBackend, LockError, Owner, SlotAcquisition, ttl};

/// Locks in Redis, shared by every process that reaches the server: the
/// `SET NX PX` lock with an owner-checked release and a fencing counter.
///
/// # How it works
///
/// A lock named `n` is two keys (the default prefix is `conc:lock:`):
///
/// | key | holds | expires |
/// |---|---|---|
/// | `conc:lock:{n}` | the holder's owner token | with the hold's time to live (`PX`) |
/// | `conc:lock:{n}:fence` | the fence counter | never; it survives release and expiry |
///
/// Each operation is one Lua script, run with `EVALSHA` (loaded on first
/// use), so it costs one round trip and is atomic on the server:
///
/// - acquire: `SET key owner NX PX ttl`; on success `INCR` the fence key and
///   return the new fence, else return `PTTL key` so
///   [`Lock::block`](crate::Lock::block) sleeps no longer than the hold has left;
/// - a [`Funnel`](crate::Funnel) tries its slots in order in one script and
///   returns the first it took, or the soonest expiry;
/// - release: `DEL` if the key still holds the owner; extend: `PEXPIRE` if it
///   does; both report a lost hold otherwise;
/// - [`owner_of`](crate::LockStore::owner_of) is a `GET`,
///   [`force_release`](crate::LockStore::force_release) a `DEL`.
///
/// All times are the server's: the hold expires by the Redis clock, so
/// clients' clocks may disagree without harm. Redis keeps expiry as an
/// absolute time on its wall clock: a server stopped for a while (we tested
/// `SIGSTOP`) runs no expiry meanwhile, but every hold whose time ran out is
/// gone the moment it runs again, and a step of the server's clock shortens
/// or lengthens every hold.
///
/// # Hash tags and Redis Cluster
///
/// The braces are a hash tag: Redis Cluster hashes only the text between
/// them, so both keys of a lock are on one slot and one script may touch
/// both. The slots of a [`Funnel`](crate::Funnel) share the funnel's name as
/// tag: the front-end names slot `i` of funnel `f` as `f` + U+001F +
/// `slot<i>`, and the tag is the part before the U+001F (user names cannot
/// contain control characters), so one script can try every slot. Braces,
/// `%` and control characters in a name are percent-escaped inside the tag
/// (`a{b}` is `conc:lock:{a%7Bb%7D}`), so no name can move the tag's end and
/// no two names share a key; [`RedisKeys`] shows the keys of a name.
///
/// The backend talks to one server (a primary) over a [`ConnectionManager`],
/// which does not follow cluster redirections; the key layout is what a
/// cluster needs, and the scripts are tested on a one-node cluster. Names
/// handed to [`LockBackend::acquire_any`] by other callers than a funnel
/// must share a hash tag to be used on a cluster.
///
/// # Connections and failures
///
/// Commands go over one multiplexed connection that reconnects in the
/// background: the call that finds the connection broken fails at once with
/// [`LockError::Backend`]; calls made while the server stays away fail after
/// the reconnection attempts (about a second with the defaults, see
/// [`RedisBackendBuilder::reconnect_retries`]); once the server is back,
/// calls succeed again through the same backend. Every command has a response
/// timeout ([`RedisBackendBuilder::response_timeout`], 500 ms by default), so
/// a stalled server makes calls fail instead of hang. A call that failed
/// this way may still have run on the server: an acquire whose reply was
/// lost holds the lock, unknown to anyone, until its time to live runs out.
/// The source of a [`LockError::Backend`] from a command is the
/// [`redis::RedisError`], so callers can downcast it (`is_timeout()`,
/// `is_io_error()`, …).
///
/// # Guarantees: efficiency locks
///
/// These are efficiency locks. They keep two workers from doing the same
/// work almost always, and never promise more:
///
/// - A holder that stalls past its time to live (GC pause, stopped VM, slow
///   network) still believes it holds the lock after someone else took it.
///   Its next release or extend reports [`LockError::Lost`]; in between, only
///   the fence protects the resource, and only if the resource checks it.
/// - Redis keeps data in memory. If it crashes without an AOF with
///   `appendfsync always`, or fails over to a replica that had not received
///   the latest writes (replication is asynchronous), held locks vanish, so
///   two holders can coexist, and **the fence counter can go back**: a new
///   holder may get a fence that was already handed out. `WAIT` does not
///   fix this. With `appendonly yes` and `appendfsync always`, a restarted
///   server keeps both the holds (with their absolute expiry) and the fence
///   counters.
/// - There is no Redlock: several independent servers do not make these
///   locks correct either.
///
/// When correctness depends on mutual exclusion across server failures,
/// check the fence against a durable, monotonic record in the database that
/// holds the protected data, in the same transaction as the write (or use a
/// database-backed lock, whose fence is durable).
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use conc_lock::{LockStore, RedisBackend};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_lock::LockError> {
/// let store = LockStore::new(RedisBackend::connect("redis://127.0.0.1:6379/").await?);
///
/// let lock = store.lock("invoices:2024-06", Duration::from_secs(30))?;
/// if let Some(guard) = lock.get().await? {
///     // Send guard.fence() with every write; the resource refuses a write
///     // whose fence is lower than the highest it has seen.
///     guard.release().await?;
/// }
///
/// // At most four exports at once, across every machine.
/// let exports = store.funnel("exports", 4, Duration::from_secs(60))?;
/// let permit = exports.block(Duration::from_secs(10)).await?;
/// permit.release().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisBackend {
    manager: ConnectionManager,
    key_prefix: Arc<str>,
}

impl RedisBackend {
    /// Connects to the server at `url` (`redis://[user:password@]host:port/[db]`
    /// or `redis+unix:///path/to/socket`) with the default options of
    /// [`builder`](RedisBackend::builder).
    ///
    /// # Errors
    ///
    /// [`LockError::Backend`] when the URL does not parse or the server
    /// cannot be reached.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use conc_lock::{LockStore, RedisBackend};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_lock::LockError> {
    /// let store = LockStore::new(RedisBackend::connect("redis://127.0.0.1:6379/").await?);
    /// # drop(store);
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str) -> Result<Self, LockError> {
        Self::builder(url).connect().await
    }

    /// A builder for a backend with other options (key prefix, timeouts,
    /// reconnection) for the server at `url`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use conc_lock::RedisBackend;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_lock::LockError> {
    /// let backend = RedisBackend::builder("redis://127.0.0.1:6379/")
    ///     .key_prefix("reports:lock:")
    ///     .response_timeout(Duration::from_millis(200))
    ///     .connect()
    ///     .await?;
    /// # drop(backend);
    /// # Ok(()) }
    /// ```
    pub fn builder(url: impl Into<String>) -> RedisBackendBuilder {
        RedisBackendBuilder::new(url.into())
    }

    /// A backend over a connection manager the application already has,
    /// with the default key prefix `conc:lock:`. Its response timeout and
    /// reconnection settings are the manager's.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use conc_lock::RedisBackend;
    /// use redis::aio::ConnectionManager;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = redis::Client::open("redis://127.0.0.1:6379/")?;
    /// let manager = ConnectionManager::new(client).await?;
    /// // The application keeps `manager` for its own commands.
    /// let backend = RedisBackend::from_manager(manager.clone()).with_key_prefix("jobs:lock:")?;
    /// # drop(backend);
    /// # Ok(()) }
    /// ```
    pub fn from_manager(manager: ConnectionManager) -> Self {
        Self::with_parts(manager, builder::DEFAULT_KEY_PREFIX.into())
    }

    /// The same backend with keys under `prefix` instead (see
    /// [`RedisBackendBuilder::key_prefix`]).
    ///
    /// # Errors
    ///
    /// [`LockError::Backend`] when `prefix` contains `{` or `}`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use conc_lock::RedisBackend;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_lock::LockError> {
    /// let backend = RedisBackend::connect("redis://127.0.0.1:6379/").await?;
    /// let tenant = backend.clone().with_key_prefix("tenant-7:lock:")?;
    /// assert_eq!(tenant.key_prefix(), "tenant-7:lock:");
    /// # Ok(()) }
    /// ```
    pub fn with_key_prefix(self, prefix: impl Into<String>) -> Result<Self, LockError> {
        let prefix = prefix.into();
        builder::validate_prefix(&prefix)?;
        Ok(Self { key_prefix: prefix.into(), ..self })
    }

    /// The text every key of this backend starts with.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use conc_lock::RedisBackend;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_lock::LockError> {
    /// let backend = RedisBackend::connect("redis://127.0.0.1:6379/").await?;
    /// assert_eq!(backend.key_prefix(), "conc:lock:");
    /// # Ok(()) }
    /// ```
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    fn with_parts(manager: ConnectionManager, key_prefix: Arc<str>) -> Self {
        Self { manager, key_prefix }
    }

    /// A handle on the shared connection (a cheap clone): commands need `&mut`.
    fn connection(&self) -> ConnectionManager {
        self.manager.clone()
    }
}

impl LockBackend for RedisBackend {
    type Prepared = RedisKeys;

    fn prepare(&self, name: &str) -> Arc<RedisKeys> {
        Arc::new(RedisKeys::new(&self.key_prefix, name))
    }

    async fn acquire(
        &self,
        keys: &RedisKeys,
        owner: &Owner,
        ttl: Duration,
    ) -> Result<Acquisition, LockError> {
        let mut invocation = scripts::ACQUIRE_SCRIPT.prepare_invoke();
        invocation
            .key(keys.lock_key())
            .key(keys.fence_key())
            .arg(owner.as_str())
            .arg(ttl::millis(ttl));
        let reply: Vec<i64> =
            invocation.invoke_async(&mut self.connection()).await.map_err(LockError::backend)?;
        scripts::attempt(&reply)
    }

    async fn acquire_any(
        &self,
        names: &[Arc<RedisKeys>],
        owner: &Owner,
        ttl: Duration,
    ) -> Result<SlotAcquisition, LockError> {
        if names.is_empty() {
            return Ok(SlotAcquisition::Busy { retry_after: None });
        }
        let mut invocation = scripts::ACQUIRE_ANY_SCRIPT.prepare_invoke();
        for keys in names {
            invocation.key(keys.lock_key()).key(keys.fence_key());
        }
        invocation.arg(owner.as_str()).arg(ttl::millis(ttl));
        let reply: Vec<i64> =
            invocation.invoke_async(&mut self.connection()).await.map_err(LockError::backend)?;
        scripts::slot_attempt(&reply, names.len())
    }

    async fn release_hold(
        &self,
        keys: &RedisKeys,
        owner: &Owner,
        fence: Fence,
    ) -> Result<bool, LockError> {
        let mut invocation = scripts::RELEASE_HOLD_SCRIPT.prepare_invoke();
        invocation.key(keys.lock_key()).key(keys.fence_key()).arg(owner.as_str()).arg(fence.get());
        let released: i64 =
            invocation.invoke_async(&mut self.connection()).await.map_err(LockError::backend)?;
        Ok(released == 1)
    }

    async fn release(&self, keys: &RedisKeys, owner: &Owner) -> Result<bool, LockError> {
        let mut invocation = scripts::RELEASE_SCRIPT.prepare_invoke();
        invocation.key(keys.lock_key()).arg(owner.as_str());
        let released: i64 =
            invocation.invoke_async(&mut self.connection()).await.map_err(LockError::backend)?;
        Ok(released == 1)
    }

    async fn extend(
        &self,
        keys: &RedisKeys,
        owner: &Owner,
        ttl: Duration,
    ) -> Result<bool, LockError> {
        let mut invocation = scripts::EXTEND_SCRIPT.prepare_invoke();
        invocation.key(keys.lock_key()).arg(owner.as_str()).arg(ttl::millis(ttl));
        let extended: i64 =
            invocation.invoke_async(&mut self.connection()).await.map_err(LockError::backend)?;
        Ok(extended == 1)
    }

    async fn owner(&self, keys: &RedisKeys) -> Result<Option<Owner>, LockError> {
        let owner: Option<String> = redis::cmd("GET")
            .arg(keys.lock_key())
            .query_async(&mut self.connection())
            .await
            .map_err(LockError::backend)?;
        owner.map(Owner::new).transpose().map_err(|error| {
            LockError::backend(format!(
                "the lock key {:?} holds no valid owner token: {error}",
                keys.lock_key()
            ))
        })
    }

    async fn force_release(&self, keys: &RedisKeys) -> Result<bool, LockError> {
        let removed: i64 = redis::cmd("DEL")
            .arg(keys.lock_key())
            .query_async(&mut self.connection())
            .await
            .map_err(LockError::backend)?;
        Ok(removed > 0)
    }
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("key_prefix", &self.key_prefix)
            .field("manager", &self.manager)
            .finish()
    }
}
