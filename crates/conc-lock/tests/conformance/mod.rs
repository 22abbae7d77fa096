//! The conformance suite every lock backend passes.
//!
//! A test file instantiates it with a factory that makes a fresh, empty store
//! (and whatever keeps it alive: a temp dir, a server):
//!
//! ```ignore
//! mod conformance;
//! conformance::suite!(|| async {
//!     Some((LockStore::memory(), Box::new(()) as conformance::KeepAlive))
//! });
//! ```
//!
//! A factory returns `None` when its service is missing and the test should
//! skip (see `conc_test_support::require_redis`).

#![allow(dead_code, reason = "each test binary uses the part of the suite it instantiates")]

use std::time::Duration;

use conc_lock::{LockBackend, LockStore};

/// What keeps a store's resources alive for the length of a test.
pub type KeepAlive = Box<dyn std::any::Any + Send>;

/// Declares one `#[tokio::test]` per check, each on a fresh store from `$factory`.
macro_rules! suite {
    ($factory:expr) => {
        $crate::conformance::suite!(@tests $factory;
            acquire_then_busy_then_release,
            fences_only_grow,
        );
    };
    (@tests $factory:expr; $($check:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let factory = $factory;
                let Some((store, _keep_alive)) = factory().await else { return };
                $crate::conformance::$check(store).await;
            }
        )*
    };
}
pub(crate) use suite;

const TTL: Duration = Duration::from_secs(30);

/// A free lock is acquired; a second owner is refused; after release the
/// second owner gets it.
pub async fn acquire_then_busy_then_release<B: LockBackend>(store: LockStore<B>) {
    let first = store.lock("conformance:basic", TTL).unwrap();
    let second = store.lock("conformance:basic", TTL).unwrap();
    let guard = first.get().await.unwrap().expect("a free lock is acquired");
    assert!(second.get().await.unwrap().is_none(), "a held lock is refused to another owner");
    guard.release().await.unwrap();
    let guard = second.get().await.unwrap().expect("a released lock is free");
    guard.release().await.unwrap();
}

/// Every acquisition of a name gets a greater fence than the one before.
pub async fn fences_only_grow<B: LockBackend>(store: LockStore<B>) {
    let mut last = None;
    for _ in 0..5 {
        let guard = store.lock("conformance:fence", TTL).unwrap().get().await.unwrap().unwrap();
        if let Some(last) = last {
            assert!(guard.fence() > last, "{:?} after {last:?}", guard.fence());
        }
        last = Some(guard.fence());
        guard.release().await.unwrap();
    }
}
