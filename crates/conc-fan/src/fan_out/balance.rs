//! How the dispatcher picks the worker for the next batch.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use super::metrics::WorkerStats;

/// A balancing function: the workers' loads in, a worker index out.
pub type PickWorker = Arc<dyn Fn(&[usize]) -> usize + Send + Sync>;

/// How a [`FanOut`](crate::FanOut) picks the worker for the next batch.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use conc_fan::{Balance, FanOut};
///
/// // Always the last worker: the index is taken modulo the worker count.
/// let last = Balance::Custom(Arc::new(|loads: &[usize]| loads.len() - 1));
/// let fan_out = FanOut::builder().workers(4).balance(last).build(|n: u8| async move { Ok::<_, std::io::Error>(n) });
/// assert!(fan_out.is_ok());
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum Balance {
    /// Each worker in turn: over `n` batches every worker gets ⌊n/k⌋ or ⌈n/k⌉.
    #[default]
    RoundRobin,
    /// The worker with the fewest items queued or running (ties rotate, so
    /// equal workers share), so a slow worker gets less work. If its queue
    /// is full, the next least loaded worker with room gets the batch.
    LeastLoaded,
    /// A function of the workers' current loads (items queued or running)
    /// returning a worker index, taken modulo the number of workers. A panic
    /// in it stops the dispatcher with
    /// [`FanError::DispatchPanicked`](crate::FanError::DispatchPanicked).
    Custom(PickWorker),
}

impl fmt::Debug for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RoundRobin => f.write_str("RoundRobin"),
            Self::LeastLoaded => f.write_str("LeastLoaded"),
            Self::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// The dispatcher's side of a [`Balance`]: whose turn it is, and a reused
/// buffer of loads for a custom function.
pub(crate) struct Balancer {
    balance: Balance,
    stats: Arc<[WorkerStats]>,
    turn: usize,
    loads: Vec<usize>,
}

impl Balancer {
    pub(crate) fn new(balance: Balance, stats: Arc<[WorkerStats]>) -> Self {
        let loads =
            if matches!(balance, Balance::Custom(_)) { vec![0; stats.len()] } else { Vec::new() };
        Self { balance, stats, turn: 0, loads }
    }

    /// Whether a full queue makes the batch go to another worker.
    pub(crate) fn spills(&self) -> bool {
        matches!(self.balance, Balance::LeastLoaded)
    }

    /// The worker for the next batch, or the panic of a custom function.
    pub(crate) fn pick(&mut self) -> Result<usize, String> {
        let workers = self.stats.len();
        match &self.balance {
            Balance::RoundRobin => {
                self.turn = (self.turn + 1) % workers;
                Ok(self.turn)
            }
            Balance::LeastLoaded => {
                // Lowest load wins; ties rotate, so equal workers share.
                self.turn = (self.turn + 1) % workers;
                let mut best = self.turn;
                let mut least = usize::MAX;
                for offset in 0..workers {
                    let worker = (self.turn + offset) % workers;
                    let load = self.stats[worker].pending.load(Relaxed);
                    if load < least {
                        (best, least) = (worker, load);
                    }
                }
                Ok(best)
            }
            Balance::Custom(pick) => {
                for (load, stats) in self.loads.iter_mut().zip(self.stats.iter()) {
                    *load = stats.pending.load(Relaxed);
                }
                let loads = &self.loads;
                std::panic::catch_unwind(AssertUnwindSafe(|| pick(loads)))
                    .map(|index| index % workers)
                    .map_err(|panic| conc_core::driver::panic_message(&*panic))
            }
        }
    }

    /// The other workers, least loaded first: where a batch goes when its
    /// worker's queue is full.
    pub(crate) fn others_by_load(&self, worker: usize) -> Vec<usize> {
        let mut others: Vec<usize> = (0..self.stats.len()).filter(|&w| w != worker).collect();
        others.sort_by_key(|&w| self.stats[w].pending.load(Relaxed));
        others
    }
}
