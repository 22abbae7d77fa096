//! The deterministic simulation harness: real [`Worker`]s running the
//! user's handlers against one [`MemoryQueue`] on [`PausedTime`], with a
//! seeded chaos plan of faults, and the checks "no job lost" and "duplicates
//! within faults".

mod plan;
mod report;
mod world;

pub use plan::{ChaosPlan, Fault, FaultKind};
pub use report::{FaultRecord, LostJob, LostState, SimulationError, SimulationReport, Violation};

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use conc_core::config::{self, ConfigError};
use tokio::task::JoinHandle;

use self::world::{ChaosBackend, World};
use super::PausedTime;
use crate::batch::machine::{self, Fire};
use crate::batch::{BatchId, NewBatch, PendingBatch};
use crate::clock::millis;
use crate::id::JobId;
use crate::job::{BatchMember, Envelope, Job, JobHandlers};
use crate::queue::{MemoryQueue, Pushed, QueueBackend, WorkflowBackend};
use crate::worker::Worker;

/// The most workers a simulation runs at once.
pub const MAX_SIMULATED_WORKERS: usize = 1024;

/// A deterministic simulation of workers running your handlers through
/// faults: the jobs you give are pushed onto one [`MemoryQueue`] on
/// [`PausedTime`], `workers` real [`Worker`]s run them with your
/// [`JobHandlers`], and a [`ChaosPlan`] — drawn from a seed, or written by hand —
/// kills workers mid-job, drops and delays acknowledgements and lets leases
/// expire while handlers run. When every job is acknowledged or failed (or
/// the time limit passes) the workers stop and the [`SimulationReport`] says
/// what happened to every job, with the checks "no job lost" and
/// "duplicates within faults".
///
/// Run it under tokio's paused clock (`#[tokio::test(start_paused = true)]`,
/// which needs tokio's `test-util` feature): time then only moves when every
/// task waits on a timer, so leases, delays, renewals and the handlers' own
/// sleeps follow one clock, an hour of queue time takes milliseconds, and a
/// seed replays the same run. The harness itself waits on nothing but that
/// clock and the queue.
///
/// # Examples
///
/// ```
/// use std::collections::HashSet;
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
/// use conc_bus::{JobHandlers, Job, JobContext, JobError, JobOptions};
/// use conc_bus::testing::Simulation;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Charge { order: u32 }
/// impl Job for Charge {
///     const NAME: &'static str = "charge";
///     fn options() -> JobOptions { JobOptions::new().max_attempts(25) }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // The handler is idempotent: charging an order twice changes nothing.
/// let charged = Arc::new(Mutex::new(HashSet::new()));
/// let ledger = Arc::clone(&charged);
/// let handlers = JobHandlers::new().handle(move |job: Charge, ctx: JobContext| {
///     let ledger = Arc::clone(&ledger);
///     async move {
///         tokio::time::sleep(Duration::from_secs(2)).await; // the payment provider
///         ctx.progress(50).await?;
///         ledger.lock().unwrap().insert(job.order);
///         Ok::<(), JobError>(())
///     }
/// });
///
/// let report = Simulation::new(handlers)
///     .seed(7)
///     .workers(3)
///     .jobs((0..50).map(|order| Charge { order }))
///     .faults(10)
///     .run()
///     .await?;
/// report.assert_holds(); // no job lost, duplicates within faults
/// assert_eq!(charged.lock().unwrap().len(), 50);
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a simulation does nothing until it is run"]
pub struct Simulation {
    handlers: JobHandlers,
    seed: u64,
    workers: usize,
    concurrency: usize,
    lease: Duration,
    poll_interval: Duration,
    faults: usize,
    plan: Option<ChaosPlan>,
    time_limit: Duration,
    jobs: Vec<(Envelope, Duration)>,
    batches: Vec<PendingBatch>,
    error: Option<SimulationError>,
}

impl Simulation {
    /// A simulation of workers running `handlers`.
    pub fn new(handlers: JobHandlers) -> Self {
        Self {
            handlers,
            seed: 0,
            workers: 3,
            concurrency: 1,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            faults: 10,
            plan: None,
            time_limit: Duration::from_secs(3600),
            jobs: Vec::new(),
            batches: Vec::new(),
            error: None,
        }
    }

    /// The seed the chaos plan is drawn from. Defaults to 0.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// How many workers run at once (a killed one is replaced at once).
    /// Defaults to 3; 1 to [`MAX_SIMULATED_WORKERS`].
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// How many jobs each worker runs at once. Defaults to 1, so that a fault
    /// disturbs one job; 1 to [`MAX_CONCURRENCY`](crate::worker::MAX_CONCURRENCY).
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// The workers' lease (renewed every third of it). Defaults to 30 s, the
    /// worker's default; between [`MIN_LEASE`](crate::worker::MIN_LEASE) and
    /// [`MAX_WAIT`](crate::worker::MAX_WAIT).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How often an idle worker asks the queue again (which is also when it
    /// finds expired leases and due jobs). Defaults to 1 s, the worker's
    /// default.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// How many faults the seeded plan holds. Defaults to 10.
    pub fn faults(mut self, faults: usize) -> Self {
        self.faults = faults;
        self
    }

    /// Runs `plan` instead of a seeded one (the seed and fault count are
    /// then unused).
    pub fn plan(mut self, plan: ChaosPlan) -> Self {
        self.plan = Some(plan);
        self
    }

    /// How long the simulation may run on tokio's clock before it stops and
    /// reports the jobs not done as lost. Defaults to one hour; longer than zero.
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = limit;
        self
    }

    /// Adds `jobs` (of one type; call again for another), pushed with their
    /// type's options when the simulation starts. The simulation numbers its
    /// jobs 1, 2, … in the order given: a report's job id is
    /// `JobId::from_u128(n)`.
    pub fn jobs<J: Job>(mut self, jobs: impl IntoIterator<Item = J>) -> Self {
        if self.error.is_some() {
            return self;
        }
        let options = J::options();
        if let Err(error) = options.check() {
            self.error = Some(SimulationError::Config(error));
            return self;
        }
        for job in jobs {
            match Envelope::new(&job, &options, 0) {
                Ok(envelope) => self.jobs.push((envelope, options.delay)),
                Err(error) => {
                    self.error = Some(SimulationError::Encode(error));
                    return self;
                }
            }
        }
        self
    }

    /// Adds a batch: its members run on the simulated workers, and its
    /// callbacks are tracked as jobs (each expected once: `then`, `finally`
    /// and `progress` per member, so give members enough attempts to
    /// succeed through the faults). The report lists the batches at the end.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::JobHandlers;
    /// use conc_bus::batch::PendingBatch;
    /// use conc_bus::testing::Simulation;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Ping;
    /// # impl conc_bus::Job for Ping { const NAME: &'static str = "ping"; }
    ///
    /// let simulation = Simulation::new(JobHandlers::new())
    ///     .batch(PendingBatch::new().add(Ping).then(Ping));
    /// # let _ = simulation;
    /// ```
    pub fn batch(mut self, batch: PendingBatch) -> Self {
        self.batches.push(batch);
        self
    }

    /// Runs the simulation to its end.
    ///
    /// # Errors
    ///
    /// [`SimulationError`] when a setting, the plan or a job is refused;
    /// nothing has run then.
    pub async fn run(self) -> Result<SimulationReport, SimulationError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        config::between("workers", self.workers, 1, MAX_SIMULATED_WORKERS)?;
        config::positive("time_limit", self.time_limit)?;
        let seed = if self.plan.is_some() { None } else { Some(self.seed) };
        let plan = self.plan.unwrap_or_else(|| {
            let members: usize = self.batches.iter().map(PendingBatch::len).sum();
            let jobs = (self.jobs.len() + members) as u64;
            ChaosPlan::seeded(self.seed, self.faults, jobs, self.workers, self.lease)
        });
        if let Some(fault) = plan.faults().iter().find(|fault| fault.worker >= self.workers) {
            let reason = format!(
                "fault `{fault}` names a worker past the {} simulated (0 to {})",
                self.workers,
                self.workers - 1
            );
            return Err(ConfigError::new("plan", fault.worker, reason).into());
        }
        let memory = MemoryQueue::builder().clock(PausedTime).build()?;
        let now = memory.now();
        let mut pushed = Vec::with_capacity(self.jobs.len());
        for (number, (mut envelope, delay)) in (1_u128..).zip(self.jobs) {
            envelope.id = JobId::from_u128(number);
            envelope.created_at = now;
            pushed.push(Pushed::new(envelope, now.saturating_add(millis(delay))));
        }
        let mut names: Vec<(JobId, String)> =
            pushed.iter().map(|p| (p.envelope.id, p.envelope.name.clone())).collect();
        let mut batches = Vec::with_capacity(self.batches.len());
        for (number, batch) in (1_u128..).zip(self.batches) {
            let mut new = batch.build(now).map_err(SimulationError::Workflow)?;
            // Ids the seed fixes: members after the plain jobs, batches apart.
            let id = BatchId::from_job_id(JobId::from_u128((1 << 100) + number));
            new.record.id = id;
            for pushed in &mut new.members {
                let member = JobId::from_u128(names.len() as u128 + 1);
                pushed.envelope.id = member;
                pushed.envelope.flow_mut().batch = Some(BatchMember::new(id, member));
                names.push((member, pushed.envelope.name.clone()));
            }
            let mut fires = vec![Fire::Then, Fire::Finally];
            fires.extend(new.members.iter().map(|p| Fire::Progress { job: p.envelope.id }));
            for callback in machine::callback_jobs(&new.record, &fires, now) {
                names.push((callback.envelope.id, callback.envelope.name));
            }
            batches.push(new);
        }
        let world = Arc::new(World::new(self.workers, names.clone()));
        let pool = Arc::new(Pool {
            world: Arc::clone(&world),
            memory: memory.clone(),
            handlers: self.handlers,
            concurrency: self.concurrency,
            lease: self.lease,
            poll_interval: self.poll_interval,
            workers: Mutex::new(Vec::new()),
            kills: Mutex::new(Vec::new()),
        });
        // Build the first worker before anything is pushed, so that a bad
        // setting refuses the run with nothing done.
        let first = pool.build(0)?;
        let total = names.len() as u64;
        memory.push(pushed).await.map_err(SimulationError::Push)?;
        let ids: Vec<BatchId> = batches.iter().map(NewBatch::id).collect();
        for batch in batches {
            memory.create_batch(batch).await.map_err(SimulationError::Workflow)?;
        }
        start(&first);
        for slot in 1..self.workers {
            let worker = pool.build(slot)?;
            start(&worker);
        }
        let chaos = tokio::spawn(chaos(Arc::clone(&pool), plan.clone()));
        let finished =
            tokio::time::timeout(self.time_limit, world.resolved_reach(total)).await.is_ok();
        let elapsed = world.elapsed();
        // What the queue held at the end, before stopping puts running jobs back.
        let tally = world.tally();
        chaos.abort();
        for kill in pool.kills.lock().unwrap_or_else(PoisonError::into_inner).drain(..) {
            kill.abort();
        }
        let workers = pool.workers.lock().unwrap_or_else(PoisonError::into_inner).clone();
        for worker in &workers {
            worker.stop(Duration::ZERO);
        }
        for worker in &workers {
            worker.stopped().await;
        }
        let mut infos = Vec::with_capacity(ids.len());
        for id in ids {
            if let Ok(Some(info)) = memory.batch(id).await {
                infos.push(info);
            }
        }
        Ok(SimulationReport {
            seed,
            plan,
            jobs: total,
            acked: tally.acked,
            failed: tally.failed,
            runs: tally.runs,
            duplicates: tally.duplicates,
            retries: tally.retries,
            faults: tally.faults,
            lost: tally.lost,
            elapsed,
            finished,
            batches: infos,
        })
    }
}

/// The running workers and what it takes to start another.
struct Pool {
    world: Arc<World>,
    memory: MemoryQueue,
    handlers: JobHandlers,
    concurrency: usize,
    lease: Duration,
    poll_interval: Duration,
    /// Every worker started, by incarnation.
    workers: Mutex<Vec<Worker<ChaosBackend>>>,
    /// The kills waiting for their moment.
    kills: Mutex<Vec<JoinHandle<()>>>,
}

impl Pool {
    /// A new worker for index `slot`, registered as its current incarnation.
    fn build(&self, slot: usize) -> Result<Worker<ChaosBackend>, ConfigError> {
        let mut workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        let name = format!("sim-worker-{slot}.{}", workers.len());
        let incarnation = self.world.born(slot, name.clone());
        let backend = ChaosBackend::new(Arc::clone(&self.world), incarnation, self.memory.clone());
        let worker = Worker::builder(backend, self.handlers.clone())
            .name(name)
            .concurrency(self.concurrency)
            .lease(self.lease)
            .poll_interval(self.poll_interval)
            .build()?;
        workers.push(worker.clone());
        Ok(worker)
    }

    fn worker(&self, incarnation: usize) -> Option<Worker<ChaosBackend>> {
        self.workers.lock().unwrap_or_else(PoisonError::into_inner).get(incarnation).cloned()
    }
}

/// Starts a worker built by [`Pool::build`] (never started before).
fn start(worker: &Worker<ChaosBackend>) {
    let _ = worker.start();
}

/// Injects the plan's faults in order as they fall due: arms the
/// acknowledgement and renewal faults on their workers, starts a task for
/// each kill. (One task arms them all, so faults due at once are armed in
/// the plan's order and a seed replays the same run.)
async fn chaos(pool: Arc<Pool>, plan: ChaosPlan) {
    for fault in plan.faults() {
        pool.world.runs_reach(fault.after_runs).await;
        if let FaultKind::Kill { after } = fault.kind {
            let task = tokio::spawn(kill(Arc::clone(&pool), *fault, after));
            pool.kills.lock().unwrap_or_else(PoisonError::into_inner).push(task);
        } else {
            pool.world.arm(*fault);
        }
    }
}

/// Kills `fault.worker` `after` from now if it holds a job then, else `after`
/// from its next reservation, and so on; starts its replacement.
async fn kill(pool: Arc<Pool>, fault: Fault, after: Duration) {
    loop {
        tokio::time::sleep(after).await;
        match pool.world.kill(fault) {
            Ok(dead) => {
                if let Some(worker) = pool.worker(dead) {
                    worker.stop(Duration::ZERO);
                }
                if let Ok(worker) = pool.build(fault.worker) {
                    start(&worker);
                }
                return;
            }
            Err(seen) => pool.world.reserves_after(fault.worker, seen).await,
        }
    }
}
