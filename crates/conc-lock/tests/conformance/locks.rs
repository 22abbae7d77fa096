//! The checks of one lock: acquire, fences, ownership, expiry, `block` and the closures.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use conc_lock::{Fence, LockBackend, LockError, LockStore, Owner};

use super::{PAST_SHORT_TTL, PATIENCE, SHORT_TTL, TTL};

/// A free lock is acquired; a second owner is refused; after release the
/// second owner gets it.
pub async fn acquire_then_busy_then_release<B: LockBackend>(store: LockStore<B>) {
    let first = store.lock("conformance:basic", TTL).unwrap();
    let second = store.lock("conformance:basic", TTL).unwrap();
    let guard = first.get().await.unwrap().expect("a free lock is acquired");
    assert_eq!(guard.name(), "conformance:basic");
    assert_eq!(guard.owner(), first.owner());
    assert!(second.get().await.unwrap().is_none(), "a held lock is refused to another owner");
    assert!(first.get().await.unwrap().is_none(), "a held lock is refused to its holder too");
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
    // Through one handle, after a force release too.
    let lock = store.lock("conformance:fence", TTL).unwrap();
    let guard = lock.get().await.unwrap().unwrap();
    assert!(Some(guard.fence()) > last);
    let forced = guard.fence();
    assert!(store.force_release("conformance:fence").await.unwrap());
    assert!(matches!(guard.release().await, Err(LockError::Lost { .. })));
    let guard = lock.get().await.unwrap().unwrap();
    assert!(guard.fence() > forced, "{:?} after {forced:?}", guard.fence());
    guard.release().await.unwrap();
}

/// `Lock::release` by another owner returns `false` and leaves the hold in
/// place; releasing an unheld lock returns `false`.
pub async fn release_is_owner_checked<B: LockBackend>(store: LockStore<B>) {
    let name = "conformance:owner-checked";
    let holder = store.lock(name, TTL).unwrap();
    let other = store.lock(name, TTL).unwrap();
    assert_ne!(holder.owner(), other.owner(), "each handle gets its own random owner");
    assert!(!holder.release().await.unwrap(), "nothing to release before acquiring");

    let guard = holder.get().await.unwrap().unwrap();
    assert!(!other.release().await.unwrap(), "another owner cannot release");
    assert!(!other.extend(TTL).await.unwrap(), "another owner cannot extend");
    assert_eq!(store.owner_of(name).await.unwrap().as_ref(), Some(holder.owner()));
    assert!(other.get().await.unwrap().is_none(), "still held after the foreign release");

    guard.release().await.unwrap();
    assert!(!holder.release().await.unwrap(), "a second release finds nothing");
    assert_eq!(store.owner_of(name).await.unwrap(), None);
}

/// A handle restored with the holder's owner token (as another process would)
/// extends and releases the hold; the original guard then finds it lost.
pub async fn restored_handle_acts_for_the_holder<B: LockBackend>(store: LockStore<B>) {
    let name = "conformance:restore";
    let holder = store.lock(name, TTL).unwrap();
    let guard = holder.get().await.unwrap().unwrap();

    // Only the token crosses the "process" boundary.
    let token = holder.owner().as_str().to_owned();
    let restored = store.restore(name, Owner::new(token).unwrap(), TTL).unwrap();
    assert_eq!(restored.owner(), holder.owner());
    assert!(restored.is_owned().await.unwrap());
    assert!(restored.extend(TTL).await.unwrap());
    assert!(restored.release().await.unwrap(), "the restored owner releases the hold");
    assert_eq!(store.owner_of(name).await.unwrap(), None);

    match guard.release().await {
        Err(LockError::Lost { name: lost, fence }) => {
            assert_eq!(lost, name);
            assert!(fence.get() > 0);
        }
        other => panic!("expected Lost, got {other:?}"),
    }

    // A restored handle for an owner that holds nothing releases nothing.
    let stranger = store.restore(name, Owner::new("conformance-nobody").unwrap(), TTL).unwrap();
    let guard = holder.get().await.unwrap().unwrap();
    assert!(!stranger.release().await.unwrap());
    assert!(holder.is_owned().await.unwrap());
    guard.release().await.unwrap();
}

/// A holder that extends still holds after its original time to live passed.
pub async fn extend_outlives_the_original_ttl<B: LockBackend>(store: LockStore<B>) {
    let name = "conformance:extend";
    let lock = store.lock(name, SHORT_TTL).unwrap();
    let other = store.lock(name, SHORT_TTL).unwrap();
    let guard = lock.get().await.unwrap().unwrap();
    guard.extend(TTL).await.unwrap();
    tokio::time::sleep(PAST_SHORT_TTL).await;
    assert!(lock.is_owned().await.unwrap(), "the extended hold outlives the original ttl");
    assert!(other.get().await.unwrap().is_none());
    // Lock::extend acts for the same owner as the guard.
    assert!(lock.extend(TTL).await.unwrap());
    guard.release().await.unwrap();
    assert!(!lock.is_owned().await.unwrap());
}

/// A hold left to expire is lost: extend and release report
/// [`LockError::Lost`], another owner takes the lock with a greater fence, and
/// the stale release leaves the new hold alone.
pub async fn expired_hold_is_lost_and_taken_over<B: LockBackend>(store: LockStore<B>) {
    let name = "conformance:expiry";
    let lock = store.lock(name, SHORT_TTL).unwrap();
    let guard = lock.get().await.unwrap().unwrap();
    let stale = guard.fence();
    tokio::time::sleep(PAST_SHORT_TTL).await;

    assert!(!lock.is_owned().await.unwrap());
    assert_eq!(store.owner_of(name).await.unwrap(), None);
    match guard.extend(TTL).await {
        Err(LockError::Lost { name: lost, fence }) => {
            assert_eq!((lost.as_str(), fence), (name, stale));
        }
        other => panic!("extending an expired hold: expected Lost, got {other:?}"),
    }
    assert!(!lock.extend(TTL).await.unwrap(), "an extension does not revive an expired hold");

    let successor = store.lock(name, TTL).unwrap();
    let taken = successor.get().await.unwrap().expect("an expired hold is free");
    assert!(taken.fence() > stale, "{:?} after {stale:?}", taken.fence());

    match guard.release().await {
        Err(LockError::Lost { name: lost, fence }) => {
            assert_eq!((lost.as_str(), fence), (name, stale));
        }
        other => panic!("releasing an expired hold: expected Lost, got {other:?}"),
    }
    assert!(successor.is_owned().await.unwrap(), "the stale release left the new hold alone");
    taken.release().await.unwrap();

    // A holder that vanished without releasing (a crashed process) frees the
    // lock when its time to live runs out.
    let crashed = lock.get().await.unwrap().unwrap();
    let crashed_fence = crashed.fence();
    std::mem::forget(crashed);
    let guard = successor.block(PATIENCE).await.unwrap();
    assert!(guard.fence() > crashed_fence);
    guard.release().await.unwrap();
}

/// `force_release` frees a lock whoever holds it; `owner_of` reports the
/// holder, then nobody.
pub async fn force_release_frees_a_held_lock<B: LockBackend>(store: LockStore<B>) {
    let name = "conformance:force";
    assert!(!store.force_release(name).await.unwrap(), "nothing to force-release");
    assert_eq!(store.owner_of(name).await.unwrap(), None);

    let holder = store.lock(name, TTL).unwrap();
    let guard = holder.get().await.unwrap().unwrap();
    assert_eq!(store.owner_of(name).await.unwrap().as_ref(), Some(holder.owner()));
    assert!(store.force_release(name).await.unwrap());
    assert_eq!(store.owner_of(name).await.unwrap(), None);
    assert!(!store.force_release(name).await.unwrap(), "already free");

    let other = store.lock(name, TTL).unwrap();
    let taken = other.get().await.unwrap().expect("force-released lock is free");
    assert!(matches!(guard.release().await, Err(LockError::Lost { .. })));
    assert_eq!(store.owner_of(name).await.unwrap().as_ref(), Some(other.owner()));
    taken.release().await.unwrap();
}

/// `is_owned` is true exactly while this handle's owner (or a clone of the
/// handle) holds the lock.
pub async fn is_owned_follows_the_hold<B: LockBackend>(store: LockStore<B>) {
    let name = "conformance:is-owned";
    let lock = store.lock(name, TTL).unwrap();
    let other = store.lock(name, TTL).unwrap();
    assert!(!lock.is_owned().await.unwrap());
    let guard = lock.get().await.unwrap().unwrap();
    assert!(lock.is_owned().await.unwrap());
    assert!(lock.clone().is_owned().await.unwrap(), "clones share the owner");
    assert!(!other.is_owned().await.unwrap());
    guard.release().await.unwrap();
    assert!(!lock.is_owned().await.unwrap());
    let guard = other.get().await.unwrap().unwrap();
    assert!(!lock.is_owned().await.unwrap());
    assert!(other.is_owned().await.unwrap());
    guard.release().await.unwrap();
}

/// `block` on a held lock gives up at the deadline with a timeout naming the lock.
pub async fn block_times_out_naming_the_lock<B: LockBackend>(store: LockStore<B>) {
    let name = "conformance:block-timeout";
    let guard = store.lock(name, TTL).unwrap().get().await.unwrap().unwrap();
    let waiter = store.lock(name, TTL).unwrap();
    let wait = Duration::from_millis(200);
    match waiter.block(wait).await {
        Err(error @ LockError::Timeout { .. }) => {
            assert!(error.to_string().contains(name), "{error}");
            let LockError::Timeout { name: timed_out, waited } = error else { unreachable!() };
            assert_eq!(timed_out, name);
            assert!(waited >= wait, "gave up after {waited:?}, before the {wait:?} deadline");
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    // A zero wait is one attempt.
    assert!(matches!(waiter.block(Duration::ZERO).await, Err(LockError::Timeout { .. })));
    guard.release().await.unwrap();
    waiter.block(Duration::ZERO).await.unwrap().release().await.unwrap();
}

/// `block` acquires once the holder releases in the middle of the wait.
pub async fn block_acquires_when_the_holder_releases<B: LockBackend>(store: LockStore<B>) {
    let name = "conformance:block-release";
    let guard = store.lock(name, TTL).unwrap().get().await.unwrap().unwrap();
    let held_fence = guard.fence();
    let releaser = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        guard.release().await.unwrap();
    });
    let waiter = store.lock(name, TTL).unwrap();
    let guard = waiter.block(PATIENCE).await.expect("acquired after the holder released");
    releaser.await.unwrap();
    assert!(guard.fence() > held_fence);
    assert!(waiter.is_owned().await.unwrap());
    guard.release().await.unwrap();
}

/// A `block` future dropped while waiting acquires nothing.
pub async fn cancelled_block_acquires_nothing<B: LockBackend>(store: LockStore<B>) {
    let name = "conformance:block-cancel";
    let guard = store.lock(name, TTL).unwrap().get().await.unwrap().unwrap();
    let waiter = store.lock(name, TTL).unwrap();
    let cancelled = tokio::time::timeout(Duration::from_millis(150), waiter.block(PATIENCE)).await;
    assert!(cancelled.is_err(), "the lock was held throughout");
    // Let an attempt that was in flight when the future was dropped finish:
    // it found the lock held.
    tokio::time::sleep(Duration::from_millis(100)).await;
    guard.release().await.unwrap();
    assert_eq!(store.owner_of(name).await.unwrap(), None, "the cancelled waiter took nothing");
    assert!(!waiter.is_owned().await.unwrap());
}

/// `get_with` runs the closure once with the fence and releases; on a held
/// lock it does not run the closure.
pub async fn get_with_runs_once_and_releases<B: LockBackend>(store: LockStore<B>) {
    let name = "conformance:get-with";
    let lock = &store.lock(name, TTL).unwrap();
    let (runs, seen, store) = (&AtomicUsize::new(0), &Mutex::new(None::<Fence>), &store);
    let output = lock
        .get_with(|fence| async move {
            runs.fetch_add(1, Ordering::SeqCst);
            *seen.lock().unwrap() = Some(fence);
            assert_eq!(store.owner_of(name).await.unwrap().as_ref(), Some(lock.owner()));
            "done"
        })
        .await
        .unwrap();
    assert_eq!(output, Some("done"));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(store.owner_of(name).await.unwrap(), None, "released after the closure");
    let first = seen.lock().unwrap().expect("the closure saw a fence");

    let holder = store.lock(name, TTL).unwrap();
    let guard = holder.get().await.unwrap().unwrap();
    assert!(guard.fence() > first);
    let output = lock
        .get_with(|_| async move {
            runs.fetch_add(1, Ordering::SeqCst);
        })
        .await
        .unwrap();
    assert_eq!(output, None);
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the closure did not run on a held lock");
    assert!(holder.is_owned().await.unwrap());
    guard.release().await.unwrap();
}

/// The store's one-shot `get_with` runs the closure once with the fence, as
/// a fresh owner, and releases; on a held lock it does not run the closure.
pub async fn store_get_with_runs_once_and_releases<B: LockBackend>(store: LockStore<B>) {
    let name = "conformance:store-get-with";
    let (runs, store) = (&AtomicUsize::new(0), &store);
    let fence = store
        .get_with(name, TTL, |fence| async move {
            runs.fetch_add(1, Ordering::SeqCst);
            let holder = store.owner_of(name).await.unwrap().expect("held while the work runs");
            assert_eq!(holder.as_str().len(), 32, "a fresh random owner");
            fence
        })
        .await
        .unwrap()
        .expect("a free lock");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(store.owner_of(name).await.unwrap(), None, "released after the closure");

    let guard = store.lock(name, TTL).unwrap().get().await.unwrap().unwrap();
    assert!(guard.fence() > fence);
    let output = store
        .get_with(name, TTL, |_| async move {
            runs.fetch_add(1, Ordering::SeqCst);
        })
        .await
        .unwrap();
    assert_eq!(output, None);
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the closure did not run on a held lock");
    let later = guard.fence();
    guard.release().await.unwrap();
    let next = store.get_with(name, TTL, |fence| async move { fence }).await.unwrap();
    assert!(next.expect("free again") > later, "fences keep growing");
}

/// `block_with` waits, runs the closure once with the fence and releases.
pub async fn block_with_runs_once_and_releases<B: LockBackend>(store: LockStore<B>) {
    let name = "conformance:block-with";
    let guard = store.lock(name, TTL).unwrap().get().await.unwrap().unwrap();
    let held_fence = guard.fence();
    let releaser = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        guard.release().await.unwrap();
    });
    let lock = &store.lock(name, TTL).unwrap();
    let runs = &AtomicUsize::new(0);
    let fence = lock
        .block_with(PATIENCE, |fence| async move {
            runs.fetch_add(1, Ordering::SeqCst);
            assert!(lock.is_owned().await.unwrap());
            fence
        })
        .await
        .unwrap();
    releaser.await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(fence > held_fence);
    assert_eq!(store.owner_of(name).await.unwrap(), None, "released after the closure");

    // Timing out does not run the closure.
    let guard = lock.get().await.unwrap().unwrap();
    let other = store.lock(name, TTL).unwrap();
    let result = other
        .block_with(Duration::from_millis(50), |_| async move {
            runs.fetch_add(1, Ordering::SeqCst);
        })
        .await;
    assert!(matches!(result, Err(LockError::Timeout { .. })), "{result:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    guard.release().await.unwrap();
}
