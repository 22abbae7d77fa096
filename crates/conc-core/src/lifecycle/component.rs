//! The [`Lifecycle`] trait and the type-erased [`Component`] a registry holds.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use crate::metrics::{MetricEntry, MetricsSnapshot, MetricsSource};
use crate::{BoxError, BoxFuture};

/// A long-lived component that starts, runs and stops gracefully: a worker
/// pool, a queue worker, a process supervisor, a scheduler.
///
/// `stop` receives a deadline: the component stops accepting work, finishes
/// what it can before the deadline, then abandons the rest and returns. A
/// [`Registry`](super::Registry) enforces the deadline from outside as well,
/// so a component that overruns is reported rather than waited for forever.
///
/// The methods return [`BoxFuture`] so the trait stays object-safe; implement
/// them with `Box::pin(async move { … })`.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::time::Instant;
/// use conc_core::lifecycle::Lifecycle;
/// use conc_core::{BoxError, BoxFuture};
///
/// #[derive(Debug, Default)]
/// struct Heartbeat { running: AtomicBool }
///
/// impl Lifecycle for Heartbeat {
///     fn name(&self) -> &str { "heartbeat" }
///     fn start(&self) -> BoxFuture<'_, Result<(), BoxError>> {
///         Box::pin(async move {
///             self.running.store(true, Ordering::SeqCst);
///             Ok(())
///         })
///     }
///     fn stop(&self, _deadline: Instant) -> BoxFuture<'_, Result<(), BoxError>> {
///         Box::pin(async move {
///             self.running.store(false, Ordering::SeqCst);
///             Ok(())
///         })
///     }
///     fn is_running(&self) -> bool { self.running.load(Ordering::SeqCst) }
/// }
/// # let _ = Heartbeat::default();
/// ```
pub trait Lifecycle: Send + Sync + fmt::Debug {
    /// The component's name, unique within a [`Registry`](super::Registry).
    /// It must not change while the component is registered.
    fn name(&self) -> &str;

    /// Starts the component. Starting a running component is not an error.
    fn start(&self) -> BoxFuture<'_, Result<(), BoxError>>;

    /// Stops the component gracefully, giving up on remaining work at
    /// `deadline`. Stopping a stopped component is not an error.
    fn stop(&self, deadline: Instant) -> BoxFuture<'_, Result<(), BoxError>>;

    /// Whether the component is running now.
    fn is_running(&self) -> bool;
}

/// A registered component, with its type erased: its [`Lifecycle`] plus its
/// metrics as flat entries.
///
/// Implemented for every `T: Lifecycle + MetricsSource + 'static`; you never
/// implement it yourself. A component with no metrics uses `()` as its
/// [`MetricsSource::Snapshot`].
///
/// # Examples
///
/// ```
/// # use std::sync::Arc;
/// # use std::time::Instant;
/// # use conc_core::lifecycle::{Component, Lifecycle};
/// # use conc_core::metrics::MetricsSource;
/// # use conc_core::{BoxError, BoxFuture};
/// # #[derive(Debug)] struct Idle;
/// # impl Lifecycle for Idle {
/// #     fn name(&self) -> &str { "idle" }
/// #     fn start(&self) -> BoxFuture<'_, Result<(), BoxError>> { Box::pin(async { Ok(()) }) }
/// #     fn stop(&self, _: Instant) -> BoxFuture<'_, Result<(), BoxError>> { Box::pin(async { Ok(()) }) }
/// #     fn is_running(&self) -> bool { false }
/// # }
/// impl MetricsSource for Idle {
///     type Snapshot = ();
///     fn metrics(&self) {}
///     fn reset_metrics(&self) {}
/// }
/// let component: Arc<dyn Component> = Arc::new(Idle);
/// assert_eq!(component.name(), "idle");
/// assert!(component.metric_entries().is_empty());
/// ```
pub trait Component: Lifecycle {
    /// The component's metrics snapshot as flat entries.
    fn metric_entries(&self) -> Vec<MetricEntry>;

    /// Resets the component's metrics (see [`MetricsSource::reset_metrics`]).
    fn reset_component_metrics(&self);

    /// The component as `Any`, so a registry can hand back its concrete type.
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<T> Component for T
where
    T: Lifecycle + MetricsSource + 'static,
{
    fn metric_entries(&self) -> Vec<MetricEntry> {
        self.metrics().entries()
    }

    fn reset_component_metrics(&self) {
        self.reset_metrics();
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}
