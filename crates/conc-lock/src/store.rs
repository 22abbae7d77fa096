//! [`LockStore`]: the entry point that hands out locks and funnels.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use conc_core::backoff::{Backoff, Jitter};
use conc_core::config::ConfigError;

use crate::LockMetrics;
use crate::memory::MemoryBackend;
use crate::metrics::Counters;
use crate::name::{self, LockName};
use crate::scoped::{self, Scope};
use crate::{Fence, Funnel, Lock, LockBackend, LockError, Owner, ttl};

/// Where locks live, and the factory of [`Lock`] and [`Funnel`] handles.
///
/// Cheap to clone: clones share the backend.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_lock::LockStore;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_lock::LockError> {
/// let store = LockStore::memory();
/// let lock = store.lock("reports:daily", Duration::from_secs(30))?;
/// if let Some(guard) = lock.get().await? {
///     // … build the report, passing guard.fence() with every write …
///     guard.release().await?;
/// }
/// # Ok(()) }
/// ```
pub struct LockStore<B: LockBackend = MemoryBackend> {
    inner: Arc<Inner<B>>,
}

struct Inner<B> {
    backend: Arc<B>,
    block_backoff: Backoff,
    counters: Arc<Counters>,
}

impl LockStore<MemoryBackend> {
    /// A store in this process's memory.
    pub fn memory() -> Self {
        Self::new(MemoryBackend::new())
    }
}

impl<B: LockBackend> LockStore<B> {
    /// A store over `backend`.
    pub fn new(backend: B) -> Self {
        Self {
            inner: Arc::new(Inner {
                backend: Arc::new(backend),
                block_backoff: default_block_backoff(),
                counters: Arc::default(),
            }),
        }
    }

    /// Sets the backoff between attempts of [`Lock::block`] and
    /// [`Funnel::block`]. A wait is never longer than the time left before
    /// the deadline or (when the backend reports it) before the current hold
    /// expires.
    ///
    /// Defaults to exponential from 10 ms doubling to at most 250 ms, with
    /// equal jitter.
    #[must_use]
    pub fn with_block_backoff(self, backoff: Backoff) -> Self {
        let backend = Arc::clone(&self.inner.backend);
        let counters = Arc::clone(&self.inner.counters);
        Self { inner: Arc::new(Inner { backend, block_backoff: backoff, counters }) }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.inner.backend
    }

    /// A handle on the lock `name` with a fresh random owner; each
    /// acquisition through it holds the lock for `ttl` unless extended.
    ///
    /// Making a handle does not touch the backend.
    ///
    /// # Errors
    ///
    /// [`LockError::Config`] naming `name` for an empty name, one longer than 512
    /// bytes or one with control characters; naming `ttl` for a
    /// `ttl` below 1 ms or above [`MAX_TTL`](crate::MAX_TTL). A `ttl` with a
    /// fraction of a millisecond is rounded up.
    pub fn lock(&self, name: impl AsRef<str>, ttl: Duration) -> Result<Lock<B>, LockError> {
        self.restore(name, Owner::random(), ttl)
    }

    /// Tries once to take the lock `name` for `ttl` with a fresh random
    /// owner and, if it did, runs `work` with the fence, then releases the
    /// lock. `Ok(None)` when someone else held it (`work` did not run).
    ///
    /// This is `store.lock(name, ttl)?.get_with(work)` without the handle:
    /// the hold borrows the store for as long as `work` runs, so keyed code
    /// that locks a name per use pays for no handle (see `docs/lock.md`).
    /// If `work` panics or the future is dropped, the hold is released as a
    /// dropped [`LockGuard`](crate::LockGuard) is.
    ///
    /// # Errors
    ///
    /// [`LockError::Config`] for a bad `name` or `ttl` (as
    /// [`lock`](LockStore::lock)); [`LockError::Lost`] when the hold had
    /// expired by the time `work` finished (its output is dropped);
    /// [`LockError::Backend`] when the backend fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_lock::LockStore;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_lock::LockError> {
    /// let store = LockStore::memory();
    /// let ttl = Duration::from_secs(30);
    /// let charged = store.get_with("customer:42", ttl, |fence| async move {
    ///     // … charge the customer, passing `fence` with every write …
    ///     fence.get()
    /// }).await?;
    /// assert_eq!(charged, Some(1), "the first hold of this name has fence 1");
    ///
    /// // While someone holds the name, the work does not run.
    /// let guard = store.lock("customer:42", ttl)?.get().await?.expect("free");
    /// assert_eq!(store.get_with("customer:42", ttl, |_| async { 0 }).await?, None);
    /// guard.release().await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_with<T, F, Fut>(
        &self,
        name: impl AsRef<str>,
        ttl: Duration,
        work: F,
    ) -> Result<Option<T>, LockError>
    where
        F: FnOnce(Fence) -> Fut,
        Fut: Future<Output = T>,
    {
        let name = name.as_ref();
        name::check(name)?;
        let ttl = ttl::validate(ttl)?;
        let prepared = self.inner.backend.prepare(name);
        let owner = Owner::random();
        let scope =
            Scope { store: self, prepared: &prepared, owner: &owner, ttl, name: Some(name) };
        scoped::get_with(&scope, work).await
    }

    /// A handle on the lock `name` acting as `owner`: another process (or a
    /// queued job) that was handed the owner token can extend or release the
    /// hold made under it.
    ///
    /// # Errors
    ///
    /// As [`lock`](LockStore::lock).
    pub fn restore(
        &self,
        name: impl AsRef<str>,
        owner: Owner,
        ttl: Duration,
    ) -> Result<Lock<B>, LockError> {
        let name = name.as_ref();
        name::check(name)?;
        let ttl = ttl::validate(ttl)?;
        let prepared = self.inner.backend.prepare(name);
        let name =
            Lock::<B>::needs_name(&prepared).then(|| LockName::from_checked(Arc::from(name)));
        Ok(Lock::from_prepared(self.clone(), name, prepared, owner, ttl))
    }

    /// Releases the lock `name` whoever holds it. `Ok(true)` if a hold was removed.
    ///
    /// # Errors
    ///
    /// [`LockError::Config`] for a bad `name`, or [`LockError::Backend`] when the backend fails.
    pub async fn force_release(&self, name: impl AsRef<str>) -> Result<bool, LockError> {
        let prepared = self.prepare(name.as_ref())?;
        self.inner.backend.force_release(&prepared).await
    }

    /// The owner currently holding `name`, if any.
    ///
    /// # Errors
    ///
    /// [`LockError::Config`] for a bad `name`, or [`LockError::Backend`] when the backend fails.
    pub async fn owner_of(&self, name: impl AsRef<str>) -> Result<Option<Owner>, LockError> {
        let prepared = self.prepare(name.as_ref())?;
        self.inner.backend.owner(&prepared).await
    }

    /// A concurrency limiter named `name` with `limit` slots, each held for
    /// `ttl` unless extended (Laravel's `funnel`).
    ///
    /// # Errors
    ///
    /// [`LockError::Config`] naming `name`, `ttl`, or
    /// `limit` for a `limit` of zero or above
    /// [`MAX_FUNNEL_LIMIT`] (each slot is a lock, tried in order).
    pub fn funnel(
        &self,
        name: impl AsRef<str>,
        limit: u32,
        ttl: Duration,
    ) -> Result<Funnel<B>, LockError> {
        let name = LockName::new(name.as_ref())?;
        let ttl = ttl::validate(ttl)?;
        if !(1..=MAX_FUNNEL_LIMIT).contains(&limit) {
            let reason = format!("must be between 1 and {MAX_FUNNEL_LIMIT}");
            return Err(ConfigError::new("limit", limit, reason).into());
        }
        Ok(Funnel::new(self.clone(), &name, limit, ttl))
    }

    /// Validates `name` and prepares it, without keeping a copy of it.
    fn prepare(&self, name: &str) -> Result<Arc<B::Prepared>, LockError> {
        name::check(name)?;
        Ok(self.inner.backend.prepare(name))
    }

    pub(crate) fn shared_backend(&self) -> &Arc<B> {
        &self.inner.backend
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// A snapshot of the acquisitions, refusals, releases and losses of this
    /// store's locks and funnels (shared by its clones).
    pub fn metrics(&self) -> LockMetrics {
        self.inner.counters.snapshot()
    }

    pub(crate) fn block_backoff(&self) -> &Backoff {
        &self.inner.block_backoff
    }
}

/// The most slots a [`Funnel`] may have: 1024. Each slot is a lock of its own
/// that an acquisition may have to try, so larger limits belong in a
/// counting semaphore, not a funnel.
pub const MAX_FUNNEL_LIMIT: u32 = 1024;

fn default_block_backoff() -> Backoff {
    Backoff::exponential(Duration::from_millis(10))
        .max_delay(Duration::from_millis(250))
        .jitter(Jitter::Equal)
        .build()
        .unwrap_or_else(|error| unreachable!("the default block backoff is valid: {error}"))
}

impl<B: LockBackend> Clone for LockStore<B> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

impl<B: LockBackend> fmt::Debug for LockStore<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockStore")
            .field("backend", &self.inner.backend)
            .field("block_backoff", &self.inner.block_backoff)
            .finish()
    }
}

impl<B: LockBackend> conc_core::metrics::MetricsSource for LockStore<B> {
    type Snapshot = LockMetrics;

    fn metrics(&self) -> LockMetrics {
        LockStore::metrics(self)
    }

    fn reset_metrics(&self) {
        self.inner.counters.reset();
    }
}
