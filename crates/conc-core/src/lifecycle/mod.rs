//! Named long-lived components: start, graceful stop with a deadline, and a
//! [`Registry`] that shuts them all down in reverse order.
//!
//! Pools, queue workers, supervisors and schedulers implement [`Lifecycle`]
//! (and [`MetricsSource`](crate::metrics::MetricsSource)); an application
//! registers them and, on shutdown, calls [`Registry::shutdown_all`] with one
//! deadline. The report names every component that failed to stop or overran
//! the deadline, so nothing hangs a shutdown silently.
//!
//! See [`Registry`] for a complete example.

mod component;
mod deadline;
mod error;
mod registry;

pub use component::{Component, Lifecycle};
pub use error::{RegistryError, ShutdownReport, StopError};
pub use registry::{ComponentStatus, Registry, RegistryMetrics};
