//! [`LoadShedder`]: the shedder, and the tower service it becomes around an
//! inner service.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use conc_core::metrics::MetricsSource;

use super::builder::LoadShedderBuilder;
use super::error::Shed;
use super::metrics::ShedMetrics;
use super::shared::Shared;
use super::units::OneUnit;
use crate::loom::sync::atomic::Ordering;

/// Admits work by load units up to a maximum and sheds the rest. Cheap to
/// clone: clones share the load.
///
/// `LoadShedder` (that is, `LoadShedder<(), OneUnit>`) is the shedder on its
/// own: [`try_admit`](Self::try_admit) work. With the `tower` feature a
/// `LoadShedderLayer` turns an inner service `S`
/// into a `LoadShedder<S, U>`: a tower `Service` admitting each request by
/// the units `U` says it costs, with every method of the shedder.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_resilience::{LoadShedder, Shed};
///
/// let shedder = LoadShedder::builder(10).cooldown(Duration::from_secs(1)).build()?;
/// let big = shedder.try_admit(8)?;
/// assert!(matches!(shedder.try_admit(3), Err(Shed::Overloaded { load: 8, units: 3, max_load: 10 })));
/// drop(big);
/// // Still cooling down after the overload.
/// assert!(matches!(shedder.try_admit(1), Err(Shed::CoolingDown { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct LoadShedder<S = (), U = OneUnit> {
    pub(super) shared: Arc<Shared>,
    pub(super) units: U,
    pub(super) inner: S,
}

impl<S: fmt::Debug, U> fmt::Debug for LoadShedder<S, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadShedder")
            .field("name", &self.shared.name)
            .field("metrics", &self.metrics())
            .field("clock", &self.shared.clock)
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S: Clone, U: Clone> Clone for LoadShedder<S, U> {
    fn clone(&self) -> Self {
        Self::from_parts(Arc::clone(&self.shared), self.units.clone(), self.inner.clone())
    }
}

impl LoadShedder {
    /// A builder for a shedder admitting at most `max_load` units at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::LoadShedder;
    ///
    /// let shedder = LoadShedder::builder(4).build()?;
    /// assert_eq!(shedder.try_admit(4)?.units(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(max_load: u64) -> LoadShedderBuilder {
        LoadShedderBuilder::new(max_load)
    }
}

impl<S, U> LoadShedder<S, U> {
    pub(super) fn from_parts(shared: Arc<Shared>, units: U, inner: S) -> Self {
        Self { shared, units, inner }
    }

    /// The same shedder (the same load) around `inner`, charging by `units`.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn wrap<T, V>(&self, units: V, inner: T) -> LoadShedder<T, V> {
        LoadShedder::from_parts(Arc::clone(&self.shared), units, inner)
    }

    /// Admits work costing `units`, or sheds it.
    ///
    /// # Errors
    ///
    /// [`Shed::CoolingDown`] during a cooldown, [`Shed::Overloaded`] when the
    /// load would exceed the maximum (which starts a cooldown).
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::LoadShedder;
    ///
    /// let shedder = LoadShedder::builder(3).build()?;
    /// let permit = shedder.try_admit(2)?;
    /// assert!(shedder.try_admit(2).is_err());
    /// drop(permit);
    /// assert!(shedder.try_admit(2).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_admit(&self, units: u64) -> Result<LoadPermit, Shed> {
        let shared = &*self.shared;
        if shared.cooldown > 0 {
            let until = shared.cooldown_until.load(Ordering::Acquire);
            if until != 0 {
                let now = shared.now();
                if now < until {
                    shared.count_rejection(&shared.cooling);
                    return Err(Shed::CoolingDown { remaining: Duration::from_nanos(until - now) });
                }
            }
        }
        if let Err(load) = shared.take(units) {
            shared.count_rejection(&shared.overloaded);
            shared.start_cooldown();
            return Err(Shed::Overloaded { load, units, max_load: shared.max_load });
        }
        Ok(LoadPermit { shared: Arc::clone(&self.shared), units })
    }

    /// Like [`try_admit`](Self::try_admit) for work that already waited
    /// `waited` in a queue: shed when that is above `max_queue_wait`.
    ///
    /// # Errors
    ///
    /// [`Shed::QueueWait`] (which starts a cooldown), or as [`try_admit`](Self::try_admit).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_resilience::{LoadShedder, Shed};
    ///
    /// let shedder = LoadShedder::builder(10).max_queue_wait(Duration::from_millis(50)).build()?;
    /// let late = shedder.try_admit_after_wait(1, Duration::from_millis(80)).unwrap_err();
    /// assert!(matches!(late, Shed::QueueWait { .. }));
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn try_admit_after_wait(&self, units: u64, waited: Duration) -> Result<LoadPermit, Shed> {
        let shared = &*self.shared;
        if let Some(max) = shared.max_queue_wait
            && waited > max
        {
            shared.count_rejection(&shared.queue_wait);
            shared.start_cooldown();
            return Err(Shed::QueueWait { waited, max });
        }
        self.try_admit(units)
    }

    /// Load in use and refusals so far.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::LoadShedder;
    ///
    /// let shedder = LoadShedder::builder(5).build()?;
    /// let _permit = shedder.try_admit(2)?;
    /// assert_eq!(shedder.metrics().load, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn metrics(&self) -> ShedMetrics {
        let shared = &*self.shared;
        let until = shared.cooldown_until.load(Ordering::Acquire);
        ShedMetrics {
            load: shared.load.load(Ordering::Acquire),
            max_load: shared.max_load,
            admitted: shared.admitted.load(Ordering::Relaxed),
            rejected_overloaded: shared.overloaded.load(Ordering::Relaxed),
            rejected_cooling_down: shared.cooling.load(Ordering::Relaxed),
            rejected_queue_wait: shared.queue_wait.load(Ordering::Relaxed),
            cooling_down: until != 0 && until > shared.now(),
        }
    }
}

impl<S, U> MetricsSource for LoadShedder<S, U> {
    type Snapshot = ShedMetrics;

    fn metrics(&self) -> ShedMetrics {
        LoadShedder::metrics(self)
    }

    fn reset_metrics(&self) {
        let shared = &*self.shared;
        for counter in [&shared.overloaded, &shared.cooling, &shared.queue_wait, &shared.admitted] {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

/// Load units held by admitted work, given back on `Drop`.
///
/// # Examples
///
/// ```
/// use conc_resilience::LoadShedder;
///
/// let shedder = LoadShedder::builder(5).build()?;
/// let permit = shedder.try_admit(3)?;
/// assert_eq!(permit.units(), 3);
/// drop(permit);
/// assert_eq!(shedder.metrics().load, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "the load is given back as soon as the permit is dropped"]
pub struct LoadPermit {
    shared: Arc<Shared>,
    units: u64,
}

impl LoadPermit {
    /// The units this permit holds.
    pub fn units(&self) -> u64 {
        self.units
    }
}

impl fmt::Debug for LoadPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadPermit")
            .field("shedder", &self.shared.name)
            .field("units", &self.units)
            .finish()
    }
}

impl Drop for LoadPermit {
    fn drop(&mut self) {
        self.shared.give_back(self.units);
    }
}
