//! Every public type is `Send + Sync` (and the rest of what a user relies on:
//! `Clone`, `Debug`, `'static`), and the futures of the async methods are
//! `Send`, so they can be spawned on a multi-threaded runtime.

use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::time::Duration;

use conc_core::time::ManualClock;
use conc_lock::{
    Acquisition, Fence, Funnel, FunnelPermit, Lock, LockBackend, LockError, LockGuard, LockMetrics,
    LockStore, MemoryBackend, MemoryBackendBuilder, MemorySlot, Owner, SlotAcquisition,
};
use static_assertions::{assert_impl_all, assert_not_impl_any};

assert_impl_all!(LockStore: Send, Sync, Clone, Debug, Unpin);
assert_impl_all!(LockStore<MemoryBackend<ManualClock>>: Send, Sync, Clone, Debug);
assert_impl_all!(Lock<MemoryBackend>: Send, Sync, Clone, Debug, Unpin);
assert_impl_all!(LockGuard<MemoryBackend>: Send, Sync, Debug, Unpin);
assert_impl_all!(Funnel<MemoryBackend>: Send, Sync, Debug, Unpin);
assert_impl_all!(FunnelPermit<MemoryBackend>: Send, Sync, Debug, Unpin);
assert_impl_all!(MemoryBackend: Send, Sync, Debug, Default, LockBackend);
assert_impl_all!(MemoryBackend<ManualClock>: Send, Sync, Debug, LockBackend);
assert_impl_all!(MemorySlot: Send, Sync, Debug);
assert_impl_all!(LockError: Send, Sync, Debug, std::error::Error);
assert_impl_all!(Fence: Send, Sync, Copy, Ord, Hash, Debug, std::fmt::Display);
assert_impl_all!(Owner: Send, Sync, Clone, Eq, Hash, Debug, std::fmt::Display);
assert_impl_all!(Acquisition: Send, Sync, Copy, Eq, Debug);
assert_impl_all!(SlotAcquisition: Send, Sync, Copy, Eq, Debug);
assert_impl_all!(LockMetrics: Send, Sync, Copy, Eq, Debug);
assert_impl_all!(MemoryBackendBuilder: Send, Sync, Clone, Debug);
assert_impl_all!(LockStore: conc_core::metrics::MetricsSource<Snapshot = LockMetrics>);
#[cfg(feature = "sqlite")]
assert_impl_all!(conc_lock::SqliteBackend: Send, Sync, Debug, LockBackend);
#[cfg(feature = "sqlite")]
assert_impl_all!(conc_lock::SqliteBackendBuilder: Send, Sync, Clone, Debug);
#[cfg(feature = "redis")]
assert_impl_all!(conc_lock::RedisBackend: Send, Sync, Clone, Debug, LockBackend);
#[cfg(feature = "redis")]
assert_impl_all!(conc_lock::RedisBackendBuilder: Send, Sync, Clone, Debug);
#[cfg(feature = "redis")]
assert_impl_all!(conc_lock::RedisKeys: Send, Sync, Debug);

// A guard or permit is released exactly once: it cannot be cloned.
assert_not_impl_any!(LockGuard<MemoryBackend>: Clone);
assert_not_impl_any!(FunnelPermit<MemoryBackend>: Clone);

fn send<T: Send>(value: T) -> T {
    value
}

fn spawnable<F: Future + Send + 'static>(future: F) -> F {
    future
}

/// Never run: it only has to compile. Each async method's future is `Send`,
/// and so are the `'static` futures a user spawns around them, for a generic
/// backend as much as for the in-memory one.
#[allow(clippy::let_underscore_future, reason = "compile-time checks only")]
fn futures_are_send<B: LockBackend>(store: LockStore<B>, lock: Lock<B>, funnel: Funnel<B>) {
    let wait = Duration::from_secs(1);
    let _ = send(lock.get());
    let _ = send(lock.block(wait));
    let _ = send(lock.get_with(|fence| async move { fence }));
    let _ = send(lock.block_with(wait, |fence| async move { fence }));
    let _ = send(lock.release());
    let _ = send(lock.extend(wait));
    let _ = send(lock.is_owned());
    let _ = send(funnel.get());
    let _ = send(funnel.block(wait));
    let _ = send(funnel.block_with(wait, |fence| async move { fence }));
    let _ = send(store.force_release("name"));
    let _ = send(store.owner_of("name"));
    let _ = send(store.get_with("name", wait, |fence| async move { fence }));
    let _ = spawnable(async move {
        let guard = lock.block(wait).await?;
        guard.extend(wait).await?;
        let guard = guard.keep_alive();
        guard.release().await?;
        let permit = funnel.block(wait).await?;
        permit.extend(wait).await?;
        permit.keep_alive().release().await?;
        store.force_release("name").await
    });
}

#[test]
fn the_checks_compile() {
    // The assertions above are checked at compile time; this keeps the file
    // a test target with at least one test.
    let _ = futures_are_send::<MemoryBackend>;
}
