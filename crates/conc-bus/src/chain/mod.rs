//! Chains: jobs that run one after the other, each only once the one before
//! it succeeded.
//!
//! A chain travels in its jobs' envelopes ([`JobFlow`](crate::job::JobFlow)):
//! the running link carries the links after it and the chain's `catch` job.
//! When a link is acknowledged the backend pushes the next one in the same
//! step (no window where the first is done and the second is not stored);
//! when a link fails for good the backend pushes `catch` once, with the
//! error, and the rest of the chain is dropped. A link that is released or
//! retried is not done, so the next link waits for it.
//!
//! A running link changes the rest of its chain with
//! [`JobContext::prepend_to_chain`](crate::JobContext::prepend_to_chain) and
//! [`JobContext::append_to_chain`](crate::JobContext::append_to_chain); the
//! changes travel with its acknowledgement, so an attempt that fails changes
//! nothing.
//!
//! # Examples
//!
//! ```
//! use conc_bus::{MemoryQueue, Queue};
//! use conc_bus::chain::Chain;
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Serialize, Deserialize)] struct Fetch;
//! # impl conc_bus::Job for Fetch { const NAME: &'static str = "fetch"; }
//! # #[derive(Serialize, Deserialize)] struct Parse;
//! # impl conc_bus::Job for Parse { const NAME: &'static str = "parse"; }
//! # #[derive(Serialize, Deserialize)] struct Alert;
//! # impl conc_bus::Job for Alert { const NAME: &'static str = "alert"; }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let queue = Queue::new(MemoryQueue::new());
//! let first = queue.dispatch_chain(Chain::new(Fetch).then(Parse).catch(Alert)).await?;
//! assert_eq!(queue.peek("default", 10).await?[0].id, first);
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::time::Duration;

use conc_core::config::ConfigError;

use crate::batch::WorkflowError;
use crate::batch::builder::{envelope_of, set_queue};
use crate::clock::Millis;
use crate::job::{Envelope, Job, JobOptions, Trigger, TriggerKind, derived_id};
use crate::queue::Pushed;

/// Jobs to run one after the other, and the job to run if one of them fails
/// for good. Dispatch it with
/// [`Queue::dispatch_chain`](crate::Queue::dispatch_chain), or make it a
/// member of a batch with [`PendingPendingBatch::add_chain`](crate::batch::PendingBatch::add_chain).
///
/// # Examples
///
/// ```
/// use conc_bus::chain::Chain;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize)] struct Step(u8);
/// # impl conc_bus::Job for Step { const NAME: &'static str = "step"; }
///
/// let chain = Chain::new(Step(1)).then(Step(2)).then(Step(3));
/// assert_eq!(chain.len(), 3);
/// ```
#[derive(Debug)]
#[must_use = "a chain does nothing until dispatched"]
pub struct Chain {
    links: Vec<(Envelope, Duration)>,
    catch: Option<Envelope>,
    queue: Option<String>,
    admission: Option<crate::admission::Ticket>,
    error: Option<WorkflowError>,
}

#[allow(clippy::needless_pass_by_value, reason = "jobs are taken as a dispatch takes them")]
impl Chain {
    /// A chain starting with `job`, with its type's options.
    pub fn new<J: Job>(job: J) -> Self {
        Self::new_with(job, &J::options())
    }

    /// A chain starting with `job`, with `options`.
    pub fn new_with<J: Job>(job: J, options: &JobOptions) -> Self {
        let chain =
            Self { links: Vec::new(), catch: None, queue: None, admission: None, error: None };
        chain.then_with(job, options)
    }

    /// Runs `job` after the links so far, with its type's options.
    pub fn then<J: Job>(self, job: J) -> Self {
        self.then_with(job, &J::options())
    }

    /// Runs `job` after the links so far, with `options` (a delay applies to
    /// the first link only: later links are pushed when the one before them
    /// is done).
    pub fn then_with<J: Job>(mut self, job: J, options: &JobOptions) -> Self {
        if self.error.is_none() {
            match envelope_of(&job, options) {
                Ok(link) => self.links.push(link),
                Err(error) => self.error = Some(error),
            }
        }
        self
    }

    /// The job dispatched once if a link fails for good; its handler reads
    /// the link and its error with
    /// [`JobContext::trigger`](crate::JobContext::trigger).
    pub fn catch<J: Job>(mut self, job: J) -> Self {
        if self.error.is_none() {
            match envelope_of(&job, &J::options()) {
                Ok((envelope, _)) => self.catch = Some(envelope),
                Err(error) => self.error = Some(error),
            }
        }
        self
    }

    /// The queue of every link and of `catch`. Defaults to each job's own.
    pub fn on_queue(mut self, queue: impl Into<Cow<'static, str>>) -> Self {
        self.queue = Some(queue.into().into_owned());
        self
    }

    /// Dispatches the first link unique or debounced (see
    /// [`crate::admission`]): a debounced chain that is superseded while it
    /// waits is deleted whole, so none of its links run.
    pub fn admission(mut self, admission: crate::admission::Admission) -> Self {
        self.admission = Some(admission.into_ticket());
        self
    }

    /// How many links.
    pub fn len(&self) -> usize {
        self.links.len()
    }

    /// Whether it has no links (never: a chain starts with one).
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// The first link, carrying the rest of the chain, and its delay.
    pub(crate) fn into_head(self) -> Result<(Envelope, Duration), WorkflowError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let mut links = self.links.into_iter();
        let Some((mut head, delay)) = links.next() else {
            let error = ConfigError::new("chain", 0, "a chain needs a first link");
            return Err(WorkflowError::Invalid(error));
        };
        let flow = head.flow_mut();
        flow.chain = links.map(|(envelope, _)| envelope).collect();
        flow.chain_catch = self.catch.map(Box::new);
        flow.admission = self.admission;
        if let Some(queue) = &self.queue {
            set_queue(&mut head, queue);
        }
        Ok((head, delay))
    }
}

/// The next link of a chain whose link `done` was acknowledged at `now`.
pub(crate) fn next_link(done: &Envelope, now: Millis) -> Option<Pushed> {
    let flow = done.flow.as_deref()?;
    let mut rest = flow.chain.clone();
    if rest.is_empty() {
        return None;
    }
    let mut next = rest.remove(0);
    next.created_at = now;
    let next_flow = next.flow_mut();
    next_flow.chain = rest;
    next_flow.chain_catch.clone_from(&flow.chain_catch);
    next_flow.batch = flow.batch;
    Some(Pushed::new(next, now))
}

/// The chain's `catch` job for link `failed`, which failed with `error`.
pub(crate) fn chain_catch(failed: &Envelope, error: &str, now: Millis) -> Option<Pushed> {
    let template = failed.flow.as_deref()?.chain_catch.as_deref()?;
    let mut catch = template.clone();
    catch.id = derived_id(failed.id, 5);
    catch.created_at = now;
    let mut trigger = Trigger::new(TriggerKind::ChainCatch);
    trigger.job = Some(failed.id);
    trigger.error = Some(error.to_owned());
    catch.flow_mut().trigger = Some(trigger);
    Some(Pushed::new(catch, now))
}
