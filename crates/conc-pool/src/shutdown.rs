//! What a shutdown hands back.

/// The result of shutting a pool down: the tasks that never started, handed
/// back (run them, re-submit them elsewhere, or drop them: a dropped one
/// resolves its handle to [`TaskError::NotRun`](crate::TaskError::NotRun)),
/// and how many tasks were still running when the pool stopped waiting.
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
pub struct ShutdownReport<U> {
    /// Tasks that were queued and never started, in the order they would have run.
    pub unstarted: Vec<U>,
    /// Tasks still running when the pool stopped waiting. Async tasks are
    /// cancelled at that point; blocking closures cannot be preempted and
    /// finish on their own.
    pub still_running: usize,
}

impl<U> ShutdownReport<U> {
    /// Whether every accepted task ran to its end before the pool stopped.
    pub fn is_clean(&self) -> bool {
        self.unstarted.is_empty() && self.still_running == 0
    }
}
