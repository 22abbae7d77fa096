//! [`SchedulerBuilder`]: the scheduler's settings.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use conc_core::config::{self, ConfigError};
use conc_core::time::{Clock, CoarseClock};
use conc_lock::{LockBackend, LockStore, MemoryBackend};

use super::clock::WallTime;
use super::policy::MissedTicks;
use super::scheduler::Scheduler;
use super::store::{MemoryScheduleStore, ScheduleStore};
use super::{ScheduleError, zone};

/// The longest a scheduler sleeps between two looks at its tasks: 60 s, so
/// a task added while it sleeps, or a clock set forward, is seen within a
/// minute.
pub(crate) const DEFAULT_POLL: Duration = Duration::from_secs(60);

/// Settings of a [`Scheduler`]; see [`Scheduler::builder`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_bus::schedule::{MissedTicks, Scheduler};
/// use conc_lock::LockStore;
///
/// let scheduler = Scheduler::builder()
///     .name("billing")
///     .time_zone("America/New_York")
///     .locks(LockStore::memory())
///     .grace(Duration::from_secs(30))
///     .missed(MissedTicks::RunOnce)
///     .build()?;
/// # let _ = scheduler;
/// # Ok::<(), conc_bus::schedule::ScheduleError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct SchedulerBuilder<L: LockBackend = MemoryBackend> {
    pub(crate) name: String,
    pub(crate) zone: String,
    pub(crate) locks: LockStore<L>,
    pub(crate) store: Arc<dyn ScheduleStore>,
    pub(crate) clock: Option<Arc<dyn Clock>>,
    pub(crate) now_is: Option<SystemTime>,
    pub(crate) grace: Duration,
    pub(crate) missed: MissedTicks,
    pub(crate) lock_ttl: Duration,
    pub(crate) poll: Duration,
}

impl SchedulerBuilder<MemoryBackend> {
    pub(crate) fn new() -> Self {
        Self {
            name: "scheduler".to_owned(),
            zone: "UTC".to_owned(),
            locks: LockStore::memory(),
            store: Arc::new(MemoryScheduleStore::new()),
            clock: None,
            now_is: None,
            grace: Duration::from_secs(60),
            missed: MissedTicks::Skip,
            lock_ttl: Duration::from_secs(3600),
            poll: DEFAULT_POLL,
        }
    }
}

impl<L: LockBackend> SchedulerBuilder<L> {
    /// The scheduler's name, for its [`Lifecycle`](conc_core::lifecycle::Lifecycle).
    /// Defaults to `"scheduler"`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The time zone patterns are read in, an IANA name such as
    /// `"Europe/Paris"` (a task may set its own). Defaults to `"UTC"`.
    pub fn time_zone(mut self, zone: impl Into<String>) -> Self {
        self.zone = zone.into();
        self
    }

    /// Where the locks of `without_overlapping` and `on_one_server` live.
    /// Defaults to a store in this process's memory: give every process a
    /// shared store (SQLite, Redis) for `on_one_server` to span them.
    pub fn locks<L2: LockBackend>(self, locks: LockStore<L2>) -> SchedulerBuilder<L2> {
        SchedulerBuilder {
            name: self.name,
            zone: self.zone,
            locks,
            store: self.store,
            clock: self.clock,
            now_is: self.now_is,
            grace: self.grace,
            missed: self.missed,
            lock_ttl: self.lock_ttl,
            poll: self.poll,
        }
    }

    /// Where each task's last tick is kept, to find the ticks missed while no
    /// scheduler ran. Defaults to a [`MemoryScheduleStore`].
    pub fn store(mut self, store: impl ScheduleStore) -> Self {
        self.store = Arc::new(store);
        self
    }

    /// The clock the scheduler reads: a `ManualClock` or
    /// [`PausedTime`](crate::testing::PausedTime) in tests. Defaults to the
    /// system's wall clock, read at every look, so the schedule follows the
    /// system's time when it is set.
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The wall-clock time the clock's reading at `build` stands for, so a
    /// test starts its schedule on a chosen date. Defaults to the system's
    /// time.
    pub fn now_is(mut self, now: SystemTime) -> Self {
        self.now_is = Some(now);
        self
    }

    /// How late a tick may be run and still count as on time; older ones
    /// are missed, and handled by the [`missed`](Self::missed) policy.
    /// Defaults to 60 s.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// What to do with missed ticks, for tasks that do not say. Defaults to
    /// [`MissedTicks::Skip`].
    pub fn missed(mut self, policy: MissedTicks) -> Self {
        self.missed = policy;
        self
    }

    /// How long an `on_one_server` tick's lock is held (never released
    /// early, so a scheduler that is late does not run the tick again).
    /// Defaults to one hour, as Laravel's `onOneServer`.
    pub fn lock_ttl(mut self, ttl: Duration) -> Self {
        self.lock_ttl = ttl;
        self
    }

    /// The longest sleep between two looks at the tasks. Defaults to 60 s.
    pub fn poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Checks the settings and builds the scheduler, with no tasks yet.
    ///
    /// # Errors
    ///
    /// [`ScheduleError::Config`] naming the setting: an unknown time zone, a
    /// zero `grace`, `lock_ttl` or `poll`, or a `lock_ttl` past
    /// [`conc_lock::MAX_TTL`].
    pub fn build(self) -> Result<Scheduler<L>, ScheduleError> {
        config::name("name", &self.name)?;
        let zone = zone::lookup("time_zone", &self.zone)?;
        config::positive("grace", self.grace)?;
        config::positive("poll", self.poll)?;
        config::positive("lock_ttl", self.lock_ttl)?;
        config::at_most("lock_ttl", self.lock_ttl, conc_lock::MAX_TTL)?;
        if let MissedTicks::RunAll { max: 0 } = self.missed {
            return Err(
                ConfigError::new("missed", self.missed, "must run at least one tick").into()
            );
        }
        let runtime_clock: Arc<dyn Clock> =
            self.clock.clone().unwrap_or_else(|| Arc::new(CoarseClock::global().clone()));
        let wall = match (&self.clock, self.now_is) {
            (None, None) => WallTime::System,
            (_, now) => {
                WallTime::anchored(Arc::clone(&runtime_clock), now.unwrap_or_else(SystemTime::now))
            }
        };
        Ok(Scheduler::from_builder(self, zone, wall, runtime_clock))
    }
}

impl<L: LockBackend> std::fmt::Debug for SchedulerBuilder<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerBuilder")
            .field("name", &self.name)
            .field("time_zone", &self.zone)
            .field("grace", &self.grace)
            .field("missed", &self.missed)
            .field("lock_ttl", &self.lock_ttl)
            .finish_non_exhaustive()
    }
}
