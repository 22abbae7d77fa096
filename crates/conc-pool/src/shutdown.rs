//! What a pool's shutdown hands back.

/// What shutting a pool down handed back: the tasks that never started (run
/// them, re-submit them elsewhere, or drop them: a dropped one resolves its
/// handle to [`JoinError::NotRun`](crate::JoinError::NotRun)), and how many
/// tasks were still running when the pool stopped waiting.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_pool::BlockingPool;
///
/// let pool = BlockingPool::builder().workers(2).build()?;
/// let handles: Vec<_> = (0..10).map(|i| pool.submit(move || i).unwrap()).collect();
/// let report = pool.shutdown(Duration::from_secs(5));
/// assert!(report.unstarted.is_empty() && report.still_running == 0);
/// for (i, handle) in handles.into_iter().enumerate() {
///     assert_eq!(handle.join()?, i);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
#[must_use = "a pool shutdown hands back the tasks that never started"]
pub struct PoolShutdown<U> {
    /// Tasks that were queued and never started, in the order they would have run.
    pub unstarted: Vec<U>,
    /// Tasks still running when the pool stopped waiting. Async tasks are
    /// cancelled at that point; blocking closures cannot be preempted and
    /// finish on their own.
    pub still_running: usize,
}

impl<U> PoolShutdown<U> {
    /// Whether every accepted task ran to its end before the pool stopped.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_pool::BlockingPool;
    ///
    /// let pool = BlockingPool::builder().workers(1).build()?;
    /// assert!(pool.shutdown(Duration::from_secs(1)).is_clean());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_clean(&self) -> bool {
        self.unstarted.is_empty() && self.still_running == 0
    }

    /// Why a [`Lifecycle::stop`](conc_core::lifecycle::Lifecycle::stop) that
    /// ended this way did not stop cleanly; `None` when it did.
    pub(crate) fn stop_error(&self, pool: &str) -> Option<conc_core::BoxError> {
        (!self.is_clean()).then(|| {
            format!(
                "pool `{pool}` stopped at its deadline with {} queued tasks never started and {} still running",
                self.unstarted.len(),
                self.still_running
            )
            .into()
        })
    }
}
