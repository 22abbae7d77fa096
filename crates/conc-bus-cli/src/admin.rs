//! [`Admin`]: the operations of the `conc-bus` binary, as a library.

use std::time::Duration;

use conc_bus::{
    AnyBackend, Envelope, FailReason, FailedJob, FailedQuery, JobId, Queue, QueueBackend,
    Selection, WorkerBeat,
};
use serde::Serialize;

use crate::AdminError;

/// One queue: its jobs by state, how long its oldest ready job has waited,
/// whether it is paused, and its failed jobs.
///
/// # Examples
///
/// ```
/// use conc_bus_cli::QueueReport;
///
/// let report = QueueReport::default();
/// assert_eq!(report.ready + report.failed, 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct QueueReport {
    /// The queue.
    pub name: String,
    /// Jobs available now.
    pub ready: u64,
    /// Jobs available later (delayed or backing off).
    pub delayed: u64,
    /// Jobs leased to a worker now.
    pub reserved: u64,
    /// How long the oldest ready job has waited, in milliseconds.
    pub wait_ms: u64,
    /// Whether workers are kept from taking its jobs.
    pub paused: bool,
    /// Its jobs in the failed store.
    pub failed: u64,
}

/// A failed job in a list: who it is and why it failed, without the payload.
///
/// # Examples
///
/// ```
/// use conc_bus::FailedQuery;
/// use conc_bus_cli::{Admin, FailedSummary, connect};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let admin = Admin::new(connect("memory:").await?);
/// let page: Vec<FailedSummary> = admin.failed(&FailedQuery::new().queue("mail")).await?;
/// assert!(page.is_empty());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FailedSummary {
    /// The job's id.
    pub id: JobId,
    /// Its type's name.
    pub name: String,
    /// Its queue.
    pub queue: String,
    /// Reservations it had.
    pub attempts: u32,
    /// When it failed, in Unix milliseconds.
    pub failed_at: u64,
    /// Which limit tripped.
    pub reason: FailReason,
    /// The last error, with its chain.
    pub error: String,
}

impl From<&FailedJob> for FailedSummary {
    fn from(job: &FailedJob) -> Self {
        Self {
            id: job.envelope.id,
            name: job.envelope.name.clone(),
            queue: job.envelope.queue.clone(),
            attempts: job.attempts,
            failed_at: job.failed_at,
            reason: job.reason,
            error: job.error.clone(),
        }
    }
}

/// The payload of `envelope` as an operator may see it: `None` when it must
/// not be shown in clear.
///
/// A sealed payload (conc-bus feature `encryption`: the envelope names its
/// key id) is `None`, and so is the payload of a job marked encrypted that
/// was never sealed (stored by a path that bypassed the keyring): `show` and
/// the dashboard print "encrypted" instead, and nothing here holds a key to
/// open it.
///
/// # Examples
///
/// ```
/// use conc_bus::{Envelope, Job, JobOptions};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Ping { n: u8 }
/// impl Job for Ping { const NAME: &'static str = "ping"; }
///
/// let mut envelope = Envelope::new(&Ping { n: 1 }, &JobOptions::new(), 0)?;
/// assert_eq!(conc_bus_cli::visible_payload(&envelope), Some(r#"{"n":1}"#));
///
/// // Sealed (the envelope names the key): hidden.
/// envelope.key_id = Some("2026-12".into());
/// assert_eq!(conc_bus_cli::visible_payload(&envelope), None);
/// # Ok::<(), conc_bus::DecodeError>(())
/// ```
pub fn visible_payload(envelope: &Envelope) -> Option<&str> {
    // A sealed payload is ciphertext: shown as hidden, never decrypted here.
    if envelope.is_sealed() || envelope.encrypted { None } else { Some(&envelope.payload) }
}

/// `job` as JSON for an operator: what [`visible_payload`] hides is `null`
/// (the payload, the checkpoint a handler saved, the payloads of its chain's
/// links), and `payload_hidden` says whether anything was. The one JSON shape
/// of `conc-bus failed show --json` and the dashboard's API.
///
/// # Examples
///
/// ```
/// use conc_bus::{Envelope, FailReason, FailedJob, Job, JobOptions};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Charge { card: String }
/// impl Job for Charge { const NAME: &'static str = "charge"; }
///
/// let options = JobOptions::new().encrypted(true);
/// let envelope = Envelope::new(&Charge { card: "4111".into() }, &options, 0)?;
/// let job = FailedJob::new(envelope, 1, 0, FailReason::Fatal, "declined");
/// let value = conc_bus_cli::failed_job_json(&job);
/// assert!(value["envelope"]["payload"].is_null());
/// assert_eq!(value["payload_hidden"], true);
/// # Ok::<(), conc_bus::DecodeError>(())
/// ```
pub fn failed_job_json(job: &FailedJob) -> serde_json::Value {
    let mut value = serde_json::to_value(job).unwrap_or_default();
    let hidden = visible_payload(&job.envelope).is_none();
    if hidden {
        let envelope = &mut value["envelope"];
        envelope["payload"] = serde_json::Value::Null;
        envelope["checkpoint"] = serde_json::Value::Null;
        if let Some(links) = envelope["flow"]["chain"].as_array_mut() {
            for link in links {
                link["payload"] = serde_json::Value::Null;
            }
        }
    }
    value["payload_hidden"] = serde_json::Value::Bool(hidden);
    value
}

/// Which failed jobs [`Admin::retry`] puts back.
///
/// # Examples
///
/// ```
/// use conc_bus_cli::RetryFailed;
///
/// let by_queue = RetryFailed::Queue("mail".into());
/// assert_ne!(by_queue, RetryFailed::All);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryFailed {
    /// These jobs; an id that is not in the failed store is an error, and
    /// nothing is retried then.
    Ids(Vec<JobId>),
    /// Every failed job of this queue.
    Queue(String),
    /// Every failed job.
    All,
}

/// The operations of the `conc-bus` binary over any backend, for code that
/// operates queues itself (a deploy script, an admin endpoint, a test).
/// Every operation checks what it can before it writes, so a refused one
/// changed nothing.
///
/// # Examples
///
/// ```
/// use conc_bus::{Job, Queue};
/// use conc_bus_cli::{Admin, connect};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Mail { to: String }
/// impl Job for Mail { const NAME: &'static str = "mail"; }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let admin = Admin::new(connect("memory:").await?);
/// Queue::new(admin.backend().clone()).push(Mail { to: "ada@example.com".into() }).await?;
///
/// admin.pause("default").await?;
/// assert!(admin.pause("defualt").await.is_err(), "a typo creates nothing");
/// let queues = admin.queues().await?;
/// assert_eq!((queues[0].name.as_str(), queues[0].ready, queues[0].paused), ("default", 1, true));
/// assert_eq!(admin.clear("default").await?, 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Admin {
    queue: Queue<AnyBackend>,
}

impl Admin {
    /// The operations over `backend`.
    pub fn new(backend: AnyBackend) -> Self {
        Self { queue: Queue::new(backend) }
    }

    /// The backend.
    pub fn backend(&self) -> &AnyBackend {
        self.queue.backend()
    }

    /// Every queue the backend knows, by name: sizes, wait, pause, failed.
    /// Reads every queue's sizes: for a store with many queues, use
    /// [`queues_page`](Self::queues_page).
    pub async fn queues(&self) -> Result<Vec<QueueReport>, AdminError> {
        let mut out = Vec::new();
        for name in self.queue.queues().await? {
            out.push(self.queue_report(&name).await?);
        }
        Ok(out)
    }

    /// The queues the backend knows, by name: `limit` of them after skipping
    /// `offset`, with their sizes, and how many queues there are in all. Only
    /// the queues of the page are sized, so a page costs the same with ten
    /// queues or ten thousand (the names are read in one call).
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus_cli::{Admin, connect};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let admin = Admin::new(connect("memory:").await?);
    /// for name in ["a", "b", "c"] {
    ///     admin.pause_ahead(name).await?;
    /// }
    /// let (page, total) = admin.queues_page(1, 1).await?;
    /// assert_eq!((page[0].name.as_str(), total), ("b", 3));
    /// # Ok(()) }
    /// ```
    pub async fn queues_page(
        &self,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<QueueReport>, u64), AdminError> {
        let names = self.queue.queues().await?;
        let total = names.len() as u64;
        let mut out = Vec::with_capacity(limit.min(names.len()));
        for name in names.iter().skip(offset).take(limit) {
            out.push(self.queue_report(name).await?);
        }
        Ok((out, total))
    }

    /// One queue (a queue the backend does not know reads as empty).
    pub async fn queue_report(&self, name: &str) -> Result<QueueReport, AdminError> {
        let size = self.queue.size(name).await?;
        let failed = self.queue.failed_count(Some(name)).await?;
        Ok(QueueReport {
            name: name.to_owned(),
            ready: size.ready,
            delayed: size.delayed,
            reserved: size.reserved,
            wait_ms: size.oldest_wait_ms,
            paused: size.paused,
            failed,
        })
    }

    /// Refuses a queue the backend does not know (never pushed to, paused
    /// or bounded): a mistyped name must not create a queue.
    async fn known(&self, queue: &str) -> Result<(), AdminError> {
        if self.queue.queues().await?.iter().any(|name| name == queue) {
            Ok(())
        } else {
            Err(AdminError::NoSuchQueue(queue.to_owned()))
        }
    }

    /// Stops workers from taking jobs of `queue`.
    ///
    /// # Errors
    ///
    /// [`AdminError::NoSuchQueue`] when the backend does not know `queue`,
    /// and nothing is written; [`pause_ahead`](Self::pause_ahead) pauses a
    /// queue before its first job.
    pub async fn pause(&self, queue: &str) -> Result<(), AdminError> {
        self.known(queue).await?;
        Ok(self.queue.pause(queue).await?)
    }

    /// Pauses `queue` whether or not the backend knows it yet, so that its
    /// first jobs wait (the queue is created paused).
    pub async fn pause_ahead(&self, queue: &str) -> Result<(), AdminError> {
        Ok(self.queue.pause(queue).await?)
    }

    /// Lets workers take jobs of `queue` again.
    ///
    /// # Errors
    ///
    /// [`AdminError::NoSuchQueue`] when the backend does not know `queue`.
    pub async fn resume(&self, queue: &str) -> Result<(), AdminError> {
        self.known(queue).await?;
        Ok(self.queue.resume(queue).await?)
    }

    /// Deletes the ready and delayed jobs of `queue` (not the running ones);
    /// how many.
    ///
    /// # Errors
    ///
    /// [`AdminError::NoSuchQueue`] when the backend does not know `queue`.
    pub async fn clear(&self, queue: &str) -> Result<u64, AdminError> {
        self.known(queue).await?;
        Ok(self.queue.clear(queue).await?)
    }

    /// The workers of every process whose heartbeat is recent
    /// ([`QueueBackend::workers`]), sorted by host, process id and name.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{JobHandlers, Worker};
    /// use conc_bus_cli::{Admin, connect};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let admin = Admin::new(connect("memory:").await?);
    /// let worker = Worker::builder(admin.backend().clone(), JobHandlers::new()).name("mailer").build()?;
    /// worker.start()?;
    /// tokio::task::yield_now().await;
    /// assert_eq!(admin.workers().await?[0].name, "mailer");
    /// # Ok(()) }
    /// ```
    pub async fn workers(&self) -> Result<Vec<WorkerBeat>, AdminError> {
        Ok(self.queue.backend().workers().await?)
    }

    /// A page of failed jobs, oldest first.
    pub async fn failed(&self, query: &FailedQuery) -> Result<Vec<FailedSummary>, AdminError> {
        Ok(self.queue.failed(query).await?.iter().map(FailedSummary::from).collect())
    }

    /// How many failed jobs there are (of `queue` when given).
    pub async fn failed_count(&self, queue: Option<&str>) -> Result<u64, AdminError> {
        Ok(self.queue.failed_count(queue).await?)
    }

    /// The failed job `id`, payload, history and error chain included.
    pub async fn show(&self, id: JobId) -> Result<FailedJob, AdminError> {
        self.queue.failed_job(id).await?.ok_or(AdminError::NoSuchJob(id))
    }

    /// Puts failed jobs back on their queues (ids, histories and errors
    /// kept, attempts reset); the ids retried.
    ///
    /// # Errors
    ///
    /// [`AdminError::NoSuchJob`] for an id not in the failed store, before
    /// any job is retried.
    pub async fn retry(&self, which: &RetryFailed) -> Result<Vec<JobId>, AdminError> {
        let selection = match which {
            RetryFailed::Ids(ids) => {
                for id in ids {
                    self.show(*id).await?;
                }
                Selection::Ids(ids.clone())
            }
            RetryFailed::Queue(queue) => Selection::Queue(queue.clone()),
            RetryFailed::All => Selection::All,
        };
        Ok(self.queue.retry_failed(&selection).await?)
    }

    /// Deletes the failed job `id`.
    ///
    /// # Errors
    ///
    /// [`AdminError::NoSuchJob`] when it is not in the failed store.
    pub async fn forget(&self, id: JobId) -> Result<(), AdminError> {
        if self.queue.forget(id).await? { Ok(()) } else { Err(AdminError::NoSuchJob(id)) }
    }

    /// Deletes every failed job; how many.
    pub async fn flush(&self) -> Result<u64, AdminError> {
        Ok(self.queue.flush_failed().await?)
    }

    /// Deletes the failed jobs that failed more than `age` ago; how many.
    pub async fn prune(&self, age: Duration) -> Result<u64, AdminError> {
        Ok(self.queue.prune_failed(age).await?)
    }

    /// The backend's time, in Unix milliseconds.
    pub fn now(&self) -> u64 {
        self.queue.backend().now()
    }
}
