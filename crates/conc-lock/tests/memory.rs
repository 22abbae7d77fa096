//! The in-memory backend: the conformance suite, and what only memory can show
//! deterministically (expiry on a manual clock, bounded memory).
//!
//! There are no loom models for this backend: it has no lock-free code. Each
//! name's state (its hold and its fence counter) sits behind its slot's
//! `std::sync::Mutex`, and each shard's name map (with the highest fence of
//! the slots it removed) behind the shard's mutex, always taken before a
//! slot's and never after. The concurrency checks below and in the
//! conformance suite exercise that locking.

mod conformance;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use conc_core::time::{Clock, ManualClock};
use conc_lock::{Acquisition, LockBackend, LockError, LockStore, MemoryBackend, Owner};

conformance::suite!(|| async {
    Some((LockStore::memory(), Box::new(()) as conformance::KeepAlive))
});

/// The same suite on a manual clock that never moves: holds never expire by
/// themselves, everything else behaves the same. (The expiry checks use real
/// time, so they run only in the suite above.)
mod on_a_manual_clock {
    use conc_core::time::ManualClock;
    use conc_lock::{LockStore, MemoryBackend};

    use super::conformance;

    #[tokio::test]
    async fn basic_and_fences() {
        let store = LockStore::new(MemoryBackend::builder().clock(ManualClock::new()).build());
        conformance::acquire_then_busy_then_release(store.clone()).await;
        conformance::fences_only_grow(store.clone()).await;
        conformance::release_is_owner_checked(store.clone()).await;
        conformance::force_release_frees_a_held_lock(store.clone()).await;
        conformance::funnel_admits_exactly_its_limit(store.clone()).await;
        conformance::distinct_names_are_independent(store).await;
    }
}

type ManualStore = LockStore<MemoryBackend<ManualClock>>;

fn manual() -> (ManualStore, ManualClock) {
    let clock = ManualClock::new();
    (LockStore::new(MemoryBackend::builder().clock(clock.clone()).build()), clock)
}

/// A store on a manual clock that keeps no idle slot (so the sweep bound
/// below holds whatever the clock says).
fn sweeping() -> (ManualStore, ManualClock) {
    let clock = ManualClock::new();
    let backend = MemoryBackend::builder().clock(clock.clone()).keep_idle(Duration::ZERO).build();
    (LockStore::new(backend), clock)
}

const NANO: Duration = Duration::from_nanos(1);

/// One nanosecond less than `d`.
fn just_before(d: Duration) -> Duration {
    d.checked_sub(NANO).expect("longer than 1 ns")
}

/// A hold stands while `expires_at > now`: at `ttl - 1ns` it is held (and
/// `Busy` says 1 ns is left), at exactly `ttl` it is free.
#[tokio::test]
async fn a_hold_expires_exactly_at_its_ttl() {
    let (store, clock) = manual();
    let ttl = Duration::from_millis(100);
    let name = "boundary";
    let holder = store.lock(name, ttl).unwrap();
    let other = store.lock(name, ttl).unwrap();
    let guard = holder.get().await.unwrap().unwrap();

    let backend = store.backend();
    let slot = backend.prepare(name);
    let probe = Owner::new("probe").unwrap();
    assert_eq!(
        backend.acquire(&slot, &probe, ttl).await.unwrap(),
        Acquisition::Busy { retry_after: Some(ttl) },
        "the whole ttl is left right after acquiring"
    );

    clock.advance(just_before(ttl));
    assert!(other.get().await.unwrap().is_none(), "held 1 ns before the ttl");
    assert!(holder.is_owned().await.unwrap());
    assert_eq!(
        backend.acquire(&slot, &probe, ttl).await.unwrap(),
        Acquisition::Busy { retry_after: Some(NANO) }
    );

    clock.advance(NANO);
    assert_eq!(store.owner_of(name).await.unwrap(), None, "free at exactly the ttl");
    assert!(!holder.is_owned().await.unwrap());
    assert!(!holder.extend(ttl).await.unwrap(), "too late to extend");
    assert!(matches!(guard.extend(ttl).await, Err(LockError::Lost { .. })));
    let taken = other.get().await.unwrap().expect("free at exactly the ttl");
    assert!(taken.fence() > guard.fence());
    assert!(matches!(guard.release().await, Err(LockError::Lost { .. })));
    assert!(other.is_owned().await.unwrap(), "the late release left the new hold alone");

    // An extension resets the ttl from the moment it is made.
    clock.advance(Duration::from_millis(60));
    taken.extend(ttl).await.unwrap();
    clock.advance(just_before(ttl));
    assert!(other.is_owned().await.unwrap(), "held until 100 ms after the extension");
    clock.advance(NANO);
    assert!(!other.is_owned().await.unwrap());
    assert!(matches!(taken.release().await, Err(LockError::Lost { .. })));
}

/// A release at exactly the ttl is too late; force-releasing an expired hold
/// reports that nothing was held.
#[tokio::test]
async fn release_and_force_release_at_the_boundary() {
    let (store, clock) = manual();
    let ttl = Duration::from_millis(10);
    let lock = store.lock("edge", ttl).unwrap();

    let guard = lock.get().await.unwrap().unwrap();
    clock.advance(just_before(ttl));
    guard.release().await.expect("released 1 ns before the ttl");

    let guard = lock.get().await.unwrap().unwrap();
    clock.advance(ttl);
    assert!(matches!(guard.release().await, Err(LockError::Lost { .. })));

    let guard = lock.get().await.unwrap().unwrap();
    clock.advance(ttl);
    assert!(!store.force_release("edge").await.unwrap(), "an expired hold is not counted");
    drop(guard);
    let guard = lock.get().await.unwrap().expect("free");
    assert!(store.force_release("edge").await.unwrap());
    assert!(matches!(guard.release().await, Err(LockError::Lost { .. })));
}

/// A clock stepping backwards never panics and never frees a hold before the
/// clock reaches the hold's expiry again.
#[tokio::test]
async fn a_clock_stepping_back_never_frees_a_hold_early() {
    let (store, clock) = manual();
    let ttl = Duration::from_secs(1);
    clock.advance(Duration::from_secs(10));
    let holder = store.lock("rewind", ttl).unwrap();
    let other = store.lock("rewind", ttl).unwrap();
    let guard = holder.get().await.unwrap().unwrap();
    let funnel = store.funnel("rewind-funnel", 1, ttl).unwrap();
    let permit = funnel.get().await.unwrap().unwrap();

    clock.rewind(Duration::from_secs(5)).unwrap();
    assert!(holder.is_owned().await.unwrap(), "still held after the clock stepped back");
    assert!(other.get().await.unwrap().is_none());
    assert!(funnel.get().await.unwrap().is_none());
    assert!(matches!(other.block(Duration::ZERO).await, Err(LockError::Timeout { .. })));
    // Sweeping on the stepped-back clock keeps the hold.
    for i in 0..2_000 {
        store.lock(format!("rewind-churn:{i}"), ttl).unwrap();
    }
    assert_eq!(store.owner_of("rewind").await.unwrap().as_ref(), Some(holder.owner()));

    // Back to the origin, then forward to 1 ns before the expiry.
    clock.set_elapsed(Duration::ZERO).unwrap();
    assert!(holder.is_owned().await.unwrap());
    clock.set_elapsed(just_before(Duration::from_secs(11))).unwrap();
    assert!(holder.is_owned().await.unwrap());
    assert!(other.get().await.unwrap().is_none());
    assert!(funnel.get().await.unwrap().is_none());
    clock.advance(NANO);
    assert!(!holder.is_owned().await.unwrap(), "expires when the clock reaches it again");
    let taken = other.get().await.unwrap().expect("free at the expiry");
    assert!(taken.fence() > guard.fence());
    assert!(funnel.get().await.unwrap().is_some());
    drop((guard, permit));

    // Stepping back again (now 8 s) keeps the new hold (until 12 s); holds
    // made on a stepped-back clock behave the same.
    clock.rewind(Duration::from_secs(3)).unwrap();
    assert!(other.is_owned().await.unwrap());
    taken.release().await.unwrap();
    let guard = holder.get().await.unwrap().expect("released");
    clock.advance(just_before(ttl));
    assert!(holder.is_owned().await.unwrap());
    guard.release().await.unwrap();
}

/// The shard count, from the backend's `Debug` output.
fn shards<C: Clock>(backend: &MemoryBackend<C>) -> usize {
    let debug = format!("{backend:?}");
    let start = debug.find("shards: ").expect("Debug shows the shard count") + "shards: ".len();
    debug[start..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

/// The most slots a shard keeps when none is held or referred to.
const MIN_SWEEP_AT: usize = 64;

/// Memory stays proportional to the names in use, not to every name ever
/// used; sweeping never drops a held slot or one a handle refers to, and
/// fences keep growing for a name whose slot was swept.
#[tokio::test]
async fn memory_stays_bounded() {
    const NAMES: usize = 10_000;
    let (store, clock) = sweeping();
    let backend = store.backend();
    let bound = MIN_SWEEP_AT * shards(backend);
    let ttl = Duration::from_secs(60);

    // Names that must survive: a held one without any handle, an unheld
    // handle, and a held guard.
    let orphan_owner = Owner::new("orphan").unwrap();
    let orphan = backend.prepare("keep:orphan-hold");
    assert!(matches!(
        backend.acquire(&orphan, &orphan_owner, ttl).await.unwrap(),
        Acquisition::Acquired(_)
    ));
    drop(orphan);
    let idle_handle = store.lock("keep:idle-handle", ttl).unwrap();
    let guard = store.lock("keep:held", ttl).unwrap().get().await.unwrap().unwrap();
    let swept_fence = {
        let guard = store.lock("keep:swept", ttl).unwrap().get().await.unwrap().unwrap();
        let fence = guard.fence();
        guard.release().await.unwrap();
        fence
    };

    // Keyed use: a handle per name per use.
    for i in 0..NAMES {
        let lock = store.lock(format!("churn:{i}"), ttl).unwrap();
        lock.get().await.unwrap().unwrap().release().await.unwrap();
    }
    let after_first = backend.len();
    assert!(after_first <= bound, "{after_first} slots after {NAMES} names (bound {bound})");

    // Holds nobody releases (their holders crashed) stay while they last…
    let crashed = Owner::new("crashed").unwrap();
    for i in 0..NAMES {
        let slot = backend.prepare(&format!("expiring:{i}"));
        let attempt = backend.acquire(&slot, &crashed, Duration::from_millis(5)).await.unwrap();
        assert!(matches!(attempt, Acquisition::Acquired(_)));
    }
    assert!(backend.len() >= NAMES, "live holds are kept");
    // …and are swept once expired, as new names (lookups make slots too) fill
    // the maps. A shard sweeps when it has doubled since its last sweep, so
    // three times the expired names are enough to reach every shard's trigger.
    clock.advance(Duration::from_millis(5));
    for i in 0..3 * NAMES {
        assert_eq!(store.owner_of(format!("lookup:{i}")).await.unwrap(), None);
    }
    let after_second = backend.len();
    assert!(after_second <= bound, "{after_second} slots after the holds expired (bound {bound})");

    assert_eq!(store.owner_of("keep:orphan-hold").await.unwrap(), Some(orphan_owner));
    assert!(store.lock("keep:held", ttl).unwrap().get().await.unwrap().is_none());
    // The idle handle still shares its name's slot with new handles: a hold
    // through it excludes them.
    let idle_guard = idle_handle.get().await.unwrap().unwrap();
    assert!(store.lock("keep:idle-handle", ttl).unwrap().get().await.unwrap().is_none());
    idle_guard.release().await.unwrap();
    guard.release().await.unwrap();
    let again = store.lock("keep:swept", ttl).unwrap().get().await.unwrap().unwrap();
    assert!(again.fence() > swept_fence, "fences grow across a sweep");
    again.release().await.unwrap();
    assert!(!backend.is_empty());
}

/// Like [`memory_stays_bounded`] without the forgotten guards: only the
/// sweep bound remains.
#[tokio::test]
async fn memory_after_keyed_use_is_within_the_sweep_bound() {
    let (store, clock) = sweeping();
    let backend = store.backend();
    let bound = MIN_SWEEP_AT * shards(backend);
    let mut created = 0;
    for round in 0..3 {
        for i in 0..10_000 {
            let lock = store.lock(format!("round{round}:{i}"), Duration::from_millis(1)).unwrap();
            if i % 2 == 0 {
                lock.get().await.unwrap().unwrap().release().await.unwrap();
            } else {
                // Dropped guards release too.
                drop(lock.get().await.unwrap().unwrap());
            }
            created += 1;
        }
        clock.advance(Duration::from_secs(1));
        let len = backend.len();
        assert!(len <= bound, "{len} slots after {created} names (bound {bound})");
    }
}

/// Keyed code cycling through a working set of names finds their slots
/// again while they were used within `keep_idle` (fences go on from the
/// same slot); once idle for longer they are swept like any other.
#[tokio::test]
async fn recently_used_names_keep_their_slots() {
    const NAMES: usize = 5_000;
    let (store, clock) = manual();
    let backend = store.backend();
    let bound = MIN_SWEEP_AT * shards(backend);
    let ttl = Duration::from_secs(60);
    for round in 1..=3 {
        for i in 0..NAMES {
            let lock = store.lock(format!("working:{i}"), ttl).unwrap();
            let guard = lock.get().await.unwrap().unwrap();
            assert_eq!(guard.fence().get(), round, "the same slot, round {round}");
            guard.release().await.unwrap();
        }
        assert!(backend.len() >= NAMES, "kept: {}", backend.len());
        clock.advance(Duration::from_millis(300));
    }
    // Idle for a second now: new names sweep them.
    clock.advance(Duration::from_secs(1));
    for i in 0..3 * NAMES {
        assert_eq!(store.owner_of(format!("fresh:{i}")).await.unwrap(), None);
    }
    clock.advance(Duration::from_secs(2));
    for i in 0..3 * NAMES {
        assert_eq!(store.owner_of(format!("later:{i}")).await.unwrap(), None);
    }
    let len = backend.len();
    assert!(len <= bound + 3 * NAMES, "{len} slots (bound {bound} + the last names)");
    let guard = store.lock("working:0", ttl).unwrap().get().await.unwrap().unwrap();
    assert!(guard.fence().get() > 3, "fences grow across the sweep");
    guard.release().await.unwrap();
}

/// Many tasks on many names, with fresh names forcing sweeps all the while:
/// never two holders of one name.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sweeping_under_contention_keeps_exclusion() {
    const NAMES: usize = 16;
    const TASKS: usize = 8;
    const ROUNDS: usize = 300;
    let (store, _clock) = sweeping();
    let inside: Arc<[AtomicUsize]> = (0..NAMES).map(|_| AtomicUsize::new(0)).collect();
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (store, inside) = (store.clone(), Arc::clone(&inside));
        tasks.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                let index = (task * 7 + round) % NAMES;
                // A fresh handle per use, so slots are only referred to while in use.
                let lock =
                    store.lock(format!("contended:{index}"), Duration::from_secs(60)).unwrap();
                let guard = loop {
                    if let Some(guard) = lock.get().await.unwrap() {
                        break guard;
                    }
                    tokio::task::yield_now().await;
                };
                assert_eq!(inside[index].fetch_add(1, Ordering::SeqCst), 0, "two holders");
                drop(lock);
                // Churn: new names fill the shard maps and trigger sweeps.
                for churn in 0..8 {
                    let name = format!("churn:{task}:{round}:{churn}");
                    assert_eq!(store.owner_of(name).await.unwrap(), None);
                }
                tokio::task::yield_now().await;
                inside[index].fetch_sub(1, Ordering::SeqCst);
                guard.release().await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

/// The default store is this backend on the coarse clock.
#[tokio::test]
async fn the_default_store_is_in_memory() {
    let store = LockStore::memory();
    assert!(store.backend().is_empty());
    let guard =
        store.lock("default", Duration::from_secs(1)).unwrap().get().await.unwrap().unwrap();
    assert_eq!(store.backend().len(), 1);
    guard.release().await.unwrap();
    assert!(format!("{:?}", MemoryBackend::default()).contains("CoarseClock"));
}

/// On the in-memory store a guard's release happens when `release` is
/// called: the future only hands back the outcome (so a future dropped
/// unpolled loses nothing), whether the hold was released or found lost.
#[tokio::test]
async fn an_in_memory_release_happens_at_the_call() {
    let (store, clock) = manual();
    let ttl = Duration::from_secs(1);
    let guard = store.lock("eager", ttl).unwrap().get().await.unwrap().unwrap();
    let outcome = guard.release();
    assert_eq!(store.owner_of("eager").await.unwrap(), None, "released before the await");
    outcome.await.unwrap();

    let guard = store.lock("eager", ttl).unwrap().get().await.unwrap().unwrap();
    drop(guard.release());
    assert_eq!(store.owner_of("eager").await.unwrap(), None, "a dropped outcome released too");

    let guard = store.lock("eager", ttl).unwrap().get().await.unwrap().unwrap();
    clock.advance(ttl);
    let taker = store.lock("eager", ttl).unwrap().get().await.unwrap().expect("expired");
    let lost = guard.release();
    assert_eq!(store.owner_of("eager").await.unwrap().as_ref(), Some(taker.owner()));
    assert!(matches!(lost.await, Err(LockError::Lost { fence, .. }) if fence.get() == 3));
    taker.release().await.unwrap();
    let metrics = store.metrics();
    assert_eq!((metrics.acquired, metrics.released, metrics.expired), (4, 3, 1));
}

/// One slot per name, whether the slot keeps the name inline (short names)
/// or boxed: names that share a prefix, differ only past the inline length
/// or only in length are told apart, and the same name finds its slot.
#[tokio::test]
async fn names_short_and_long_find_their_own_slots() {
    let (store, _clock) = manual();
    let backend = store.backend();
    let names: Vec<String> = (1..=40)
        .flat_map(|len| ["k".repeat(len), format!("{}!", "k".repeat(len)), "é".repeat(len)])
        .collect();
    let slots: Vec<_> = names.iter().map(|name| backend.prepare(name)).collect();
    assert_eq!(backend.len(), names.len(), "a slot per distinct name");
    for (name, slot) in names.iter().zip(&slots) {
        assert!(Arc::ptr_eq(slot, &backend.prepare(name)), "{name} finds its slot");
        let lock = store.lock(name, Duration::from_secs(1)).unwrap();
        assert_eq!(lock.name(), name);
    }
    let guards: Vec<_> = {
        let mut guards = Vec::new();
        for name in &names {
            let lock = store.lock(name, Duration::from_secs(1)).unwrap();
            guards.push(lock.get().await.unwrap().expect("every name is its own lock"));
        }
        guards
    };
    for guard in guards {
        guard.release().await.unwrap();
    }
}
