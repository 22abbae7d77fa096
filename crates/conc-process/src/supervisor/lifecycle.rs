//! The supervisor as a [`Lifecycle`] component.

use std::time::Instant;

use conc_core::lifecycle::Lifecycle;
use conc_core::{BoxError, BoxFuture};
use tokio::sync::watch;

use super::{Order, Supervisor};

/// A supervisor is running from `build`. [`stop`](Lifecycle::stop) sends
/// `SIGTERM` to every child's process group, `SIGKILL` after the
/// [`shutdown_grace`](super::SupervisorBuilder::shutdown_grace) or 50 ms
/// before the deadline (so the children are reaped by it), whichever comes
/// first, stops restarting, and returns once every
/// child is down. [`start`](Lifecycle::start) after a stop starts every
/// supervised child again, each from its first run.
///
/// ```
/// use std::sync::Arc;
/// use std::time::{Duration, Instant};
/// use conc_core::lifecycle::{Lifecycle, Registry};
/// use conc_process::{Process, Supervisor};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let supervisor = Arc::new(Supervisor::builder().name("workers").build()?);
/// supervisor.supervise("sleeper", || Process::new("sleep").arg("30").quiet())?;
/// let registry = Registry::new();
/// registry.register(supervisor.clone())?;
///
/// let report = registry.shutdown_all(Instant::now() + Duration::from_secs(5)).await;
/// assert!(report.is_clean(), "{report}");
/// assert!(!supervisor.is_running());
/// # Ok(()) }
/// ```
impl Lifecycle for Supervisor {
    fn name(&self) -> &str {
        &self.name
    }

    fn start(&self) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(async move {
            let runtime = tokio::runtime::Handle::try_current()?;
            let mut inner = self.lock();
            if !inner.stopped {
                return Ok(());
            }
            inner.stopped = false;
            // A new channel: loops of the stopped generation keep seeing `Stop`.
            inner.order = watch::Sender::new(Order::Run);
            for entry in &inner.children {
                self.spawn_loop(&runtime, entry, inner.order.subscribe());
            }
            Ok(())
        })
    }

    fn stop(&self, deadline: Instant) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(async move {
            self.stop_children(crate::time::kill_time(deadline)).await;
            Ok(())
        })
    }

    fn is_running(&self) -> bool {
        !self.lock().stopped
    }
}
