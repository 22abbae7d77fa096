//! Retries and dead letters for fan-out items.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use conc_core::backoff::{Backoff, Delays};
use conc_core::recent::RecentLog;
use tokio::time::Instant;

use crate::error::FanError;

/// An item a [`FanOut`](crate::FanOut) gave up on, kept with its last error.
#[derive(Debug)]
#[non_exhaustive]
pub struct DeadLetter<T> {
    /// The item, as the source gave it.
    pub item: T,
    /// The last attempt's error ([`FanError::Panicked`] keeps the panic message).
    pub error: FanError,
    /// Attempts made, the first call included.
    pub attempts: u32,
    /// The worker that ran it.
    pub worker: usize,
    /// When the first attempt failed (tokio's clock, so paused in tests).
    pub first_failure: Instant,
    /// When the last attempt failed.
    pub last_failure: Instant,
}

/// Where a fan-out sends the items it gives up on.
///
/// Implemented by [`DeadLetterQueue`]; implement it to forward dead letters
/// elsewhere (a channel, a durable queue). `send` runs on a worker task and
/// must not block.
pub trait DeadLetterSink<T>: Send + Sync + 'static {
    /// Takes one dead letter.
    fn send(&self, letter: DeadLetter<T>);
}

/// A bounded in-memory dead letter queue. When full, the oldest letter is
/// dropped and counted in [`dropped`](RecentLog::dropped), so memory stays bounded
/// whatever the failure rate. Clones share the queue. It is conc-core's
/// [`RecentLog`] of [`DeadLetter`]s: `take`, `len`, `dropped` and `capacity`
/// come from there.
///
/// # Examples
///
/// ```
/// use conc_fan::{DeadLetterQueue, FanOut, Recovery};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_fan::BuildError> {
/// let dead = DeadLetterQueue::new(100);
/// let parse = FanOut::builder()
///     .recover(Recovery::new().dead_letter(dead.clone()))
///     .build(|s: String| async move { s.parse::<u32>() })?;
/// let parsed = parse.process_batch(vec!["1".into(), "x".into()]).await;
/// assert_eq!(*parsed[0].as_ref().unwrap(), 1);
/// let letters = dead.take();
/// assert_eq!(letters[0].item, "x");
/// assert_eq!(letters[0].attempts, 1);
/// # Ok(()) }
/// ```
pub type DeadLetterQueue<T> = RecentLog<DeadLetter<T>>;

impl<T: Send + 'static> DeadLetterSink<T> for RecentLog<DeadLetter<T>> {
    fn send(&self, letter: DeadLetter<T>) {
        self.push(letter);
    }
}

/// What a [`FanOut`](crate::FanOut) does before giving up on an item:
/// retry it on a [`Backoff`] schedule, then hand it to a dead letter sink.
///
/// Each attempt gets a clone of the item, so the item type must be `Clone`;
/// items are cloned only when a recovery is set. Set it with
/// [`FanOutBuilder::recover`](crate::FanOutBuilder::recover), whose builder
/// ties its item type to the processor's input type.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// use conc_core::backoff::Backoff;
/// use conc_fan::{DeadLetterQueue, Recovery};
///
/// let dead = DeadLetterQueue::<u32>::new(100);
/// let recovery = Recovery::new()
///     .retry(Backoff::exponential(Duration::from_millis(10)).max_retries(2).build().unwrap())
///     .dead_letter(dead.clone());
/// # let _ = recovery;
/// ```
pub struct Recovery<In> {
    pub(crate) retry: Option<Backoff>,
    pub(crate) dead_letter: Option<Arc<dyn DeadLetterSink<In>>>,
    pub(crate) clone: fn(&In) -> In,
}

impl<In: Clone + Send + 'static> Recovery<In> {
    /// No retry and no dead letter sink: failures go to the error policy.
    pub fn new() -> Self {
        Self { retry: None, dead_letter: None, clone: In::clone }
    }
}

impl<In: Clone + Send + 'static> Default for Recovery<In> {
    fn default() -> Self {
        Self::new()
    }
}

impl<In> Recovery<In> {
    /// Retries a failed item (an error, a panic or a timeout) with the same
    /// input after each of `backoff`'s delays, waited on tokio's clock. The
    /// schedule's `max_retries`/`max_attempts` bound the attempts; without
    /// one the item is retried until it succeeds. A delay too long to be
    /// reached on the clock (an exponential schedule without `max_delay`
    /// saturates at [`Duration::MAX`](std::time::Duration::MAX)) ends the
    /// retries as if the schedule were over: the item goes to the dead letter
    /// sink, or fails with its last error.
    #[must_use]
    pub fn retry(mut self, backoff: Backoff) -> Self {
        self.retry = Some(backoff);
        self
    }

    /// Sends an item that failed its last attempt to `sink`, with the error,
    /// instead of applying the error policy. The output stream then skips it
    /// and counts it in [`FanOutStream::dead_lettered`](crate::FanOutStream::dead_lettered).
    #[must_use]
    pub fn dead_letter(mut self, sink: impl DeadLetterSink<In>) -> Self {
        self.dead_letter = Some(Arc::new(sink));
        self
    }
}

impl<In> fmt::Debug for Recovery<In> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recovery")
            .field("retry", &self.retry)
            .field("dead_letter", &self.dead_letter.is_some())
            .finish_non_exhaustive()
    }
}

/// A [`Recovery`] with its item type erased, kept in the fan-out's settings.
#[derive(Clone)]
pub(crate) struct ErasedRecovery {
    pub(crate) recovery: Arc<dyn Any + Send + Sync>,
    pub(crate) item_type: &'static str,
}

impl fmt::Debug for ErasedRecovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recovery").field("item_type", &self.item_type).finish_non_exhaustive()
    }
}

/// An item waiting for its next attempt.
pub(crate) struct Waiting<In> {
    pub(crate) at: Instant,
    pub(crate) seq: u64,
    item: In,
    attempts: u32,
    delays: Option<Delays>,
    first_failure: Instant,
}

/// What one attempt under a recovery came to.
pub(crate) enum Attempt<In, Out> {
    /// The item is done: its output, or the error after giving up.
    Done(u64, Result<Out, FanError>),
    /// The item failed and waits for its next attempt.
    Again(Waiting<In>),
}

/// Runs one attempt at `item` (attempt number `attempts + 1` when it comes
/// back from waiting); a failure schedules the next attempt on the backoff
/// or gives up (dead letter, or the last error wrapped in
/// [`FanError::Retried`] after retries).
pub(crate) async fn attempt<In, Out, E, Fut, F>(
    f: &F,
    seq: u64,
    item: In,
    worker: usize,
    timeout: Option<std::time::Duration>,
    recovery: &Recovery<In>,
) -> Attempt<In, Out>
where
    F: Fn(In) -> Fut,
    Fut: std::future::Future<Output = Result<Out, E>>,
    E: Into<conc_core::BoxError>,
    In: 'static,
{
    let error = match crate::fan_out::run_one(f, (recovery.clone)(&item), worker, timeout).await {
        Ok(out) => return Attempt::Done(seq, Ok(out)),
        Err(error) => error,
    };
    let now = Instant::now();
    let waiting = Waiting {
        at: now,
        seq,
        item,
        attempts: 1,
        delays: recovery.retry.as_ref().map(Backoff::delays),
        first_failure: now,
    };
    failed(waiting, error, worker, recovery)
}

/// The next attempt at an item that waited for it.
pub(crate) async fn retry<In, Out, E, Fut, F>(
    f: &F,
    mut waiting: Waiting<In>,
    worker: usize,
    timeout: Option<std::time::Duration>,
    recovery: &Recovery<In>,
) -> Attempt<In, Out>
where
    F: Fn(In) -> Fut,
    Fut: std::future::Future<Output = Result<Out, E>>,
    E: Into<conc_core::BoxError>,
    In: 'static,
{
    waiting.attempts += 1;
    match crate::fan_out::run_one(f, (recovery.clone)(&waiting.item), worker, timeout).await {
        Ok(out) => Attempt::Done(waiting.seq, Ok(out)),
        Err(error) => failed(waiting, error, worker, recovery),
    }
}

fn failed<In: 'static, Out>(
    mut waiting: Waiting<In>,
    error: FanError,
    worker: usize,
    recovery: &Recovery<In>,
) -> Attempt<In, Out> {
    let now = Instant::now();
    let attempts = waiting.attempts;
    if let Some(delay) = waiting.delays.as_mut().and_then(Iterator::next) {
        // A delay too long to add to the clock (an unbounded exponential
        // schedule saturates at `Duration::MAX`) would never come due: give
        // up now, like after the last retry, so the item is dead-lettered or
        // its last error returned rather than held forever.
        if let Some(at) = now.checked_add(delay) {
            tracing::debug!(worker, attempts, %error, ?delay, "fan-out item failed; retrying");
            waiting.at = at;
            return Attempt::Again(waiting);
        }
        tracing::debug!(worker, attempts, %error, ?delay, "fan-out retry delay out of range; giving up");
    }
    let Waiting { seq, item, first_failure, .. } = waiting;
    if let Some(sink) = &recovery.dead_letter {
        tracing::warn!(worker, attempts, %error, "fan-out item sent to the dead letter sink");
        sink.send(DeadLetter { item, error, attempts, worker, first_failure, last_failure: now });
        return Attempt::Done(seq, Err(FanError::DeadLettered { worker, attempts }));
    }
    let error =
        if attempts > 1 { FanError::Retried { attempts, last: Box::new(error) } } else { error };
    Attempt::Done(seq, Err(error))
}
