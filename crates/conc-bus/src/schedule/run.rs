//! Running the scheduler: a tick's locks and filters, the run itself on its
//! own task, the loop, and the lifecycle.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use conc_core::lifecycle::Lifecycle;
use conc_core::metrics::MetricsSource;
use conc_core::{BoxError, BoxFuture};
use conc_lock::LockBackend;
use futures::FutureExt;
use jiff::Timestamp;

use super::ScheduleError;
use super::clock::system_time;
use super::event::{ScheduleEvent, ScheduleMetrics, SkipReason};
use super::scheduler::{Due, Scheduler, lock};
use super::task::Filter;

/// The prefix of every lock the scheduler takes.
const LOCK_PREFIX: &str = "conc-bus:schedule:";

impl<L: LockBackend> Scheduler<L> {
    /// Runs one due tick if its filters and locks let it: starts the run on
    /// its own task and says whether it did.
    pub(crate) async fn fire(&self, due: Due) -> bool {
        let Due { plan, tick } = due;
        let at = system_time(tick);
        if !passes(&plan.filters, tick, &plan.zone) {
            self.skipped(&plan.name, tick, SkipReason::Filtered);
            return false;
        }
        if plan.one_server {
            let name = format!("{LOCK_PREFIX}{}:{}", plan.name, tick.as_second());
            match self.take(&name, self.inner.lock_ttl).await {
                Ok(Some(guard)) => self.hold_tick_lock(guard),
                Ok(None) => {
                    self.skipped(&plan.name, tick, SkipReason::OtherServer);
                    return false;
                }
                Err(error) => {
                    self.lock_failed(&plan.name, tick, &error);
                    return false;
                }
            }
        }
        let overlap = match plan.overlap {
            None => None,
            Some(expiry) => {
                let name = format!("{LOCK_PREFIX}{}:running", plan.name);
                match self.take(&name, expiry).await {
                    Ok(Some(guard)) => Some(guard),
                    Ok(None) => {
                        self.skipped(&plan.name, tick, SkipReason::Overlapping);
                        return false;
                    }
                    Err(error) => {
                        self.lock_failed(&plan.name, tick, &error);
                        return false;
                    }
                }
            }
        };
        let counters = &self.inner.counters;
        counters.runs.fetch_add(1, Ordering::Relaxed);
        counters.running.fetch_add(1, Ordering::AcqRel);
        metrics::counter!(conc_core::metrics::BUS_SCHEDULE_RUNS, "task" => plan.name.to_string())
            .increment(1);
        self.emit(|| ScheduleEvent::Started { task: plan.name.to_string(), tick: at });
        let scheduler = self.clone();
        let run = async move {
            let _running = Running(scheduler.clone());
            let started = scheduler.inner.timeline.now();
            let result = std::panic::AssertUnwindSafe((plan.runner)()).catch_unwind().await;
            let runtime =
                Duration::from_nanos(scheduler.inner.timeline.now().saturating_sub(started));
            if let Some(guard) = overlap
                && let Err(error) = guard.release().await
            {
                tracing::warn!(task = %plan.name, %error, "the overlap lock was lost during the run");
            }
            let error = match result {
                Ok(Ok(())) => None,
                Ok(Err(error)) => Some(chain(&*error)),
                Err(panic) => {
                    Some(format!("panicked: {}", conc_core::driver::panic_message(panic.as_ref())))
                }
            };
            scheduler.finished(&plan.name, at, runtime, error);
        };
        let handle = tokio::spawn(run);
        let mut runs = lock(&self.inner.runs);
        runs.retain(|run| !run.is_finished());
        runs.push(handle.abort_handle());
        true
    }

    async fn take(
        &self,
        name: &str,
        ttl: Duration,
    ) -> Result<Option<conc_lock::LockGuard<L>>, conc_lock::LockError> {
        self.inner.locks.lock(name, ttl)?.get().await
    }

    fn finished(
        &self,
        task: &str,
        tick: std::time::SystemTime,
        runtime: Duration,
        error: Option<String>,
    ) {
        let counters = &self.inner.counters;
        metrics::histogram!(conc_core::metrics::BUS_SCHEDULE_DURATION, "task" => task.to_owned())
            .record(runtime.as_secs_f64());
        match error {
            None => {
                counters.succeeded.fetch_add(1, Ordering::Relaxed);
                self.emit(|| ScheduleEvent::Finished { task: task.to_owned(), tick, runtime });
            }
            Some(error) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(conc_core::metrics::BUS_SCHEDULE_FAILED, "task" => task.to_owned())
                    .increment(1);
                tracing::warn!(task, %error, "a scheduled run failed");
                self.emit(|| ScheduleEvent::Failed { task: task.to_owned(), tick, error });
            }
        }
    }

    fn skipped(&self, task: &str, tick: Timestamp, reason: SkipReason) {
        self.inner.counters.skipped.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(
            conc_core::metrics::BUS_SCHEDULE_SKIPPED,
            "task" => task.to_owned(),
            "reason" => reason.label()
        )
        .increment(1);
        tracing::debug!(task, %reason, "a scheduled tick was skipped");
        self.emit(|| ScheduleEvent::Skipped {
            task: task.to_owned(),
            tick: system_time(tick),
            reason,
        });
    }

    fn lock_failed(&self, task: &str, tick: Timestamp, error: &conc_lock::LockError) {
        self.inner.counters.failed.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(conc_core::metrics::BUS_SCHEDULE_FAILED, "task" => task.to_owned())
            .increment(1);
        let error = format!("the lock store failed, so the tick was not run: {}", chain(error));
        tracing::warn!(task, %error, "a scheduled tick could not take its lock");
        self.emit(|| ScheduleEvent::Failed {
            task: task.to_owned(),
            tick: system_time(tick),
            error,
        });
    }

    /// Runs the scheduler on this task until [`stop`](Self::stop): looks at
    /// the tasks, sleeps until the next tick (at most `poll`), and again.
    /// Runs still in progress when it returns go on; [`idle`](Self::idle)
    /// waits for them.
    ///
    /// # Errors
    ///
    /// [`ScheduleError::AlreadyRunning`] when another `run` (or `start`) of
    /// this scheduler is going.
    pub async fn run(&self) -> Result<(), ScheduleError> {
        if self.looping().swap(true, Ordering::AcqRel) {
            return Err(ScheduleError::AlreadyRunning);
        }
        self.inner.stop.send_replace(false);
        let mut stop = self.inner.stop.subscribe();
        while !*stop.borrow_and_update() {
            self.tick().await;
            let wait = self.until_next();
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
        }
        self.looping().store(false, Ordering::Release);
        Ok(())
    }

    /// Starts [`run`](Self::run) on the current tokio runtime and returns.
    ///
    /// # Errors
    ///
    /// [`ScheduleError::AlreadyRunning`] when it runs already.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn start(&self) -> Result<(), ScheduleError> {
        if self.looping().load(Ordering::Acquire) {
            return Err(ScheduleError::AlreadyRunning);
        }
        let scheduler = self.clone();
        tokio::spawn(async move {
            let _ = scheduler.run().await;
        });
        Ok(())
    }

    /// Asks the loop to stop; runs in progress go on.
    pub fn stop(&self) {
        self.inner.stop.send_replace(true);
    }
}

/// Whether every filter lets the tick run.
fn passes(filters: &[Filter], tick: Timestamp, zone: &jiff::tz::TimeZone) -> bool {
    filters.iter().all(|filter| match filter {
        Filter::When(condition) => condition(),
        Filter::Skip(condition) => !condition(),
        Filter::Between { from, to, inside } => {
            let local = tick.to_zoned(zone.clone());
            let second = u32::from(local.hour().unsigned_abs()) * 3600
                + u32::from(local.minute().unsigned_abs()) * 60
                + u32::from(local.second().unsigned_abs());
            let within = if from <= to {
                (*from..=*to).contains(&second)
            } else {
                second >= *from || second <= *to
            };
            within == *inside
        }
    })
}

/// An error and its sources, joined by `: `.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl<L: LockBackend> MetricsSource for Scheduler<L> {
    type Snapshot = ScheduleMetrics;

    fn metrics(&self) -> ScheduleMetrics {
        self.snapshot()
    }

    fn reset_metrics(&self) {
        let counters = &self.inner.counters;
        for counter in [
            &counters.runs,
            &counters.succeeded,
            &counters.failed,
            &counters.skipped,
            &counters.missed,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

impl<L: LockBackend> Lifecycle for Scheduler<L> {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn start(&self) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(async move {
            match Scheduler::start(self) {
                Ok(()) | Err(ScheduleError::AlreadyRunning) => Ok(()),
                Err(error) => Err(error.into()),
            }
        })
    }

    /// Stops the loop, lets runs in progress finish until a little before
    /// `deadline`, then cancels the rest.
    fn stop(&self, deadline: Instant) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(async move {
            Scheduler::stop(self);
            let left = deadline.saturating_duration_since(Instant::now());
            let margin = (left / 10).min(Duration::from_secs(1));
            if tokio::time::timeout(left.saturating_sub(margin), self.idle()).await.is_err() {
                for run in lock(&self.inner.runs).drain(..) {
                    run.abort();
                }
                return Err(Box::new(ScheduleError::Unfinished) as BoxError);
            }
            Ok(())
        })
    }

    fn is_running(&self) -> bool {
        self.looping().load(Ordering::Acquire)
    }
}

/// Counts a run as ended when its task finishes or is cancelled.
struct Running<L: LockBackend>(Scheduler<L>);

impl<L: LockBackend> Drop for Running<L> {
    fn drop(&mut self) {
        self.0.inner.counters.running.fetch_sub(1, Ordering::AcqRel);
        self.0.inner.ended.notify_waiters();
    }
}
