//! What a simulation found: [`SimulationReport`] with its two property
//! checks, the faults that fired ([`FaultRecord`]), the jobs lost
//! ([`LostJob`]), a broken property ([`Violation`]); and why a simulation
//! could not run ([`SimulationError`]).

use std::fmt;
use std::time::Duration;

use conc_core::config::ConfigError;

use super::plan::{ChaosPlan, Fault};
use crate::failed::FailReason;
use crate::id::JobId;
use crate::job::DecodeError;
use crate::queue::PushError;

/// A fault that fired: the planned fault, when (from the simulation's start,
/// on tokio's clock), the worker it hit, and the jobs it disturbed (a killed
/// worker's held jobs, the job whose acknowledgement was dropped, the jobs a
/// delayed acknowledgement left unrenewed, the job whose lease expired).
///
/// # Examples
///
/// ```
/// use conc_bus::testing::{FaultRecord, SimulationReport};
///
/// fn hits(report: &SimulationReport) -> usize {
///     report.faults.iter().map(|fault: &FaultRecord| fault.hit.len()).sum()
/// }
/// # let _ = hits;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FaultRecord {
    /// The fault as planned.
    pub fault: Fault,
    /// When it fired, from the simulation's start.
    pub at: Duration,
    /// The name of the worker it hit.
    pub worker: String,
    /// The jobs it disturbed.
    pub hit: Vec<JobId>,
}

/// Where a lost job was left.
///
/// # Examples
///
/// ```
/// use conc_bus::FailReason;
/// use conc_bus::testing::LostState;
///
/// assert_eq!(LostState::Failed(FailReason::Abandoned).to_string(),
///     "in the failed store because its attempts ran out while a worker held it (the worker may have crashed)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LostState {
    /// Still on its queue, ready or delayed: never run, or not run again.
    Waiting,
    /// Still leased: its last attempt never settled it.
    Held,
    /// In the failed store for a reason no attempt of it gave (a worker
    /// crashed or lost it too often, a deadline passed before a run).
    Failed(FailReason),
}

impl fmt::Display for LostState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Waiting => f.write_str("still waiting on its queue"),
            Self::Held => f.write_str("still leased, never settled"),
            Self::Failed(reason) => write!(f, "in the failed store because {reason}"),
        }
    }
}

/// A job the simulation did not see through: neither acknowledged nor failed
/// by one of its own attempts.
///
/// # Examples
///
/// ```
/// use conc_bus::testing::SimulationReport;
///
/// fn lost_ids(report: &SimulationReport) -> Vec<conc_bus::JobId> {
///     report.lost.iter().map(|job| job.id).collect()
/// }
/// # let _ = lost_ids;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LostJob {
    /// Its id (the simulation numbers its jobs from 1, in the order given).
    pub id: JobId,
    /// Its name.
    pub name: String,
    /// Where it was left.
    pub state: LostState,
}

impl fmt::Display for LostJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` {} ({})", self.name, self.id.as_u128(), self.state)
    }
}

/// A property a simulation found broken.
///
/// # Examples
///
/// ```
/// use conc_bus::testing::Violation;
///
/// let violation = Violation::TooManyDuplicates { duplicates: 3, hits: 1 };
/// assert_eq!(violation.to_string(), "3 handler run(s) beyond the first of their job, more than the 1 job(s) the faults hit");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// Jobs were lost: not acknowledged, and not failed by their own attempts.
    JobsLost(Vec<LostJob>),
    /// Handlers ran more often beyond the first run of their job than the
    /// faults disturbed jobs.
    TooManyDuplicates {
        /// Runs beyond the first of their job.
        duplicates: u64,
        /// Jobs the faults disturbed.
        hits: u64,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::JobsLost(lost) => {
                write!(f, "{} job(s) lost:", lost.len())?;
                for job in lost.iter().take(10) {
                    write!(f, " {job};")?;
                }
                if lost.len() > 10 {
                    write!(f, " and {} more", lost.len() - 10)?;
                }
                Ok(())
            }
            Self::TooManyDuplicates { duplicates, hits } => write!(
                f,
                "{duplicates} handler run(s) beyond the first of their job, more than the {hits} \
                 job(s) the faults hit"
            ),
        }
    }
}

impl std::error::Error for Violation {}

/// What a [`Simulation`](super::Simulation) found, with its two property
/// checks:
///
/// - **no job lost** ([`no_job_lost`](Self::no_job_lost)): every job ended
///   acknowledged, or in the failed store because one of its own attempts
///   failed it (an error, a panic, a timeout); none was left queued or
///   leased, none failed for another reason (a worker crashing it out of its
///   attempts);
/// - **duplicates within faults** ([`duplicates_within_faults`](Self::duplicates_within_faults)):
///   the handler runs beyond the first of their job number no more than the
///   jobs the faults hit (a kill hits every job its worker held). A handler
///   that fails or releases jobs on purpose reruns them too: those reruns are
///   counted in `retries`, and [`redeliveries`](Self::redeliveries) leaves
///   them out.
///
/// # Examples
///
/// ```
/// use conc_bus::{JobHandlers, Job, JobContext, JobError};
/// use conc_bus::testing::Simulation;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Noop;
/// impl Job for Noop { const NAME: &'static str = "noop"; }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let handlers = JobHandlers::new().handle(|_: Noop, _: JobContext| async { Ok::<(), JobError>(()) });
/// let report = Simulation::new(handlers).jobs((0..10).map(|_| Noop)).faults(0).run().await?;
/// assert_eq!((report.jobs, report.acked, report.runs, report.duplicates), (10, 10, 10, 0));
/// report.assert_holds();
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use = "a report is there to be checked"]
pub struct SimulationReport {
    /// The seed the plan was drawn from (`None` for a plan given by hand).
    pub seed: Option<u64>,
    /// The plan the simulation ran.
    pub plan: ChaosPlan,
    /// Jobs pushed.
    pub jobs: u64,
    /// Jobs acknowledged.
    pub acked: u64,
    /// Jobs in the failed store because one of their own attempts failed them.
    pub failed: u64,
    /// Handler runs started (reservations, each attempt counted).
    pub runs: u64,
    /// Runs beyond the first of their job, whatever the cause.
    pub duplicates: u64,
    /// Of the duplicates, those the job's previous attempt asked for (a
    /// retryable failure or a release).
    pub retries: u64,
    /// The faults that fired, in order (a planned fault whose moment never
    /// came — no acknowledgement or renewal after it was due — is not here).
    pub faults: Vec<FaultRecord>,
    /// The jobs lost, by id.
    pub lost: Vec<LostJob>,
    /// How long the simulation ran, on tokio's clock.
    pub elapsed: Duration,
    /// Whether every job was acknowledged or failed before the time limit.
    pub finished: bool,
    /// The batches of the run ([`Simulation::batch`](super::Simulation::batch))
    /// as they stood at the end.
    pub batches: Vec<crate::batch::BatchInfo>,
}

impl SimulationReport {
    /// The jobs the faults hit, counted once per fault.
    pub fn fault_hits(&self) -> u64 {
        self.faults.iter().map(|fault| fault.hit.len() as u64).sum()
    }

    /// Runs beyond the first of their job that no attempt asked for: the
    /// jobs the faults made run again.
    pub fn redeliveries(&self) -> u64 {
        self.duplicates.saturating_sub(self.retries)
    }

    /// Whether no job was lost.
    pub fn no_job_lost(&self) -> bool {
        self.lost.is_empty()
    }

    /// Whether the runs beyond the first of their job number no more than
    /// the jobs the faults hit.
    pub fn duplicates_within_faults(&self) -> bool {
        self.duplicates <= self.fault_hits()
    }

    /// The properties broken, if any.
    pub fn violations(&self) -> Vec<Violation> {
        let mut out = Vec::new();
        if !self.no_job_lost() {
            out.push(Violation::JobsLost(self.lost.clone()));
        }
        if !self.duplicates_within_faults() {
            out.push(Violation::TooManyDuplicates {
                duplicates: self.duplicates,
                hits: self.fault_hits(),
            });
        }
        out
    }

    /// Asserts both properties hold.
    ///
    /// # Panics
    ///
    /// When one is broken, with the whole report.
    #[track_caller]
    pub fn assert_holds(&self) {
        let violations = self.violations();
        if !violations.is_empty() {
            let list: Vec<String> = violations.iter().map(ToString::to_string).collect();
            panic!("the simulation broke its properties: {}\n{self}", list.join("; "));
        }
    }
}

impl fmt::Display for SimulationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.seed {
            Some(seed) => writeln!(f, "simulation of seed {seed}:")?,
            None => writeln!(f, "simulation of a hand-written plan:")?,
        }
        writeln!(
            f,
            "  jobs {}, acknowledged {}, failed by their attempts {}, lost {}",
            self.jobs,
            self.acked,
            self.failed,
            self.lost.len()
        )?;
        writeln!(
            f,
            "  runs {}, duplicates {} (asked for by the attempts {}), faults fired {} of {} \
             planned, hitting {} job(s)",
            self.runs,
            self.duplicates,
            self.retries,
            self.faults.len(),
            self.plan.faults().len(),
            self.fault_hits()
        )?;
        write!(
            f,
            "  ran {:?} of tokio time{}",
            self.elapsed,
            if self.finished { "" } else { ", stopped by the time limit" }
        )?;
        for fault in &self.faults {
            let ids: Vec<u128> = fault.hit.iter().map(|id| id.as_u128()).collect();
            write!(
                f,
                "\n  at {:?} on {}: {}, hit jobs {ids:?}",
                fault.at, fault.worker, fault.fault
            )?;
        }
        for job in &self.lost {
            write!(f, "\n  lost: {job}")?;
        }
        Ok(())
    }
}

/// Why a simulation could not run. Nothing ran when it is returned.
///
/// # Examples
///
/// ```
/// use conc_bus::JobHandlers;
/// use conc_bus::testing::{Simulation, SimulationError};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let err = Simulation::new(JobHandlers::new()).workers(0).run().await.unwrap_err();
/// assert!(matches!(err, SimulationError::Config(ref e) if e.field == "workers"));
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimulationError {
    /// A setting of the simulation, the plan, the workers or the jobs was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A job given to the simulation does not serialize.
    #[error("a simulated job does not serialize: {0}")]
    Encode(#[source] DecodeError),
    /// The memory backend refused the jobs.
    #[error("the simulated jobs could not be pushed: {0}")]
    Push(#[source] PushError),
    /// A simulated batch was refused.
    #[error("a simulated batch could not be stored: {0}")]
    Workflow(#[source] crate::batch::WorkflowError),
}
