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

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::time::Duration;

use conc_core::time::ManualClock;
use conc_lock::{Fence, LockError, LockStore, MemoryBackend, Owner};
use proptest::prelude::*;

/// Runs `check` on another thread and fails when it has not finished within
/// `limit`: a hang becomes a failure.
fn within(limit: Duration, check: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        check();
        let _ = done.send(());
    });
    match finished.recv_timeout(limit) {
        Ok(()) => worker.join().expect("the check panicked"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("still running after {limit:?}: a hang"),
    }
}

/// `f()`, failing the property (with `what`) if it panicked.
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|panic| {
        let message = conc_core::driver::panic_message(&*panic);
        TestCaseError::fail(format!("{what} panicked: {message}"))
    })
}

fn edge_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(1_024),
        Just(1_025),
        Just(u32::MAX),
        Just(u32::MAX - 1),
        Just(u32::MAX / 2),
        any::<u32>(),
    ]
}

fn edge_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::from_nanos(1)),
        Just(Duration::from_millis(1)),
        Just(Duration::from_secs(365 * 24 * 3_600)),
        Just(Duration::MAX),
        Just(Duration::from_secs(u64::MAX)),
        Just(Duration::from_secs(u64::MAX / 2)),
        Just(Duration::from_nanos(u64::MAX)),
        Just(Duration::from_nanos(u64::MAX - 1)),
        any::<u64>().prop_map(Duration::from_nanos),
    ]
}

fn edge_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("a".to_owned()),
        Just("a\0b".to_owned()),
        Just("\0".to_owned()),
        Just("{tag}".to_owned()),
        Just("x".repeat(4_096)),
        Just("\u{1f}slot0".to_owned()),
        ".{0,16}",
    ]
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
        proptest!(config(128), |(name in edge_text(), owner in edge_text(), ttl in edge_duration(),
                                 wait in edge_duration(), limit in edge_u32(), fence in any::<u64>())| {
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
        proptest!(config(16), |(timeout in edge_duration())| {
            let path = dir.path().join("locks.db");
            let built = no_panic("SqliteBackend::builder", || {
                SqliteBackend::builder(&path).busy_timeout(timeout).open()
            })?;
            prop_assert!(built.is_ok() == (timeout <= Duration::from_millis(i32::MAX as u64)), "{built:?}");
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
        proptest!(config(64), |(prefix in edge_text(), response in edge_duration(),
                                connection in edge_duration(), retries in prop_oneof![Just(0usize), Just(1), Just(usize::MAX), Just(1_001), 0..4usize])| {
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
