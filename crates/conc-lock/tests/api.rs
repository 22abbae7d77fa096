//! The front end (store, lock, guard, funnel, waiting, keep-alive) on its own:
//! behaviour that does not depend on the backend.
//!
//! Time is deterministic: the tests run on tokio's paused clock, and the
//! in-memory backend reads that same clock ([`TokioClock`]), so expiry,
//! backoff and keep-alive all move together when tokio auto-advances time.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conc_core::backoff::Backoff;
use conc_core::config::ConfigError;
use conc_core::time::{Clock, ManualClock};
use conc_lock::{
    Acquisition, Fence, LockBackend, LockError, LockMetrics, LockStore, MAX_OWNER_LEN, MAX_TTL,
    MemoryBackend, Owner,
};
use tokio::time::Instant;

/// A clock that reads tokio's (pausable) clock.
#[derive(Debug, Clone, Copy)]
struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> std::time::Instant {
        Instant::now().into_std()
    }
}

/// A backend that records the calls made to it and can be told to fail or
/// to be slow. It keeps the trait's default `acquire_any` and
/// `release_on_drop`, so those are tested here too.
#[derive(Debug)]
struct Recording<B> {
    inner: B,
    acquires: Mutex<Vec<(Owner, Instant)>>,
    releases: Mutex<usize>,
    extends: Mutex<usize>,
    release_delay: Mutex<Duration>,
    fail_acquire: AtomicBool,
    fail_extend: AtomicBool,
}

impl<B> Recording<B> {
    fn new(inner: B) -> Self {
        Self {
            inner,
            acquires: Mutex::default(),
            releases: Mutex::default(),
            extends: Mutex::default(),
            release_delay: Mutex::default(),
            fail_acquire: AtomicBool::new(false),
            fail_extend: AtomicBool::new(false),
        }
    }

    /// When `owner` attempted to acquire, relative to `start`.
    fn attempts_of(&self, owner: &Owner, start: Instant) -> Vec<Duration> {
        let acquires = self.acquires.lock().unwrap();
        acquires.iter().filter(|(by, _)| by == owner).map(|(_, at)| *at - start).collect()
    }

    fn extends(&self) -> usize {
        *self.extends.lock().unwrap()
    }

    fn releases(&self) -> usize {
        *self.releases.lock().unwrap()
    }
}

fn boom() -> LockError {
    LockError::Backend("injected failure".into())
}

impl<B: LockBackend> Recording<B> {
    /// Counts a release after the configured delay (both release paths).
    async fn count_release(&self) {
        let delay = *self.release_delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        *self.releases.lock().unwrap() += 1;
    }
}

impl<B: LockBackend> LockBackend for Recording<B> {
    type Prepared = B::Prepared;

    fn prepare(&self, name: &str) -> Arc<B::Prepared> {
        self.inner.prepare(name)
    }

    async fn acquire(
        &self,
        name: &B::Prepared,
        owner: &Owner,
        ttl: Duration,
    ) -> Result<Acquisition, LockError> {
        self.acquires.lock().unwrap().push((owner.clone(), Instant::now()));
        if self.fail_acquire.load(Ordering::SeqCst) {
            return Err(boom());
        }
        self.inner.acquire(name, owner, ttl).await
    }

    async fn release(&self, name: &B::Prepared, owner: &Owner) -> Result<bool, LockError> {
        self.count_release().await;
        self.inner.release(name, owner).await
    }

    async fn release_hold(
        &self,
        name: &B::Prepared,
        owner: &Owner,
        fence: Fence,
    ) -> Result<bool, LockError> {
        self.count_release().await;
        self.inner.release_hold(name, owner, fence).await
    }

    async fn extend(
        &self,
        name: &B::Prepared,
        owner: &Owner,
        ttl: Duration,
    ) -> Result<bool, LockError> {
        *self.extends.lock().unwrap() += 1;
        if self.fail_extend.load(Ordering::SeqCst) {
            return Err(boom());
        }
        self.inner.extend(name, owner, ttl).await
    }

    async fn owner(&self, name: &B::Prepared) -> Result<Option<Owner>, LockError> {
        self.inner.owner(name).await
    }

    async fn force_release(&self, name: &B::Prepared) -> Result<bool, LockError> {
        self.inner.force_release(name).await
    }
}

type Store = LockStore<Recording<MemoryBackend<TokioClock>>>;

/// A store on tokio's clock whose backend records calls.
fn store() -> Store {
    LockStore::new(Recording::new(MemoryBackend::builder().clock(TokioClock).build()))
}

const HOUR: Duration = Duration::from_secs(3600);
const MS: Duration = Duration::from_millis(1);

fn fixed(delay: Duration) -> Backoff {
    Backoff::fixed(delay).build().unwrap()
}

// ---------------------------------------------------------------- values

#[test]
fn owner_tokens_are_validated_and_name_the_value() {
    let cases = [
        (String::new(), "must not be empty"),
        ("o".repeat(MAX_OWNER_LEN + 1), "must be at most 128 bytes"),
        ("tab\there".to_owned(), "must not contain control characters"),
        ("del\u{7f}".to_owned(), "must not contain control characters"),
    ];
    for (token, why) in cases {
        match Owner::new(token.clone()) {
            Err(error @ LockError::Config(_)) => {
                let message = error.to_string();
                assert!(message.contains(&format!("{token:?}")), "{message}");
                assert!(message.contains(why), "{message}");
                let LockError::Config(config) = error else { unreachable!() };
                assert_eq!(
                    (&*config.field, config.value, &*config.reason),
                    ("owner", format!("{token:?}"), why)
                );
            }
            other => panic!("{token:?}: expected InvalidOwner, got {other:?}"),
        }
    }
    let longest = "o".repeat(MAX_OWNER_LEN);
    assert_eq!(Owner::new(longest.clone()).unwrap().as_str(), longest);
    assert_eq!(Owner::new("ünïcode ✓").unwrap().as_str(), "ünïcode ✓");
}

#[test]
fn owners_compare_by_value_and_random_ones_are_distinct_hex() {
    let a = Owner::new("job-1").unwrap();
    assert_eq!(a, Owner::new("job-1").unwrap());
    assert_ne!(a, Owner::new("job-2").unwrap());
    assert_eq!(a.to_string(), "job-1");
    assert_eq!(format!("{a:?}"), r#"Owner("job-1")"#);
    let set: HashSet<Owner> = [a.clone(), a.clone(), Owner::new("job-1").unwrap()].into();
    assert_eq!(set.len(), 1, "equal owners hash alike");

    let random: HashSet<Owner> = (0..10_000).map(|_| Owner::random()).collect();
    assert_eq!(random.len(), 10_000);
    for owner in random.iter().take(100) {
        assert_eq!(owner.as_str().len(), 32);
        assert!(owner.as_str().bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(Owner::new(owner.as_str()).unwrap(), *owner, "a random token round-trips");
    }
}

#[test]
fn fences_order_and_display_by_value() {
    let fences = [Fence::new(10), Fence::new(2), Fence::new(u64::MAX), Fence::new(0)];
    let mut sorted = fences;
    sorted.sort();
    assert_eq!(sorted.map(Fence::get), [0, 2, 10, u64::MAX]);
    assert!(Fence::new(3) > Fence::new(2));
    assert_eq!(Fence::new(3), Fence::new(3));
    assert_eq!(Fence::new(42).to_string(), "42");
    assert_eq!(format!("{:?}", Fence::new(42)), "Fence(42)");
    assert_eq!(Fence::new(u64::MAX).to_string(), u64::MAX.to_string());
}

#[test]
fn error_messages_are_lowercase_without_a_trailing_period() {
    let errors = [
        LockError::Config(ConfigError::new("name", "", "must not be empty")),
        LockError::Config(
            conc_core::config::between("ttl", Duration::ZERO, Duration::from_millis(1), MAX_TTL)
                .unwrap_err(),
        ),
        LockError::Timeout { name: "report".into(), waited: Duration::from_secs(1) },
        LockError::Lost { name: "report".into(), fence: Fence::new(7) },
        boom(),
    ];
    for error in &errors {
        let message = error.to_string();
        assert!(message.starts_with(|c: char| c.is_lowercase()), "{message}");
        assert!(!message.ends_with('.'), "{message}");
    }
    assert!(errors[3].to_string().contains("fence 7"), "{}", errors[3]);
    assert!(errors[1].to_string().contains("1ms"), "{}", errors[1]);
    let source = std::error::Error::source(&errors[4]).expect("a backend error keeps its cause");
    assert_eq!(source.to_string(), "injected failure");
}

// ---------------------------------------------------------------- handles

#[tokio::test]
async fn handles_report_name_owner_and_ttl() {
    let store = store();
    let lock = store.lock("report", Duration::from_secs(5)).unwrap();
    assert_eq!(lock.name(), "report");
    assert_eq!(lock.ttl(), Duration::from_secs(5));
    assert_eq!(lock.owner().as_str().len(), 32);
    assert_eq!(lock.clone().owner(), lock.owner(), "clones act as the same owner");
    assert_ne!(store.lock("report", HOUR).unwrap().owner(), lock.owner());

    let owner = Owner::new("job-9").unwrap();
    let restored = store.restore("report", owner.clone(), MS).unwrap();
    assert_eq!(restored.owner(), &owner);

    let guard = lock.get().await.unwrap().unwrap();
    assert_eq!((guard.name(), guard.owner()), ("report", lock.owner()));
    guard.release().await.unwrap();

    let backend = store.backend();
    assert_eq!(backend.acquires.lock().unwrap().len(), 1, "making handles touches nothing");
}

#[tokio::test]
async fn ttls_round_up_to_whole_milliseconds() {
    let store = store();
    let cases = [
        (MS, MS),
        (Duration::from_micros(1_001), 2 * MS),
        (Duration::from_micros(1_500), 2 * MS),
        (Duration::from_nanos(2_000_001), 3 * MS),
        (Duration::from_secs(1), Duration::from_secs(1)),
        (MAX_TTL, MAX_TTL),
        (MAX_TTL.checked_sub(Duration::from_nanos(1)).unwrap(), MAX_TTL),
    ];
    for (given, kept) in cases {
        assert_eq!(store.lock("ttl", given).unwrap().ttl(), kept, "{given:?}");
        assert_eq!(store.restore("ttl", Owner::random(), given).unwrap().ttl(), kept);
    }
    // The rounded ttl is what the backend holds the lock for.
    let clock = ManualClock::new();
    let store = LockStore::new(MemoryBackend::builder().clock(clock.clone()).build());
    let lock = store.lock("ttl", Duration::from_micros(1_500)).unwrap();
    let guard = lock.get().await.unwrap().unwrap();
    clock.advance(Duration::from_nanos(1_999_999));
    assert!(lock.is_owned().await.unwrap(), "held past 1.5 ms: the ttl was rounded to 2 ms");
    clock.advance(Duration::from_nanos(1));
    assert!(!lock.is_owned().await.unwrap());
    drop(guard);
}

#[tokio::test]
async fn debug_output_names_the_parts() {
    let store = LockStore::new(MemoryBackend::builder().clock(ManualClock::new()).build());
    let debug = format!("{store:?}");
    assert!(debug.starts_with("LockStore"), "{debug}");
    assert!(debug.contains("MemoryBackend") && debug.contains("block_backoff"), "{debug}");

    let lock = store.restore("invoice:1", Owner::new("me").unwrap(), HOUR).unwrap();
    let debug = format!("{lock:?}");
    assert!(debug.starts_with("Lock {"), "{debug}");
    for part in [r#""invoice:1""#, r#"Owner("me")"#, "3600s"] {
        assert!(debug.contains(part), "{part} in {debug}");
    }

    let guard = lock.get().await.unwrap().unwrap();
    let debug = format!("{guard:?}");
    let fence = format!("fence: {:?}", guard.fence());
    for part in ["LockGuard", "invoice:1", r#"Owner("me")"#, fence.as_str(), "keep_alive: false"] {
        assert!(debug.contains(part), "{part} in {debug}");
    }
    let slot = store.backend().prepare("invoice:1");
    let debug = format!("{slot:?}");
    assert!(debug.contains("MemorySlot") && debug.contains(r#"Owner("me")"#), "{debug}");
    guard.release().await.unwrap();
    assert!(format!("{slot:?}").contains("owner: None"), "{slot:?}");

    let funnel = store.funnel("exports", 3, HOUR).unwrap();
    let debug = format!("{funnel:?}");
    assert!(debug.contains("Funnel") && debug.contains("exports") && debug.contains("limit: 3"));
    let permit = funnel.get().await.unwrap().unwrap();
    let debug = format!("{permit:?}");
    assert!(debug.contains("FunnelPermit") && debug.contains("slot: 0"), "{debug}");
    assert!(!debug.contains('\u{1f}'), "slot names are printed escaped: {debug}");
    permit.release().await.unwrap();
}

#[tokio::test]
async fn stores_share_their_backend_across_clones_and_backoff_changes() {
    let store = store();
    let clone = store.clone();
    let other_backoff = store.clone().with_block_backoff(fixed(MS));
    let guard = store.lock("shared", HOUR).unwrap().get().await.unwrap().unwrap();
    assert!(clone.lock("shared", HOUR).unwrap().get().await.unwrap().is_none());
    assert!(other_backoff.lock("shared", HOUR).unwrap().get().await.unwrap().is_none());
    guard.release().await.unwrap();
}

// ---------------------------------------------------------------- block

/// `block` retries on the store's backoff until the deadline, then times out
/// having waited exactly `wait` (on the paused clock).
#[tokio::test(start_paused = true)]
async fn block_retries_on_the_configured_backoff() {
    let store = store().with_block_backoff(fixed(Duration::from_millis(100)));
    let _holder = store.lock("held", HOUR).unwrap().get().await.unwrap().unwrap();
    let waiter = store.lock("held", HOUR).unwrap();
    let start = Instant::now();
    match waiter.block(Duration::from_secs(1)).await {
        Err(LockError::Timeout { name, waited }) => {
            assert_eq!((name.as_str(), waited), ("held", Duration::from_secs(1)));
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    let attempts = store.backend().attempts_of(waiter.owner(), start);
    let expected: Vec<Duration> = (0..=10).map(|i| i * Duration::from_millis(100)).collect();
    assert_eq!(attempts, expected, "an attempt every 100 ms, the last at the deadline");
}

/// The default backoff starts near 10 ms and never waits more than 250 ms.
#[tokio::test(start_paused = true)]
async fn block_default_backoff_is_short_then_capped() {
    let store = store();
    let _holder = store.lock("held", HOUR).unwrap().get().await.unwrap().unwrap();
    let waiter = store.lock("held", HOUR).unwrap();
    let start = Instant::now();
    let result = waiter.block(Duration::from_secs(5)).await;
    assert!(matches!(result, Err(LockError::Timeout { .. })), "{result:?}");
    let attempts = store.backend().attempts_of(waiter.owner(), start);
    let gaps: Vec<Duration> =
        attempts.windows(2).map(|pair| pair[1].checked_sub(pair[0]).unwrap()).collect();
    assert!((5 * MS..=11 * MS).contains(&gaps[0]), "first wait {:?}", gaps[0]);
    assert!(gaps.iter().all(|gap| *gap <= 251 * MS), "{gaps:?}");
    assert!(gaps[gaps.len() / 2..].iter().any(|gap| *gap >= 125 * MS), "grows: {gaps:?}");
    assert_eq!(*attempts.last().unwrap(), Duration::from_secs(5), "a last try at the deadline");
}

/// A waiter retries as the current hold expires instead of sleeping a whole
/// backoff step past it.
#[tokio::test(start_paused = true)]
async fn block_retries_when_the_hold_expires() {
    let store = store().with_block_backoff(fixed(Duration::from_secs(10)));
    let holder = store.lock("expiring", Duration::from_millis(250)).unwrap();
    let held = holder.get().await.unwrap().unwrap();
    let start = Instant::now();
    let guard = store.lock("expiring", HOUR).unwrap().block(Duration::from_secs(60)).await.unwrap();
    let waited = start.elapsed();
    assert!((250 * MS..=252 * MS).contains(&waited), "acquired after {waited:?}");
    assert!(guard.fence() > held.fence());
    assert!(matches!(held.release().await, Err(LockError::Lost { .. })));
    guard.release().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn block_acquires_when_the_holder_releases() {
    let store = store();
    let held = store.lock("handover", HOUR).unwrap().get().await.unwrap().unwrap();
    let start = Instant::now();
    let releaser = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        held.release().await.unwrap();
    });
    let guard = store.lock("handover", HOUR).unwrap().block(Duration::MAX).await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(300));
    releaser.await.unwrap();
    guard.release().await.unwrap();
}

/// A zero wait is exactly one attempt; an unbounded wait does not overflow.
#[tokio::test(start_paused = true)]
async fn block_with_zero_and_unbounded_waits() {
    let store = store();
    let lock = store.lock("edges", HOUR).unwrap();
    lock.block(Duration::ZERO).await.unwrap().release().await.unwrap();

    let held = store.lock("edges", Duration::from_secs(30)).unwrap().get().await.unwrap().unwrap();
    let start = Instant::now();
    let before = store.backend().attempts_of(lock.owner(), start).len();
    match lock.block(Duration::ZERO).await {
        Err(LockError::Timeout { waited, .. }) => assert_eq!(waited, Duration::ZERO),
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert_eq!(store.backend().attempts_of(lock.owner(), start).len(), before + 1, "one attempt");

    // The holder never releases; its hold expires after 30 s.
    let guard = lock.block(Duration::MAX).await.unwrap();
    assert!(start.elapsed() >= Duration::from_secs(30));
    assert!(guard.fence() > held.fence());
    drop(held);
    guard.release().await.unwrap();
}

/// A backend failure ends `block` at once; it is not retried as "busy".
#[tokio::test(start_paused = true)]
async fn backend_failures_end_get_and_block() {
    let store = store();
    let lock = store.lock("failing", HOUR).unwrap();
    store.backend().fail_acquire.store(true, Ordering::SeqCst);
    assert!(matches!(lock.get().await, Err(LockError::Backend(_))));
    let start = Instant::now();
    assert!(matches!(lock.block(HOUR).await, Err(LockError::Backend(_))));
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert!(matches!(lock.get_with(|_| async {}).await, Err(LockError::Backend(_))));
    let funnel = store.funnel("failing", 2, HOUR).unwrap();
    assert!(matches!(funnel.get().await, Err(LockError::Backend(_))));
    store.backend().fail_acquire.store(false, Ordering::SeqCst);
    lock.get().await.unwrap().unwrap().release().await.unwrap();
}

// ---------------------------------------------------------------- closures

/// Work that outlives the ttl is reported: its lock was lost meanwhile.
#[tokio::test(start_paused = true)]
async fn work_outliving_the_ttl_reports_the_lock_lost() {
    let store = store();
    let lock = store.lock("slow", Duration::from_millis(100)).unwrap();
    let slow = |_| tokio::time::sleep(Duration::from_millis(200));
    match lock.get_with(slow).await {
        Err(LockError::Lost { name, fence }) => {
            assert_eq!((name.as_str(), fence.get()), ("slow", 1));
        }
        other => panic!("expected Lost, got {other:?}"),
    }
    assert!(matches!(lock.block_with(HOUR, slow).await, Err(LockError::Lost { .. })));
    let funnel = store.funnel("slow", 1, Duration::from_millis(100)).unwrap();
    assert!(matches!(funnel.block_with(HOUR, slow).await, Err(LockError::Lost { .. })));

    // Work within the ttl is fine, and sees the hold's fence.
    let fence = lock.get_with(|fence| async move { fence }).await.unwrap().unwrap();
    assert!(fence.get() > 1);
}

/// Dropping a `get_with` future while the work runs releases the lock.
#[tokio::test(start_paused = true)]
async fn cancelled_work_releases_the_lock() {
    let store = store();
    let lock = store.lock("cancelled", HOUR).unwrap();
    let work = lock.get_with(|_| tokio::time::sleep(HOUR));
    assert!(tokio::time::timeout(Duration::from_millis(10), work).await.is_err());
    wait_until_free(&store, "cancelled").await;
}

/// The store's one-shot `get_with` reports work that outlived the ttl, as a
/// handle's does, and hands the work the hold's fence otherwise.
#[tokio::test(start_paused = true)]
async fn store_get_with_reports_work_outliving_the_ttl() {
    let store = store();
    let ttl = Duration::from_millis(100);
    let slow = |_| tokio::time::sleep(Duration::from_millis(200));
    match store.get_with("slow", ttl, slow).await {
        Err(LockError::Lost { name, fence }) => {
            assert_eq!((name.as_str(), fence.get()), ("slow", 1));
        }
        other => panic!("expected Lost, got {other:?}"),
    }
    let fence = store.get_with("slow", ttl, |fence| async move { fence }).await.unwrap();
    assert_eq!(fence, Some(Fence::new(2)));
    let metrics = store.metrics();
    assert_eq!((metrics.acquired, metrics.released, metrics.expired), (2, 1, 1));
}

/// Dropping the store's `get_with` future while the work runs, or while its
/// release is on its way, releases the lock; so does a panic in the work.
#[tokio::test(start_paused = true)]
async fn store_get_with_releases_when_cancelled_or_panicking() {
    let store = store();
    let work = store.get_with("cancelled", HOUR, |_| tokio::time::sleep(HOUR));
    assert!(tokio::time::timeout(Duration::from_millis(10), work).await.is_err());
    wait_until_free(&store, "cancelled").await;

    *store.backend().release_delay.lock().unwrap() = Duration::from_millis(100);
    let quick = store.get_with("slow-release", HOUR, |_| async {});
    assert!(tokio::time::timeout(Duration::from_millis(10), quick).await.is_err());
    wait_until_free(&store, "slow-release").await;
    *store.backend().release_delay.lock().unwrap() = Duration::ZERO;

    let panicking = {
        let store = store.clone();
        tokio::spawn(async move {
            store.get_with("panics", HOUR, |_| async { panic!("the work failed") }).await
        })
    };
    assert!(panicking.await.unwrap_err().is_panic());
    wait_until_free(&store, "panics").await;
    let metrics = store.metrics();
    assert_eq!((metrics.acquired, metrics.released), (3, 3));
}

/// The store's `get_with` validates its name and ttl like `lock` does, and
/// runs nothing on bad input.
#[tokio::test]
async fn store_get_with_refuses_bad_input() {
    let store = store();
    let ran = AtomicBool::new(false);
    let work = |_| async { ran.store(true, Ordering::SeqCst) };
    let error = store.get_with("", HOUR, work).await.unwrap_err();
    assert!(matches!(&error, LockError::Config(error) if error.field == "name"), "{error}");
    let work = |_| async { ran.store(true, Ordering::SeqCst) };
    let error = store.get_with("job", Duration::ZERO, work).await.unwrap_err();
    assert!(matches!(&error, LockError::Config(error) if error.field == "ttl"), "{error}");
    assert!(!ran.load(Ordering::SeqCst));
    assert_eq!(store.metrics(), LockMetrics::default());
}

// ---------------------------------------------------------------- release on drop

/// Polls (on the paused clock) until nobody holds `name`.
async fn wait_until_free<B: LockBackend>(store: &LockStore<B>, name: &str) {
    for _ in 0..1_000 {
        if store.owner_of(name).await.unwrap().is_none() {
            return;
        }
        tokio::time::sleep(MS).await;
    }
    panic!("`{name}` was never released");
}

/// The trait's default `release_on_drop` releases in a spawned task.
#[tokio::test(start_paused = true)]
async fn a_dropped_guard_is_released_in_the_background() {
    let store = store();
    let lock = store.lock("dropped", HOUR).unwrap();
    drop(lock.get().await.unwrap().unwrap());
    assert_eq!(store.backend().releases(), 0, "not released inline by the default");
    wait_until_free(&store, "dropped").await;
    assert_eq!(store.backend().releases(), 1);
    // A guard released explicitly is not released again on drop.
    lock.get().await.unwrap().unwrap().release().await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(store.backend().releases(), 2);
}

/// A release future dropped before the backend answered leaves the guard to
/// release on drop, so the lock is not held until its ttl runs out.
#[tokio::test(start_paused = true)]
async fn a_cancelled_release_still_releases() {
    let store = store();
    *store.backend().release_delay.lock().unwrap() = Duration::from_millis(100);
    let guard = store.lock("slow-release", HOUR).unwrap().get().await.unwrap().unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(10), guard.release()).await.is_err());
    wait_until_free(&store, "slow-release").await;
}

/// Dropped outside a runtime, a guard on a network-style backend (the default
/// `release_on_drop`) cannot release: it neither panics nor releases, and the
/// hold expires with its ttl.
#[test]
fn a_guard_dropped_outside_a_runtime_expires_with_its_ttl() {
    let clock = ManualClock::new();
    let store =
        LockStore::new(Recording::new(MemoryBackend::builder().clock(clock.clone()).build()));
    let runtime = || tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let lock = store.lock("outside", Duration::from_secs(1)).unwrap();
    let guard = runtime().block_on(lock.get()).unwrap().unwrap();
    drop(guard);
    let runtime = runtime();
    assert!(runtime.block_on(lock.is_owned()).unwrap(), "not released");
    clock.advance(Duration::from_secs(1));
    assert!(!runtime.block_on(lock.is_owned()).unwrap(), "expired");

    // The in-memory backend releases synchronously, runtime or not.
    let store = LockStore::new(MemoryBackend::builder().clock(clock).build());
    let lock = store.lock("outside", Duration::from_secs(1)).unwrap();
    drop(runtime.block_on(lock.get()).unwrap().unwrap());
    assert!(!runtime.block_on(lock.is_owned()).unwrap());
}

// ---------------------------------------------------------------- keep-alive

#[tokio::test(start_paused = true)]
async fn keep_alive_extends_every_third_of_the_ttl_until_released() {
    let store = store();
    let lock = store.lock("kept", Duration::from_millis(300)).unwrap();
    let guard = lock.get().await.unwrap().unwrap().keep_alive();
    assert!(format!("{guard:?}").contains("keep_alive: true"));
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(lock.is_owned().await.unwrap(), "kept alive for 10 s on a 300 ms ttl");
    assert!(!guard.is_lost());
    let extends = store.backend().extends();
    assert!((99..=101).contains(&extends), "{extends} extensions in 10 s");
    // Calling keep_alive again replaces the task rather than adding one.
    let guard = guard.keep_alive();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let per_second = store.backend().extends() - extends;
    assert!((9..=11).contains(&per_second), "{per_second} extensions in 1 s");

    guard.release().await.unwrap();
    let extends = store.backend().extends();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(store.backend().extends(), extends, "the task stopped at release");

    let guard = lock.get().await.unwrap().unwrap().keep_alive();
    drop(guard);
    let extends = store.backend().extends();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(store.backend().extends(), extends, "the task stopped at drop");
    assert!(!lock.is_owned().await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn keep_alive_reports_a_lost_hold_and_stops() {
    let store = store();
    let lock = store.lock("kept-lost", Duration::from_millis(300)).unwrap();
    let guard = lock.get().await.unwrap().unwrap().keep_alive();
    assert!(store.force_release("kept-lost").await.unwrap());
    // The next extension, 100 ms in, finds the hold gone.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(guard.is_lost());
    let extends = store.backend().extends();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(store.backend().extends(), extends, "no extensions after the loss");
    assert!(matches!(guard.release().await, Err(LockError::Lost { .. })));
}

/// Failed extensions are retried; a hold that lapsed meanwhile is reported
/// lost by the first extension that gets through.
#[tokio::test(start_paused = true)]
async fn keep_alive_survives_backend_failures() {
    let store = store();
    let lock = store.lock("kept-flaky", Duration::from_millis(300)).unwrap();
    let guard = lock.get().await.unwrap().unwrap().keep_alive();
    let backend = store.backend();

    // Failing for less than the ttl: the hold survives.
    backend.fail_extend.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(150)).await;
    backend.fail_extend.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!guard.is_lost());
    assert!(lock.is_owned().await.unwrap());

    // Failing for longer: the hold lapses, and that is noticed.
    backend.fail_extend.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!guard.is_lost(), "unknown while the backend fails");
    backend.fail_extend.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(guard.is_lost());
    assert!(matches!(guard.release().await, Err(LockError::Lost { .. })));
}

// ---------------------------------------------------------------- funnels

/// Holds a slot of a one-slot funnel past its ttl and returns the name the
/// `Lost` error gives.
async fn lost_funnel_slot_name<B: LockBackend>(store: &LockStore<B>) -> String {
    let funnel = store.funnel("slow", 1, Duration::from_millis(100)).unwrap();
    let slow = |_| tokio::time::sleep(Duration::from_millis(200));
    match funnel.block_with(HOUR, slow).await {
        Err(LockError::Lost { name, .. }) => name,
        other => panic!("expected Lost, got {other:?}"),
    }
}

/// A lost permit names its slot, whether the handle reads the name from the
/// backend's prepared slot (the in-memory backend keeps it) or keeps a copy
/// (a backend that does not say it keeps names).
#[tokio::test(start_paused = true)]
async fn a_lost_funnel_permit_names_its_slot() {
    let keeps_names = LockStore::new(MemoryBackend::builder().clock(TokioClock).build());
    assert_eq!(lost_funnel_slot_name(&keeps_names).await, "slow\u{1f}slot0");
    assert_eq!(lost_funnel_slot_name(&store()).await, "slow\u{1f}slot0");
}

#[tokio::test(start_paused = true)]
async fn funnel_permits_extend_keep_alive_and_report_their_slot() {
    let store = store();
    let funnel = store.funnel("pool", 2, Duration::from_millis(300)).unwrap();
    assert_eq!((funnel.name(), funnel.limit()), ("pool", 2));
    let a = funnel.get().await.unwrap().unwrap();
    let b = funnel.get().await.unwrap().unwrap().keep_alive();
    assert_eq!((a.slot(), b.slot()), (0, 1), "the default acquire_any tries slots in order");
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.extend(Duration::from_millis(300)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(funnel.get().await.unwrap().is_none(), "both slots still held");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let c = funnel.get().await.unwrap().expect("slot 0 expired");
    assert_eq!(c.slot(), 0);
    assert!(c.fence() > a.fence());
    assert!(matches!(a.release().await, Err(LockError::Lost { .. })));
    assert!(!b.is_lost());
    b.release().await.unwrap();
    c.release().await.unwrap();
}

/// A funnel's `block` waits only as long as the soonest-expiring slot.
#[tokio::test(start_paused = true)]
async fn funnel_block_retries_when_the_first_slot_expires() {
    let store = store().with_block_backoff(fixed(Duration::from_secs(10)));
    let long = store.funnel("soonest", 2, HOUR).unwrap();
    let short = store.funnel("soonest", 2, Duration::from_millis(200)).unwrap();
    let _a = long.get().await.unwrap().unwrap();
    let _b = short.get().await.unwrap().unwrap();
    let start = Instant::now();
    let permit = long.block(Duration::from_secs(60)).await.unwrap();
    let waited = start.elapsed();
    assert!((200 * MS..=202 * MS).contains(&waited), "acquired after {waited:?}");
    assert_eq!(permit.slot(), 1);
    permit.release().await.unwrap();
}

#[tokio::test]
async fn funnel_validation_names_the_field() {
    let store = store();
    match store.funnel("zero", 0, HOUR) {
        Err(error) => {
            assert_eq!(error.to_string(), "invalid `limit` 0: must be between 1 and 1024");
        }
        Ok(funnel) => panic!("limit 0 accepted: {funnel:?}"),
    }
    assert!(
        matches!(store.funnel("", 1, HOUR), Err(LockError::Config(ref e)) if e.field == "name")
    );
    assert!(
        matches!(store.funnel("f", 1, Duration::ZERO), Err(LockError::Config(ref e)) if e.field == "ttl")
    );
}
