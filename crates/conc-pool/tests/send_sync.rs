//! Every public handle, future, report and error of the crate can cross
//! threads (or says why not), checked at compile time.

use std::future::Future;

use conc_pool::{
    AsyncPool, AsyncPoolBuilder, AsyncProcessor, Batch, BatchError, BlockingPool,
    BlockingPoolBuilder, CancelToken, Concurrency, ConcurrencyError, ConcurrencyMetrics,
    GrowWhenQueued, Health, JoinError, PoolBuildError, PoolMetrics, PoolShutdown, Processor,
    QueueUtilisation, Rejection, ScaleDecision, ScaleSnapshot, SubmitError, SyncDriver, TaskHandle,
    TaskOptions, ThreadDriver, Unstarted, UnstartedFuture,
};
use static_assertions::{assert_impl_all, assert_not_impl_any};

assert_impl_all!(AsyncPool: Send, Sync, Clone);
assert_impl_all!(BlockingPool: Send, Sync, Clone);
assert_impl_all!(AsyncPoolBuilder: Send);
assert_impl_all!(BlockingPoolBuilder: Send);
assert_impl_all!(TaskHandle<u32>: Send, Sync, Future, Unpin);
assert_impl_all!(Batch<u32>: Send, Sync, Future, Unpin);
assert_impl_all!(UnstartedFuture: Send);
assert_impl_all!(Unstarted: Send);
assert_impl_all!(PoolShutdown<Unstarted>: Send);
assert_impl_all!(PoolShutdown<UnstartedFuture>: Send);
assert_impl_all!(Processor<u32, u32>: Send, Sync, Clone);
assert_impl_all!(AsyncProcessor<u32, u32>: Send, Sync, Clone);
assert_impl_all!(PoolMetrics: Send, Sync);
assert_impl_all!(Health: Send, Sync);
assert_impl_all!(JoinError: Send, Sync, std::error::Error);
assert_impl_all!(SubmitError<u32>: Send, Sync, std::error::Error);
assert_impl_all!(BatchError<u32, u32>: Send, Sync, std::error::Error);
assert_impl_all!(PoolBuildError: Send, Sync, std::error::Error);
assert_impl_all!(Concurrency: Send, Sync);
assert_impl_all!(ConcurrencyMetrics: Send, Sync);
assert_impl_all!(ConcurrencyError: Send, Sync, std::error::Error);
assert_impl_all!(SyncDriver: Send, Sync);
assert_impl_all!(ThreadDriver: Send, Sync);
assert_impl_all!(TaskOptions: Send, Sync);
assert_impl_all!(Rejection: Send, Sync);
assert_impl_all!(QueueUtilisation: Send, Sync);
assert_impl_all!(GrowWhenQueued: Send, Sync);
assert_impl_all!(ScaleSnapshot: Send, Sync);
assert_impl_all!(ScaleDecision: Send, Sync);
// A token borrows the running task's handle state; it never leaves that task.
assert_not_impl_any!(CancelToken<'static>: Send, Sync);

fn assert_send<T: Send>(value: T) -> T {
    value
}

/// The futures the async methods return are `Send`, so a pool can be used
/// from a spawned task.
#[tokio::test]
async fn the_async_pools_futures_are_send() {
    let pool = AsyncPool::builder().workers(1).build().unwrap();
    let handle = assert_send(pool.submit(async { 1 })).await.unwrap();
    assert_eq!(assert_send(handle).await, Ok(1));
    assert_send(pool.submit_with(TaskOptions::new(), async {})).await.unwrap().await.unwrap();
    assert_send(pool.spawn(async {})).await.unwrap();
    let batch = assert_send(pool.submit_batch([async { 2 }])).await.unwrap();
    assert_eq!(assert_send(batch).await, [Ok(2)]);
    let processor = pool.processor(|n: u32| async move { n });
    assert_send(processor.submit(3)).await.unwrap().await.unwrap();
    assert_send(processor.submit_batch([4])).await.unwrap().await;
    let report = assert_send(pool.shutdown(std::time::Duration::from_secs(1))).await;
    assert!(report.is_clean());
    assert_send(pool.shutdown_now()).await.unwrap_clean();
    let concurrency = Concurrency::new().unwrap();
    assert_send(concurrency.run_on("sync", Vec::new())).await.unwrap();
    assert!(assert_send(concurrency.wait_deferred(std::time::Duration::ZERO)).await);
}

trait UnwrapClean {
    fn unwrap_clean(self);
}

impl<U> UnwrapClean for PoolShutdown<U> {
    fn unwrap_clean(self) {
        assert!(self.is_clean());
    }
}
