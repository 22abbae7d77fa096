//! The checks of holds over time: dropped and stale guards, keep-alive, many holders at once.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use conc_lock::{LockBackend, LockError, LockStore};

use super::{PAST_SHORT_TTL, PATIENCE, SHORT_TTL, TTL, eager, wait_until_free};

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
