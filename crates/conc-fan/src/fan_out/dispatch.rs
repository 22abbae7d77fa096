//! The dispatcher: a task that pulls the source in batches, within the run's
//! window of permits, and hands each batch to the worker its [`Balancer`]
//! picks.

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::Poll;

use conc_core::handoff;
use futures::stream::CatchUnwind;
use futures::{Stream, StreamExt};
use tokio::sync::{Semaphore, mpsc};

use super::balance::Balancer;
use super::metrics::{FanStats, WorkerStats};
use super::worker::{Batch, Entry};
use crate::error::FanError;

/// A batch is allocated for at most this many items up front; a larger one
/// grows as items come, so a huge `batch` setting costs no memory before
/// there are items to hold.
const PREALLOCATE: usize = 64;

/// The source as the dispatcher reads it: a panic in it becomes an item.
type Source<S> = CatchUnwind<AssertUnwindSafe<S>>;

/// What the dispatcher reads from the source at once.
struct Pulled<In> {
    items: Batch<In>,
    /// The source ended after these items.
    end: Option<End>,
}

/// How the source ended.
enum End {
    /// It returned `None`.
    Done,
    /// It panicked with this message.
    Panicked(String),
}

/// What happened to a batch handed to the workers.
enum Sent {
    /// A worker took it.
    Taken,
    /// The workers are gone: the output stream was dropped.
    Closed,
}

/// Pulls the source and hands batches to the workers.
pub(crate) struct Dispatcher<In, Out> {
    pub(crate) senders: Vec<mpsc::Sender<Batch<In>>>,
    pub(crate) permits: Arc<Semaphore>,
    pub(crate) run: Arc<[WorkerStats]>,
    pub(crate) balancer: Balancer,
    pub(crate) batch: usize,
    pub(crate) stats: Arc<FanStats>,
    pub(crate) counter: metrics::Counter,
    /// Where a panic of the source or the balancing function is reported.
    pub(crate) out: handoff::Sender<Entry<Out>>,
    pub(crate) seq: u64,
}

impl<In: Send, Out: Send> Dispatcher<In, Out> {
    /// Runs until the source ends, panics, or the workers are gone.
    pub(crate) async fn run<S: Stream<Item = In> + Send>(mut self, source: S) {
        let source = AssertUnwindSafe(source).catch_unwind();
        let mut source = std::pin::pin!(source);
        loop {
            // `batch` is at most 65,536 (checked by the builder).
            let Ok(permit) = self.permits.acquire_many(self.batch as u32).await else { return };
            permit.forget();
            let Pulled { items, end } = self.pull(source.as_mut()).await;
            self.permits.add_permits(self.batch - items.len());
            if !items.is_empty() && matches!(self.send(items).await, Sent::Closed) {
                return;
            }
            match end {
                None => {}
                Some(End::Done) => return,
                Some(End::Panicked(message)) => return self.report(message).await,
            }
        }
    }

    /// Waits for one item, then takes what else is ready now, up to a batch:
    /// a batch never waits for items that are not there yet.
    async fn pull<S: Stream<Item = In>>(&mut self, mut source: Pin<&mut Source<S>>) -> Pulled<In> {
        let mut items = Vec::new();
        let end = match source.next().await {
            None => return Pulled { items, end: Some(End::Done) },
            Some(Err(panic)) => {
                let message = conc_core::driver::panic_message(&*panic);
                return Pulled { items, end: Some(End::Panicked(message)) };
            }
            Some(Ok(first)) => {
                items.reserve(self.batch.min(PREALLOCATE));
                items.push((self.next_seq(), first));
                loop {
                    if items.len() == self.batch {
                        break None;
                    }
                    match futures::poll!(source.next()) {
                        Poll::Ready(Some(Ok(item))) => items.push((self.next_seq(), item)),
                        Poll::Ready(Some(Err(panic))) => {
                            break Some(End::Panicked(conc_core::driver::panic_message(&*panic)));
                        }
                        Poll::Ready(None) => break Some(End::Done),
                        Poll::Pending => break None,
                    }
                }
            }
        };
        Pulled { items, end }
    }

    fn next_seq(&mut self) -> u64 {
        let seq = self.seq;
        self.seq += 1;
        seq
    }

    /// Hands `items` to the worker the balancer picks.
    async fn send(&mut self, items: Batch<In>) -> Sent {
        let count = items.len();
        self.stats.dispatched(count);
        self.counter.increment(count as u64);
        let worker = match self.balancer.pick() {
            Ok(worker) => worker,
            Err(message) => {
                // The batch is lost: report the panic in its first item's place.
                self.seq = items[0].0;
                self.report(message).await;
                return Sent::Closed;
            }
        };
        if self.balancer.spills() {
            return self.spill(worker, items).await;
        }
        // Loads go up before the send, so a worker never takes them below zero.
        self.run[worker].pending.fetch_add(count, Relaxed);
        match self.senders[worker].send(items).await {
            Ok(()) => Sent::Taken,
            Err(_) => Sent::Closed,
        }
    }

    /// Least loaded: never waits on a full queue while another worker has
    /// room; when every queue is full, waits for whichever frees first.
    async fn spill(&mut self, worker: usize, items: Batch<In>) -> Sent {
        let count = items.len();
        let mut items = match self.try_send(worker, items) {
            Ok(sent) => return sent,
            Err(back) => back,
        };
        for other in self.balancer.others_by_load(worker) {
            items = match self.try_send(other, items) {
                Ok(sent) => return sent,
                Err(back) => back,
            };
        }
        let waits = self.senders.iter().map(|sender| Box::pin(sender.reserve()));
        let (reserved, freed, _) = futures::future::select_all(waits).await;
        let Ok(permit) = reserved else { return Sent::Closed };
        self.run[freed].pending.fetch_add(count, Relaxed);
        permit.send(items);
        Sent::Taken
    }

    /// Sends without waiting; a full queue hands the batch back.
    fn try_send(&self, worker: usize, items: Batch<In>) -> Result<Sent, Batch<In>> {
        let count = items.len();
        self.run[worker].pending.fetch_add(count, Relaxed);
        match self.senders[worker].try_send(items) {
            Ok(()) => Ok(Sent::Taken),
            Err(mpsc::error::TrySendError::Closed(_)) => Ok(Sent::Closed),
            Err(mpsc::error::TrySendError::Full(back)) => {
                self.run[worker].pending.fetch_sub(count, Relaxed);
                Err(back)
            }
        }
    }

    /// Reports a panic of the source or the balancing function in the place
    /// of the next item, so in input order everything before it comes first.
    async fn report(&mut self, message: String) {
        tracing::error!(%message, "fan-out dispatcher panicked; no more items are taken");
        let error = FanError::DispatchPanicked { message };
        let _ = self.out.send_one((self.seq, Err(error))).await;
    }
}
