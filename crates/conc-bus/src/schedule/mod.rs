//! The scheduler (feature `schedule`): tasks on cron patterns and everyday
//! helpers, in time zones, running closures or pushing jobs; without
//! overlapping and on one server through conc-lock; a policy for ticks
//! missed while no scheduler ran; filters; events and metrics.
//!
//! What Laravel's scheduler (`schedule:work`) gives, in process:
//!
//! | Laravel | here |
//! |---|---|
//! | `Schedule::call(fn)` / `Schedule::job(new Job)` | [`ScheduledTask::call`] / [`ScheduledTask::job`] |
//! | `->cron('* * * * *')`, `->everyFiveMinutes()`, `->hourlyAt(17)`, `->dailyAt('13:00')`, `->weekdays()`, `->weeklyOn(1, '8:00')`, `->monthlyOn(4, '15:00')`, `->lastDayOfMonth('15:00')` | the same helpers, snake case |
//! | `->timezone('America/New_York')` | [`ScheduledTask::time_zone`] |
//! | `->when(fn)`, `->skip(fn)`, `->between('7:00', '22:00')` | [`ScheduledTask::when`], [`skip`](ScheduledTask::skip), [`between`](ScheduledTask::between) |
//! | `->withoutOverlapping()`, `->onOneServer()` | the same, over a [`conc_lock::LockStore`] |
//! | — | [`MissedTicks`]: skip, run once, or run each tick missed while no scheduler ran |
//!
//! Patterns are parsed and evaluated by the `croner` crate (five or six
//! fields, `L`, `W`, `#`, aliases such as `@daily`), in time zones from the
//! system's database (or a bundled copy). Across a daylight-saving change a
//! time that does not exist that day (2:30 when clocks jump from 2:00 to
//! 3:00) runs at the first instant after the jump, a time that happens twice
//! (2:30 when clocks go back from 3:00 to 2:00) runs once, at its first
//! occurrence, and a pattern that repeats within the hour (`*/15 * * * *`,
//! `hourly()`) runs on every real occurrence, the repeated hour included.
//!
//! # Examples
//!
//! ```
//! use conc_bus::{Job, MemoryQueue, Queue};
//! use conc_bus::schedule::{MissedTicks, ScheduledTask, Scheduler};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Clone, Serialize, Deserialize)]
//! struct SendDigest;
//! impl Job for SendDigest { const NAME: &'static str = "send-digest"; }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let queue = Queue::new(MemoryQueue::new());
//! let scheduler = Scheduler::builder().time_zone("Europe/Paris").build()?;
//! scheduler.add(ScheduledTask::job(&queue, SendDigest).weekdays().at("8:00").on_one_server())?;
//! scheduler.add(
//!     ScheduledTask::call("prune-cache", || async { Ok::<(), std::io::Error>(()) })
//!         .every_fifteen_minutes()
//!         .without_overlapping()
//!         .missed(MissedTicks::RunOnce),
//! )?;
//! scheduler.start()?; // or `scheduler.run().await`, or a conc_core Registry
//! scheduler.stop();
//! # Ok(()) }
//! ```

mod builder;
mod clock;
mod error;
mod event;
mod policy;
mod run;
mod scheduler;
mod store;
mod task;
mod zone;

pub use builder::SchedulerBuilder;
pub use error::ScheduleError;
pub use event::{ScheduleEvent, ScheduleMetrics, SkipReason};
pub use policy::MissedTicks;
pub use scheduler::Scheduler;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use store::SqliteScheduleStore;
pub use store::{MemoryScheduleStore, ScheduleStore};
pub use task::{DEFAULT_OVERLAP_EXPIRY, ScheduledTask, Weekday};
