//! Load shedding: admit work by load units up to a maximum, refuse above it,
//! and keep refusing for a cooldown so the overload can drain.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use conc_core::metrics::{
    MetricEntry, MetricValue, MetricsSnapshot, MetricsSource, SHED_LOAD, SHED_REJECTED,
};
use conc_core::time::Clock;

use crate::ConfigError;
use crate::loom::sync::atomic::{AtomicU64, Ordering};
use crate::time::TimeSource;

/// Why a [`LoadShedder`] refused work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Shed {
    /// Admitting the work would have taken the load above the maximum.
    #[error("load shed: {load} + {units} units would exceed {max_load}")]
    Overloaded {
        /// Load in use when refused.
        load: u64,
        /// Units asked for.
        units: u64,
        /// The maximum.
        max_load: u64,
    },
    /// The shedder is cooling down after an overload.
    #[error("load shed: cooling down for another {remaining:?}")]
    CoolingDown {
        /// Time left in the cooldown.
        remaining: Duration,
    },
    /// The work waited in a queue longer than the configured target.
    #[error("load shed: waited {waited:?} in queue, more than {max:?}")]
    QueueWait {
        /// How long it waited.
        waited: Duration,
        /// The target.
        max: Duration,
    },
}

impl Shed {
    /// When it is worth trying again, if known.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::CoolingDown { remaining } => Some(*remaining),
            _ => None,
        }
    }
}

/// Builds a [`LoadShedder`].
///
/// | setting | default |
/// |---|---|
/// | `max_load` (the argument of [`LoadShedder::builder`]) | required (no default) |
/// | [`cooldown`](Self::cooldown) | 0: no cooldown |
/// | [`max_queue_wait`](Self::max_queue_wait) | none |
/// | [`clock`](Self::clock) | [`CoarseClock::global()`](conc_core::time::CoarseClock::global) |
#[derive(Debug)]
#[must_use = "a builder does nothing until build() is called"]
pub struct LoadShedderBuilder {
    max_load: u64,
    cooldown: Duration,
    max_queue_wait: Option<Duration>,
    clock: Option<TimeSource>,
    name: String,
}

impl LoadShedderBuilder {
    /// Keeps refusing everything for `cooldown` after an overload. Defaults to 0.
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// Sheds work that waited longer than `max` in a queue before
    /// [`LoadShedder::try_admit_after_wait`] (CoDel-style admission on sojourn
    /// time rather than on raw queue length). Off by default.
    pub fn max_queue_wait(mut self, max: Duration) -> Self {
        self.max_queue_wait = Some(max);
        self
    }

    /// The clock deciding cooldowns. Defaults to [`CoarseClock::global()`](conc_core::time::CoarseClock::global).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(TimeSource::new(clock));
        self
    }

    /// The name used in metric labels. Defaults to `"default"`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Zero`] for a zero `max_load`.
    pub fn build(self) -> Result<LoadShedder, ConfigError> {
        if self.max_load == 0 {
            return Err(ConfigError::Zero { field: "max_load" });
        }
        Ok(LoadShedder {
            inner: Arc::new(Inner {
                load: AtomicU64::new(0),
                cooldown_until: AtomicU64::new(0),
                overloaded: AtomicU64::new(0),
                cooling: AtomicU64::new(0),
                queue_wait: AtomicU64::new(0),
                admitted: AtomicU64::new(0),
                max_load: self.max_load,
                cooldown: u64::try_from(self.cooldown.as_nanos()).unwrap_or(u64::MAX),
                max_queue_wait: self.max_queue_wait,
                clock: self.clock.unwrap_or_default(),
                rejected_counter: metrics::counter!(SHED_REJECTED, "shedder" => self.name.clone()),
                load_gauge: metrics::gauge!(SHED_LOAD, "shedder" => self.name.clone()),
                name: self.name,
            }),
        })
    }
}

struct Inner {
    load: AtomicU64,
    cooldown_until: AtomicU64,
    overloaded: AtomicU64,
    cooling: AtomicU64,
    queue_wait: AtomicU64,
    admitted: AtomicU64,
    max_load: u64,
    cooldown: u64,
    max_queue_wait: Option<Duration>,
    clock: TimeSource,
    rejected_counter: metrics::Counter,
    load_gauge: metrics::Gauge,
    name: String,
}

impl Inner {
    fn now(&self) -> u64 {
        self.clock.now()
    }

    fn start_cooldown(&self) {
        if self.cooldown > 0 {
            self.cooldown_until
                .fetch_max(self.now().saturating_add(self.cooldown), Ordering::AcqRel);
        }
    }
}

/// Admits work by load units up to a maximum and sheds the rest (the seed's
/// `BackpressureManager`). Cheap to clone: clones share the load.
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
#[derive(Clone)]
pub struct LoadShedder {
    inner: Arc<Inner>,
}

impl fmt::Debug for LoadShedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadShedder")
            .field("name", &self.inner.name)
            .field("snapshot", &self.snapshot())
            .finish()
    }
}

impl LoadShedder {
    /// A builder for a shedder admitting at most `max_load` units at once.
    pub fn builder(max_load: u64) -> LoadShedderBuilder {
        LoadShedderBuilder {
            max_load,
            cooldown: Duration::ZERO,
            max_queue_wait: None,
            clock: None,
            name: "default".to_owned(),
        }
    }

    /// Admits work costing `units`, or sheds it.
    ///
    /// # Errors
    ///
    /// [`Shed::CoolingDown`] during a cooldown, [`Shed::Overloaded`] when the
    /// load would exceed the maximum (which starts a cooldown).
    pub fn try_admit(&self, units: u64) -> Result<LoadPermit, Shed> {
        let inner = &*self.inner;
        if inner.cooldown > 0 {
            let until = inner.cooldown_until.load(Ordering::Acquire);
            if until != 0 {
                let now = inner.now();
                if now < until {
                    inner.cooling.fetch_add(1, Ordering::Relaxed);
                    inner.rejected_counter.increment(1);
                    return Err(Shed::CoolingDown { remaining: Duration::from_nanos(until - now) });
                }
            }
        }
        let mut load = inner.load.load(Ordering::Acquire);
        loop {
            if load.saturating_add(units) > inner.max_load {
                inner.overloaded.fetch_add(1, Ordering::Relaxed);
                inner.rejected_counter.increment(1);
                inner.start_cooldown();
                return Err(Shed::Overloaded { load, units, max_load: inner.max_load });
            }
            match inner.load.compare_exchange_weak(
                load,
                load + units,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(seen) => load = seen,
            }
        }
        inner.admitted.fetch_add(1, Ordering::Relaxed);
        Ok(LoadPermit { inner: Arc::clone(&self.inner), units })
    }

    /// Like [`try_admit`](Self::try_admit) for work that already waited
    /// `waited` in a queue: shed when that is above `max_queue_wait`.
    ///
    /// # Errors
    ///
    /// [`Shed::QueueWait`] (which starts a cooldown), or as [`try_admit`](Self::try_admit).
    pub fn try_admit_after_wait(&self, units: u64, waited: Duration) -> Result<LoadPermit, Shed> {
        let inner = &*self.inner;
        if let Some(max) = inner.max_queue_wait
            && waited > max
        {
            inner.queue_wait.fetch_add(1, Ordering::Relaxed);
            inner.rejected_counter.increment(1);
            inner.start_cooldown();
            return Err(Shed::QueueWait { waited, max });
        }
        self.try_admit(units)
    }

    /// Load in use and refusals so far.
    pub fn snapshot(&self) -> ShedSnapshot {
        let inner = &*self.inner;
        let until = inner.cooldown_until.load(Ordering::Acquire);
        let now = inner.now();
        let load = inner.load.load(Ordering::Acquire);
        inner.load_gauge.set(load as f64);
        ShedSnapshot {
            load,
            max_load: inner.max_load,
            admitted: inner.admitted.load(Ordering::Relaxed),
            rejected_overloaded: inner.overloaded.load(Ordering::Relaxed),
            rejected_cooling_down: inner.cooling.load(Ordering::Relaxed),
            rejected_queue_wait: inner.queue_wait.load(Ordering::Relaxed),
            cooling_down: until > now,
        }
    }
}

/// Load units held by admitted work, given back on `Drop`.
#[must_use = "the load is given back as soon as the permit is dropped"]
pub struct LoadPermit {
    inner: Arc<Inner>,
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
        f.debug_struct("LoadPermit").field("units", &self.units).finish_non_exhaustive()
    }
}

impl Drop for LoadPermit {
    fn drop(&mut self) {
        self.inner.load.fetch_sub(self.units, Ordering::AcqRel);
    }
}

/// A [`LoadShedder`]'s load and refusal statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShedSnapshot {
    /// Units in use now.
    pub load: u64,
    /// The maximum.
    pub max_load: u64,
    /// Work admitted so far.
    pub admitted: u64,
    /// Refused because the load would exceed the maximum.
    pub rejected_overloaded: u64,
    /// Refused during a cooldown.
    pub rejected_cooling_down: u64,
    /// Refused for waiting too long in a queue.
    pub rejected_queue_wait: u64,
    /// Whether a cooldown is in force now.
    pub cooling_down: bool,
}

impl ShedSnapshot {
    /// All refusals.
    pub fn rejected(&self) -> u64 {
        self.rejected_overloaded + self.rejected_cooling_down + self.rejected_queue_wait
    }
}

impl MetricsSnapshot for ShedSnapshot {
    fn entries(&self) -> Vec<MetricEntry> {
        vec![
            MetricEntry::new(SHED_LOAD, MetricValue::Gauge(self.load as f64)),
            MetricEntry::new(SHED_REJECTED, MetricValue::Count(self.rejected())),
            MetricEntry::new("admitted", MetricValue::Count(self.admitted)),
        ]
    }
}

impl MetricsSource for LoadShedder {
    type Snapshot = ShedSnapshot;

    fn metrics(&self) -> ShedSnapshot {
        self.snapshot()
    }

    fn reset_metrics(&self) {
        let inner = &*self.inner;
        for counter in [&inner.overloaded, &inner.cooling, &inner.queue_wait, &inner.admitted] {
            counter.store(0, Ordering::Relaxed);
        }
    }
}
