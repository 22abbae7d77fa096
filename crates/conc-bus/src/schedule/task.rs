//! [`ScheduledTask`]: what runs on the schedule, when, and under which
//! conditions.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use conc_core::config::ConfigError;
use conc_core::{BoxError, BoxFuture};

use super::policy::MissedTicks;
use crate::job::Job;
use crate::queue::{Queue, QueueBackend};

/// A day of the week, for [`ScheduledTask::days`] and
/// [`weekly_on`](ScheduledTask::weekly_on).
///
/// # Examples
///
/// ```
/// use conc_bus::schedule::Weekday;
///
/// assert_eq!(Weekday::Sunday.cron(), 0);
/// assert_eq!(Weekday::Saturday.cron(), 6);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Weekday {
    /// Monday.
    Monday,
    /// Tuesday.
    Tuesday,
    /// Wednesday.
    Wednesday,
    /// Thursday.
    Thursday,
    /// Friday.
    Friday,
    /// Saturday.
    Saturday,
    /// Sunday.
    Sunday,
}

impl Weekday {
    /// The day's number in a cron pattern: 0 for Sunday to 6 for Saturday.
    pub fn cron(self) -> u8 {
        match self {
            Self::Sunday => 0,
            Self::Monday => 1,
            Self::Tuesday => 2,
            Self::Wednesday => 3,
            Self::Thursday => 4,
            Self::Friday => 5,
            Self::Saturday => 6,
        }
    }
}

/// What a task runs on each tick.
pub(crate) type Runner = Arc<dyn Fn() -> BoxFuture<'static, Result<(), BoxError>> + Send + Sync>;

/// A condition checked on each tick; the tick runs only when every
/// condition holds.
#[derive(Clone)]
pub(crate) enum Filter {
    /// Run only when the closure says so.
    When(Arc<dyn Fn() -> bool + Send + Sync>),
    /// Run only when the closure says no.
    Skip(Arc<dyn Fn() -> bool + Send + Sync>),
    /// Run only when the tick's local time of day is within (or, with
    /// `inside == false`, outside) the range, in seconds since midnight.
    Between { from: u32, to: u32, inside: bool },
}

/// The six fields of a cron pattern (second, minute, hour, day of month,
/// month, day of week), edited by the helpers, or a pattern given whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pattern {
    Fields([String; 6]),
    Raw(String),
}

impl Pattern {
    /// The pattern as croner parses it (with seconds).
    pub(crate) fn expression(&self) -> String {
        match self {
            Self::Fields(fields) => fields.join(" "),
            Self::Raw(raw) => raw.clone(),
        }
    }
}

const SECOND: usize = 0;
const MINUTE: usize = 1;
const HOUR: usize = 2;
const DAY: usize = 3;
const MONTH: usize = 4;
const WEEKDAY: usize = 5;

/// A task on the schedule: a closure to run or a job to push, when (a cron
/// pattern, usually set through the everyday helpers, in a time zone), and
/// under which conditions (filters, no overlapping runs, one server only,
/// what to do with ticks missed while no scheduler ran).
///
/// Helpers edit the fields of a cron pattern the way Laravel's do, so they
/// combine: `.weekly_on(Weekday::Monday, "8:00")`, `.daily_at("13:00").weekdays()`,
/// `.hourly_at(15).between("9:00", "17:00")`. A helper given a bad value (a
/// time of `25:00`, every 0 minutes) records the error, which
/// [`Scheduler::add`](super::Scheduler::add) returns.
///
/// # Examples
///
/// ```
/// use conc_bus::schedule::{MissedTicks, ScheduledTask, Weekday};
///
/// let report = ScheduledTask::call("nightly-report", || async {
///     // build the report
///     Ok::<(), std::io::Error>(())
/// })
/// .daily_at("2:30")
/// .time_zone("Europe/Paris")
/// .without_overlapping()
/// .on_one_server()
/// .missed(MissedTicks::RunOnce);
/// assert_eq!(report.name(), "nightly-report");
/// assert_eq!(report.expression(), "0 30 2 * * *");
///
/// let standup = ScheduledTask::call("standup", || async { Ok::<(), std::io::Error>(()) })
///     .weekly_on(Weekday::Monday, "9:15");
/// assert_eq!(standup.expression(), "0 15 9 * * 1");
/// ```
#[must_use = "a task does nothing until it is added to a scheduler"]
pub struct ScheduledTask {
    pub(crate) name: String,
    pub(crate) pattern: Pattern,
    pub(crate) time_zone: Option<String>,
    pub(crate) runner: Runner,
    pub(crate) filters: Vec<Filter>,
    pub(crate) overlap: Option<Duration>,
    pub(crate) one_server: bool,
    pub(crate) missed: Option<MissedTicks>,
    pub(crate) errors: Vec<ConfigError>,
}

/// How long a run holds its "no overlapping" lock unless it ends first:
/// 24 hours, as Laravel's `withoutOverlapping`.
pub const DEFAULT_OVERLAP_EXPIRY: Duration = Duration::from_secs(24 * 3600);

impl ScheduledTask {
    /// A task named `name` that runs `task` on each tick: every minute
    /// until a helper says otherwise.
    ///
    /// The name keys the task's locks and its last tick in the store: keep
    /// it stable across deploys and unique within a scheduler.
    pub fn call<F, Fut, E>(name: impl Into<String>, task: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let runner: Runner = Arc::new(move || {
            let run = task();
            Box::pin(async move { run.await.map_err(Into::into) })
        });
        Self::new(name.into(), runner)
    }

    /// A task that pushes a copy of `job` onto `queue` on each tick, named
    /// after the job type ([`Job::NAME`]); rename it with
    /// [`name`](Self::name_as) when one job type is scheduled twice.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{Job, MemoryQueue, Queue};
    /// use conc_bus::schedule::ScheduledTask;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Clone, Serialize, Deserialize)]
    /// struct PruneSessions;
    /// impl Job for PruneSessions { const NAME: &'static str = "prune-sessions"; }
    ///
    /// let queue = Queue::new(MemoryQueue::new());
    /// let task = ScheduledTask::job(&queue, PruneSessions).hourly();
    /// assert_eq!(task.name(), "prune-sessions");
    /// ```
    pub fn job<B, J>(queue: &Queue<B>, job: J) -> Self
    where
        B: QueueBackend,
        J: Job + Clone + Send + Sync,
    {
        let queue = queue.clone();
        let runner: Runner = Arc::new(move || {
            let queue = queue.clone();
            let job = job.clone();
            Box::pin(async move {
                queue
                    .push(job)
                    .await
                    .map(drop)
                    .map_err(|error| Box::new(error.map(drop)) as BoxError)
            })
        });
        Self::new(J::NAME.to_owned(), runner)
    }

    fn new(name: String, runner: Runner) -> Self {
        let mut errors = Vec::new();
        if let Err(error) = conc_core::config::name("name", &name) {
            errors.push(error);
        }
        Self {
            name,
            pattern: Pattern::Fields(["0", "*", "*", "*", "*", "*"].map(String::from)),
            time_zone: None,
            runner,
            filters: Vec::new(),
            overlap: None,
            one_server: false,
            missed: None,
            errors,
        }
    }

    /// The task's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renames the task.
    pub fn name_as(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self.errors.retain(|error| error.field != "name");
        if let Err(error) = conc_core::config::name("name", &self.name) {
            self.errors.push(error);
        }
        self
    }

    /// The cron pattern the task runs on, with seconds.
    pub fn expression(&self) -> String {
        self.pattern.expression()
    }

    /// Runs on a cron pattern: five fields (minute, hour, day of month,
    /// month, day of week), six (with seconds first), or an alias
    /// (`@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`). `L`, `W` and
    /// `#` are understood (croner's syntax). Checked when the task is added.
    pub fn cron(mut self, expression: &str) -> Self {
        let fields: Vec<&str> = expression.split_whitespace().collect();
        self.pattern = match fields.len() {
            5 => Pattern::Fields(std::array::from_fn(|i| {
                if i == SECOND { "0".to_owned() } else { fields[i - 1].to_owned() }
            })),
            6 => Pattern::Fields(std::array::from_fn(|i| fields[i].to_owned())),
            _ => Pattern::Raw(expression.trim().to_owned()),
        };
        self
    }

    /// Sets one field, turning a whole pattern back into fields first.
    fn set(mut self, field: usize, value: impl Into<String>) -> Self {
        if let Pattern::Raw(raw) = &self.pattern {
            if self.errors.iter().any(|error| error.field == "cron") {
                return self;
            }
            let error = ConfigError::new(
                "cron",
                raw,
                "must have five or six fields for the helpers to edit it",
            );
            self.errors.push(error);
            return self;
        }
        if let Pattern::Fields(fields) = &mut self.pattern {
            fields[field] = value.into();
        }
        self
    }

    /// Sets the time of day (`"13:00"`, `"7:05"`, `"23:59:30"`) for `field`'s sake.
    fn at_time(self, field: &'static str, time: &str) -> Self {
        match parse_time(field, time) {
            Ok((hour, minute, second)) => self
                .set(SECOND, second.to_string())
                .set(MINUTE, minute.to_string())
                .set(HOUR, hour.to_string()),
            Err(error) => self.refuse(error),
        }
    }

    fn refuse(mut self, error: ConfigError) -> Self {
        self.errors.push(error);
        self
    }

    /// Every minute (the default).
    pub fn every_minute(self) -> Self {
        self.set(SECOND, "0").set(MINUTE, "*")
    }

    /// Every `n` minutes, on the minutes divisible by `n` (1 to 59).
    pub fn every_minutes(self, n: u32) -> Self {
        if !(1..=59).contains(&n) {
            return self.refuse(ConfigError::new("every_minutes", n, "must be between 1 and 59"));
        }
        self.set(SECOND, "0").set(MINUTE, format!("*/{n}"))
    }

    /// Every five minutes.
    pub fn every_five_minutes(self) -> Self {
        self.every_minutes(5)
    }

    /// Every ten minutes.
    pub fn every_ten_minutes(self) -> Self {
        self.every_minutes(10)
    }

    /// Every fifteen minutes.
    pub fn every_fifteen_minutes(self) -> Self {
        self.every_minutes(15)
    }

    /// Every thirty minutes.
    pub fn every_thirty_minutes(self) -> Self {
        self.every_minutes(30)
    }

    /// Every hour, on the hour.
    pub fn hourly(self) -> Self {
        self.hourly_at(0)
    }

    /// Every hour, at `minute` past (0 to 59).
    pub fn hourly_at(self, minute: u32) -> Self {
        if minute > 59 {
            return self.refuse(ConfigError::above("hourly_at", minute, 59));
        }
        self.set(SECOND, "0").set(MINUTE, minute.to_string()).set(HOUR, "*")
    }

    /// Every `n` hours (1 to 23), on the hour.
    pub fn every_hours(self, n: u32) -> Self {
        if !(1..=23).contains(&n) {
            return self.refuse(ConfigError::new("every_hours", n, "must be between 1 and 23"));
        }
        self.set(SECOND, "0").set(MINUTE, "0").set(HOUR, format!("*/{n}"))
    }

    /// Every day at midnight.
    pub fn daily(self) -> Self {
        self.daily_at("0:00")
    }

    /// Every day at `time` (`"13:00"`, `"2:30"`, `"23:59:30"`), in the task's
    /// time zone.
    pub fn daily_at(self, time: &str) -> Self {
        self.at_time("daily_at", time)
    }

    /// At `time` on the days the pattern already names (after `weekly_on`,
    /// `monthly_on`, `days`, `weekdays` …).
    pub fn at(self, time: &str) -> Self {
        self.at_time("at", time)
    }

    /// Every day at `first` and `second` o'clock (0 to 23).
    pub fn twice_daily(self, first: u32, second: u32) -> Self {
        if first > 23 || second > 23 {
            return self.refuse(ConfigError::new(
                "twice_daily",
                (first, second),
                "hours must be between 0 and 23",
            ));
        }
        self.set(SECOND, "0").set(MINUTE, "0").set(HOUR, format!("{first},{second}"))
    }

    /// Every Sunday at midnight.
    pub fn weekly(self) -> Self {
        self.weekly_on(Weekday::Sunday, "0:00")
    }

    /// Every week on `day` at `time`.
    pub fn weekly_on(self, day: Weekday, time: &str) -> Self {
        self.at_time("weekly_on", time).set(DAY, "*").set(WEEKDAY, day.cron().to_string())
    }

    /// On the first of every month at midnight.
    pub fn monthly(self) -> Self {
        self.monthly_on(1, "0:00")
    }

    /// Every month on `day` (1 to 31; months without it are skipped) at `time`.
    pub fn monthly_on(self, day: u32, time: &str) -> Self {
        if !(1..=31).contains(&day) {
            return self.refuse(ConfigError::new("monthly_on", day, "must be between 1 and 31"));
        }
        self.at_time("monthly_on", time).set(DAY, day.to_string()).set(WEEKDAY, "*")
    }

    /// On the last day of every month at `time`.
    pub fn last_day_of_month(self, time: &str) -> Self {
        self.at_time("last_day_of_month", time).set(DAY, "L").set(WEEKDAY, "*")
    }

    /// On the first day of every quarter at midnight.
    pub fn quarterly(self) -> Self {
        self.monthly().set(MONTH, "1,4,7,10")
    }

    /// On the first of January at midnight.
    pub fn yearly(self) -> Self {
        self.monthly().set(MONTH, "1")
    }

    /// Only Monday to Friday.
    pub fn weekdays(self) -> Self {
        self.set(WEEKDAY, "1-5")
    }

    /// Only Saturday and Sunday.
    pub fn weekends(self) -> Self {
        self.set(WEEKDAY, "0,6")
    }

    /// Only on `days`.
    pub fn days(self, days: &[Weekday]) -> Self {
        if days.is_empty() {
            return self.refuse(ConfigError::new("days", days, "must name at least one day"));
        }
        let list: Vec<String> = days.iter().map(|day| day.cron().to_string()).collect();
        self.set(WEEKDAY, list.join(","))
    }

    /// Reads the pattern in `zone` (an IANA name such as `"Europe/Paris"`),
    /// so `daily_at("2:30")` means 2:30 there, daylight saving time
    /// included. Defaults to the scheduler's zone (UTC unless set).
    pub fn time_zone(mut self, zone: &str) -> Self {
        self.time_zone = Some(zone.to_owned());
        self
    }

    /// Runs a tick only when `condition` returns true then.
    pub fn when(mut self, condition: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        self.filters.push(Filter::When(Arc::new(condition)));
        self
    }

    /// Skips a tick when `condition` returns true then.
    pub fn skip(mut self, condition: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        self.filters.push(Filter::Skip(Arc::new(condition)));
        self
    }

    /// Runs only on ticks whose local time of day is from `from` to `to`
    /// (inclusive; a range past midnight such as `"22:00"` to `"2:00"` wraps).
    pub fn between(self, from: &str, to: &str) -> Self {
        self.time_range("between", from, to, true)
    }

    /// Skips the ticks whose local time of day is from `from` to `to`.
    pub fn unless_between(self, from: &str, to: &str) -> Self {
        self.time_range("unless_between", from, to, false)
    }

    fn time_range(mut self, field: &'static str, from: &str, to: &str, inside: bool) -> Self {
        match (parse_time(field, from), parse_time(field, to)) {
            (Ok(from), Ok(to)) => {
                self.filters.push(Filter::Between { from: seconds(from), to: seconds(to), inside });
                self
            }
            (Err(error), _) | (_, Err(error)) => self.refuse(error),
        }
    }

    /// Skips a tick while a run of this task still holds its lock (taken for
    /// 24 hours at most, [`DEFAULT_OVERLAP_EXPIRY`]).
    pub fn without_overlapping(self) -> Self {
        self.without_overlapping_for(DEFAULT_OVERLAP_EXPIRY)
    }

    /// Skips a tick while a run of this task still holds its lock; the lock
    /// lapses after `expiry` even if the run has not ended (a crashed
    /// process's lock does not block the task for good).
    pub fn without_overlapping_for(mut self, expiry: Duration) -> Self {
        self.overlap = Some(expiry);
        self
    }

    /// Runs each tick on one process only, among all the schedulers that
    /// share the lock store: the first to take the tick's lock runs it, the
    /// others skip it. Give the schedulers a shared store (SQLite, Redis)
    /// for this to span processes.
    pub fn on_one_server(mut self) -> Self {
        self.one_server = true;
        self
    }

    /// What to do with ticks missed while no scheduler ran (or it was
    /// stalled). Defaults to the scheduler's policy.
    pub fn missed(mut self, policy: MissedTicks) -> Self {
        self.missed = Some(policy);
        self
    }
}

impl fmt::Debug for ScheduledTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScheduledTask")
            .field("name", &self.name)
            .field("expression", &self.pattern.expression())
            .field("time_zone", &self.time_zone)
            .field("filters", &self.filters.len())
            .field("overlap", &self.overlap)
            .field("one_server", &self.one_server)
            .field("missed", &self.missed)
            .finish_non_exhaustive()
    }
}

/// `"H:MM"` or `"H:MM:SS"` as hours, minutes and seconds.
pub(crate) fn parse_time(field: &'static str, time: &str) -> Result<(u32, u32, u32), ConfigError> {
    let refuse = || ConfigError::new(field, time, "must be a time of day such as 13:00 or 7:05:30");
    let mut parts = time.trim().split(':');
    let mut next = |max: u32, required: bool| -> Result<u32, ConfigError> {
        match parts.next() {
            None if !required => Ok(0),
            Some(part) if !part.is_empty() && part.len() <= 2 => {
                part.parse::<u32>().ok().filter(|value| *value <= max).ok_or_else(refuse)
            }
            _ => Err(refuse()),
        }
    };
    let hour = next(23, true)?;
    let minute = next(59, true)?;
    let second = next(59, false)?;
    if parts.next().is_some() {
        return Err(refuse());
    }
    Ok((hour, minute, second))
}

fn seconds((hour, minute, second): (u32, u32, u32)) -> u32 {
    hour * 3600 + minute * 60 + second
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> ScheduledTask {
        ScheduledTask::call("t", || async { Ok::<(), std::io::Error>(()) })
    }

    #[test]
    fn helpers_edit_the_fields() {
        assert_eq!(task().expression(), "0 * * * * *");
        assert_eq!(task().every_fifteen_minutes().expression(), "0 */15 * * * *");
        assert_eq!(task().hourly_at(5).expression(), "0 5 * * * *");
        assert_eq!(task().every_hours(6).expression(), "0 0 */6 * * *");
        assert_eq!(task().daily_at("13:07").weekdays().expression(), "0 7 13 * * 1-5");
        assert_eq!(task().twice_daily(1, 13).expression(), "0 0 1,13 * * *");
        assert_eq!(task().weekly().expression(), "0 0 0 * * 0");
        assert_eq!(task().monthly_on(15, "8:30:15").expression(), "15 30 8 15 * *");
        assert_eq!(task().last_day_of_month("23:00").expression(), "0 0 23 L * *");
        assert_eq!(task().quarterly().expression(), "0 0 0 1 1,4,7,10 *");
        assert_eq!(task().yearly().expression(), "0 0 0 1 1 *");
        assert_eq!(
            task().days(&[Weekday::Tuesday, Weekday::Thursday]).at("6:00").expression(),
            "0 0 6 * * 2,4"
        );
        assert_eq!(task().cron("*/5 9-17 * * 1-5").expression(), "0 */5 9-17 * * 1-5");
        assert_eq!(task().cron("30 0 12 * * *").expression(), "30 0 12 * * *");
        assert_eq!(task().cron("@hourly").expression(), "@hourly");
    }

    #[test]
    fn bad_values_are_recorded_with_their_setter() {
        let fields = |t: ScheduledTask| -> Vec<String> {
            t.errors.iter().map(|e| e.field.to_string()).collect()
        };
        assert_eq!(fields(task().daily_at("24:00")), ["daily_at"]);
        assert_eq!(fields(task().daily_at("7")), ["daily_at"]);
        assert_eq!(fields(task().daily_at("7:5:1:2")), ["daily_at"]);
        assert_eq!(fields(task().every_minutes(0)), ["every_minutes"]);
        assert_eq!(fields(task().hourly_at(60)), ["hourly_at"]);
        assert_eq!(fields(task().monthly_on(32, "0:00")), ["monthly_on"]);
        assert_eq!(fields(task().between("9:00", "x")), ["between"]);
        assert_eq!(fields(task().days(&[])), ["days"]);
        assert_eq!(fields(task().cron("@daily").hourly()), ["cron"]);
        assert_eq!(fields(task().name_as("")), ["name"]);
        assert!(fields(task().name_as("").name_as("ok")).is_empty());
        assert_eq!(parse_time("at", "23:59:59"), Ok((23, 59, 59)));
    }
}
