//! The workers: each a tokio task running one item at a time, batch by
//! batch, and reporting each batch's results to the output stream.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use conc_core::BoxError;
use conc_core::item::ItemError;
use futures::FutureExt;
use tokio::sync::mpsc;

use conc_core::handoff;

use super::metrics::Recorder;
use crate::error::FanError;
use crate::recovery::{Attempt, Recovery, Tried, Waiting, attempt};

/// Items of one batch, each with its input index.
pub(crate) type Batch<In> = Vec<(u64, In)>;

/// Results of one batch, each with its item's input index.
pub(crate) type Results<Out> = Vec<Entry<Out>>;

/// One result and the index of its input.
pub(crate) type Entry<Out> = (u64, Result<Out, FanError>);

/// One attempt at `item`: the processor's output, or why it failed (its
/// error, a caught panic, also one before its first `.await`, or the timeout).
pub(crate) async fn run_one<In, Out, E, Fut, F>(
    f: &F,
    item: In,
    timeout: Option<Duration>,
) -> Result<Out, ItemError>
where
    F: Fn(In) -> Fut,
    Fut: Future<Output = Result<Out, E>>,
    E: Into<BoxError>,
{
    let attempt = AssertUnwindSafe(async { f(item).await }).catch_unwind();
    let outcome = match timeout {
        None => attempt.await,
        Some(after) => match tokio::time::timeout(after, attempt).await {
            Ok(outcome) => outcome,
            Err(_) => return Err(ItemError::TimedOut(after)),
        },
    };
    match outcome {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(error)) => Err(ItemError::Failed(error.into())),
        Err(panic) => Err(ItemError::from_panic(&*panic)),
    }
}

/// A worker of one run: the processor, its settings, where it records what
/// it did and where it sends the results.
pub(crate) struct Worker<F, In, Out> {
    pub(crate) f: Arc<F>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) recovery: Option<Arc<Recovery<In>>>,
    pub(crate) recorder: Recorder,
    pub(crate) out: handoff::Sender<Entry<Out>>,
}

impl<F, In, Out, E, Fut> Worker<F, In, Out>
where
    F: Fn(In) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Out, E>> + Send + 'static,
    E: Into<BoxError> + 'static,
    In: Send + 'static,
    Out: Send + 'static,
{
    /// Runs the batches of `rx` until it closes or the output stream is gone.
    pub(crate) async fn run(mut self, rx: mpsc::Receiver<Batch<In>>) {
        match self.recovery.take() {
            Some(recovery) => self.run_recovering(rx, &recovery).await,
            None => self.run_plain(rx).await,
        }
    }

    /// Without a recovery: each item once, in batch order.
    async fn run_plain(self, mut rx: mpsc::Receiver<Batch<In>>) {
        let worker = self.recorder.worker;
        let mut results = Vec::new();
        while let Some(batch) = rx.recv().await {
            let count = batch.len();
            results.reserve(count);
            let mut ok = 0;
            for (seq, item) in batch {
                let result = match run_one(&*self.f, item, self.timeout).await {
                    Ok(out) => {
                        ok += 1;
                        Ok(out)
                    }
                    Err(error) => {
                        self.recorder.failed();
                        Err(FanError::Worker { worker, attempts: 1, error })
                    }
                };
                results.push((seq, result));
            }
            self.recorder.finished(count, ok);
            if self.out.send(&mut results).await.is_err() {
                return;
            }
        }
    }

    /// With a recovery: an item waiting for its next attempt is set aside,
    /// so the items after it on the same worker go on meanwhile.
    async fn run_recovering(self, mut rx: mpsc::Receiver<Batch<In>>, recovery: &Recovery<In>) {
        let Self { f, timeout, recorder, out, .. } = self;
        let mut waiting: Vec<Waiting<In>> = Vec::new();
        let mut current = Vec::new().into_iter();
        let mut results: Results<Out> = Vec::new();
        let mut open = true;
        loop {
            // A due retry goes first, also between the items of a batch.
            let next_at = waiting.iter().map(|w| w.at).min();
            if let Some(at) = next_at.filter(|&at| at <= tokio::time::Instant::now()) {
                // Retries due at once (zero delays) could run forever without
                // a yield: each takes a unit of tokio's cooperative budget.
                tokio::task::coop::consume_budget().await;
                let index = waiting.iter().position(|w| w.at == at).unwrap_or_default();
                let due = waiting.swap_remove(index);
                match attempt(&*f, due.tried, timeout, recovery, &recorder).await {
                    Attempt::Again(again) => waiting.push(again),
                    Attempt::Done(seq, result) => {
                        recorder.finished(1, usize::from(result.is_ok()));
                        if out.send_one((seq, result)).await.is_err() {
                            return;
                        }
                    }
                }
                continue;
            }
            if let Some((seq, item)) = current.next() {
                match attempt(&*f, Tried::new(seq, item), timeout, recovery, &recorder).await {
                    Attempt::Done(seq, result) => results.push((seq, result)),
                    Attempt::Again(again) => waiting.push(again),
                }
                if current.len() == 0 && !results.is_empty() {
                    // Items set aside stay pending until they are done.
                    let ok = results.iter().filter(|(_, result)| result.is_ok()).count();
                    recorder.finished(results.len(), ok);
                    if out.send(&mut results).await.is_err() {
                        return;
                    }
                }
                continue;
            }
            if !open && waiting.is_empty() {
                return;
            }
            let mut sleep = next_at.map(|at| Box::pin(tokio::time::sleep_until(at)));
            let batch = futures::future::poll_fn(|cx| {
                if open && let Poll::Ready(batch) = rx.poll_recv(cx) {
                    return Poll::Ready(Some(batch));
                }
                if let Some(sleep) = sleep.as_mut()
                    && sleep.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(None);
                }
                Poll::Pending
            })
            .await;
            match batch {
                None => {}
                Some(None) => open = false,
                Some(Some(batch)) => {
                    results = Vec::with_capacity(batch.len());
                    current = batch.into_iter();
                }
            }
        }
    }
}
