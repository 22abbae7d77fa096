//! The [`LockBackend`] trait every store implements.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::{Fence, LockError, Owner};

/// The outcome of one acquisition attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Acquisition {
    /// The lock was free (or its holder's time to live had run out) and is
    /// now held by the caller, with this fence.
    Acquired(Fence),
    /// Someone else holds the lock.
    Busy {
        /// How long until the current hold expires, when the backend knows.
        retry_after: Option<Duration>,
    },
}

/// The outcome of an attempt to take any one of several slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlotAcquisition {
    /// Slot `slot` (an index into the names given) is now held by the caller.
    Acquired {
        /// The index of the slot taken.
        slot: usize,
        /// Its fence.
        fence: Fence,
    },
    /// Every slot is held by someone else.
    Busy {
        /// How long until the first hold expires, when the backend knows.
        retry_after: Option<Duration>,
    },
}

/// Storage for locks: where names, owners, fences and expiry times live.
///
/// [`LockStore`](crate::LockStore) puts the user-facing API (blocking with
/// backoff, guards, keep-alive, funnels) on top of any backend. Every backend
/// keeps the same contract, checked by the crate's conformance suite:
///
/// - `acquire` succeeds only when no unexpired hold exists for the name, and
///   then returns a fence greater than every fence returned for that name
///   before, by any owner, including across release and (for durable
///   backends) restarts;
/// - a hold expires `ttl` after it was taken or last extended;
/// - `release` and `extend` act only for the current, unexpired owner and
///   return `false` otherwise (the lock was lost);
/// - names given to [`prepare`](Self::prepare) are either a lock name
///   (validated: non-empty, at most 512 bytes, no control characters) or a
///   funnel slot name: the funnel's name, the separator U+001F, then `slot`
///   and the slot number (so up to 522 bytes; the separator never occurs in
///   lock names, so slots never collide with locks); times to live arrive
///   validated: whole milliseconds, at least 1 ms.
///
/// Methods return futures; in-memory backends return ready ones.
pub trait LockBackend: Send + Sync + fmt::Debug + 'static {
    /// What a backend keeps per lock handle to make repeated operations on
    /// one name cheap (the in-memory backend keeps the name's slot; network
    /// backends keep their key strings). Made once by [`prepare`](Self::prepare).
    type Prepared: Send + Sync + fmt::Debug + 'static;

    /// Prepares the handle state for `name`; handles on the same name may
    /// share it.
    fn prepare(&self, name: &str) -> Arc<Self::Prepared>;

    /// The name `prepared` was made for, when it keeps one, as a shared
    /// string (the in-memory backend's slots keep their names, and give a
    /// copy). Defaults to `None`.
    fn prepared_name(_prepared: &Self::Prepared) -> Option<Arc<str>> {
        None
    }

    /// The name `prepared` was made for, borrowed, when it keeps one (the
    /// in-memory backend's slots do), so a handle needs no copy of its own.
    /// Defaults to `None`.
    fn name_of(_prepared: &Self::Prepared) -> Option<&str> {
        None
    }

    /// Whether [`name_of`](Self::name_of) returns the name of every prepared
    /// state, so that a handle keeps no copy of its own without asking it
    /// first (the in-memory backend's slots keep their names as bytes, and
    /// `name_of` checks them). Defaults to `false`.
    const KEEPS_NAMES: bool = false;

    /// Takes `name` for `owner` for `ttl` if nobody holds it.
    fn acquire(
        &self,
        name: &Self::Prepared,
        owner: &Owner,
        ttl: Duration,
    ) -> impl Future<Output = Result<Acquisition, LockError>> + Send;

    /// [`acquire`](Self::acquire) answered at once, without a future, by a
    /// backend that never waits (the in-memory one); `None`, the default,
    /// sends callers to `acquire`. Handles try it first, so an in-memory
    /// acquisition costs no future.
    #[inline]
    fn acquire_ready(
        &self,
        _name: &Self::Prepared,
        _owner: &Owner,
        _ttl: Duration,
    ) -> Option<Result<Acquisition, LockError>> {
        None
    }

    /// Takes the first free name of `names` for `owner` for `ttl`.
    ///
    /// The default tries the names one by one; backends that can do it in one
    /// round trip override it.
    fn acquire_any(
        &self,
        names: &[Arc<Self::Prepared>],
        owner: &Owner,
        ttl: Duration,
    ) -> impl Future<Output = Result<SlotAcquisition, LockError>> + Send {
        async move {
            let mut soonest: Option<Duration> = None;
            for (slot, name) in names.iter().enumerate() {
                match self.acquire(name, owner, ttl).await? {
                    Acquisition::Acquired(fence) => {
                        return Ok(SlotAcquisition::Acquired { slot, fence });
                    }
                    Acquisition::Busy { retry_after } => {
                        soonest = match (soonest, retry_after) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            (a, b) => a.or(b),
                        };
                    }
                }
            }
            Ok(SlotAcquisition::Busy { retry_after: soonest })
        }
    }

    /// Releases `name` if `owner` holds it. `Ok(false)` means it did not (the
    /// hold expired, and perhaps someone else took the lock).
    fn release(
        &self,
        name: &Self::Prepared,
        owner: &Owner,
    ) -> impl Future<Output = Result<bool, LockError>> + Send;

    /// Releases `name` if `owner` holds it under `fence`, the hold a guard
    /// was given. Unlike [`release`](Self::release), it cannot free a later
    /// hold that the same owner took after this one expired (a handle can
    /// acquire again once its old hold lapsed, while the old guard is still
    /// around). `Ok(false)` means that hold is gone.
    fn release_hold(
        &self,
        name: &Self::Prepared,
        owner: &Owner,
        fence: Fence,
    ) -> impl Future<Output = Result<bool, LockError>> + Send;

    /// [`release_hold`](Self::release_hold) answered at once, as
    /// [`acquire_ready`](Self::acquire_ready) is for `acquire`. Defaults to
    /// `None`.
    #[inline]
    fn release_hold_ready(
        &self,
        _name: &Self::Prepared,
        _owner: &Owner,
        _fence: Fence,
    ) -> Option<Result<bool, LockError>> {
        None
    }

    /// Resets the time to live of `owner`'s hold on `name` to `ttl` from now.
    /// `Ok(false)` means `owner` no longer holds it.
    fn extend(
        &self,
        name: &Self::Prepared,
        owner: &Owner,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, LockError>> + Send;

    /// The owner of the unexpired hold on `name`, if any.
    fn owner(
        &self,
        name: &Self::Prepared,
    ) -> impl Future<Output = Result<Option<Owner>, LockError>> + Send;

    /// Releases `name` whoever holds it. `Ok(true)` if an unexpired hold was removed.
    fn force_release(
        &self,
        name: &Self::Prepared,
    ) -> impl Future<Output = Result<bool, LockError>> + Send;

    /// Releases the hold (`fence`) whose guard was dropped without an
    /// explicit release.
    ///
    /// Best effort: the default spawns the release on the current tokio
    /// runtime, and does nothing outside one (the hold then expires with its
    /// time to live). In-memory backends release synchronously.
    fn release_on_drop(self: Arc<Self>, name: Arc<Self::Prepared>, owner: Owner, fence: Fence) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = self.release_hold(&name, &owner, fence).await {
                    tracing::debug!(lock = ?name, %error, "release of a dropped lock guard failed");
                }
            });
        } else {
            tracing::debug!(
                lock = ?name,
                "lock guard dropped outside a runtime: the hold expires with its ttl"
            );
        }
    }
}
