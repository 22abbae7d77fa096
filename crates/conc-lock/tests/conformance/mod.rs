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
//!
//! Each check is a `pub async fn check<B: LockBackend>(store: LockStore<B>)`
//! on its own lock names. Time is real here (network backends expire holds on
//! their own clock), so expiry checks use short times to live (100–300 ms) and
//! then wait at least twice as long; no check asserts that anything finished
//! in less than some time.

#![allow(dead_code, reason = "each test binary uses the part of the suite it instantiates")]
#![allow(unreachable_pub, reason = "the checks are the suite's interface to the macro")]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use conc_core::backoff::{Backoff, Jitter};
use conc_lock::{
    Fence, FunnelPermit, LockBackend, LockError, LockStore, MAX_NAME_LEN, MAX_TTL, Owner,
};

/// What keeps a store's resources alive for the length of a test.
pub type KeepAlive = Box<dyn std::any::Any + Send>;

/// Declares one `#[tokio::test]` per check, each on a fresh store from `$factory`.
macro_rules! suite {
    ($factory:expr) => {
        $crate::conformance::suite!(@tests $factory;
            acquire_then_busy_then_release,
            fences_only_grow,
            release_is_owner_checked,
            restored_handle_acts_for_the_holder,
            extend_outlives_the_original_ttl,
            expired_hold_is_lost_and_taken_over,
            force_release_frees_a_held_lock,
            is_owned_follows_the_hold,
            block_times_out_naming_the_lock,
            block_acquires_when_the_holder_releases,
            cancelled_block_acquires_nothing,
            get_with_runs_once_and_releases,
            block_with_runs_once_and_releases,
            funnel_admits_exactly_its_limit,
            funnel_handles_share_slots,
            funnel_block_times_out_and_block_with_releases,
            funnel_limit_zero_is_refused,
            invalid_names_are_refused,
            invalid_ttls_are_refused,
            unusual_names_work,
            distinct_names_are_independent,
            dropped_guard_is_released,
            stale_guard_cannot_free_a_newer_hold,
            keep_alive_outlives_the_ttl,
            keep_alive_reports_a_lost_hold,
            concurrent_holders_exclude_each_other,
            concurrent_funnel_holders_stay_within_the_limit,
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

/// A time to live no check outlasts.
const TTL: Duration = Duration::from_secs(30);

/// The time to live of checks about expiry.
const SHORT_TTL: Duration = Duration::from_millis(150);

/// Long enough for a [`SHORT_TTL`] hold to have expired on any backend's clock.
const PAST_SHORT_TTL: Duration = Duration::from_millis(450);

/// How long to wait for something a backend does in the background (the
/// release of a dropped guard) before calling it a failure.
const PATIENCE: Duration = Duration::from_secs(10);

/// Polls until nobody holds `name`, panicking after [`PATIENCE`].
async fn wait_until_free<B: LockBackend>(store: &LockStore<B>, name: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while store.owner_of(name).await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "`{name}` was not released in {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A store whose `block` retries quickly, for checks with many waiters.
fn eager<B: LockBackend>(store: &LockStore<B>) -> LockStore<B> {
    let backoff = Backoff::exponential(Duration::from_millis(1))
        .max_delay(Duration::from_millis(10))
        .jitter(Jitter::Full)
        .build()
        .unwrap();
    store.clone().with_block_backoff(backoff)
}

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

/// A funnel of limit N admits exactly N permits on distinct slots, refuses the
/// next, and admits another once one is released.
pub async fn funnel_admits_exactly_its_limit<B: LockBackend>(store: LockStore<B>) {
    const LIMIT: u32 = 3;
    let funnel = store.funnel("conformance:funnel", LIMIT, TTL).unwrap();
    assert_eq!(funnel.name(), "conformance:funnel");
    assert_eq!(funnel.limit(), LIMIT);
    let mut permits = Vec::new();
    for _ in 0..LIMIT {
        permits.push(funnel.get().await.unwrap().expect("a slot is free"));
    }
    let slots: BTreeSet<u32> = permits.iter().map(FunnelPermit::slot).collect();
    assert_eq!(slots, (0..LIMIT).collect(), "each permit holds its own slot");
    assert!(funnel.get().await.unwrap().is_none(), "the (N+1)th is refused");

    let freed = permits.remove(1);
    let (freed_slot, freed_fence) = (freed.slot(), freed.fence());
    freed.release().await.unwrap();
    let again = funnel.get().await.unwrap().expect("a released slot admits another");
    assert_eq!(again.slot(), freed_slot, "the only free slot");
    assert!(again.fence() > freed_fence, "slots hand out growing fences");
    assert!(funnel.get().await.unwrap().is_none());
    permits.push(again);

    // The funnel's slots are not the lock of the same name.
    let same_name = store.lock("conformance:funnel", TTL).unwrap().get().await.unwrap();
    same_name.expect("a lock named like a funnel is independent").release().await.unwrap();

    permits[0].extend(TTL).await.unwrap();
    for permit in permits {
        permit.release().await.unwrap();
    }
    let mut permits = Vec::new();
    for _ in 0..LIMIT {
        permits.push(funnel.get().await.unwrap().expect("all free again"));
    }
    for permit in permits {
        permit.release().await.unwrap();
    }
}

/// Two funnel handles on one name (two processes) share its slots.
pub async fn funnel_handles_share_slots<B: LockBackend>(store: LockStore<B>) {
    let name = "conformance:funnel-shared";
    let here = store.funnel(name, 2, TTL).unwrap();
    let there = store.funnel(name, 2, TTL).unwrap();
    let a = here.get().await.unwrap().unwrap();
    let b = there.get().await.unwrap().unwrap();
    assert_ne!(a.slot(), b.slot());
    assert!(here.get().await.unwrap().is_none());
    assert!(there.get().await.unwrap().is_none());
    b.release().await.unwrap();
    let c = here.get().await.unwrap().expect("the slot freed through the other handle");
    a.release().await.unwrap();
    c.release().await.unwrap();
}

/// `Funnel::block` times out naming the funnel; `block_with` waits for a slot,
/// runs the closure and frees the slot.
pub async fn funnel_block_times_out_and_block_with_releases<B: LockBackend>(store: LockStore<B>) {
    let name = "conformance:funnel-block";
    let funnel = store.funnel(name, 1, TTL).unwrap();
    let permit = funnel.get().await.unwrap().unwrap();
    match funnel.block(Duration::from_millis(100)).await {
        Err(LockError::Timeout { name: timed_out, .. }) => assert_eq!(timed_out, name),
        other => panic!("expected Timeout, got {other:?}"),
    }
    let releaser = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        permit.release().await.unwrap();
    });
    let runs = &AtomicUsize::new(0);
    let out = funnel
        .block_with(PATIENCE, |_| async move {
            runs.fetch_add(1, Ordering::SeqCst);
            7
        })
        .await
        .unwrap();
    releaser.await.unwrap();
    assert_eq!((out, runs.load(Ordering::SeqCst)), (7, 1));
    let permit = funnel.get().await.unwrap().expect("block_with freed its slot");
    permit.release().await.unwrap();
}

/// A funnel of zero slots, or of more than the largest limit, is refused
/// with an error naming the limit.
pub async fn funnel_limit_zero_is_refused<B: LockBackend>(store: LockStore<B>) {
    for limit in [0, conc_lock::MAX_FUNNEL_LIMIT + 1, u32::MAX] {
        match store.funnel("conformance:funnel-bad-limit", limit, TTL) {
            Err(LockError::Config(error)) if error.field == "limit" => {
                assert!(error.to_string().contains(&limit.to_string()), "{error}");
                assert_eq!(error.value, limit.to_string());
            }
            other => panic!("expected a `limit` error for {limit}, got {other:?}"),
        }
    }
    assert!(store.funnel("conformance:funnel-max", conc_lock::MAX_FUNNEL_LIMIT, TTL).is_ok());
}

/// Empty, too long and control-character names are refused by every entry
/// point, with an error naming the value.
pub async fn invalid_names_are_refused<B: LockBackend>(store: LockStore<B>) {
    let too_long = "n".repeat(MAX_NAME_LEN + 1);
    let bad = [
        String::new(),
        too_long,
        "line\nbreak".to_owned(),
        "nul\0".to_owned(),
        "\u{1f}slot0".to_owned(),
    ];
    let owner = Owner::new("conformance-owner").unwrap();
    let check = |result: Result<(), LockError>, name: &str| match result {
        Err(LockError::Config(error)) if error.field == "name" => {
            assert!(error.to_string().contains(&format!("{name:?}")), "{error}");
            assert_eq!(error.value, format!("{name:?}"));
        }
        other => panic!("{name:?}: expected a `name` error, got {other:?}"),
    };
    for name in &bad {
        check(store.lock(name.clone(), TTL).map(drop), name);
        check(store.restore(name.clone(), owner.clone(), TTL).map(drop), name);
        check(store.funnel(name.clone(), 2, TTL).map(drop), name);
        check(store.force_release(name.clone()).await.map(drop), name);
        check(store.owner_of(name.clone()).await.map(drop), name);
    }
}

/// Times to live of zero, under a millisecond or over [`MAX_TTL`] are refused
/// by every entry point; [`MAX_TTL`] itself is accepted by the backend.
pub async fn invalid_ttls_are_refused<B: LockBackend>(store: LockStore<B>) {
    let name = "conformance:ttl";
    let bad = [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_micros(999),
        MAX_TTL + Duration::from_millis(1),
        Duration::MAX,
    ];
    let check = |result: Result<(), LockError>, ttl: Duration| match result {
        Err(LockError::Config(error)) if error.field == "ttl" => {
            assert_eq!(error.value, format!("{ttl:?}"));
            assert!(error.reason.contains(&format!("{MAX_TTL:?}")), "{error}");
        }
        other => panic!("{ttl:?}: expected a `ttl` error, got {other:?}"),
    };
    let lock = store.lock(name, TTL).unwrap();
    let guard = lock.get().await.unwrap().unwrap();
    for ttl in bad {
        check(store.lock(name, ttl).map(drop), ttl);
        check(store.restore(name, Owner::random(), ttl).map(drop), ttl);
        check(store.funnel(name, 1, ttl).map(drop), ttl);
        check(lock.extend(ttl).await.map(drop), ttl);
        check(guard.extend(ttl).await, ttl);
    }
    assert!(lock.is_owned().await.unwrap(), "refused extensions left the hold alone");
    guard.extend(MAX_TTL).await.unwrap();
    guard.release().await.unwrap();

    let longest = store.lock("conformance:ttl-max", MAX_TTL).unwrap();
    let guard = longest.get().await.unwrap().expect("MAX_TTL is a valid time to live");
    assert!(longest.is_owned().await.unwrap());
    guard.release().await.unwrap();
    let shortest = store.lock("conformance:ttl-min", Duration::from_millis(1)).unwrap();
    let guard = shortest.get().await.unwrap().expect("1 ms is a valid time to live");
    // It may have expired already: either outcome is right.
    match guard.release().await {
        Ok(()) | Err(LockError::Lost { .. }) => {}
        Err(error) => panic!("releasing a 1 ms hold: {error}"),
    }
}

/// Names at the length limit, with multi-byte characters, spaces, quotes and
/// the characters key and query languages treat specially all work, for
/// locks and funnels.
pub async fn unusual_names_work<B: LockBackend>(store: LockStore<B>) {
    let names = [
        "n".repeat(MAX_NAME_LEN),
        "é".repeat(MAX_NAME_LEN / 2),
        "ключ 🔒 名前".to_owned(),
        "it's \"quoted\" `ticked` \\back\\slashed".to_owned(),
        "{hash}:tag*?[glob] %like_ 'sql'; -- comment".to_owned(),
        "x".to_owned(),
    ];
    for name in &names {
        let lock = store.lock(name.clone(), TTL).unwrap();
        assert_eq!(lock.name(), name);
        let guard = lock.get().await.unwrap().unwrap_or_else(|| panic!("{name:?} is free"));
        assert_eq!(store.owner_of(name.clone()).await.unwrap().as_ref(), Some(lock.owner()));
        assert!(store.lock(name.clone(), TTL).unwrap().get().await.unwrap().is_none(), "{name:?}");
        guard.extend(TTL).await.unwrap();
        guard.release().await.unwrap();
        assert_eq!(store.owner_of(name.clone()).await.unwrap(), None, "{name:?}");

        let funnel = store.funnel(name.clone(), 2, TTL).unwrap();
        let a = funnel.get().await.unwrap().unwrap_or_else(|| panic!("funnel {name:?}"));
        let b = funnel.get().await.unwrap().unwrap_or_else(|| panic!("funnel {name:?}"));
        assert!(funnel.get().await.unwrap().is_none(), "funnel {name:?}");
        a.release().await.unwrap();
        b.release().await.unwrap();
    }
}

/// Holding one name never blocks another, even names a backend might derive
/// its own keys from (a fence counter key, a prefix, a pattern).
pub async fn distinct_names_are_independent<B: LockBackend>(store: LockStore<B>) {
    let names = [
        "conformance:ind",
        "conformance:ind:fence",
        "conformance:ind:fence:fence",
        "conformance:in",
        "conformance:ind ",
        "Conformance:ind",
        "{conformance:ind}",
        "conformance:ind*",
        "conformance:in_",
        "conformance:in%",
        "conformance:ind:slot0",
    ];
    let mut guards = Vec::new();
    for name in names {
        let lock = store.lock(name, TTL).unwrap();
        let guard = lock.get().await.unwrap().unwrap_or_else(|| panic!("{name:?} is independent"));
        guards.push((lock, guard));
    }
    for (lock, _) in &guards {
        assert!(lock.is_owned().await.unwrap(), "{:?} is still held", lock.name());
    }
    let funnel = store.funnel("conformance:ind", 1, TTL).unwrap();
    let permit = funnel.get().await.unwrap().expect("a funnel's slots are not its name's lock");
    permit.release().await.unwrap();
    for (lock, guard) in guards {
        let fence = guard.fence();
        guard.release().await.unwrap();
        let again = lock.get().await.unwrap().unwrap();
        assert!(again.fence() > fence, "{:?}: fences grow per name", lock.name());
        again.release().await.unwrap();
    }
}

/// A guard dropped without release (and a funnel permit, and a kept-alive
/// guard) is released in the background.
pub async fn dropped_guard_is_released<B: LockBackend>(store: LockStore<B>) {
    let name = "conformance:dropped";
    let guard = store.lock(name, TTL).unwrap().get().await.unwrap().unwrap();
    drop(guard);
    wait_until_free(&store, name).await;
    let guard = store.lock(name, TTL).unwrap().get().await.unwrap().expect("free after the drop");
    guard.release().await.unwrap();

    let kept = store.lock("conformance:dropped-kept", TTL).unwrap();
    drop(kept.get().await.unwrap().unwrap().keep_alive());
    wait_until_free(&store, "conformance:dropped-kept").await;

    let funnel = store.funnel("conformance:dropped-funnel", 1, TTL).unwrap();
    drop(funnel.get().await.unwrap().unwrap());
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let permit = loop {
        if let Some(permit) = funnel.get().await.unwrap() {
            break permit;
        }
        assert!(tokio::time::Instant::now() < deadline, "dropped permit not released");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    permit.release().await.unwrap();
}

/// A kept-alive hold outlives its time to live several times over and still
/// releases normally.
pub async fn keep_alive_outlives_the_ttl<B: LockBackend>(store: LockStore<B>) {
    let name = "conformance:keep-alive";
    let lock = store.lock(name, Duration::from_millis(200)).unwrap();
    let guard = lock.get().await.unwrap().unwrap();
    assert!(!guard.is_lost(), "no keep-alive yet");
    let guard = guard.keep_alive();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(lock.is_owned().await.unwrap(), "kept alive past 3× the ttl");
    assert!(!guard.is_lost());
    assert!(store.lock(name, TTL).unwrap().get().await.unwrap().is_none());
    guard.release().await.unwrap();
    assert_eq!(store.owner_of(name).await.unwrap(), None);

    let funnel =
        store.funnel("conformance:keep-alive-funnel", 1, Duration::from_millis(200)).unwrap();
    let permit = funnel.get().await.unwrap().unwrap().keep_alive();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(funnel.get().await.unwrap().is_none(), "kept-alive slot still held");
    assert!(!permit.is_lost());
    permit.release().await.unwrap();
}

/// A kept-alive hold that is taken away (force-released) is reported lost.
pub async fn keep_alive_reports_a_lost_hold<B: LockBackend>(store: LockStore<B>) {
    let name = "conformance:keep-alive-lost";
    let guard = store.lock(name, Duration::from_millis(150)).unwrap().get().await.unwrap().unwrap();
    let guard = guard.keep_alive();
    assert!(store.force_release(name).await.unwrap());
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !guard.is_lost() {
        assert!(tokio::time::Instant::now() < deadline, "the keep-alive never noticed the loss");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(matches!(guard.release().await, Err(LockError::Lost { .. })));
}

/// K tasks × R rounds block for one lock: never two holders at once, and the
/// fences, recorded in acquisition order, strictly increase.
pub async fn concurrent_holders_exclude_each_other<B: LockBackend>(store: LockStore<B>) {
    const TASKS: usize = 6;
    const ROUNDS: usize = 20;
    let name = "conformance:concurrent";
    let store = eager(&store);
    let inside = Arc::new(AtomicUsize::new(0));
    let fences = Arc::new(Mutex::new(Vec::with_capacity(TASKS * ROUNDS)));
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (store, inside, fences) = (store.clone(), Arc::clone(&inside), Arc::clone(&fences));
            tokio::spawn(async move {
                let kept = store.lock(name, TTL).unwrap();
                for round in 0..ROUNDS {
                    // Half the tasks keep one handle, half make one per use.
                    let lock =
                        if task % 2 == 0 { kept.clone() } else { store.lock(name, TTL).unwrap() };
                    let guard = lock.block(Duration::from_secs(60)).await.unwrap();
                    let before = inside.fetch_add(1, Ordering::SeqCst);
                    assert_eq!(before, 0, "task {task} round {round}: two holders at once");
                    fences.lock().unwrap().push(guard.fence());
                    if round % 2 == 0 {
                        tokio::task::yield_now().await;
                    } else {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    inside.fetch_sub(1, Ordering::SeqCst);
                    guard.release().await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    {
        let fences = fences.lock().unwrap();
        assert_eq!(fences.len(), TASKS * ROUNDS);
        assert!(
            fences.windows(2).all(|pair| pair[0] < pair[1]),
            "fences in acquisition order are not strictly increasing: {fences:?}"
        );
    }
    assert_eq!(store.owner_of(name).await.unwrap(), None);
}

/// K tasks × R rounds block for a funnel slot: never more holders than the
/// limit, never two on one slot.
pub async fn concurrent_funnel_holders_stay_within_the_limit<B: LockBackend>(store: LockStore<B>) {
    const LIMIT: u32 = 2;
    const TASKS: usize = 5;
    const ROUNDS: usize = 10;
    let store = eager(&store);
    let funnel = Arc::new(store.funnel("conformance:funnel-concurrent", LIMIT, TTL).unwrap());
    let inside = Arc::new(AtomicUsize::new(0));
    let per_slot: Arc<[AtomicUsize]> = (0..LIMIT).map(|_| AtomicUsize::new(0)).collect();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (funnel, inside, per_slot) =
                (Arc::clone(&funnel), Arc::clone(&inside), Arc::clone(&per_slot));
            tokio::spawn(async move {
                for round in 0..ROUNDS {
                    let permit = funnel.block(Duration::from_secs(60)).await.unwrap();
                    let slot = permit.slot() as usize;
                    let before = inside.fetch_add(1, Ordering::SeqCst);
                    assert!(before < LIMIT as usize, "task {task} round {round}: over the limit");
                    let on_slot = per_slot[slot].fetch_add(1, Ordering::SeqCst);
                    assert_eq!(on_slot, 0, "task {task} round {round}: slot {slot} held twice");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    per_slot[slot].fetch_sub(1, Ordering::SeqCst);
                    inside.fetch_sub(1, Ordering::SeqCst);
                    permit.release().await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

/// A handle's old guard, whose hold expired, cannot free the hold the same
/// handle (the same owner) took afterwards: neither by `release` nor by
/// being dropped.
pub async fn stale_guard_cannot_free_a_newer_hold<B: LockBackend>(store: LockStore<B>) {
    let name = "conformance:stale-guard";
    let short = store.lock(name, SHORT_TTL).unwrap();
    // The same owner with a time to live no check outlasts: the newer holds
    // must not expire while the checks run, however slow the machine.
    let long = store.restore(name, short.owner().clone(), TTL).unwrap();
    let stale = short.get().await.unwrap().expect("free");
    let dropped_stale = {
        tokio::time::sleep(PAST_SHORT_TTL).await;
        let newer = long.get().await.unwrap().expect("the first hold expired");
        assert!(newer.fence() > stale.fence());
        let stale_fence = stale.fence();
        assert!(
            matches!(stale.release().await, Err(LockError::Lost { fence, .. }) if fence == stale_fence),
            "the stale guard's release reports the loss"
        );
        assert!(long.is_owned().await.unwrap(), "and leaves the newer hold alone");
        newer
    };
    // Now the other way round: the newer hold expires, a third is taken, and
    // the second guard is dropped without release.
    dropped_stale.extend(SHORT_TTL).await.unwrap();
    tokio::time::sleep(PAST_SHORT_TTL).await;
    let third = long.get().await.unwrap().expect("the second hold expired");
    drop(dropped_stale);
    // Give a background release time to run, then check it freed nothing.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(long.is_owned().await.unwrap(), "a dropped stale guard freed the newer hold");
    let other = store.lock("conformance:stale-guard", TTL).unwrap();
    assert!(other.get().await.unwrap().is_none());
    third.release().await.unwrap();
}
