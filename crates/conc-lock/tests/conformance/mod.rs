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
//! on its own lock names, in the file of its topic: `locks.rs` (one lock:
//! acquire, fences, ownership, expiry, `block`), `funnels.rs`, `names.rs`
//! (names and times to live passed in) and `guards.rs` (holds over time:
//! dropped and stale guards, keep-alive, many holders at once). Time is real here (network backends expire holds on
//! their own clock), so expiry checks use short times to live (100–300 ms) and
//! then wait at least twice as long; no check asserts that anything finished
//! in less than some time.

#![allow(dead_code, reason = "each test binary uses the part of the suite it instantiates")]
#![allow(unreachable_pub, reason = "the checks are the suite's interface to the macro")]

mod funnels;
mod guards;
mod locks;
mod names;

pub use funnels::{
    concurrent_funnel_holders_stay_within_the_limit, funnel_admits_exactly_its_limit,
    funnel_block_times_out_and_block_with_releases, funnel_handles_share_slots,
    funnel_limit_zero_is_refused,
};
pub use guards::{
    concurrent_holders_exclude_each_other, dropped_guard_is_released, keep_alive_outlives_the_ttl,
    keep_alive_reports_a_lost_hold, stale_guard_cannot_free_a_newer_hold,
};
pub use locks::{
    acquire_then_busy_then_release, block_acquires_when_the_holder_releases,
    block_times_out_naming_the_lock, block_with_runs_once_and_releases,
    cancelled_block_acquires_nothing, expired_hold_is_lost_and_taken_over,
    extend_outlives_the_original_ttl, fences_only_grow, force_release_frees_a_held_lock,
    get_with_runs_once_and_releases, is_owned_follows_the_hold, release_is_owner_checked,
    restored_handle_acts_for_the_holder, store_get_with_runs_once_and_releases,
};
pub use names::{
    distinct_names_are_independent, invalid_names_are_refused, invalid_ttls_are_refused,
    unusual_names_work,
};

use std::time::Duration;

use conc_core::backoff::{Backoff, Jitter};
use conc_lock::{LockBackend, LockStore};

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
            store_get_with_runs_once_and_releases,
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
