//! The [`Registry`] of named components.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use super::deadline::DeadlineTimer;
use super::{Component, RegistryError, ShutdownReport, StopError};
use crate::metrics::{MetricEntry, MetricValue};

/// A set of named components, started in registration order and stopped in
/// reverse, with their metrics aggregated.
///
/// Reverse order matters: a component registered after another usually
/// depends on it (a queue worker on its pool), so it stops first.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::time::{Duration, Instant};
/// use conc_core::lifecycle::{Lifecycle, Registry};
/// use conc_core::metrics::MetricsSource;
/// use conc_core::{BoxError, BoxFuture};
///
/// #[derive(Debug)]
/// struct Service { name: &'static str, running: AtomicBool }
///
/// impl Lifecycle for Service {
///     fn name(&self) -> &str { self.name }
///     fn start(&self) -> BoxFuture<'_, Result<(), BoxError>> {
///         Box::pin(async move { self.running.store(true, Ordering::SeqCst); Ok(()) })
///     }
///     fn stop(&self, _deadline: Instant) -> BoxFuture<'_, Result<(), BoxError>> {
///         Box::pin(async move { self.running.store(false, Ordering::SeqCst); Ok(()) })
///     }
///     fn is_running(&self) -> bool { self.running.load(Ordering::SeqCst) }
/// }
/// impl MetricsSource for Service {
///     type Snapshot = ();
///     fn metrics(&self) {}
///     fn reset_metrics(&self) {}
/// }
///
/// # futures_lite_block_on(async {
/// let registry = Registry::new();
/// for name in ["pool", "worker"] {
///     registry.register(Arc::new(Service { name, running: AtomicBool::new(false) }))?;
/// }
/// registry.start_all().await?;
/// let report = registry.shutdown_all(Instant::now() + Duration::from_secs(5)).await;
/// assert_eq!(report.stopped, ["worker", "pool"]);
/// assert!(report.is_clean());
/// # Ok::<(), BoxError>(())
/// # }).unwrap();
/// # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let waker = std::task::Waker::noop();
/// #     let mut cx = std::task::Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// # }
/// ```
#[derive(Default)]
pub struct Registry {
    /// Components with the name each had when registered. The lock is never
    /// held while component code runs, so components may call the registry.
    entries: RwLock<Vec<Entry>>,
}

#[derive(Clone)]
struct Entry {
    name: String,
    component: Arc<dyn Component>,
}

/// A component's name and whether it is running, as listed by [`Registry::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ComponentStatus {
    /// The component's name.
    pub name: String,
    /// Whether it reported itself running.
    pub running: bool,
}

/// The metrics of every registered component, from [`Registry::metrics`].
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct RegistryMetrics {
    /// Each component's entries, in registration order.
    pub components: Vec<(String, Vec<MetricEntry>)>,
}

impl RegistryMetrics {
    /// The sum of the counts named `name` across all components.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_core::lifecycle::RegistryMetrics;
    ///
    /// assert_eq!(RegistryMetrics::default().total_count("conc.pool.tasks.completed"), 0);
    /// ```
    pub fn total_count(&self, name: &str) -> u64 {
        self.entries_named(name)
            .filter_map(|value| match value {
                MetricValue::Count(n) => Some(n),
                _ => None,
            })
            .fold(0u64, u64::saturating_add)
    }

    /// The sum of the gauges named `name` across all components.
    pub fn total_gauge(&self, name: &str) -> f64 {
        self.entries_named(name)
            .filter_map(|value| match value {
                MetricValue::Gauge(v) => Some(v),
                _ => None,
            })
            .sum()
    }

    fn entries_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = MetricValue> + 'a {
        self.components
            .iter()
            .flat_map(|(_, entries)| entries)
            .filter(move |entry| entry.name == name)
            .map(|entry| entry.value)
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `component` under its [`name`](super::Lifecycle::name).
    ///
    /// # Errors
    ///
    /// [`RegistryError::Duplicate`] when the name is taken; the registry is
    /// unchanged.
    pub fn register(&self, component: Arc<dyn Component>) -> Result<(), RegistryError> {
        // Read the name before taking the lock: it is component code.
        let name = component.name().to_owned();
        let mut entries = self.write();
        if entries.iter().any(|entry| entry.name == name) {
            return Err(RegistryError::Duplicate { name });
        }
        entries.push(Entry { name, component });
        Ok(())
    }

    /// Removes the component named `name` and hands it back. It is not stopped.
    ///
    /// # Errors
    ///
    /// [`RegistryError::NotFound`] when no component has that name.
    pub fn unregister(&self, name: &str) -> Result<Arc<dyn Component>, RegistryError> {
        let mut entries = self.write();
        let index = entries
            .iter()
            .position(|entry| entry.name == name)
            .ok_or_else(|| RegistryError::NotFound { name: name.to_owned() })?;
        Ok(entries.remove(index).component)
    }

    /// The component named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Component>> {
        self.read()
            .iter()
            .find(|entry| entry.name == name)
            .map(|entry| Arc::clone(&entry.component))
    }

    /// The component named `name` as its concrete type, if it is a `C`.
    pub fn get_as<C: Any + Send + Sync>(&self, name: &str) -> Option<Arc<C>> {
        self.get(name)?.into_any().downcast::<C>().ok()
    }

    /// Every component's name and running state, in registration order.
    pub fn list(&self) -> Vec<ComponentStatus> {
        self.snapshot()
            .into_iter()
            .map(|entry| ComponentStatus {
                running: entry.component.is_running(),
                name: entry.name,
            })
            .collect()
    }

    /// How many components are registered.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether no component is registered.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Every component's metrics, in registration order.
    pub fn metrics(&self) -> RegistryMetrics {
        let components = self
            .snapshot()
            .into_iter()
            .map(|entry| {
                let entries = entry.component.metric_entries();
                (entry.name, entries)
            })
            .collect();
        RegistryMetrics { components }
    }

    /// Resets every component's metrics.
    pub fn reset_metrics(&self) {
        for entry in self.snapshot() {
            entry.component.reset_component_metrics();
        }
    }

    /// Starts every component in registration order, stopping at the first
    /// failure. Components started before the failure keep running; call
    /// [`shutdown_all`](Registry::shutdown_all) to stop them.
    ///
    /// # Errors
    ///
    /// [`RegistryError::StartFailed`] naming the component that failed and carrying its error.
    pub async fn start_all(&self) -> Result<(), RegistryError> {
        for entry in self.snapshot() {
            entry
                .component
                .start()
                .await
                .map_err(|source| RegistryError::StartFailed { name: entry.name, source })?;
        }
        Ok(())
    }

    /// Stops every component in reverse registration order, each with the
    /// same `deadline`, and reports each one that failed or overran it.
    ///
    /// The deadline is hard. A component still stopping when it passes is
    /// abandoned (its stop future is dropped) and reported as
    /// [`StopError::DeadlineExceeded`]. Every component after it is still
    /// asked to stop, but its stop future is polled once only: if it cannot
    /// finish at once it is abandoned and reported too. So give components
    /// that must drain (a pool below its workers) a deadline that leaves room
    /// for the ones stopped before them. Components stay registered.
    pub async fn shutdown_all(&self, deadline: Instant) -> ShutdownReport {
        let timer = DeadlineTimer::start(deadline);
        let mut report = ShutdownReport::default();
        for Entry { name, component } in self.snapshot().into_iter().rev() {
            match timer.race(component.stop(deadline)).await {
                Some(Ok(())) => report.stopped.push(name),
                Some(Err(error)) => report.failed.push((name, StopError::Failed(error))),
                None => report.failed.push((name, StopError::DeadlineExceeded)),
            }
        }
        report
    }

    /// The entries, cloned out so no lock is held while component code runs.
    fn snapshot(&self) -> Vec<Entry> {
        self.read().clone()
    }

    fn read(&self) -> RwLockReadGuard<'_, Vec<Entry>> {
        // No component code runs while the lock is held, so poisoning cannot
        // leave the list half-changed.
        self.entries.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Vec<Entry>> {
        self.entries.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.read().iter().map(|entry| &entry.name)).finish()
    }
}
