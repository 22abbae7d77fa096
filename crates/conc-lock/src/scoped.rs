//! A hold taken for the length of one closure's future, borrowing what it
//! needs: [`LockStore::get_with`] and [`Lock::get_with`](crate::Lock::get_with).
//!
//! A [`LockGuard`](crate::LockGuard) may outlive its handle, so it keeps a
//! reference-counted share of it (and a handle made per use allocates its
//! shared state). A hold that ends before the closure's future returns needs
//! neither: it borrows the store, the prepared name and the owner for as
//! long as the work runs.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use conc_core::time::CoarseClock;

use crate::{Acquisition, Fence, LockBackend, LockError, LockStore, Owner};

/// What one scoped acquisition works with, borrowed from its caller.
pub(crate) struct Scope<'a, B: LockBackend> {
    pub(crate) store: &'a LockStore<B>,
    pub(crate) prepared: &'a Arc<B::Prepared>,
    pub(crate) owner: &'a Owner,
    pub(crate) ttl: Duration,
    /// The lock's name, for [`LockError::Lost`]; `None` when the prepared
    /// state keeps it ([`LockBackend::name_of`]), asked only then.
    pub(crate) name: Option<&'a str>,
}

/// Tries once to acquire, and if it did, runs `work` with the fence and
/// releases. `Ok(None)` when someone else held the lock.
///
/// One future, and the scope borrowed rather than moved: each nested future
/// or moved struct is a copy through memory on the path, and copies of
/// fields just written cost more than the atomic operations around them.
pub(crate) async fn get_with<B, T, F, Fut>(
    scope: &Scope<'_, B>,
    work: F,
) -> Result<Option<T>, LockError>
where
    B: LockBackend,
    F: FnOnce(Fence) -> Fut,
    Fut: Future<Output = T>,
{
    let backend = scope.store.backend();
    let acquisition = match backend.acquire_ready(scope.prepared, scope.owner, scope.ttl) {
        Some(acquisition) => acquisition?,
        None => backend.acquire(scope.prepared, scope.owner, scope.ttl).await?,
    };
    let fence = match acquisition {
        Acquisition::Acquired(fence) => fence,
        Acquisition::Busy { .. } => {
            scope.store.counters().contended();
            return Ok(None);
        }
    };
    let mut hold = Hold::new(scope, fence);
    let output = work(fence).await;
    let released = match backend.release_hold_ready(scope.prepared, scope.owner, fence) {
        Some(released) => released,
        None => backend.release_hold(scope.prepared, scope.owner, fence).await,
    };
    // As for a guard: only now, so a release dropped mid-round-trip leaves
    // the drop to release (both name this hold's fence).
    hold.released = true;
    if released? {
        scope.store.counters().released(Some(hold.held()));
        Ok(Some(output))
    } else {
        scope.store.counters().expired();
        let name = scope.name.or_else(|| B::name_of(scope.prepared)).unwrap_or_default();
        Err(LockError::Lost { name: name.to_owned(), fence })
    }
}

/// A scoped hold, released on drop (a panic in the work, or the future
/// dropped mid-work) as a dropped [`LockGuard`](crate::LockGuard) is, unless
/// [`get_with`] released it.
struct Hold<'a, B: LockBackend> {
    scope: &'a Scope<'a, B>,
    fence: Fence,
    released: bool,
    /// As [`LockGuard`](crate::LockGuard) keeps it, for `conc.lock.hold`.
    acquired_at: Duration,
}

impl<'a, B: LockBackend> Hold<'a, B> {
    fn new(scope: &'a Scope<'a, B>, fence: Fence) -> Self {
        scope.store.counters().acquired();
        Self { scope, fence, released: false, acquired_at: CoarseClock::global().elapsed() }
    }

    fn held(&self) -> Duration {
        CoarseClock::global().elapsed().saturating_sub(self.acquired_at)
    }
}

impl<B: LockBackend> Drop for Hold<'_, B> {
    fn drop(&mut self) {
        if !self.released {
            let Scope { store, prepared, owner, .. } = *self.scope;
            store.counters().released(Some(self.held()));
            Arc::clone(store.shared_backend()).release_on_drop(
                Arc::clone(prepared),
                owner.clone(),
                self.fence,
            );
        }
    }
}
