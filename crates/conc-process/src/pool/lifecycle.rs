//! The pool as a [`Lifecycle`] component.

use std::time::Instant;

use conc_core::lifecycle::Lifecycle;
use conc_core::{BoxError, BoxFuture};

use super::{ProcessPool, State};

/// A pool is running from `build`. [`stop`](Lifecycle::stop) starts no more
/// jobs in any run of the pool or its clones, lets the running jobs finish
/// until shortly before the deadline, kills the process groups of those still
/// running then (50 ms before it, so they are reaped by it), and returns once
/// every run has ended; jobs that never ran or were
/// killed are [`ProcessError::Cancelled`](crate::ProcessError::Cancelled).
/// [`start`](Lifecycle::start) lets jobs start again.
///
/// ```
/// use std::sync::Arc;
/// use std::time::{Duration, Instant};
/// use conc_core::lifecycle::{Lifecycle, Registry};
/// use conc_process::{Process, ProcessError, ProcessPool};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = ProcessPool::builder().name("builds").build()?;
/// let registry = Registry::new();
/// registry.register(Arc::new(pool.clone()))?;
///
/// let report = registry.shutdown_all(Instant::now() + Duration::from_secs(5)).await;
/// assert_eq!(report.stopped, ["builds"]);
/// assert!(!pool.is_running());
/// let results = pool.run([("late", Process::new("true"))]).await?;
/// assert!(matches!(results.get("late"), Some(Err(ProcessError::Cancelled { .. }))));
/// # Ok(()) }
/// ```
impl Lifecycle for ProcessPool {
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn start(&self) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(async move {
            self.shared.control.send_modify(|control| control.state = State::Open);
            Ok(())
        })
    }

    fn stop(&self, deadline: Instant) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(async move {
            let kill_at = crate::time::kill_time(deadline);
            self.shared.control.send_modify(|control| {
                let kill_at = match control.state {
                    State::Open => kill_at,
                    State::Stopping { kill_at: earlier } => crate::time::earlier(earlier, kill_at),
                };
                control.state = State::Stopping { kill_at };
            });
            let mut control = self.shared.control.subscribe();
            // The sender lives in `self`, so this ends when the runs do.
            let _ = control.wait_for(|control| control.runs == 0).await;
            Ok(())
        })
    }

    fn is_running(&self) -> bool {
        self.shared.control.borrow().state == State::Open
    }
}
