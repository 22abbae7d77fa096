//! The chaos plan: which faults a simulation injects, when and where —
//! written by hand or drawn from a seed, the same seed giving the same plan.

use std::fmt;
use std::time::Duration;

/// One kind of fault a [`ChaosPlan`] injects into a simulated worker.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_bus::testing::FaultKind;
///
/// let kill = FaultKind::Kill { after: Duration::from_millis(250) };
/// assert_eq!(kill.to_string(), "kill the worker 250ms into a job");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultKind {
    /// Kills the worker while it runs a job: `after` the fault is due (and
    /// again after each job it starts, until it holds one when the time is
    /// up), its backend connection goes dead at once, its running handlers are
    /// dropped at the await point they are parked at, and nothing of theirs
    /// (no acknowledgement, no release) reaches the queue. A new worker takes
    /// its place; the jobs it held come back when their leases expire.
    Kill {
        /// How long after the fault is due (or after the worker's next
        /// reservation) the worker is killed.
        after: Duration,
    },
    /// Drops the worker's next acknowledgement: the worker is told it
    /// landed, the queue never sees it, and the job comes back when its
    /// lease expires.
    DropAck,
    /// Holds the worker's next acknowledgement for `delay` before it reaches
    /// the queue (the worker waits on it meanwhile, renewing nothing); past
    /// the lease, the job may run again and the late acknowledgement is
    /// refused.
    DelayAck {
        /// How long the acknowledgement is held.
        delay: Duration,
    },
    /// Expires a lease: the renewals of the next lease the worker renews are
    /// dropped for `window` (the worker is told they landed), so the lease
    /// runs out while the handler still runs and another worker may take the
    /// job.
    ExpireLease {
        /// How long the lease's renewals are dropped.
        window: Duration,
    },
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Kill { after } => write!(f, "kill the worker {after:?} into a job"),
            Self::DropAck => f.write_str("drop an acknowledgement"),
            Self::DelayAck { delay } => write!(f, "delay an acknowledgement by {delay:?}"),
            Self::ExpireLease { window } => {
                write!(f, "drop a lease's renewals for {window:?}")
            }
        }
    }
}

/// One planned fault: what, on which worker (its index, 0 to workers − 1;
/// a killed worker's replacement keeps the index), and when — once the
/// simulation has started `after_runs` handler runs in all, so faults spread
/// over a run whatever the handlers' durations.
///
/// # Examples
///
/// ```
/// use conc_bus::testing::{Fault, FaultKind};
///
/// let fault = Fault::new(10, 1, FaultKind::DropAck);
/// assert_eq!(fault.to_string(), "after run 10, worker 1: drop an acknowledgement");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Fault {
    /// The fault is due once this many handler runs have started.
    pub after_runs: u64,
    /// The worker it hits.
    pub worker: usize,
    /// What it does.
    pub kind: FaultKind,
}

impl Fault {
    /// `kind` on worker `worker` once `after_runs` runs have started.
    pub fn new(after_runs: u64, worker: usize, kind: FaultKind) -> Self {
        Self { after_runs, worker, kind }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "after run {}, worker {}: {}", self.after_runs, self.worker, self.kind)
    }
}

/// The faults a [`Simulation`](super::Simulation) injects: written by hand
/// with [`fault`](Self::fault), or drawn from a seed with
/// [`seeded`](Self::seeded) — the same seed and shape always give the same
/// plan, so a failing seed reproduces.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_bus::testing::{ChaosPlan, Fault, FaultKind};
///
/// let lease = Duration::from_secs(30);
/// let plan = ChaosPlan::seeded(7, 20, 100, 3, lease);
/// assert_eq!(plan, ChaosPlan::seeded(7, 20, 100, 3, lease));
/// assert_eq!(plan.faults().len(), 20);
///
/// let kills_only = plan.clone().retain(|f| matches!(f.kind, FaultKind::Kill { .. }));
/// assert!(kills_only.faults().len() <= 20);
///
/// let by_hand = ChaosPlan::new()
///     .fault(Fault::new(5, 0, FaultKind::Kill { after: Duration::ZERO }))
///     .fault(Fault::new(9, 1, FaultKind::DropAck));
/// assert_eq!(by_hand.faults().len(), 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
#[must_use]
pub struct ChaosPlan {
    faults: Vec<Fault>,
}

impl ChaosPlan {
    /// A plan without faults.
    pub fn new() -> Self {
        Self::default()
    }

    /// `faults` faults drawn from `seed` for a simulation of `jobs` jobs on
    /// `workers` workers with leases of `lease`: each of the four kinds
    /// equally likely, on a worker chosen evenly, due after a run chosen
    /// evenly from 1 to `jobs`; kills come 0 to half a lease into a job,
    /// delayed acknowledgements are held half a lease to two leases, and
    /// renewals are dropped for one to three leases.
    pub fn seeded(seed: u64, faults: usize, jobs: u64, workers: usize, lease: Duration) -> Self {
        let mut rng = Rng::new(seed);
        let workers = workers.max(1) as u64;
        let mut plan: Vec<Fault> = (0..faults)
            .map(|_| {
                let after_runs = 1 + rng.below(jobs.max(1));
                let worker = rng.below(workers) as usize;
                let kind = match rng.below(4) {
                    0 => FaultKind::Kill { after: rng.between(Duration::ZERO, lease / 2) },
                    1 => FaultKind::DropAck,
                    2 => FaultKind::DelayAck { delay: rng.between(lease / 2, lease * 2) },
                    _ => FaultKind::ExpireLease { window: rng.between(lease, lease * 3) },
                };
                Fault { after_runs, worker, kind }
            })
            .collect();
        plan.sort_by_key(|fault| fault.after_runs);
        Self { faults: plan }
    }

    /// The plan with `fault` added.
    pub fn fault(mut self, fault: Fault) -> Self {
        self.faults.push(fault);
        self.faults.sort_by_key(|fault| fault.after_runs);
        self
    }

    /// The plan with only the faults `keep` accepts.
    pub fn retain(mut self, keep: impl FnMut(&Fault) -> bool) -> Self {
        self.faults.retain(keep);
        self
    }

    /// The faults, in the order they fall due.
    pub fn faults(&self) -> &[Fault] {
        &self.faults
    }
}

/// `SplitMix64`: a small, fast generator whose whole state is its seed.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// A duration from `low` to `high`, whole milliseconds.
    fn between(&mut self, low: Duration, high: Duration) -> Duration {
        let span = u64::try_from(high.saturating_sub(low).as_millis()).unwrap_or(u64::MAX);
        low + Duration::from_millis(self.below(span.saturating_add(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_one_plan_and_another_seed_another() {
        let lease = Duration::from_secs(30);
        let a = ChaosPlan::seeded(1, 50, 200, 4, lease);
        assert_eq!(a, ChaosPlan::seeded(1, 50, 200, 4, lease));
        assert_ne!(a, ChaosPlan::seeded(2, 50, 200, 4, lease));
        assert!(a.faults().windows(2).all(|w| w[0].after_runs <= w[1].after_runs));
        for fault in a.faults() {
            assert!((1..=200).contains(&fault.after_runs) && fault.worker < 4, "{fault}");
            match fault.kind {
                FaultKind::Kill { after } => assert!(after <= lease / 2),
                FaultKind::DelayAck { delay } => assert!(delay >= lease / 2 && delay <= lease * 2),
                FaultKind::ExpireLease { window } => {
                    assert!(window >= lease && window <= lease * 3);
                }
                FaultKind::DropAck => {}
            }
        }
        let kinds: std::collections::HashSet<_> =
            a.faults().iter().map(|f| std::mem::discriminant(&f.kind)).collect();
        assert_eq!(kinds.len(), 4, "fifty draws cover the four kinds");
    }

    #[test]
    fn degenerate_shapes_do_not_panic() {
        let plan = ChaosPlan::seeded(9, 3, 0, 0, Duration::ZERO);
        assert!(plan.faults().iter().all(|f| f.after_runs == 1 && f.worker == 0));
        assert!(ChaosPlan::seeded(9, 0, 10, 2, Duration::from_secs(1)).faults().is_empty());
    }
}
