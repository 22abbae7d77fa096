//! Settings both pool builders share, and their validation.

use std::num::NonZeroUsize;

use crate::BuildError;
use crate::core::Settings;
use crate::options::Rejection;

/// The default aging step: a waiting task gains one priority level for every
/// 64 tasks dequeued before it.
pub const DEFAULT_AGING_STEP: u64 = 64;

pub(crate) fn default_settings() -> Settings {
    Settings {
        workers: std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
        max_workers: 0,
        capacity: None,
        aging_step: Some(DEFAULT_AGING_STEP),
        rejection: Rejection::Reject,
        name: "conc-pool".to_owned(),
        stuck_after: None,
    }
}

/// The raw values a builder was given, validated in `build()`.
#[derive(Debug, Clone)]
pub(crate) struct RawSettings {
    pub(crate) workers: usize,
    pub(crate) max_workers: Option<usize>,
    pub(crate) capacity: Option<usize>,
    pub(crate) aging_step: Option<u64>,
    pub(crate) settings: Settings,
}

impl RawSettings {
    pub(crate) fn new() -> Self {
        let settings = default_settings();
        Self {
            workers: settings.workers,
            max_workers: None,
            capacity: settings.capacity,
            aging_step: settings.aging_step,
            settings,
        }
    }

    pub(crate) fn validate(&self) -> Result<Settings, BuildError> {
        if self.workers == 0 {
            return Err(BuildError::Workers { value: self.workers });
        }
        if let Some(max) = self.max_workers
            && max < self.workers
        {
            return Err(BuildError::MaxWorkers { value: max, workers: self.workers });
        }
        if self.capacity == Some(0) {
            return Err(BuildError::QueueCapacity { value: 0 });
        }
        if self.aging_step == Some(0) {
            return Err(BuildError::AgingStep { value: 0 });
        }
        if let Some(threshold) = self.settings.stuck_after
            && threshold.is_zero()
        {
            return Err(BuildError::StuckAfter { value: threshold });
        }
        Ok(Settings {
            workers: self.workers,
            max_workers: self.max_workers.unwrap_or(self.workers),
            capacity: self.capacity,
            aging_step: self.aging_step,
            ..self.settings.clone()
        })
    }
}

/// The setters both builders share.
macro_rules! common_setters {
    () => {
        /// Worker count. Must be at least 1. Defaults to the machine's
        /// available parallelism.
        pub fn workers(mut self, workers: usize) -> Self {
            self.raw.workers = workers;
            self
        }

        /// Bounds the queue to `capacity` waiting tasks (running tasks do not
        /// count). Must be at least 1. Defaults to unbounded.
        pub fn queue_capacity(mut self, capacity: usize) -> Self {
            self.raw.capacity = Some(capacity);
            self
        }

        /// Makes the queue unbounded (the default).
        pub fn unbounded(mut self) -> Self {
            self.raw.capacity = None;
            self
        }

        /// What `submit` does on a full queue. Defaults to [`Rejection::Reject`](crate::Rejection::Reject).
        pub fn rejection(mut self, rejection: $crate::Rejection) -> Self {
            self.raw.settings.rejection = rejection;
            self
        }

        /// A waiting task gains one priority level per `step` tasks dequeued
        /// before it, so a low priority waits at most `(high - low) × step`
        /// dequeues under a saturating stream of high-priority work. Must be at
        /// least 1. Defaults to [`DEFAULT_AGING_STEP`](crate::DEFAULT_AGING_STEP) (64).
        pub fn aging_step(mut self, step: u64) -> Self {
            self.raw.aging_step = Some(step);
            self
        }

        /// Strict priorities without aging: a steady stream of high-priority
        /// work starves lower priorities. Defaults to aging on.
        pub fn strict_priorities(mut self) -> Self {
            self.raw.aging_step = None;
            self
        }

        /// The pool's name, in worker thread names, tracing spans and metric
        /// labels. Defaults to `conc-pool`.
        pub fn name(mut self, name: impl Into<String>) -> Self {
            self.raw.settings.name = name.into();
            self
        }

        /// A worker running one task for at least `threshold` is reported as
        /// stuck by `health()` and counted in `metrics().stuck`, and replaced
        /// by a fresh worker (counted in `metrics().replaced`) so capacity is
        /// kept. Must be longer than zero. Defaults to no detection.
        pub fn stuck_after(mut self, threshold: std::time::Duration) -> Self {
            self.raw.settings.stuck_after = Some(threshold);
            self
        }
    };
}

pub(crate) use common_setters;
