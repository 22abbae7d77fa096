//! The checks of funnels: exactly N holders, shared slots, `block`, concurrency.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use conc_lock::{FunnelPermit, LockBackend, LockError, LockStore};

use super::{PATIENCE, TTL, eager};

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
