//! Every metric name the workspace emits, with its kind, unit and description.

use metrics::Unit;

/// What kind of instrument a metric is recorded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MetricKind {
    /// A monotonically increasing count (`metrics::counter!`).
    Counter,
    /// A value that goes up and down (`metrics::gauge!`).
    Gauge,
    /// A distribution of observations (`metrics::histogram!`).
    Histogram,
}

/// The description of one metric: its name, kind, unit and meaning.
///
/// # Examples
///
/// ```
/// use conc_core::metrics::{ALL, MetricKind, POOL_TASKS_COMPLETED};
///
/// let completed = ALL.iter().find(|m| m.name == POOL_TASKS_COMPLETED).unwrap();
/// assert_eq!(completed.kind, MetricKind::Counter);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricDescriptor {
    /// The dotted metric name, `conc.<crate>.<thing>`.
    pub name: &'static str,
    /// The instrument it is recorded with.
    pub kind: MetricKind,
    /// The unit of its values.
    pub unit: Unit,
    /// One sentence saying what it counts or measures.
    pub description: &'static str,
}

/// Declares the name constants and the [`ALL`] table from one list, so a name
/// can never exist without its description.
macro_rules! metric_names {
    ($( $(#[$doc:meta])* $konst:ident = $name:literal, $kind:ident, $unit:ident, $desc:literal; )*) => {
        $(
            $(#[$doc])*
            #[doc = concat!("\n\n`", $name, "`: ", $desc)]
            pub const $konst: &str = $name;
        )*

        /// Every metric the workspace emits, in declaration order.
        ///
        /// [`describe_metrics`](super::describe_metrics) registers these
        /// descriptions with the installed recorder.
        pub const ALL: &[MetricDescriptor] = &[
            $( MetricDescriptor {
                name: $name,
                kind: MetricKind::$kind,
                unit: Unit::$unit,
                description: $desc,
            }, )*
        ];
    };
}

metric_names! {
    /// Pool: tasks accepted by a pool.
    POOL_TASKS_SUBMITTED = "conc.pool.tasks.submitted", Counter, Count, "tasks accepted by a worker pool";
    /// Pool: tasks that ran to completion.
    POOL_TASKS_COMPLETED = "conc.pool.tasks.completed", Counter, Count, "tasks that finished with an output";
    /// Pool: tasks that finished without an output.
    POOL_TASKS_FAILED = "conc.pool.tasks.failed", Counter, Count, "tasks that panicked, were cancelled or passed their deadline";
    /// Pool: tasks that panicked.
    POOL_TASKS_PANICKED = "conc.pool.tasks.panicked", Counter, Count, "tasks whose panic was caught and reported";
    /// Pool: tasks refused because the queue was full or the pool was stopping.
    POOL_TASKS_REJECTED = "conc.pool.tasks.rejected", Counter, Count, "tasks refused and handed back to the caller";
    /// Pool: tasks cancelled before or while running.
    POOL_TASKS_CANCELLED = "conc.pool.tasks.cancelled", Counter, Count, "tasks cancelled before they finished";
    /// Pool: tasks waiting in the queue.
    POOL_QUEUE_DEPTH = "conc.pool.queue.depth", Gauge, Count, "tasks waiting in a pool's queue";
    /// Pool: workers currently running a task.
    POOL_WORKERS_BUSY = "conc.pool.workers.busy", Gauge, Count, "workers currently running a task";
    /// Pool: workers alive.
    POOL_WORKERS_TOTAL = "conc.pool.workers.total", Gauge, Count, "workers alive in a pool";
    /// Pool: scaling decisions taken.
    POOL_SCALE_EVENTS = "conc.pool.scale.events", Counter, Count, "workers added or removed by scaling";
    /// Pool: time a task waited before it started.
    POOL_TASK_WAIT = "conc.pool.task.wait", Histogram, Seconds, "time from submission to start of a task";
    /// Pool: time a task ran.
    POOL_TASK_DURATION = "conc.pool.task.duration", Histogram, Seconds, "time a task ran";

    /// Pipeline: items a stage finished.
    PIPELINE_ITEMS_PROCESSED = "conc.pipeline.items.processed", Counter, Count, "items a pipeline stage processed";
    /// Pipeline: items a stage failed on.
    PIPELINE_ITEMS_FAILED = "conc.pipeline.items.failed", Counter, Count, "items a pipeline stage failed on";
    /// Pipeline: retries a stage made after an item's first attempt failed.
    PIPELINE_ITEMS_RETRIED = "conc.pipeline.items.retried", Counter, Count, "retries a pipeline stage made after a failed attempt";
    /// Pipeline: items sent to a dead letter sink.
    PIPELINE_ITEMS_DEAD_LETTERED = "conc.pipeline.items.dead_lettered", Counter, Count, "items kept with their error in a dead letter sink";
    /// Pipeline: items buffered between stages.
    PIPELINE_STAGE_QUEUE_DEPTH = "conc.pipeline.stage.queue.depth", Gauge, Count, "items buffered in front of a stage";
    /// Pipeline: time a stage spent on one item.
    PIPELINE_STAGE_DURATION = "conc.pipeline.stage.duration", Histogram, Seconds, "time a stage spent on one item";

    /// Fan: items handed to fan-out workers.
    FAN_ITEMS_DISPATCHED = "conc.fan.items.dispatched", Counter, Count, "items handed to fan-out workers";
    /// Fan: items fan-out workers finished with an output.
    FAN_ITEMS_PROCESSED = "conc.fan.items.processed", Counter, Count, "items fan-out workers finished with an output";
    /// Fan: items fan-out workers gave up on.
    FAN_ITEMS_FAILED = "conc.fan.items.failed", Counter, Count, "items fan-out workers gave up on after their last attempt";
    /// Fan: retries fan-out workers made.
    FAN_ITEMS_RETRIED = "conc.fan.items.retried", Counter, Count, "retries fan-out workers made after a failed attempt";
    /// Fan: items sent to a dead letter sink.
    FAN_ITEMS_DEAD_LETTERED = "conc.fan.items.dead_lettered", Counter, Count, "items fan-out workers kept with their error in a dead letter sink";
    /// Fan: items merged by fan-in.
    FAN_ITEMS_MERGED = "conc.fan.items.merged", Counter, Count, "items merged from fan-in inputs";

    /// Rate limit: requests admitted.
    RATELIMIT_PERMITTED = "conc.ratelimit.permitted", Counter, Count, "requests a rate limiter admitted";
    /// Rate limit: requests refused.
    RATELIMIT_REJECTED = "conc.ratelimit.rejected", Counter, Count, "requests a rate limiter refused";
    /// Rate limit: keys tracked by a keyed limiter.
    RATELIMIT_KEYS = "conc.ratelimit.keys", Gauge, Count, "keys a keyed limiter holds state for";
    /// Rate limit: idle keys a keyed limiter dropped by itself.
    RATELIMIT_EVICTED = "conc.ratelimit.evicted", Counter, Count, "fully replenished keys a keyed limiter dropped";
    /// Rate limit: sweeps of a keyed limiter for idle keys.
    RATELIMIT_SWEEPS = "conc.ratelimit.sweeps", Counter, Count, "sweeps a keyed limiter ran to drop idle keys";
    /// Rate limit: callers waiting for capacity now.
    RATELIMIT_WAITING = "conc.ratelimit.waiting", Gauge, Count, "callers waiting for rate-limit capacity";
    /// Rate limit: time callers waited for capacity.
    RATELIMIT_WAIT = "conc.ratelimit.wait", Histogram, Seconds, "time a caller waited for rate-limit capacity";

    /// Resilience: calls a circuit breaker recorded, labelled by outcome.
    BREAKER_CALLS = "conc.resilience.breaker.calls", Counter, Count, "calls a circuit breaker recorded, by outcome";
    /// Resilience: calls a circuit breaker refused.
    BREAKER_REJECTED = "conc.resilience.breaker.rejected", Counter, Count, "calls a circuit breaker refused: open, forced open, or half-open with every probe taken";
    /// Resilience: circuit breaker state changes.
    BREAKER_TRANSITIONS = "conc.resilience.breaker.transitions", Counter, Count, "circuit breaker state changes";
    /// Resilience: circuit breaker state (0 closed, 1 open, 2 half-open, 3 disabled, 4 forced open, 5 metrics only).
    BREAKER_STATE = "conc.resilience.breaker.state", Gauge, Count, "circuit breaker state: 0 closed, 1 open, 2 half-open, 3 disabled, 4 forced open, 5 metrics only";
    /// Resilience: calls inside a bulkhead.
    BULKHEAD_IN_FLIGHT = "conc.resilience.bulkhead.in_flight", Gauge, Count, "calls running inside a bulkhead";
    /// Resilience: calls waiting for a bulkhead slot.
    BULKHEAD_QUEUED = "conc.resilience.bulkhead.queued", Gauge, Count, "calls waiting for a bulkhead slot";
    /// Resilience: calls a bulkhead refused.
    BULKHEAD_REJECTED = "conc.resilience.bulkhead.rejected", Counter, Count, "calls a bulkhead refused";
    /// Resilience: retry attempts made after a first call.
    RETRY_ATTEMPTS = "conc.resilience.retry.attempts", Counter, Count, "retries made after a first call failed";
    /// Resilience: operations that ran out of retries.
    RETRY_EXHAUSTED = "conc.resilience.retry.exhausted", Counter, Count, "operations that failed after their last retry";
    /// Resilience: calls cut off by a timeout.
    TIMEOUT_ELAPSED = "conc.resilience.timeout.elapsed", Counter, Count, "calls cut off by a timeout";
    /// Resilience: calls answered by a fallback.
    FALLBACK_USED = "conc.resilience.fallback.used", Counter, Count, "calls answered by a fallback";
    /// Resilience: calls shed under load.
    SHED_REJECTED = "conc.resilience.shed.rejected", Counter, Count, "calls refused by load shedding";
    /// Resilience: load units in use.
    SHED_LOAD = "conc.resilience.shed.load", Gauge, Count, "load units currently in use";

    /// Lock: locks acquired.
    LOCK_ACQUIRED = "conc.lock.acquired", Counter, Count, "locks acquired";
    /// Lock: acquisitions refused because another owner held the lock.
    LOCK_CONTENDED = "conc.lock.contended", Counter, Count, "lock attempts refused because another owner held it";
    /// Lock: locks released by their owner.
    LOCK_RELEASED = "conc.lock.released", Counter, Count, "locks released by their owner";
    /// Lock: locks that expired before release.
    LOCK_EXPIRED = "conc.lock.expired", Counter, Count, "locks whose time to live ran out before release";
    /// Lock: time a lock was held.
    LOCK_HOLD = "conc.lock.hold", Histogram, Seconds, "time a lock was held";

    /// Bus: jobs pushed onto a queue.
    BUS_JOBS_PUSHED = "conc.bus.jobs.pushed", Counter, Count, "jobs pushed onto a queue";
    /// Bus: jobs that ran successfully.
    BUS_JOBS_PROCESSED = "conc.bus.jobs.processed", Counter, Count, "jobs a worker finished successfully";
    /// Bus: job attempts that failed.
    BUS_JOBS_FAILED = "conc.bus.jobs.failed", Counter, Count, "job attempts that failed";
    /// Bus: jobs released for another attempt.
    BUS_JOBS_RETRIED = "conc.bus.jobs.retried", Counter, Count, "jobs released for another attempt";
    /// Bus: jobs moved to the failed-jobs store.
    BUS_JOBS_DEAD = "conc.bus.jobs.dead", Counter, Count, "jobs that ran out of attempts and were stored as failed";
    /// Bus: jobs waiting in a queue.
    BUS_QUEUE_DEPTH = "conc.bus.queue.depth", Gauge, Count, "jobs waiting in a queue";
    /// Bus: time a job ran.
    BUS_JOB_DURATION = "conc.bus.job.duration", Histogram, Seconds, "time one job attempt ran";
    /// Bus: time a job waited between becoming available and starting.
    BUS_JOB_WAIT = "conc.bus.job.wait", Histogram, Seconds, "time a job waited between becoming available and starting";
    /// Bus: jobs put back by their handler, not as failures.
    BUS_JOBS_RELEASED = "conc.bus.jobs.released", Counter, Count, "jobs put back on their queue by their handler";
    /// Bus: attempts abandoned because their lease was lost.
    BUS_LEASES_LOST = "conc.bus.leases.lost", Counter, Count, "job attempts abandoned because their lease was lost";
    /// Bus: jobs in the failed store.
    BUS_FAILED_SIZE = "conc.bus.failed.size", Gauge, Count, "jobs kept in the failed store";
    /// Bus scheduler: runs of scheduled tasks started.
    BUS_SCHEDULE_RUNS = "conc.bus.schedule.runs", Counter, Count, "runs of scheduled tasks started";
    /// Bus scheduler: runs that failed or panicked, and ticks whose locks could not be taken.
    BUS_SCHEDULE_FAILED = "conc.bus.schedule.failed", Counter, Count, "scheduled runs that failed, panicked or could not take their locks";
    /// Bus scheduler: ticks skipped by a filter, an overlapping run or another server.
    BUS_SCHEDULE_SKIPPED = "conc.bus.schedule.skipped", Counter, Count, "scheduled ticks skipped by a filter, an overlapping run or another server";
    /// Bus scheduler: ticks missed while no scheduler ran.
    BUS_SCHEDULE_MISSED = "conc.bus.schedule.missed", Counter, Count, "scheduled ticks missed while no scheduler ran";
    /// Bus scheduler: time one scheduled run took.
    BUS_SCHEDULE_DURATION = "conc.bus.schedule.duration", Histogram, Seconds, "time one scheduled run took";

    /// Process: processes started.
    PROCESS_SPAWNED = "conc.process.spawned", Counter, Count, "processes started";
    /// Process: processes that exited unsuccessfully.
    PROCESS_FAILED = "conc.process.failed", Counter, Count, "processes that exited with a failure status or a signal";
    /// Process: processes killed by a timeout.
    PROCESS_TIMED_OUT = "conc.process.timed_out", Counter, Count, "processes stopped because a timeout elapsed";
    /// Process: supervised processes restarted.
    PROCESS_RESTARTS = "conc.process.restarts", Counter, Count, "supervised processes restarted";
    /// Process: supervised processes a supervisor stopped restarting because they kept failing.
    PROCESS_GAVE_UP = "conc.process.gave_up", Counter, Count, "supervised processes given up on after too many restarts";
    /// Process: pool jobs cancelled by fail-fast or a stop, before or while running.
    PROCESS_CANCELLED = "conc.process.cancelled", Counter, Count, "process pool jobs cancelled before they finished";
    /// Process: time a process ran.
    PROCESS_DURATION = "conc.process.duration", Histogram, Seconds, "time from spawn to exit of a process";
}
