//! [`Scheduler`]: holds the tasks, finds the ticks due, and decides which to
//! run; `run.rs` runs them.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use conc_core::config::ConfigError;
use conc_core::time::{Clock, Timeline};
use conc_lock::{LockBackend, LockGuard, LockStore, MemoryBackend};
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use tokio::sync::{Notify, broadcast, watch};

use super::builder::SchedulerBuilder;
use super::clock::{WallTime, system_time};
use super::event::{ScheduleEvent, ScheduleMetrics};
use super::policy::MissedTicks;
use super::store::ScheduleStore;
use super::task::{Filter, Runner, ScheduledTask};
use super::{ScheduleError, zone};

/// The most due ticks of one task a look enumerates; more are counted as
/// one batch and the task moves on to its next tick after now.
pub(crate) const MAX_DUE: u64 = 1_000;

/// Runs tasks on a schedule: cron patterns in time zones, with filters, no
/// overlapping runs, one server per tick, and a policy for ticks missed
/// while no scheduler ran (Laravel's scheduler, `schedule:work`, in
/// process).
///
/// - [`run`](Self::run) (or [`start`](Self::start), or a
///   [`Registry`](conc_core::lifecycle::Registry)) looks at the tasks when
///   the next one is due, and at least every `poll`.
/// - [`tick`](Self::tick) makes one such look at the clock's time now; tests
///   drive a scheduler on a `ManualClock` with it, deterministically.
/// - Each run is a tokio task of its own, so a long run never delays the
///   others; `without_overlapping` keeps a task from running twice at once.
/// - `on_one_server` takes a lock named after the task and the tick in the
///   scheduler's [`LockStore`]: schedulers of many processes sharing a store
///   run each tick once between them.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::{Duration, SystemTime};
/// use conc_bus::schedule::{ScheduledTask, Scheduler};
/// use conc_core::time::ManualClock;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let clock = ManualClock::new();
/// let scheduler = Scheduler::builder()
///     .clock(clock.clone())
///     .now_is(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)) // 2027-01-15 08:00 UTC
///     .build()?;
/// let runs = Arc::new(AtomicU32::new(0));
/// let counter = Arc::clone(&runs);
/// scheduler.add(ScheduledTask::call("count", move || {
///     let counter = Arc::clone(&counter);
///     async move { counter.fetch_add(1, Ordering::SeqCst); Ok::<(), std::io::Error>(()) }
/// }).every_five_minutes())?;
///
/// scheduler.tick().await; // 08:00: due
/// clock.advance(Duration::from_secs(4 * 60));
/// scheduler.tick().await; // 08:04: nothing
/// clock.advance(Duration::from_secs(60));
/// scheduler.tick().await; // 08:05: due
/// scheduler.idle().await;
/// assert_eq!(runs.load(Ordering::SeqCst), 2);
/// # Ok(()) }
/// ```
pub struct Scheduler<L: LockBackend = MemoryBackend> {
    pub(crate) inner: Arc<Inner<L>>,
}

impl<L: LockBackend> Clone for Scheduler<L> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

/// What the scheduler's handles and its runs share.
pub(crate) struct Inner<L: LockBackend> {
    pub(crate) name: String,
    pub(crate) zone: TimeZone,
    pub(crate) grace: Duration,
    pub(crate) missed: MissedTicks,
    pub(crate) lock_ttl: Duration,
    pub(crate) poll: Duration,
    pub(crate) locks: LockStore<L>,
    pub(crate) store: Arc<dyn ScheduleStore>,
    pub(crate) wall: WallTime,
    pub(crate) timeline: Timeline<Arc<dyn Clock>>,
    pub(crate) entries: Mutex<Vec<Entry>>,
    /// Tick locks of `on_one_server`, kept until their time to live passed
    /// (Unix ms), so that dropping them releases nothing another scheduler
    /// could still take.
    pub(crate) held: Mutex<VecDeque<(i64, LockGuard<L>)>>,
    pub(crate) events: broadcast::Sender<ScheduleEvent>,
    pub(crate) counters: Counters,
    /// Told whenever a run ends.
    pub(crate) ended: Notify,
    pub(crate) runs: Mutex<Vec<tokio::task::AbortHandle>>,
    pub(crate) stop: watch::Sender<bool>,
    pub(crate) looping: AtomicBool,
}

/// What the scheduler counts.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) runs: AtomicU64,
    pub(crate) succeeded: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) skipped: AtomicU64,
    pub(crate) missed: AtomicU64,
    pub(crate) running: AtomicU64,
}

/// A task as the scheduler keeps it: parsed, with its next tick.
pub(crate) struct Entry {
    pub(crate) plan: Plan,
    cron: Cron,
    missed: MissedTicks,
    /// The next tick not yet looked at; `None` until the first look.
    next: Option<Timestamp>,
}

/// What a run needs of its task.
#[derive(Clone)]
pub(crate) struct Plan {
    pub(crate) name: Arc<str>,
    pub(crate) zone: TimeZone,
    pub(crate) runner: Runner,
    pub(crate) filters: Vec<Filter>,
    pub(crate) overlap: Option<Duration>,
    pub(crate) one_server: bool,
}

/// A tick to run: which task, and the tick.
pub(crate) struct Due {
    pub(crate) plan: Plan,
    pub(crate) tick: Timestamp,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Only the scheduler's own bookkeeping runs under these locks.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Scheduler<MemoryBackend> {
    /// A builder: UTC, locks and last ticks in memory, the system's clock,
    /// missed ticks skipped.
    pub fn builder() -> SchedulerBuilder<MemoryBackend> {
        SchedulerBuilder::new()
    }
}

impl<L: LockBackend> Scheduler<L> {
    pub(crate) fn from_builder(
        builder: SchedulerBuilder<L>,
        zone: TimeZone,
        wall: WallTime,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let (events, _) = broadcast::channel(1024);
        let (stop, _) = watch::channel(false);
        let inner = Inner {
            name: builder.name,
            zone,
            grace: builder.grace,
            missed: builder.missed,
            lock_ttl: builder.lock_ttl,
            poll: builder.poll,
            locks: builder.locks,
            store: builder.store,
            wall,
            timeline: Timeline::new(clock),
            entries: Mutex::new(Vec::new()),
            held: Mutex::new(VecDeque::new()),
            events,
            counters: Counters::default(),
            ended: Notify::new(),
            runs: Mutex::new(Vec::new()),
            stop,
            looping: AtomicBool::new(false),
        };
        Self { inner: Arc::new(inner) }
    }

    /// Puts `task` on the schedule; its first tick is the first at or after
    /// the next look (or, with a last tick in the store, the first after that
    /// one).
    ///
    /// # Errors
    ///
    /// [`ScheduleError::Config`] for the first bad setting of the task (a
    /// helper given a bad value, a pattern that does not parse, an unknown
    /// time zone, an overlap expiry past [`conc_lock::MAX_TTL`]), or a name
    /// another task of this scheduler has.
    pub fn add(&self, task: ScheduledTask) -> Result<(), ScheduleError> {
        if let Some(error) = task.errors.into_iter().next() {
            return Err(error.into());
        }
        let expression = task.pattern.expression();
        let cron =
            CronParser::builder().seconds(Seconds::Optional).build().parse(&expression).map_err(
                |error| ConfigError::new("cron", &expression, format!("must parse: {error}")),
            )?;
        let zone = match &task.time_zone {
            Some(name) => zone::lookup("time_zone", name)?,
            None => self.inner.zone.clone(),
        };
        if let Some(expiry) = task.overlap {
            conc_core::config::positive("without_overlapping_for", expiry)?;
            conc_core::config::at_most("without_overlapping_for", expiry, conc_lock::MAX_TTL)?;
        }
        let missed = task.missed.unwrap_or(self.inner.missed);
        if let MissedTicks::RunAll { max: 0 } = missed {
            return Err(ConfigError::new("missed", missed, "must run at least one tick").into());
        }
        let mut entries = lock(&self.inner.entries);
        if entries.iter().any(|entry| *entry.plan.name == *task.name) {
            let error = ConfigError::new("name", &task.name, "must be unique within a scheduler");
            return Err(error.into());
        }
        entries.push(Entry {
            plan: Plan {
                name: Arc::from(task.name),
                zone,
                runner: task.runner,
                filters: task.filters,
                overlap: task.overlap,
                one_server: task.one_server,
            },
            cron,
            missed,
            next: None,
        });
        Ok(())
    }

    /// The names of the tasks on the schedule, in the order they were added.
    pub fn tasks(&self) -> Vec<String> {
        lock(&self.inner.entries).iter().map(|entry| entry.plan.name.to_string()).collect()
    }

    /// The next tick of each task, as of the last look (none before the first).
    pub fn next_ticks(&self) -> Vec<(String, Option<SystemTime>)> {
        lock(&self.inner.entries)
            .iter()
            .map(|entry| (entry.plan.name.to_string(), entry.next.map(system_time)))
            .collect()
    }

    /// The scheduler's time now.
    pub fn now(&self) -> SystemTime {
        system_time(self.inner.wall.now())
    }

    /// A receiver of the scheduler's events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ScheduleEvent> {
        self.inner.events.subscribe()
    }

    /// Looks at the tasks once, at the clock's time now: starts the runs of
    /// the ticks due (each on its own tokio task) and handles missed ticks,
    /// then returns without waiting for the runs ([`idle`](Self::idle) does).
    /// How many runs it started.
    pub async fn tick(&self) -> usize {
        self.release_expired_tick_locks();
        self.load_last_ticks().await;
        let now = self.inner.wall.now();
        let (due, records) = self.plan(now);
        let mut started = 0;
        for due in due {
            if self.fire(due).await {
                started += 1;
            }
        }
        for (name, tick) in records {
            if let Err(error) = self.inner.store.record_tick(&name, system_time(tick)).await {
                tracing::warn!(task = %name, %error, "the schedule store failed to record a tick");
            }
        }
        started
    }

    /// Waits until no run is in progress.
    pub async fn idle(&self) {
        loop {
            let ended = self.inner.ended.notified();
            if self.inner.counters.running.load(Ordering::Acquire) == 0 {
                return;
            }
            ended.await;
        }
    }

    /// Reads the last tick of each task not looked at yet from the store, and
    /// sets its next tick from it (or from now when the store has none).
    async fn load_last_ticks(&self) {
        let fresh: Vec<Arc<str>> = lock(&self.inner.entries)
            .iter()
            .filter(|entry| entry.next.is_none())
            .map(|entry| Arc::clone(&entry.plan.name))
            .collect();
        for name in fresh {
            let last = match self.inner.store.last_tick(&name).await {
                Ok(last) => last,
                Err(error) => {
                    tracing::warn!(task = %name, %error, "schedule store failed; starting from now");
                    None
                }
            };
            let now = self.inner.wall.now();
            let mut entries = lock(&self.inner.entries);
            if let Some(entry) = entries.iter_mut().find(|entry| entry.plan.name == name) {
                entry.next = match last {
                    Some(last) => next_after(
                        &entry.cron,
                        &entry.plan.zone,
                        super::clock::timestamp(super::clock::unix_ms(last)),
                        false,
                    ),
                    None => next_after(&entry.cron, &entry.plan.zone, now, true),
                };
            }
        }
    }

    /// The ticks to run now, with missed ticks counted and handled by each
    /// task's policy, and the last tick looked at per task; moves every task
    /// past now.
    fn plan(&self, now: Timestamp) -> (Vec<Due>, Vec<(Arc<str>, Timestamp)>) {
        let grace = i64::try_from(self.inner.grace.as_millis()).unwrap_or(i64::MAX);
        let mut out = Vec::new();
        let mut missed_events = Vec::new();
        let mut records = Vec::new();
        {
            let mut entries = lock(&self.inner.entries);
            for entry in entries.iter_mut() {
                let mut late = Vec::new();
                let mut on_time = Vec::new();
                let mut late_count: u64 = 0;
                let mut seen: u64 = 0;
                let mut last_seen = None;
                while let Some(next) = entry.next.filter(|next| *next <= now) {
                    seen += 1;
                    last_seen = Some(next);
                    if now.as_millisecond() - next.as_millisecond() <= grace {
                        on_time.push(next);
                    } else {
                        late_count += 1;
                        late.push(next);
                    }
                    entry.next = next_after(&entry.cron, &entry.plan.zone, next, false);
                    if seen >= MAX_DUE {
                        entry.next = next_after(&entry.cron, &entry.plan.zone, now, false);
                        break;
                    }
                }
                if let Some(last) = last_seen {
                    records.push((Arc::clone(&entry.plan.name), last));
                }
                let caught_up: Vec<Timestamp> = match entry.missed {
                    MissedTicks::RunOnce if on_time.is_empty() => {
                        late.last().copied().into_iter().collect()
                    }
                    MissedTicks::Skip | MissedTicks::RunOnce => Vec::new(),
                    MissedTicks::RunAll { max } => {
                        let keep = late.len().saturating_sub(max as usize);
                        late.split_off(keep)
                    }
                };
                if late_count > 0 {
                    missed_events.push((Arc::clone(&entry.plan.name), late_count, caught_up.len()));
                }
                for tick in caught_up.into_iter().chain(on_time) {
                    out.push(Due { plan: entry.plan.clone(), tick });
                }
            }
        }
        for (name, ticks, ran) in missed_events {
            self.inner.counters.missed.fetch_add(ticks, Ordering::Relaxed);
            metrics::counter!(conc_core::metrics::BUS_SCHEDULE_MISSED, "task" => name.to_string())
                .increment(ticks);
            tracing::info!(task = %name, ticks, ran, "scheduled ticks were missed");
            self.emit(|| ScheduleEvent::Missed { task: name.to_string(), ticks, ran: ran as u64 });
        }
        (out, records)
    }

    /// Drops the tick locks whose time to live has passed.
    fn release_expired_tick_locks(&self) {
        let now = self.inner.wall.now_ms();
        let mut held = lock(&self.inner.held);
        while held.front().is_some_and(|(until, _)| *until <= now) {
            held.pop_front();
        }
    }

    /// Sends `event` to subscribers, built only if there are any.
    pub(crate) fn emit(&self, event: impl FnOnce() -> ScheduleEvent) {
        if self.inner.events.receiver_count() > 0 {
            let _ = self.inner.events.send(event());
        }
    }

    /// The metrics snapshot.
    pub(crate) fn snapshot(&self) -> ScheduleMetrics {
        let counters = &self.inner.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ScheduleMetrics {
            runs: load(&counters.runs),
            succeeded: load(&counters.succeeded),
            failed: load(&counters.failed),
            skipped: load(&counters.skipped),
            missed: load(&counters.missed),
            running: load(&counters.running),
            tasks: lock(&self.inner.entries).len() as u64,
        }
    }

    /// Time until the next tick of any task, at most `poll`.
    pub(crate) fn until_next(&self) -> Duration {
        let now = self.inner.wall.now_ms();
        let soonest = lock(&self.inner.entries)
            .iter()
            .filter_map(|entry| entry.next)
            .map(Timestamp::as_millisecond)
            .min();
        match soonest {
            Some(next) => Duration::from_millis(next.saturating_sub(now).max(0).unsigned_abs())
                .min(self.inner.poll),
            None => self.inner.poll,
        }
    }
}

/// The first tick of `cron` in `zone` after `after` (at or after, when
/// `inclusive`); `None` when the pattern has no more.
pub(crate) fn next_after(
    cron: &Cron,
    zone: &TimeZone,
    after: Timestamp,
    inclusive: bool,
) -> Option<Timestamp> {
    let zoned = after.to_zoned(zone.clone());
    cron.find_next_occurrence(&zoned, inclusive).ok().map(|next| next.timestamp())
}

impl<L: LockBackend> fmt::Debug for Scheduler<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field("name", &self.inner.name)
            .field("tasks", &self.tasks())
            .field("wall", &self.inner.wall)
            .field("missed", &self.inner.missed)
            .finish_non_exhaustive()
    }
}

impl<L: LockBackend> Scheduler<L> {
    /// Keeps an `on_one_server` tick lock until its time to live passed.
    pub(crate) fn hold_tick_lock(&self, guard: LockGuard<L>) {
        let until = self
            .inner
            .wall
            .now_ms()
            .saturating_add(i64::try_from(self.inner.lock_ttl.as_millis()).unwrap_or(i64::MAX));
        lock(&self.inner.held).push_back((until, guard));
    }

    /// Whether a `run` loop is going.
    pub(crate) fn looping(&self) -> &AtomicBool {
        &self.inner.looping
    }
}
