//! [`LockMetrics`]: what a [`LockStore`](crate::LockStore) counted, and the
//! `conc.lock.*` metrics it emits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use conc_core::metrics::{
    LOCK_ACQUIRED, LOCK_CONTENDED, LOCK_EXPIRED, LOCK_HOLD, LOCK_RELEASED, MetricEntry,
    MetricValue, MetricsSnapshot, StripedCounter,
};

/// A snapshot of the acquisitions, refusals, releases and losses of every
/// lock and funnel of one [`LockStore`](crate::LockStore) (and its clones).
///
/// The same events reach the `metrics` facade as `conc.lock.acquired`,
/// `conc.lock.contended`, `conc.lock.released`, `conc.lock.expired` and the
/// `conc.lock.hold` histogram (seconds from acquisition to release).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_lock::LockStore;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_lock::LockError> {
/// let store = LockStore::memory();
/// let guard = store.lock("job", Duration::from_secs(5))?.get().await?.expect("free");
/// assert!(store.lock("job", Duration::from_secs(5))?.get().await?.is_none());
/// guard.release().await?;
/// let metrics = store.metrics();
/// assert_eq!((metrics.acquired, metrics.contended, metrics.released, metrics.expired), (1, 1, 1, 0));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
#[must_use]
pub struct LockMetrics {
    /// Locks and funnel slots acquired.
    pub acquired: u64,
    /// Attempts refused because someone else held the lock (or every slot).
    pub contended: u64,
    /// Holds released by their owner (explicitly, or by a dropped guard).
    pub released: u64,
    /// Holds found gone at release or extension: their time to live ran out
    /// first (the lock was lost).
    pub expired: u64,
}

impl MetricsSnapshot for LockMetrics {
    fn entries(&self) -> Vec<MetricEntry> {
        vec![
            MetricEntry::new(LOCK_ACQUIRED, MetricValue::Count(self.acquired)),
            MetricEntry::new(LOCK_CONTENDED, MetricValue::Count(self.contended)),
            MetricEntry::new(LOCK_RELEASED, MetricValue::Count(self.released)),
            MetricEntry::new(LOCK_EXPIRED, MetricValue::Count(self.expired)),
        ]
    }
}

/// The counts behind [`LockMetrics`], shared by a store and its clones, and
/// the facade handles they are reported through.
///
/// Acquisitions and releases, counted on every uncontended cycle, are kept
/// on stripes each thread alone writes ([`StripedCounter`]: no locked
/// instruction); refusals and losses in plain shared counters.
#[derive(Debug)]
pub(crate) struct Counters {
    acquired: StripedCounter,
    released: StripedCounter,
    contended: AtomicU64,
    expired: AtomicU64,
    handles: Handles,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            acquired: StripedCounter::new(),
            released: StripedCounter::new(),
            contended: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            handles: Handles::default(),
        }
    }
}

/// Facade handles registered once when the store is made, so an acquisition
/// or release increments a handle (nothing at all without a recorder)
/// instead of looking its metric up in the recorder each time.
#[derive(Debug)]
struct Handles {
    acquired: metrics::Counter,
    contended: metrics::Counter,
    released: metrics::Counter,
    expired: metrics::Counter,
    hold: metrics::Histogram,
}

impl Default for Handles {
    fn default() -> Self {
        Self {
            acquired: metrics::counter!(LOCK_ACQUIRED),
            contended: metrics::counter!(LOCK_CONTENDED),
            released: metrics::counter!(LOCK_RELEASED),
            expired: metrics::counter!(LOCK_EXPIRED),
            hold: metrics::histogram!(LOCK_HOLD),
        }
    }
}

impl Counters {
    #[inline]
    pub(crate) fn acquired(&self) {
        self.acquired.increment();
        self.handles.acquired.increment(1);
    }

    pub(crate) fn contended(&self) {
        self.contended.fetch_add(1, Ordering::Relaxed);
        self.handles.contended.increment(1);
    }

    /// A hold released after `held` (unknown for a restored handle).
    #[inline]
    pub(crate) fn released(&self, held: Option<Duration>) {
        self.released.increment();
        self.handles.released.increment(1);
        if let Some(held) = held {
            self.handles.hold.record(held.as_secs_f64());
        }
    }

    pub(crate) fn expired(&self) {
        self.expired.fetch_add(1, Ordering::Relaxed);
        self.handles.expired.increment(1);
    }

    pub(crate) fn snapshot(&self) -> LockMetrics {
        LockMetrics {
            acquired: self.acquired.sum(),
            contended: self.contended.load(Ordering::Relaxed),
            released: self.released.sum(),
            expired: self.expired.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn reset(&self) {
        self.acquired.reset();
        self.released.reset();
        for count in [&self.contended, &self.expired] {
            count.store(0, Ordering::Relaxed);
        }
    }
}
