//! Retries and dead letters for fan-out items.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use conc_core::backoff::{Backoff, Delays};
use conc_core::item::{DeadLetter, DeadLetterSink, ItemError, Origin};
use tokio::time::Instant;

use crate::error::FanError;
use crate::fan_out::metrics::Recorder;
use crate::fan_out::worker::run_one;

/// What a [`FanOut`](crate::FanOut) does before giving up on an item:
/// retry it on a [`Backoff`] schedule, then hand it to a dead letter sink.
///
/// Each attempt gets a clone of the item, so the item type must be `Clone`;
/// items are cloned only when a recovery is set. Set it with
/// [`FanOutBuilder::recover`](crate::FanOutBuilder::recover); its item type
/// is the fan-out's input type, so a recovery for another type does not
/// compile.
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
#[must_use = "a recovery does nothing until it is given to `FanOutBuilder::recover`"]
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

impl<In> Clone for Recovery<In> {
    fn clone(&self) -> Self {
        Self { retry: self.retry.clone(), dead_letter: self.dead_letter.clone(), clone: self.clone }
    }
}

impl<In> Recovery<In> {
    /// Retries a failed item (an error, a panic or a timeout) with the same
    /// input after each of `backoff`'s delays, waited on tokio's clock. The
    /// schedule's `max_retries`/`max_attempts` bound the attempts; without
    /// one the item is retried until it succeeds. A delay too long to be
    /// reached on the clock (an exponential schedule without `max_delay`
    /// saturates at [`Duration::MAX`]) ends the retries as if the schedule
    /// were over: the item goes to the dead letter sink, or fails with its
    /// last error.
    pub fn retry(mut self, backoff: Backoff) -> Self {
        self.retry = Some(backoff);
        self
    }

    /// Sends an item that failed its last attempt to `sink`, with the error,
    /// instead of applying the error policy. The output stream then skips it
    /// and counts it in [`FanOutStream::dead_lettered`](crate::FanOutStream::dead_lettered).
    /// The sink's `send` runs on the worker and must not block.
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

/// An item under a recovery: its input index, the attempts made so far and,
/// once it failed, its retry schedule and first failure.
pub(crate) struct Tried<In> {
    seq: u64,
    item: In,
    attempts: u32,
    delays: Option<Delays>,
    first_failure: Option<Instant>,
}

impl<In> Tried<In> {
    /// An item not tried yet.
    pub(crate) fn new(seq: u64, item: In) -> Self {
        Self { seq, item, attempts: 0, delays: None, first_failure: None }
    }
}

/// An item waiting for its next attempt, due at `at`.
pub(crate) struct Waiting<In> {
    pub(crate) at: Instant,
    pub(crate) tried: Tried<In>,
}

/// What one attempt under a recovery came to.
pub(crate) enum Attempt<In, Out> {
    /// The item is done: its output, or the error after giving up.
    Done(u64, Result<Out, FanError>),
    /// The item failed and waits for its next attempt.
    Again(Waiting<In>),
}

/// Runs the next attempt at an item with a clone of it; a failure schedules
/// the next attempt on the backoff or gives up (a dead letter, or the last
/// error with the attempt count).
pub(crate) async fn attempt<In, Out, E, Fut, F>(
    f: &F,
    mut tried: Tried<In>,
    timeout: Option<Duration>,
    recovery: &Recovery<In>,
    recorder: &Recorder,
) -> Attempt<In, Out>
where
    F: Fn(In) -> Fut,
    Fut: Future<Output = Result<Out, E>>,
    E: Into<conc_core::BoxError>,
    In: 'static,
{
    tried.attempts += 1;
    match run_one(f, (recovery.clone)(&tried.item), timeout).await {
        Ok(out) => Attempt::Done(tried.seq, Ok(out)),
        Err(error) => failed(tried, error, recovery, recorder),
    }
}

fn failed<In: 'static, Out>(
    mut tried: Tried<In>,
    error: ItemError,
    recovery: &Recovery<In>,
    recorder: &Recorder,
) -> Attempt<In, Out> {
    let worker = recorder.worker;
    let now = Instant::now();
    let attempts = tried.attempts;
    if attempts == 1 {
        tried.delays = recovery.retry.as_ref().map(Backoff::delays);
    }
    let first_failure = *tried.first_failure.get_or_insert(now);
    if let Some(delay) = tried.delays.as_mut().and_then(Iterator::next) {
        // A delay too long to add to the clock (an unbounded exponential
        // schedule saturates at `Duration::MAX`) would never come due: give
        // up now, like after the last retry, so the item is dead-lettered or
        // its last error returned rather than held forever.
        if let Some(at) = now.checked_add(delay) {
            tracing::debug!(worker, attempts, %error, ?delay, "fan-out item failed; retrying");
            recorder.retried();
            return Attempt::Again(Waiting { at, tried });
        }
        tracing::debug!(worker, attempts, %error, ?delay, "fan-out retry delay out of range; giving up");
    }
    recorder.failed();
    let Tried { seq, item, .. } = tried;
    if let Some(sink) = &recovery.dead_letter {
        tracing::warn!(worker, attempts, %error, "fan-out item sent to the dead letter sink");
        recorder.dead_lettered();
        sink.send(DeadLetter::new(
            item,
            error,
            Origin::Worker(worker),
            attempts,
            first_failure.into_std(),
            now.into_std(),
        ));
        return Attempt::Done(seq, Err(FanError::DeadLettered { worker, attempts }));
    }
    Attempt::Done(seq, Err(FanError::Worker { worker, attempts, error }))
}
