//! [`LockGuard`]: a held lock.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use conc_core::time::CoarseClock;
use tokio::task::JoinHandle;

use crate::{Fence, Lock, LockBackend, LockError, Owner};

/// A held lock. Release it with [`release`](LockGuard::release); a guard
/// dropped without release is released in the background, best effort (see
/// [`LockBackend::release_on_drop`]), and otherwise expires with its time to
/// live.
///
/// The [`fence`](LockGuard::fence) is the hold's fencing token: pass it with
/// every write to the protected resource.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_lock::{LockError, LockStore};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), LockError> {
/// let store = LockStore::memory();
/// let first = store.lock("cache:warm", Duration::from_secs(5))?.get().await?.unwrap();
/// let first_fence = first.fence();
/// first.release().await?;
///
/// let second = store.lock("cache:warm", Duration::from_secs(5))?.get().await?.unwrap();
/// assert!(second.fence() > first_fence, "fences only grow");
/// second.extend(Duration::from_secs(5)).await?;
/// second.release().await?;
/// # Ok(()) }
/// ```
#[must_use = "a lock guard releases the lock (best effort) when dropped"]
pub struct LockGuard<B: LockBackend> {
    lock: Lock<B>,
    fence: Fence,
    // Boxed: most guards never keep alive, and a smaller guard is cheaper to
    // move through the futures that return and release it.
    keep_alive: Option<Box<KeepAlive>>,
    released: bool,
    /// When the hold was taken, as the coarse clock's time since its origin
    /// (one atomic load, no `Instant` arithmetic), for the `conc.lock.hold`
    /// histogram.
    acquired_at: Duration,
}

/// The future of [`LockGuard::release`]: the outcome of a release made at
/// once, or the round trip of one that waits for the backend (boxed: a round
/// trip costs far more than the allocation).
enum Release {
    Done(Option<Result<(), LockError>>),
    Pending(Pin<Box<dyn Future<Output = Result<(), LockError>> + Send>>),
}

impl Future for Release {
    type Output = Result<(), LockError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Release::Done(outcome) => match outcome.take() {
                Some(outcome) => Poll::Ready(outcome),
                None => panic!("a lock release future polled after it completed"),
            },
            Release::Pending(round_trip) => round_trip.as_mut().poll(cx),
        }
    }
}

/// The background task of [`LockGuard::keep_alive`].
#[derive(Debug)]
struct KeepAlive {
    task: JoinHandle<()>,
    lost: Arc<AtomicBool>,
}

impl<B: LockBackend> LockGuard<B> {
    // Built in place in the future that returns it: returned through memory
    // and copied, its fields were read back before their stores had landed
    // (a stall that cost about as much as one of the hold's atomic
    // operations; perf on `lock/uncontended`).
    #[allow(clippy::inline_always, reason = "measured: the hint alone leaves it out of line")]
    #[inline(always)]
    pub(crate) fn new(lock: Lock<B>, fence: Fence) -> Self {
        lock.store().counters().acquired();
        let acquired_at = CoarseClock::global().elapsed();
        Self { lock, fence, keep_alive: None, released: false, acquired_at }
    }

    fn held(&self) -> Duration {
        CoarseClock::global().elapsed().saturating_sub(self.acquired_at)
    }

    /// The fencing token of this hold.
    pub fn fence(&self) -> Fence {
        self.fence
    }

    /// The lock's name.
    pub fn name(&self) -> &str {
        self.lock.name()
    }

    /// The owner holding the lock.
    pub fn owner(&self) -> &Owner {
        self.lock.owner()
    }

    /// Releases the lock.
    ///
    /// A backend that answers at once (the in-memory one) releases when this
    /// is called, and the future only hands back the outcome: the guard is
    /// not moved into a future first, which on an uncontended lock cost as
    /// much as one of the hold's atomic operations. Others release when the
    /// future is polled; dropped before the backend answered, the guard
    /// releases on drop.
    ///
    /// # Errors
    ///
    /// [`LockError::Lost`] when the hold had expired (another owner may have
    /// taken the lock meanwhile); [`LockError::Backend`] when the backend
    /// fails (the hold then expires with its time to live).
    pub fn release(mut self) -> impl Future<Output = Result<(), LockError>> + Send + 'static {
        self.stop_keep_alive();
        let ready = {
            let (prepared, owner) = (self.lock.prepared(), self.lock.owner());
            self.lock.store().backend().release_hold_ready(prepared, owner, self.fence)
        };
        match ready {
            Some(released) => Release::Done(Some(self.settle(released))),
            None => Release::Pending(Box::pin(async move {
                let released = {
                    let (prepared, owner) = (self.lock.prepared(), self.lock.owner());
                    self.lock.store().backend().release_hold(prepared, owner, self.fence).await
                };
                self.settle(released)
            })),
        }
    }

    /// Records the backend's answer to a release.
    fn settle(&mut self, released: Result<bool, LockError>) -> Result<(), LockError> {
        // Only now: a release future dropped during the round trip leaves the
        // guard to release on drop. Both releases name this hold's fence, so
        // neither can free a later hold of the same owner.
        self.released = true;
        let counters = self.lock.store().counters();
        if released? {
            counters.released(Some(self.held()));
            Ok(())
        } else {
            counters.expired();
            Err(self.lost())
        }
    }

    /// Resets the hold's time to live to `ttl` from now.
    ///
    /// # Errors
    ///
    /// [`LockError::Config`] for a bad `ttl`; [`LockError::Lost`] when the hold had
    /// already expired; [`LockError::Backend`] when the backend fails.
    pub async fn extend(&self, ttl: Duration) -> Result<(), LockError> {
        if self.lock.extend(ttl).await? {
            Ok(())
        } else {
            self.lock.store().counters().expired();
            Err(self.lost())
        }
    }

    /// Keeps the hold alive in the background: a tokio task extends it by the
    /// lock's time to live every third of that time, until the guard is
    /// released or dropped, or an extension finds the hold lost (then
    /// [`is_lost`](LockGuard::is_lost) turns true and the task stops).
    ///
    /// Use it for work of unknown length; the hold still ends if this process
    /// stalls for longer than the time to live, which is what the fence is for.
    /// Must be called inside a tokio runtime.
    pub fn keep_alive(mut self) -> Self {
        self.stop_keep_alive();
        let lost = Arc::new(AtomicBool::new(false));
        let backend = Arc::clone(self.lock.store().shared_backend());
        let prepared = Arc::clone(self.lock.prepared());
        let owner = self.lock.owner().clone();
        let ttl = self.lock.ttl();
        let period = (ttl / 3).max(Duration::from_millis(1));
        let flag = Arc::clone(&lost);
        let store = self.lock.store().clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match backend.extend(&prepared, &owner, ttl).await {
                    Ok(true) => {}
                    Ok(false) => {
                        flag.store(true, Ordering::Release);
                        store.counters().expired();
                        tracing::warn!(lock = ?prepared, "kept-alive lock was lost");
                        return;
                    }
                    Err(error) => {
                        // Try again next period; a hold that really lapses is
                        // reported by the next successful round trip.
                        tracing::debug!(lock = ?prepared, %error, "lock keep-alive failed");
                    }
                }
            }
        });
        self.keep_alive = Some(Box::new(KeepAlive { task, lost }));
        self
    }

    /// Whether the keep-alive task found the hold lost. Always `false`
    /// without [`keep_alive`](LockGuard::keep_alive).
    pub fn is_lost(&self) -> bool {
        self.keep_alive.as_ref().is_some_and(|keep_alive| keep_alive.lost.load(Ordering::Acquire))
    }

    #[inline]
    fn stop_keep_alive(&mut self) {
        if let Some(keep_alive) = self.keep_alive.take() {
            keep_alive.task.abort();
        }
    }

    fn lost(&self) -> LockError {
        LockError::Lost { name: self.lock.name().to_owned(), fence: self.fence }
    }
}

impl<B: LockBackend> Drop for LockGuard<B> {
    fn drop(&mut self) {
        self.stop_keep_alive();
        if !self.released {
            self.lock.store().counters().released(Some(self.held()));
            let backend = Arc::clone(self.lock.store().shared_backend());
            backend.release_on_drop(
                Arc::clone(self.lock.prepared()),
                self.lock.owner().clone(),
                self.fence,
            );
        }
    }
}

impl<B: LockBackend> fmt::Debug for LockGuard<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("name", &self.lock.name())
            .field("owner", self.lock.owner())
            .field("fence", &self.fence)
            .field("keep_alive", &self.keep_alive.is_some())
            .finish_non_exhaustive()
    }
}
