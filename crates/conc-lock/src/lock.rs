//! [`Lock`]: a handle on one named lock for one owner.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::name::LockName;
use crate::scoped::{self, Scope};
use crate::wait::{self, Try};
use crate::{Acquisition, Fence, LockBackend, LockError, LockGuard, LockStore, Owner, ttl};

/// A handle on the lock `name` for one owner, made by
/// [`LockStore::lock`] or [`LockStore::restore`].
///
/// The handle itself holds nothing: [`get`](Lock::get) and
/// [`block`](Lock::block) acquire and return a [`LockGuard`]. Clones share the
/// owner, so they act as the same holder.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_lock::{LockError, LockStore};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), LockError> {
/// let store = LockStore::memory();
/// let lock = store.lock("invoice:42", Duration::from_secs(10))?;
/// let other = store.lock("invoice:42", Duration::from_secs(10))?;
///
/// let guard = lock.get().await?.expect("free");
/// assert!(other.get().await?.is_none(), "held by the first owner");
/// guard.release().await?;
///
/// // Run a closure while holding the lock, then release it.
/// let total = other.get_with(|_fence| async { 40 + 2 }).await?;
/// assert_eq!(total, Some(42));
/// # Ok(()) }
/// ```
pub struct Lock<B: LockBackend> {
    // One reference count per clone, so a guard (which keeps a clone) costs
    // one atomic increment to make and one to drop.
    inner: Arc<Inner<B>>,
}

struct Inner<B: LockBackend> {
    store: LockStore<B>,
    /// The name, unless the backend's prepared state keeps it
    /// ([`LockBackend::name_of`]).
    name: Option<LockName>,
    prepared: Arc<B::Prepared>,
    owner: Owner,
    ttl: Duration,
}

impl<B: LockBackend> Lock<B> {
    pub(crate) fn from_prepared(
        store: LockStore<B>,
        name: Option<LockName>,
        prepared: Arc<B::Prepared>,
        owner: Owner,
        ttl: Duration,
    ) -> Self {
        Self { inner: Arc::new(Inner { store, name, prepared, owner, ttl }) }
    }

    /// Whether a handle on `prepared` needs a copy of its name: not when the
    /// backend keeps it in the prepared state ([`LockBackend::name_of`]).
    pub(crate) fn needs_name(prepared: &B::Prepared) -> bool {
        !(B::KEEPS_NAMES || B::name_of(prepared).is_some())
    }

    /// The lock's name.
    pub fn name(&self) -> &str {
        let inner = &*self.inner;
        match &inner.name {
            Some(name) => name.as_str(),
            None => B::name_of(&inner.prepared).unwrap_or_default(),
        }
    }

    /// The owner this handle acts as.
    pub fn owner(&self) -> &Owner {
        &self.inner.owner
    }

    /// How long each acquisition holds the lock unless extended.
    pub fn ttl(&self) -> Duration {
        self.inner.ttl
    }

    /// Tries once to acquire the lock. `Ok(None)` when someone else holds it.
    ///
    /// # Errors
    ///
    /// [`LockError::Backend`] when the backend fails.
    pub async fn get(&self) -> Result<Option<LockGuard<B>>, LockError> {
        // Not through `attempt`: one future less to build and move on the
        // uncontended path.
        let inner = &*self.inner;
        let backend = inner.store.backend();
        let acquisition = match backend.acquire_ready(&inner.prepared, &inner.owner, inner.ttl) {
            Some(acquisition) => acquisition?,
            None => backend.acquire(&inner.prepared, &inner.owner, inner.ttl).await?,
        };
        match acquisition {
            Acquisition::Acquired(fence) => Ok(Some(LockGuard::new(self.clone(), fence))),
            Acquisition::Busy { .. } => {
                inner.store.counters().contended();
                Ok(None)
            }
        }
    }

    /// Acquires the lock, waiting up to `wait` while someone else holds it,
    /// retrying with the store's jittered backoff.
    ///
    /// Dropping the future while it sleeps between attempts acquires
    /// nothing. Dropped in the middle of a network round trip, an attempt may
    /// still succeed on the server; that hold then expires with its `ttl`.
    ///
    /// # Errors
    ///
    /// [`LockError::Timeout`] naming the lock when it is still held at the
    /// deadline; [`LockError::Backend`] when the backend fails.
    pub async fn block(&self, wait: Duration) -> Result<LockGuard<B>, LockError> {
        let backoff = self.inner.store.block_backoff().clone();
        wait::block(self.name(), wait, &backoff, || self.attempt()).await
    }

    /// Tries once to acquire the lock and, if it did, runs `work` with the
    /// fence, then releases the lock. `Ok(None)` when someone else held it
    /// (`work` did not run).
    ///
    /// # Errors
    ///
    /// [`LockError::Lost`] when the lock had expired by the time `work`
    /// finished (so `work` ran without mutual exclusion for a while; its
    /// output is dropped), [`LockError::Backend`] when the backend fails.
    pub async fn get_with<T, F, Fut>(&self, work: F) -> Result<Option<T>, LockError>
    where
        F: FnOnce(Fence) -> Fut,
        Fut: Future<Output = T>,
    {
        // Borrows the handle for the hold instead of sharing it with a guard.
        let inner = &*self.inner;
        let scope = Scope {
            store: &inner.store,
            prepared: &inner.prepared,
            owner: &inner.owner,
            ttl: inner.ttl,
            name: inner.name.as_ref().map(LockName::as_str),
        };
        scoped::get_with(&scope, work).await
    }

    /// [`block`](Lock::block)s for the lock, runs `work` with the fence, then
    /// releases the lock.
    ///
    /// # Errors
    ///
    /// As [`block`](Lock::block) and [`get_with`](Lock::get_with).
    pub async fn block_with<T, F, Fut>(&self, wait: Duration, work: F) -> Result<T, LockError>
    where
        F: FnOnce(Fence) -> Fut,
        Fut: Future<Output = T>,
    {
        let guard = self.block(wait).await?;
        Self::run_then_release(guard, work).await
    }

    /// Releases the lock if this handle's owner holds it. `Ok(false)` when it
    /// does not (never acquired, already released, or expired). This is how a
    /// [restored](LockStore::restore) handle releases a hold made elsewhere.
    ///
    /// # Errors
    ///
    /// [`LockError::Backend`] when the backend fails.
    pub async fn release(&self) -> Result<bool, LockError> {
        let inner = &*self.inner;
        let released = inner.store.backend().release(&inner.prepared, &inner.owner).await?;
        if released {
            inner.store.counters().released(None);
        }
        Ok(released)
    }

    /// Resets the hold's time to live to `ttl` from now, if this handle's
    /// owner holds the lock. `Ok(false)` when it does not.
    ///
    /// # Errors
    ///
    /// [`LockError::Config`] for a bad `ttl`, or [`LockError::Backend`] when the backend fails.
    pub async fn extend(&self, ttl: Duration) -> Result<bool, LockError> {
        let ttl = ttl::validate(ttl)?;
        let inner = &*self.inner;
        inner.store.backend().extend(&inner.prepared, &inner.owner, ttl).await
    }

    /// Whether this handle's owner holds the lock now.
    ///
    /// # Errors
    ///
    /// [`LockError::Backend`] when the backend fails.
    pub async fn is_owned(&self) -> Result<bool, LockError> {
        let inner = &*self.inner;
        Ok(inner.store.backend().owner(&inner.prepared).await?.as_ref() == Some(&inner.owner))
    }

    async fn attempt(&self) -> Result<Try<LockGuard<B>>, LockError> {
        let inner = &*self.inner;
        match inner.store.backend().acquire(&inner.prepared, &inner.owner, inner.ttl).await? {
            Acquisition::Acquired(fence) => Ok(Try::Acquired(LockGuard::new(self.clone(), fence))),
            Acquisition::Busy { retry_after } => {
                inner.store.counters().contended();
                Ok(Try::Busy(retry_after))
            }
        }
    }

    async fn run_then_release<T, F, Fut>(guard: LockGuard<B>, work: F) -> Result<T, LockError>
    where
        F: FnOnce(Fence) -> Fut,
        Fut: Future<Output = T>,
    {
        let output = work(guard.fence()).await;
        guard.release().await?;
        Ok(output)
    }

    pub(crate) fn store(&self) -> &LockStore<B> {
        &self.inner.store
    }

    pub(crate) fn prepared(&self) -> &Arc<B::Prepared> {
        &self.inner.prepared
    }
}

impl<B: LockBackend> Clone for Lock<B> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

impl<B: LockBackend> fmt::Debug for Lock<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("name", &self.name())
            .field("owner", &self.inner.owner)
            .field("ttl", &self.inner.ttl)
            .finish_non_exhaustive()
    }
}
