//! Bad input never panics, aborts or hangs: every public constructor and
//! setter of the crate fed edge values (0, 1, MAX, MAX − 1, MAX / 2,
//! `u32::MAX`, `Duration::MAX`, `u64::MAX` seconds or nanoseconds, names and
//! owners with NUL bytes or braces, 4 KiB names), each call in
//! `catch_unwind`; what they build is then used with edge values too. Each
//! property runs under a watchdog, so a hang fails the test.
//!
//! Covered (26 constructors and setters): `LockStore::{memory, new,
//! with_block_backoff, lock, restore, funnel, force_release, owner_of}`,
//! `Owner::{new, random}`, `Fence::new`, `MemoryBackend::{new, builder}` with
//! `clock` and `build`, `Lock::{extend, block}`, `LockGuard::extend`,
//! `Funnel::block`, and (features) `SqliteBackend::{open, builder}` with
//! `busy_timeout` and `open`, `RedisBackend::builder` with `key_prefix`,
//! `response_timeout`, `connection_timeout`, `reconnect_retries` and `connect`.

use std::time::Duration;

use conc_core::time::ManualClock;
use conc_lock::{Fence, LockError, LockStore, MemoryBackend, Owner};
use proptest::prelude::*;

use conc_test_support::edge::{durations, texts, u32s, within};

/// `f()`, failing the property (with `what`) if it panicked.
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    conc_test_support::edge::no_panic(f)
        .map_err(|message| TestCaseError::fail(format!("{what} panicked: {message}")))
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap()
}

#[test]
fn memory_store_locks_and_funnels() {
    within(Duration::from_secs(60), || {
        let runtime = runtime();
        proptest!(config(128), |(name in texts(), owner in texts(), ttl in durations(),
                                 wait in durations(), limit in u32s(), fence in any::<u64>())| {
            let _ = no_panic("Fence::new", || Fence::new(fence))?;
            let _ = no_panic("Owner::random", Owner::random)?;
            let owner = no_panic("Owner::new", || Owner::new(owner.clone()))?;
            let clock = ManualClock::new();
            let store = no_panic("MemoryBackend::builder", || {
                LockStore::new(MemoryBackend::builder().clock(clock.clone()).build())
            })?;
            let _ = no_panic("LockStore::memory", LockStore::memory)?;
            let _ = no_panic("MemoryBackend::new", || LockStore::new(MemoryBackend::new()))?;
            let store = no_panic("LockStore::with_block_backoff", || {
                store.with_block_backoff(conc_core::backoff::Backoff::fixed(Duration::from_secs(60)).build().unwrap())
            })?;
            runtime.block_on(async {
                let lock = no_panic("LockStore::lock", || store.lock(name.as_str(), ttl))?;
                if let Ok(owner) = &owner {
                    let _ = no_panic("LockStore::restore", || store.restore(name.as_str(), owner.clone(), ttl))?;
                }
                let _ = store.force_release(name.as_str()).await;
                let _ = store.owner_of(name.as_str()).await;
                if let Ok(lock) = lock {
                    let guard = lock.get().await.expect("in memory").expect("free");
                    let _ = guard.extend(ttl).await;
                    let other = store.lock(name.as_str(), Duration::from_millis(1)).unwrap();
                    // Held: a block gives up at its deadline (paused time). The
                    // manual clock stands still, so the hold never expires and
                    // the block retries every millisecond: keep the wait short.
                    let short = wait.min(Duration::from_millis(200));
                    let blocked = other.block(short).await;
                    let settled = matches!(blocked, Err(LockError::Timeout { .. }) | Ok(_));
                    prop_assert!(settled, "{blocked:?}");
                    clock.advance(wait);
                    let _ = lock.extend(wait).await;
                    let _ = guard.release().await;
                }
                let funnel = no_panic("LockStore::funnel", || store.funnel(name.as_str(), limit, ttl))?;
                if let Ok(funnel) = funnel {
                    let permit = funnel.block(wait.min(Duration::from_secs(1))).await;
                    if let Ok(permit) = permit {
                        let _ = permit.extend(ttl).await;
                        let _ = permit.release().await;
                    }
                }
                Ok(())
            })?;
        });
    });
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_builder() {
    use conc_lock::SqliteBackend;

    within(Duration::from_secs(60), || {
        let dir = tempfile::tempdir().unwrap();
        proptest!(config(16), |(timeout in durations(), file in 0..1_000u32)| {
            let path = dir.path().join(format!("locks-{file}.db"));
            let built = no_panic("SqliteBackend::builder", || {
                SqliteBackend::builder(&path).busy_timeout(timeout).open()
            })?;
            let valid = timeout <= Duration::from_millis(i32::MAX as u64);
            // A valid setting opens the file, or fails as the backend (a
            // zero busy timeout can meet a busy file); never as a setting.
            let as_expected = match &built {
                Ok(_) | Err(LockError::Backend(_)) => valid,
                Err(LockError::Config(error)) => !valid && error.field == "busy_timeout",
                Err(_) => false,
            };
            prop_assert!(as_expected, "{timeout:?}: {built:?}");
            let _ = no_panic("SqliteBackend::open", || SqliteBackend::open(&path))?;
            let nul = no_panic("SqliteBackend::open with NUL", || SqliteBackend::open(dir.path().join("a\0b")))?;
            prop_assert!(nul.is_err());
        });
    });
}

#[cfg(feature = "redis")]
#[test]
fn redis_builder_refuses_bad_settings_before_connecting() {
    use conc_lock::RedisBackend;

    within(Duration::from_secs(60), || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        proptest!(config(64), |(prefix in texts(), response in durations(),
                                connection in durations(), retries in prop_oneof![Just(0usize), Just(1), Just(usize::MAX), Just(1_001), 0..4usize])| {
            let builder = no_panic("RedisBackend::builder", || {
                RedisBackend::builder("redis://127.0.0.1:1/")
                    .key_prefix(prefix.clone())
                    .response_timeout(response)
                    .connection_timeout(connection.min(Duration::from_secs(3_601)))
                    .reconnect_retries(retries)
            })?;
            // Port 1 on loopback: nothing listens, so valid settings fail to connect at once.
            let result = no_panic("RedisBackend connect", || runtime.block_on(builder.connect()))?;
            let bad_timeout = |t: Duration| t.is_zero() || t > Duration::from_secs(3_600);
            let bad = prefix.contains(['{', '}', '\0'])
                || bad_timeout(response)
                || bad_timeout(connection.min(Duration::from_secs(3_601)))
                || retries > 1_000;
            match result {
                Err(LockError::Config(error)) => prop_assert!(bad, "{error}"),
                Err(LockError::Backend(_)) => prop_assert!(!bad),
                other => prop_assert!(false, "{other:?}"),
            }
        });
    });
}
