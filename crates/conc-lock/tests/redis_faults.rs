//! The Redis backend under faults: the server killed and restarted, the
//! server stopped (`SIGSTOP`) past a lock's time to live, and a holder that
//! stalls past its time to live (the Kleppmann scenario) fenced off by the
//! resource.
//!
//! Every test starts its own `redis-server` through `conc-test-support` (so
//! killing it affects nobody else) and skips when the binary is missing,
//! unless `CONC_REQUIRE_SERVICES=1`. Waits for recovery are bounded retry
//! loops; nothing asserts how fast anything happened.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use conc_lock::{Fence, LockError, LockStore, RedisBackend};
use conc_test_support::RedisServer;
use tokio::time::Instant;

const LONG: Duration = Duration::from_secs(30);

/// How long a recovery may take before the test fails.
const RECOVERY: Duration = Duration::from_secs(10);

async fn store_on(redis: &RedisServer, response_timeout: Duration) -> LockStore<RedisBackend> {
    let backend = RedisBackend::builder(redis.url())
        .response_timeout(response_timeout)
        .connect()
        .await
        .unwrap();
    LockStore::new(backend)
}

/// Calls `call` until it succeeds, for up to [`RECOVERY`]; panics with the
/// last error after that. Every error on the way must be a backend error.
async fn eventually<T, F, Fut>(what: &str, mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, LockError>>,
{
    let deadline = Instant::now() + RECOVERY;
    loop {
        match call().await {
            Ok(value) => return value,
            Err(LockError::Backend(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("{what} did not recover within {RECOVERY:?}: {error:?}"),
        }
    }
}

/// The error's source is the redis client's error.
fn redis_error(error: &LockError) -> &redis::RedisError {
    let LockError::Backend(source) = error else { panic!("expected a backend error: {error:?}") };
    source.downcast_ref::<redis::RedisError>().unwrap_or_else(|| panic!("{source:?}"))
}

/// With an `appendfsync always` AOF, a killed and restarted server keeps the
/// hold (with its absolute expiry) and the fence counter. Calls during the
/// outage fail with a backend error; the same backend works again after the
/// restart, and the holder can still release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_server_killed_and_restarted_keeps_holds_and_fences() {
    let Some(mut redis) = conc_test_support::require_durable_redis() else { return };
    let store = store_on(&redis, Duration::from_millis(500)).await;
    let holder = store.lock("report", LONG).unwrap();
    let guard = holder.get().await.unwrap().unwrap();
    let other = store.lock("report", LONG).unwrap();

    redis.kill().unwrap();
    let error = store.owner_of("report").await.unwrap_err();
    assert!(matches!(error, LockError::Backend(_)), "{error:?}");
    let error = other.get().await.unwrap_err();
    assert!(matches!(error, LockError::Backend(_)), "{error:?}");
    assert!(redis_error(&error).is_io_error() || redis_error(&error).is_connection_dropped());

    redis.restart().unwrap();
    let owner = eventually("owner_of after the restart", || store.owner_of("report")).await;
    assert_eq!(owner.as_ref(), Some(holder.owner()), "the AOF kept the hold");
    assert!(other.get().await.unwrap().is_none(), "still held after the restart");
    let fence = guard.fence();
    guard.release().await.unwrap();
    let next = other.get().await.unwrap().unwrap();
    assert_eq!(next.fence(), Fence::new(fence.get() + 1), "the AOF kept the fence counter");
    next.release().await.unwrap();
}

/// Without persistence, a restarted server has forgotten every hold *and
/// every fence counter*: a new holder gets the lock at once, with a fence
/// that was already handed out. This is the documented hazard of Redis
/// fences (the same happens on a failover to a replica that missed writes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_server_killed_and_restarted_forgets_holds_and_fences() {
    let Some(mut redis) = conc_test_support::require_redis() else { return };
    let store = store_on(&redis, Duration::from_millis(500)).await;
    let holder = store.lock("report", LONG).unwrap();
    for _ in 0..2 {
        holder.get().await.unwrap().unwrap().release().await.unwrap();
    }
    let guard = holder.get().await.unwrap().unwrap();
    assert_eq!(guard.fence(), Fence::new(3));

    redis.kill().unwrap();
    let error = holder.is_owned().await.unwrap_err();
    assert!(matches!(error, LockError::Backend(_)), "{error:?}");

    redis.restart().unwrap();
    let owner = eventually("owner_of after the restart", || store.owner_of("report")).await;
    assert_eq!(owner, None, "the hold is gone");
    let taker = store.lock("report", LONG).unwrap().get().await.unwrap().expect("free at once");
    assert_eq!(taker.fence(), Fence::new(1), "the fence counter went back");
    assert!(taker.fence() < guard.fence());
    assert!(matches!(guard.release().await, Err(LockError::Lost { .. })));
    taker.release().await.unwrap();
}

/// A stopped server (`SIGSTOP`): calls fail with a timeout after the
/// response timeout instead of hanging. What we observe:
///
/// - the stopped server runs no expiry, but expiry times are absolute on the
///   server's wall clock, so a hold whose time to live ran out during the
///   stop is expired the moment the server runs again;
/// - commands sent during the stop stay in the socket and run when the server
///   continues: an acquire that timed out on the client took the lock
///   anyway, and holds it until its time to live runs out (its owner can
///   still release it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_server_makes_calls_time_out_and_expires_holds_on_resume() {
    let Some(redis) = conc_test_support::require_redis() else { return };
    let store = store_on(&redis, Duration::from_millis(200)).await;
    let ttl = Duration::from_millis(300);
    let holder = store.lock("job", ttl).unwrap().get().await.unwrap().unwrap();
    let ghost = store.lock("ghost", LONG).unwrap();

    redis.pause().unwrap();
    let paused_at = Instant::now();
    let error = tokio::time::timeout(RECOVERY, store.owner_of("job"))
        .await
        .expect("a call to a stopped server fails instead of hanging")
        .unwrap_err();
    assert!(redis_error(&error).is_timeout(), "{error:?}");
    let error = tokio::time::timeout(RECOVERY, ghost.get())
        .await
        .expect("a call to a stopped server fails instead of hanging")
        .unwrap_err();
    assert!(redis_error(&error).is_timeout(), "{error:?}");
    tokio::time::sleep_until(paused_at + ttl * 2).await;
    redis.resume().unwrap();

    let taker =
        eventually("acquire after the resume", || async { store.lock("job", LONG)?.get().await })
            .await
            .expect("the hold expired while the server was stopped");
    assert!(taker.fence() > holder.fence());
    assert!(matches!(holder.release().await, Err(LockError::Lost { .. })));
    taker.release().await.unwrap();

    assert_eq!(
        store.owner_of("ghost").await.unwrap().as_ref(),
        Some(ghost.owner()),
        "the acquire that timed out ran when the server continued"
    );
    assert!(ghost.get().await.unwrap().is_none(), "and holds the lock");
    assert!(ghost.release().await.unwrap(), "its owner can release it");
}

/// A resource that accepts a write only with a fence at least as high as
/// every fence it has seen.
#[derive(Debug, Default)]
struct FencedRegister {
    state: Mutex<(Option<Fence>, Option<String>)>,
}

#[derive(Debug, PartialEq, Eq)]
struct StaleFence {
    fence: Fence,
    highest: Fence,
}

impl FencedRegister {
    fn write(&self, fence: Fence, value: &str) -> Result<(), StaleFence> {
        let mut state = self.state.lock().unwrap();
        if let Some(highest) = state.0.filter(|highest| fence < *highest) {
            return Err(StaleFence { fence, highest });
        }
        *state = (Some(fence), Some(value.to_owned()));
        Ok(())
    }

    fn value(&self) -> Option<String> {
        self.state.lock().unwrap().1.clone()
    }
}

/// Holder A takes the lock, stalls past its time to live (a GC pause, a
/// stopped VM; here a sleep), B takes the lock with a greater fence and
/// writes; A wakes and writes late. The register rejects A's write by its
/// fence, and A's release reports the lock lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_holder_is_fenced_off() {
    let Some(redis) = conc_test_support::require_redis() else { return };
    let store = store_on(&redis, Duration::from_millis(500)).await;
    let register = FencedRegister::default();

    let a =
        store.lock("balance", Duration::from_millis(200)).unwrap().get().await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await; // A stalls

    let b = store.lock("balance", LONG).unwrap().get().await.unwrap().expect("A's hold expired");
    assert!(b.fence() > a.fence());
    register.write(b.fence(), "written by B").unwrap();

    assert_eq!(
        register.write(a.fence(), "written by A"),
        Err(StaleFence { fence: a.fence(), highest: b.fence() }),
        "the late write of the stalled holder is rejected"
    );
    let lost = a.release().await.unwrap_err();
    assert!(matches!(lost, LockError::Lost { fence, .. } if fence < b.fence()), "{lost:?}");
    assert_eq!(register.value().as_deref(), Some("written by B"));
    b.release().await.unwrap();
}
