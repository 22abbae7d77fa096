//! Workflows on Redis: the shared workflow suite (batches, chains, admission,
//! timeouts, archive, recovery) on a real `redis-server` per test with a
//! manual clock handed to the scripts, and what only Redis shows: the
//! scripts flushed from the server in the middle of a batch are loaded again
//! and the batch finishes with each callback once; a callback and a chain's
//! next link land in another queue than the job that fired them; a job that
//! edits its chain pushes the edited chain.
//!
//! Every test starts its own `redis-server` through `conc-test-support` and
//! skips when the binary is missing, unless `CONC_REQUIRE_SERVICES=1`.

mod workflows;

use conc_bus::RedisQueue;
use conc_core::time::ManualClock;

workflows::suite!(|clock: ManualClock| async move {
    let redis = conc_test_support::require_redis()?;
    let backend = RedisQueue::builder(redis.url()).clock(clock).connect().await.expect("connects");
    Some((backend, Box::new(redis) as workflows::KeepAlive))
});
