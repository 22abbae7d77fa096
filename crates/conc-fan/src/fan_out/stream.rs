//! The output of a fan-out run: results in input order (through a bounded
//! reorder window) or as they finish, with the error policy applied.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use conc_core::item::ErrorPolicy;
use futures::Stream;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::builder::Config;
use super::metrics::{FanStats, WorkerLoad, WorkerStats};
use conc_core::handoff;

use super::worker::Entry;
use crate::error::FanError;

/// The output of [`FanOut::process_stream`](crate::FanOut::process_stream):
/// each item's result, in input order unless the fan-out is unordered.
/// Dropping it aborts the dispatcher and every worker.
///
/// # Examples
///
/// ```
/// use conc_fan::{ErrorPolicy, FanOut};
/// use futures::StreamExt;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::config::ConfigError> {
/// let fan_out = FanOut::builder()
///     .on_error(ErrorPolicy::Skip)
///     .build(|n: u32| async move { if n % 2 == 0 { Ok(n) } else { Err("odd") } })?;
/// let mut out = fan_out.process_stream(futures::stream::iter(0..6));
/// let mut even = Vec::new();
/// while let Some(result) = out.next().await {
///     even.push(result.unwrap());
/// }
/// assert_eq!(even, [0, 2, 4]);
/// assert_eq!(out.skipped(), 3);
/// # Ok(()) }
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct FanOutStream<Out> {
    pub(super) rx: Option<handoff::Receiver<Entry<Out>>>,
    /// Results taken from the queue and not handed out yet (unordered), or
    /// on their way into the reorder window (ordered).
    current: VecDeque<Entry<Out>>,
    reorder: VecDeque<Option<Result<Out, FanError>>>,
    head: u64,
    pub(super) permits: Arc<Semaphore>,
    to_release: usize,
    pub(super) tasks: Vec<JoinHandle<()>>,
    pub(super) run: Arc<[WorkerStats]>,
    stats: Arc<FanStats>,
    config: Arc<Config>,
    finished: bool,
    skipped: u64,
    dead_lettered: u64,
}

impl<Out> fmt::Debug for FanOutStream<Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FanOutStream")
            .field("loads", &self.loads())
            .field("skipped", &self.skipped)
            .field("dead_lettered", &self.dead_lettered)
            .finish_non_exhaustive()
    }
}

// Nothing in it is pinned.
impl<Out> Unpin for FanOutStream<Out> {}

impl<Out> Drop for FanOutStream<Out> {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl<Out> FanOutStream<Out> {
    /// Each worker's load now: items queued or running, and items finished.
    pub fn loads(&self) -> Vec<WorkerLoad> {
        self.run.iter().map(WorkerLoad::read).collect()
    }

    /// Failed items dropped under [`ErrorPolicy::Skip`] so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Items sent to the dead letter sink so far (see
    /// [`Recovery::dead_letter`](crate::Recovery::dead_letter)).
    pub fn dead_lettered(&self) -> u64 {
        self.dead_lettered
    }

    /// A stream not started yet, with fresh loads and an empty window.
    pub(super) fn new(config: Arc<Config>, stats: Arc<FanStats>) -> Self {
        let run: Arc<[WorkerStats]> = (0..config.workers).map(|_| WorkerStats::default()).collect();
        Self {
            rx: None,
            current: VecDeque::new(),
            reorder: VecDeque::new(),
            head: 0,
            permits: Arc::new(Semaphore::new(config.window())),
            to_release: 0,
            tasks: Vec::new(),
            run,
            stats,
            config,
            finished: false,
            skipped: 0,
            dead_lettered: 0,
        }
    }

    /// A stream that yields `error` and ends.
    pub(super) fn failed_at_start(mut self, error: FanError) -> Self {
        let (tx, rx) = handoff::channel(1);
        // An empty queue takes a send at once: one poll completes it.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let _ = std::pin::pin!(tx.send_one((0, Err(error)))).poll(&mut cx);
        self.rx = Some(rx);
        self
    }

    fn release(&mut self, items: usize) {
        self.to_release += items;
        if self.to_release >= self.config.batch {
            self.permits.add_permits(self.to_release);
            self.to_release = 0;
        }
    }

    fn stop(&mut self) {
        self.finished = true;
        self.rx = None;
        for task in &self.tasks {
            task.abort();
        }
    }

    /// Files the results just taken: ordered, each into its place in the
    /// window; unordered, they stay in `current`, next in line.
    fn file(&mut self) {
        if !self.config.ordered {
            return;
        }
        while let Some((seq, result)) = self.current.pop_front() {
            // Within the window, which the builder keeps far below `usize::MAX`.
            let at = usize::try_from(seq.saturating_sub(self.head)).unwrap_or(usize::MAX);
            if self.reorder.len() <= at {
                self.reorder.resize_with(at + 1, || None);
            }
            self.reorder[at] = Some(result);
        }
    }

    /// The next `(input index, result)`, in the configured order, without
    /// applying the error policy.
    pub(super) fn poll_raw(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(u64, Result<Out, FanError>)>> {
        loop {
            if self.config.ordered {
                if matches!(self.reorder.front(), Some(Some(_))) {
                    let seq = self.head;
                    self.head += 1;
                    self.release(1);
                    return Poll::Ready(self.reorder.pop_front().flatten().map(|r| (seq, r)));
                }
            } else if let Some(next) = self.current.pop_front() {
                self.release(1);
                return Poll::Ready(Some(next));
            }
            let Some(rx) = self.rx.as_mut() else { return Poll::Ready(None) };
            match rx.poll_take(cx, &mut self.current) {
                Poll::Ready(true) => self.file(),
                Poll::Ready(false) => {
                    self.rx = None;
                    if self.reorder.is_empty() {
                        return Poll::Ready(None);
                    }
                    // A hole that will never fill: a worker died.
                    self.reorder.clear();
                    return Poll::Ready(Some((self.head, Err(FanError::WorkerLost))));
                }
                Poll::Pending => {
                    if self.to_release > 0 {
                        self.permits.add_permits(self.to_release);
                        self.to_release = 0;
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    pub(super) async fn next_raw(&mut self) -> Option<(u64, Result<Out, FanError>)> {
        futures::future::poll_fn(|cx| self.poll_raw(cx)).await
    }
}

impl<Out> Stream for FanOutStream<Out> {
    type Item = Result<Out, FanError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.finished {
                return Poll::Ready(None);
            }
            match this.poll_raw(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    this.finished = true;
                    return Poll::Ready(None);
                }
                Poll::Ready(Some((_, Ok(out)))) => return Poll::Ready(Some(Ok(out))),
                Poll::Ready(Some((_, Err(FanError::DeadLettered { .. })))) => {
                    this.dead_lettered += 1;
                }
                Poll::Ready(Some((seq, Err(error))))
                    if this.config.policy == ErrorPolicy::Skip && !error.ends_the_run() =>
                {
                    tracing::warn!(item = seq, %error, "fan-out item skipped");
                    this.skipped += 1;
                    this.stats.skipped();
                }
                Poll::Ready(Some((seq, Err(error)))) => {
                    tracing::error!(item = seq, %error, "fan-out failed; stopping the workers");
                    this.stop();
                    return Poll::Ready(Some(Err(error)));
                }
            }
        }
    }
}
