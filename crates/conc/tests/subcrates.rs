//! One smoke call per module the facade re-exports.

use std::time::Duration;

#[test]
fn core_is_reexported() {
    use conc::core::time::{Clock, ManualClock};

    let clock = ManualClock::new();
    let start = clock.now();
    clock.advance(Duration::from_secs(1));
    assert_eq!(clock.now() - start, Duration::from_secs(1));

    let backoff = conc::core::backoff::Backoff::fixed(Duration::from_millis(5))
        .max_attempts(3)
        .build()
        .unwrap();
    assert_eq!(backoff.delays().count(), 2);

    let error: conc::BoxError = "boxed".into();
    assert_eq!(error.to_string(), "boxed");
    assert!(conc::core::metrics::ALL.len() > 1);
}

#[cfg(feature = "lock")]
#[tokio::test]
async fn lock_is_reexported() {
    let store = conc::lock::LockStore::memory();
    let lock = store.lock("smoke", Duration::from_secs(1)).unwrap();
    let guard = lock.get().await.unwrap().expect("a free lock");
    assert!(store.lock("smoke", Duration::from_secs(1)).unwrap().get().await.unwrap().is_none());
    guard.release().await.unwrap();
}

#[cfg(feature = "pool")]
#[tokio::test]
async fn pool_is_reexported() {
    let pool = conc::pool::AsyncPool::builder().workers(1).build().unwrap();
    let handle = pool.submit(async { 6 * 7 }).await.unwrap();
    assert_eq!(handle.await, Ok(42));
    let blocking = conc::pool::BlockingPool::builder().workers(1).build().unwrap();
    let handle = blocking.submit(|| 7).unwrap();
    assert_eq!(tokio::task::spawn_blocking(move || handle.join()).await.unwrap(), Ok(7));
}
