//! [`FakeBackend`]: the queue behind a fake bus's [`Bus::queue`](crate::Bus::queue).
//! Pushes are recorded (or go to the real queue for excepted job types);
//! everything else goes to the real queue, or answers as an empty one.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::Recorder;
use crate::failed::{FailedJob, FailedQuery, Selection};
use crate::id::JobId;
use crate::job::Envelope;
use crate::queue::{
    FailedStore, Lease, LeaseLost, PushError, Pushed, QueueBackend, QueueError, QueueSize,
    Reservation, ReserveRequest, Settled, Transition,
};

/// The fake bus's queue backend.
pub(crate) struct FakeBackend {
    recorder: Arc<Recorder>,
}

impl FakeBackend {
    pub(crate) fn new(recorder: Arc<Recorder>) -> Self {
        Self { recorder }
    }
}

impl fmt::Debug for FakeBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeBackend").field("recorder", &self.recorder).finish()
    }
}

/// `error` with `more` jobs handed back too.
fn with_jobs(error: PushError, more: Vec<Pushed>) -> PushError {
    match error {
        PushError::Full { queue, capacity, mut jobs } => {
            jobs.extend(more);
            PushError::Full { queue, capacity, jobs }
        }
        PushError::Duplicate { id, mut jobs } => {
            jobs.extend(more);
            PushError::Duplicate { id, jobs }
        }
        PushError::Invalid { error, mut jobs } => {
            jobs.extend(more);
            PushError::Invalid { error, jobs }
        }
        PushError::Locked { key, held_by, mut jobs } => {
            jobs.extend(more);
            PushError::Locked { key, held_by, jobs }
        }
        PushError::Backend { error, mut jobs } => {
            jobs.extend(more);
            PushError::Backend { error, jobs }
        }
    }
}

impl QueueBackend for FakeBackend {
    async fn push(&self, jobs: Vec<Pushed>) -> Result<(), PushError> {
        let (real, recorded): (Vec<Pushed>, Vec<Pushed>) =
            jobs.into_iter().partition(|pushed| self.recorder.excepts(&pushed.envelope.name));
        if !real.is_empty() {
            let pushed = match &self.recorder.real {
                Some(queue) => queue.push_envelopes(real).await,
                None => Err(PushError::Backend {
                    error: "the bus has no queue to push onto".into(),
                    jobs: real,
                }),
            };
            if let Err(error) = pushed {
                return Err(with_jobs(error, recorded));
            }
        }
        self.recorder.record_pushed(recorded);
        Ok(())
    }

    async fn reserve(&self, request: ReserveRequest<'_>) -> Result<Reservation, QueueError> {
        match &self.recorder.real {
            Some(queue) => queue.backend().reserve(request).await,
            None => Ok(Reservation::default()),
        }
    }

    async fn settle(&self, batch: Vec<(Lease, Transition)>) -> Result<Vec<Settled>, QueueError> {
        match &self.recorder.real {
            Some(queue) => queue.backend().settle(batch).await,
            None => Ok(batch.iter().map(|(lease, _)| Err(LeaseLost::new(lease.job))).collect()),
        }
    }

    async fn size(&self, queue: &str) -> Result<QueueSize, QueueError> {
        match &self.recorder.real {
            Some(real) => real.backend().size(queue).await,
            None => Ok(QueueSize::default()),
        }
    }

    async fn peek(&self, queue: &str, limit: usize) -> Result<Vec<Envelope>, QueueError> {
        match &self.recorder.real {
            Some(real) => real.backend().peek(queue, limit).await,
            None => Ok(Vec::new()),
        }
    }

    async fn clear(&self, queue: &str) -> Result<u64, QueueError> {
        match &self.recorder.real {
            Some(real) => real.backend().clear(queue).await,
            None => Ok(0),
        }
    }

    async fn set_paused(&self, queue: &str, paused: bool) -> Result<(), QueueError> {
        match &self.recorder.real {
            Some(real) => real.backend().set_paused(queue, paused).await,
            None => Ok(()),
        }
    }

    async fn set_capacity(&self, queue: &str, capacity: Option<u64>) -> Result<(), QueueError> {
        match &self.recorder.real {
            Some(real) => real.backend().set_capacity(queue, capacity).await,
            None => Ok(()),
        }
    }

    async fn queues(&self) -> Result<Vec<String>, QueueError> {
        match &self.recorder.real {
            Some(real) => real.backend().queues().await,
            None => Ok(Vec::new()),
        }
    }

    async fn wait(&self, queues: &[String], timeout: Duration) {
        match &self.recorder.real {
            Some(real) => real.backend().wait(queues, timeout).await,
            None => tokio::time::sleep(timeout).await,
        }
    }

    fn now(&self) -> u64 {
        self.recorder.now()
    }
}

impl FailedStore for FakeBackend {
    async fn failed(&self, query: &FailedQuery) -> Result<Vec<FailedJob>, QueueError> {
        match &self.recorder.real {
            Some(real) => real.backend().failed(query).await,
            None => Ok(Vec::new()),
        }
    }

    async fn failed_job(&self, id: JobId) -> Result<Option<FailedJob>, QueueError> {
        match &self.recorder.real {
            Some(real) => real.backend().failed_job(id).await,
            None => Ok(None),
        }
    }

    async fn failed_count(&self, queue: Option<&str>) -> Result<u64, QueueError> {
        match &self.recorder.real {
            Some(real) => real.backend().failed_count(queue).await,
            None => Ok(0),
        }
    }

    async fn retry_failed(&self, selection: &Selection) -> Result<Vec<JobId>, QueueError> {
        match &self.recorder.real {
            Some(real) => real.backend().retry_failed(selection).await,
            None => Ok(Vec::new()),
        }
    }

    async fn forget_failed(&self, selection: &Selection) -> Result<u64, QueueError> {
        match &self.recorder.real {
            Some(real) => real.backend().forget_failed(selection).await,
            None => Ok(0),
        }
    }
}
