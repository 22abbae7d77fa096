//! What the pages show, as plain data: the same values render as HTML and
//! serialize as the JSON API.

use conc_bus::JobId;
use conc_bus_cli::QueueReport;
use serde::Serialize;

/// A page of a list: its items, how many there are in all, and the cursor of
/// the next page (a page number, or for failed jobs the last id shown) when
/// there is one.
///
/// # Examples
///
/// ```
/// use conc_dashboard::Page;
///
/// let page = Page::of(vec![1, 2, 3, 4, 5], 1, 2);
/// assert_eq!((page.items.as_slice(), page.total, page.next.as_deref()), (&[3, 4][..], 5, Some("2")));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// How many items the whole list has.
    pub total: u64,
    /// The cursor of the next page, if any.
    pub next: Option<String>,
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Self { items: Vec::new(), total: 0, next: None }
    }
}

impl<T> Page<T> {
    /// Page `page` (from 0) of `size` items of `all`.
    pub fn of(all: Vec<T>, page: usize, size: usize) -> Self {
        let total = all.len() as u64;
        let size = size.max(1);
        let start = page.saturating_mul(size);
        let more = all.len() > start.saturating_add(size);
        let items = all.into_iter().skip(start).take(size).collect();
        Self { items, total, next: more.then(|| (page + 1).to_string()) }
    }

    /// A page built from its parts.
    pub fn new(items: Vec<T>, total: u64, next: Option<String>) -> Self {
        Self { items, total, next }
    }
}

/// A worker as the dashboard shows it: one that recorded a heartbeat in the
/// backend (of any process), one attached with
/// [`DashboardBuilder::worker`](crate::DashboardBuilder::worker), or both.
///
/// # Examples
///
/// ```
/// use conc_dashboard::WorkerReport;
///
/// let report = WorkerReport::default();
/// assert_eq!(report.processed, 0);
/// assert!(!report.attached);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct WorkerReport {
    /// Its heartbeat id (empty for an attached worker that records none).
    pub id: String,
    /// Its name.
    pub name: String,
    /// The host it runs on (empty when unknown).
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// Its queues, in priority order.
    pub queues: Vec<String>,
    /// How many jobs it runs at once, at most (0 when unknown).
    pub concurrency: u64,
    /// Where it is in its life: `idle`, `running`, `paused` (every queue it
    /// takes from is), `stopping`, `stopped: why`.
    pub state: String,
    /// Whether it is attached to this dashboard (in this process), so its
    /// runtimes, waits and recent jobs are shown too.
    pub attached: bool,
    /// Whether its last backend call succeeded (for a worker of another
    /// process: whether its heartbeat is recent, which it is when listed).
    pub backend_reachable: bool,
    /// Milliseconds since its last successful backend call, or since its
    /// last heartbeat.
    pub since_last_contact_ms: Option<u64>,
    /// Jobs running now.
    pub running: u64,
    /// Jobs it processed since it started.
    pub processed: u64,
    /// Attempts that failed since it started.
    pub failed: u64,
    /// Jobs processed in the last minute (attached), or per minute between
    /// its last two heartbeats (another process's worker).
    pub processed_last_minute: u64,
    /// Attempts failed in the last minute, or per minute between its last
    /// two heartbeats.
    pub failed_last_minute: u64,
    /// The last backend error, while it cannot reach the backend.
    pub last_error: Option<String>,
}

/// Runtime or wait of one job type or queue in one worker.
///
/// # Examples
///
/// ```
/// use conc_dashboard::Timing;
///
/// assert_eq!(Timing::default().count, 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Timing {
    /// The worker that measured it.
    pub worker: String,
    /// The job name (runtimes) or the queue (waits).
    pub key: String,
    /// How many were measured.
    pub count: u64,
    /// The median, in milliseconds.
    pub p50_ms: f64,
    /// The 99th percentile, in milliseconds.
    pub p99_ms: f64,
}

/// The overview page: throughput, queues, failed jobs, workers, timings.
///
/// # Examples
///
/// ```
/// use conc_dashboard::Overview;
///
/// let overview = Overview::default();
/// assert!(overview.processed_per_minute.is_none(), "no worker attached");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Overview {
    /// The backend's time, in Unix milliseconds.
    pub now: u64,
    /// Jobs the workers processed per minute: the attached ones in the last
    /// minute, the others between their last two heartbeats (`None` without
    /// any worker: the backend keeps no finished jobs).
    pub processed_per_minute: Option<u64>,
    /// Attempts the workers failed per minute, counted the same way.
    pub failed_per_minute: Option<u64>,
    /// Jobs in the failed store.
    pub failed_total: u64,
    /// The queues (first page).
    pub queues: Page<QueueReport>,
    /// The workers of every process that records heartbeats, and the
    /// attached ones (first page).
    pub workers: Page<WorkerReport>,
    /// Runtime per job type, per attached worker.
    pub runtimes: Vec<Timing>,
    /// Wait per queue (available to started), per attached worker.
    pub waits: Vec<Timing>,
    /// Batches not finished nor cancelled among the newest
    /// [`OVERVIEW_BATCHES`](crate::OVERVIEW_BATCHES); `None` when the backend
    /// keeps no batches.
    pub batches_pending: Option<u64>,
    /// How many batches that count looked at (at most `OVERVIEW_BATCHES`).
    pub batches_seen: u64,
    /// The token POST actions must carry (form field `csrf` or header
    /// `x-csrf-token`).
    pub csrf_token: String,
}

/// How a job's attempt ended, as the recent-jobs list shows it.
///
/// # Examples
///
/// ```
/// use conc_dashboard::JobOutcome;
///
/// assert_eq!(JobOutcome::Processed.as_str(), "processed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobOutcome {
    /// It succeeded.
    Processed,
    /// It failed and will be retried.
    Failed,
    /// It failed and went to the failed store.
    Dead,
    /// Its handler put it back (not a failure).
    Released,
    /// Its worker lost its lease; the attempt was abandoned.
    LeaseLost,
}

impl JobOutcome {
    /// The outcome as a word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processed => "processed",
            Self::Failed => "failed",
            Self::Dead => "dead",
            Self::Released => "released",
            Self::LeaseLost => "lease lost",
        }
    }
}

/// One attempt an attached worker finished.
///
/// # Examples
///
/// ```
/// use conc_dashboard::{JobOutcome, RecentJob};
///
/// let job = RecentJob::default();
/// assert_eq!(job.outcome, JobOutcome::Processed);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RecentJob {
    /// When the dashboard saw it, in Unix milliseconds.
    pub at: u64,
    /// The worker.
    pub worker: String,
    /// The job.
    pub id: JobId,
    /// Its name (empty when the event does not carry it).
    pub name: String,
    /// Its queue.
    pub queue: String,
    /// How the attempt ended.
    pub outcome: JobOutcome,
    /// Which attempt, when known.
    pub attempt: Option<u32>,
    /// How long it ran, in milliseconds, when known.
    pub runtime_ms: Option<u64>,
    /// The error, for failures.
    pub error: Option<String>,
}

impl Default for RecentJob {
    fn default() -> Self {
        Self {
            at: 0,
            worker: String::new(),
            id: JobId::from_u128(0),
            name: String::new(),
            queue: String::new(),
            outcome: JobOutcome::Processed,
            attempt: None,
            runtime_ms: None,
            error: None,
        }
    }
}

/// One queue in a [`Sample`].
///
/// # Examples
///
/// ```
/// use conc_dashboard::QueueSample;
///
/// assert_eq!(QueueSample::default().ready, 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct QueueSample {
    /// The queue.
    pub name: String,
    /// Jobs ready.
    pub ready: u64,
    /// Jobs delayed.
    pub delayed: u64,
    /// Jobs leased.
    pub reserved: u64,
    /// The oldest ready job's wait, in milliseconds.
    pub wait_ms: u64,
}

/// What the in-process sampler recorded at one moment, for the charts.
///
/// # Examples
///
/// ```
/// use conc_dashboard::Sample;
///
/// assert!(Sample::default().queues.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Sample {
    /// When, in Unix milliseconds (the backend's clock).
    pub at: u64,
    /// Jobs the workers processed per minute (as
    /// [`Overview::processed_per_minute`] counts them).
    pub processed_per_minute: u64,
    /// Attempts the workers failed per minute.
    pub failed_per_minute: u64,
    /// Jobs in the failed store.
    pub failed_total: u64,
    /// Every queue.
    pub queues: Vec<QueueSample>,
}

/// A page of batches, newest first, as `/batches` shows it: the cursor of the
/// next page is the last id shown (`?before=`).
///
/// # Examples
///
/// ```
/// use conc_dashboard::BatchList;
///
/// let list = BatchList::default();
/// assert!(list.items.is_empty() && list.next.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BatchList {
    /// The batches of this page, with their state and progress.
    pub items: Vec<conc_bus_cli::BatchReport>,
    /// The id to pass as `before` for the next page, if there is one.
    pub next: Option<String>,
}
