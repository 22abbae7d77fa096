//! What a pool run reports: progress events while it runs, results at its end.

use crate::{ProcessError, ProcessOutput};

/// Progress of a pool run, passed to [`ProcessPoolBuilder::on_event`](super::ProcessPoolBuilder::on_event).
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use conc_process::{Process, ProcessPool, ProcessPoolEvent};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let finished = Arc::new(Mutex::new(Vec::new()));
/// let log = Arc::clone(&finished);
/// let pool = ProcessPool::builder()
///     .concurrency(1)
///     .on_event(move |event| {
///         if let ProcessPoolEvent::Finished { name, completed, total, .. } = event {
///             log.lock().unwrap().push(format!("{completed}/{total} {name}"));
///         }
///     })
///     .build()?;
/// let _results = pool.run([("a", Process::new("true")), ("b", Process::new("true"))]).await?;
/// assert_eq!(*finished.lock().unwrap(), ["1/2 a", "2/2 b"]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProcessPoolEvent<'a> {
    /// A job's process is being started.
    Started {
        /// The job's name.
        name: &'a str,
        /// Jobs running now, this one included.
        running: usize,
    },
    /// A job ended: its process exited, timed out or failed to start.
    Finished {
        /// The job's name.
        name: &'a str,
        /// Whether it exited with code 0.
        successful: bool,
        /// Jobs finished so far, this one included.
        completed: usize,
        /// Jobs in the run.
        total: usize,
    },
    /// A job was cancelled by fail-fast or a stop: killed while running, or never started.
    Cancelled {
        /// The job's name.
        name: &'a str,
    },
}

/// The results of a pool run, keyed by job name, in the order the jobs were given.
///
/// # Examples
///
/// ```
/// use conc_process::{Process, ProcessPool};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = ProcessPool::builder().build()?;
/// let results = pool.run([("ok", Process::new("true")), ("bad", Process::new("false"))]).await?;
/// assert_eq!(results.len(), 2);
/// assert!(!results.successful());
/// assert_eq!(results.failed().collect::<Vec<_>>(), ["bad"]);
/// assert!(results.get("ok").unwrap().as_ref().unwrap().successful());
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a pool's results say which jobs failed"]
pub struct ProcessPoolResults {
    pub(super) entries: Vec<(String, Result<ProcessOutput, ProcessError>)>,
}

impl ProcessPoolResults {
    /// The result of the job with this name.
    pub fn get(&self, name: &str) -> Option<&Result<ProcessOutput, ProcessError>> {
        self.entries.iter().find(|(job, _)| job == name).map(|(_, result)| result)
    }

    /// Every job's name and result, in the order the jobs were given.
    pub fn iter(
        &self,
    ) -> impl ExactSizeIterator<Item = (&str, &Result<ProcessOutput, ProcessError>)> {
        self.entries.iter().map(|(name, result)| (name.as_str(), result))
    }

    /// The number of jobs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the run had no jobs.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether every job exited with code 0.
    pub fn successful(&self) -> bool {
        self.entries.iter().all(|(_, result)| matches!(result, Ok(output) if output.successful()))
    }

    /// The names of the jobs that did not succeed.
    pub fn failed(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter(|(_, result)| !matches!(result, Ok(output) if output.successful()))
            .map(|(name, _)| name.as_str())
    }
}

impl IntoIterator for ProcessPoolResults {
    type Item = (String, Result<ProcessOutput, ProcessError>);
    type IntoIter = std::vec::IntoIter<Self::Item>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}
