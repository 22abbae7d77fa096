//! The stream that runs one stage inside whoever polls it: up to
//! `concurrency` items at once, each in a reusable slot, emitted in input
//! order or as they finish.
//!
//! Slots are boxed once and reused (`Pin::set`), and a slot holds only the
//! processor's own future (with `catch_unwind`), so a stage allocates nothing
//! per item on the fast path. A new item's future is polled at once; if it
//! finishes there it never waits anywhere. A future that is pending is polled
//! again only when its own waker fires (see [`ReadyQueue`]), never by scanning
//! the window. The rare paths (retries, dead letters, timeouts) run as a
//! boxed future in the same slot.

use std::any::Any;
use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use futures::FutureExt;
use futures::Stream;
use futures::future::{BoxFuture, CatchUnwind};
use futures::stream::BoxStream;

use crate::metrics::StageStats;
use crate::processor::Processor;
use crate::slot::{Gone, Slot, State};
use crate::stage::{Shared, recover, run_timed};
use conc_core::item::ItemError;
use conc_core::ready::ReadyQueue;

/// A reusable slot for the processor's future: boxed once, refilled per item.
type FastSlot<F> = Pin<Box<Option<CatchUnwind<AssertUnwindSafe<F>>>>>;

/// What a slot knows about the item in it.
struct Meta<In> {
    /// Arrival number (ordered mode).
    seq: u64,
    /// Input index.
    index: u64,
    /// A copy for a retry or a dead letter, when the stage has either.
    kept: Option<In>,
    started: Option<Instant>,
}

pub(crate) struct StageStream<In, P: Processor<In>> {
    shared: Arc<Shared<In, P>>,
    /// `None` once the source ended or the run failed: nothing more is pulled.
    upstream: Option<BoxStream<'static, Slot<In>>>,
    ordered: bool,
    concurrency: usize,
    /// Ordered mode: the most items between "pulled" and "emitted".
    window: usize,
    fast: Vec<FastSlot<P::Fut>>,
    slow: Vec<Option<BoxFuture<'static, Slot<P::Out>>>>,
    meta: Vec<Meta<In>>,
    wakers: Vec<Waker>,
    free: Vec<usize>,
    queue: Arc<ReadyQueue>,
    woken: Vec<usize>,
    running: usize,
    /// Items started since the woken slots were last polled.
    since_drain: u32,
    /// Ordered mode: results by arrival number, from `head_seq`.
    reorder: VecDeque<Option<Slot<P::Out>>>,
    head_seq: u64,
    next_seq: u64,
    /// Unordered mode: results not yet emitted.
    finished: VecDeque<Slot<P::Out>>,
    stats: Arc<StageStats>,
    /// Items finished on the fast path and not yet added to `stats`: the
    /// shared counter moves once per `FLUSH_EVERY` items, when the stage
    /// waits or ends, and on drop.
    unflushed: u64,
}

/// How many fast-path completions a stage counts locally before publishing.
const FLUSH_EVERY: u64 = 64;

/// While an item is pending, the stage polls the woken slots at least once
/// per this many items it starts, so an always-ready upstream whose items
/// finish at once cannot keep a pending item from its wake-up.
const DRAIN_EVERY: u32 = 32;

impl<In, P: Processor<In>> Drop for StageStream<In, P> {
    fn drop(&mut self) {
        self.flush();
    }
}

impl<In, P: Processor<In>> StageStream<In, P> {
    fn flush(&mut self) {
        if self.unflushed > 0 {
            self.stats.processed_many(self.unflushed);
            self.unflushed = 0;
        }
    }
}

// The futures are pinned in their own boxes; nothing else is pinned.
impl<In, P: Processor<In>> Unpin for StageStream<In, P> {}

impl<In: Send + 'static, P: Processor<In>> StageStream<In, P> {
    pub(crate) fn new(upstream: BoxStream<'static, Slot<In>>, shared: Arc<Shared<In, P>>) -> Self {
        let config = &shared.ctx.config;
        let window = if config.ordered {
            config.concurrency.saturating_add(config.buffer)
        } else {
            config.concurrency
        };
        Self {
            upstream: Some(upstream),
            ordered: config.ordered,
            concurrency: config.concurrency,
            window,
            fast: Vec::new(),
            slow: Vec::new(),
            meta: Vec::new(),
            wakers: Vec::new(),
            free: Vec::new(),
            queue: ReadyQueue::new(),
            woken: Vec::new(),
            running: 0,
            since_drain: 0,
            reorder: VecDeque::new(),
            head_seq: 0,
            next_seq: 0,
            finished: VecDeque::new(),
            stats: Arc::clone(&shared.ctx.stats),
            unflushed: 0,
            shared,
        }
    }

    fn can_pull(&self) -> bool {
        self.upstream.is_some()
            && self.running < self.concurrency
            && (!self.ordered || self.reorder.len() < self.window)
    }

    /// Starts an item. Returns its output at once when it finished on its
    /// first poll and nothing before it is waiting: the fast path, which
    /// never touches the reorder window.
    fn start(&mut self, slot: Slot<In>) -> Option<Slot<P::Out>> {
        let seq = self.next_seq;
        self.next_seq += 1;
        // Ordered: nothing earlier is waiting, so this item is next out.
        let direct = !self.ordered || self.reorder.is_empty();
        let item = match slot.state {
            State::Gone(gone) => {
                if self.ordered {
                    self.reorder.push_back(None);
                }
                self.complete(seq, Slot::gone(slot.index, gone));
                return None;
            }
            State::Item(item) => item,
        };
        let i = if let Some(i) = self.free.pop() {
            i
        } else {
            let i = self.fast.len();
            self.fast.push(Box::pin(None));
            self.slow.push(None);
            self.meta.push(Meta { seq: 0, index: 0, kept: None, started: None });
            self.wakers.push(self.queue.waker(i));
            i
        };
        let index = slot.index;
        let started = StageStats::start(index);
        self.running += 1;
        self.since_drain += 1;
        if self.shared.ctx.config.timeout.is_some() {
            if self.ordered {
                self.reorder.push_back(None);
            }
            self.meta[i] = Meta { seq, index, kept: None, started };
            self.slow[i] =
                Some(Box::pin(run_timed(Arc::clone(&self.shared), index, item, started)));
            self.poll_slot(i);
            return None;
        }
        let kept = self.shared.keep(&item);
        self.meta[i] = Meta { seq, index, kept, started };
        let begun = self.shared.begin(item);
        if self.ordered {
            self.reorder.push_back(None);
        }
        match begun {
            Ok(future) => self.fast[i].set(Some(AssertUnwindSafe(future).catch_unwind())),
            Err(error) => {
                self.failed(i, error);
                return None;
            }
        }
        let mut cx = Context::from_waker(&self.wakers[i]);
        let future = self.fast[i].as_mut().as_pin_mut()?;
        let Poll::Ready(result) = future.poll(&mut cx) else { return None };
        self.fast[i].set(None);
        if direct && let Ok(Ok(out)) = result {
            self.running -= 1;
            self.free.push(i);
            self.meta[i].kept = None;
            self.count_processed(started);
            if self.ordered {
                self.reorder.pop_back();
                self.head_seq += 1;
            }
            return Some(Slot { index, state: State::Item(out) });
        }
        self.on_result(i, result);
        None
    }

    fn count_processed(&mut self, started: Option<Instant>) {
        self.stats.sampled(started);
        self.unflushed += 1;
        if self.unflushed == FLUSH_EVERY {
            self.flush();
        }
    }

    fn poll_slot(&mut self, i: usize) {
        let mut cx = Context::from_waker(&self.wakers[i]);
        if let Some(slow) = self.slow[i].as_mut() {
            if let Poll::Ready(out) = slow.as_mut().poll(&mut cx) {
                self.slow[i] = None;
                self.finish(i, out);
            }
            return;
        }
        let Some(future) = self.fast[i].as_mut().as_pin_mut() else {
            return; // a late wake-up for a slot that has finished
        };
        let Poll::Ready(result) = future.poll(&mut cx) else { return };
        self.fast[i].set(None);
        self.on_result(i, result);
    }

    fn on_result(
        &mut self,
        i: usize,
        result: Result<Result<P::Out, ItemError>, Box<dyn Any + Send>>,
    ) {
        match result {
            Ok(Ok(out)) => {
                self.count_processed(self.meta[i].started);
                let index = self.meta[i].index;
                self.finish(i, Slot { index, state: State::Item(out) });
            }
            Ok(Err(error)) => self.failed(i, error),
            Err(panic) => self.failed(i, ItemError::from_panic(&*panic)),
        }
    }

    /// The first attempt failed: recover on the slow path, or give up now.
    fn failed(&mut self, i: usize, error: ItemError) {
        let meta = &mut self.meta[i];
        if self.shared.recovers() {
            let kept = meta.kept.take();
            let slow = recover(Arc::clone(&self.shared), meta.index, kept, error, meta.started);
            self.slow[i] = Some(Box::pin(slow));
            self.poll_slot(i);
        } else {
            let now = tokio::time::Instant::now();
            let out = self.shared.give_up(meta.index, None, error, 1, now, now, meta.started);
            self.finish(i, out);
        }
    }

    fn finish(&mut self, i: usize, out: Slot<P::Out>) {
        self.running -= 1;
        self.free.push(i);
        self.meta[i].kept = None;
        let seq = self.meta[i].seq;
        self.complete(seq, out);
    }

    fn complete(&mut self, seq: u64, out: Slot<P::Out>) {
        if matches!(out.state, State::Gone(Gone::Failed(_))) {
            // Fail fast: stop pulling; what is in flight still drains.
            self.upstream = None;
        }
        if self.ordered {
            let at = usize::try_from(seq - self.head_seq).unwrap_or(usize::MAX);
            self.reorder[at] = Some(out);
        } else {
            self.finished.push_back(out);
        }
    }

    fn pop_ready(&mut self) -> Option<Slot<P::Out>> {
        if self.ordered {
            if matches!(self.reorder.front(), Some(Some(_))) {
                self.head_seq += 1;
                return self.reorder.pop_front().flatten();
            }
            None
        } else {
            self.finished.pop_front()
        }
    }

    /// Polls the slots woken since the last call; `false` when none was
    /// (the queue then wakes `cx`'s task at the next wake-up).
    fn poll_woken(&mut self, cx: &Context<'_>) -> bool {
        self.since_drain = 0;
        let mut woken = std::mem::take(&mut self.woken);
        self.queue.drain(&mut woken, cx.waker());
        let any = !woken.is_empty();
        for i in woken.drain(..) {
            self.poll_slot(i);
        }
        self.woken = woken;
        any
    }

    fn held(&self) -> usize {
        if self.ordered { self.reorder.len() } else { self.running + self.finished.len() }
    }
}

impl<In: Send + 'static, P: Processor<In>> Stream for StageStream<In, P> {
    type Item = Slot<P::Out>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Slot<P::Out>>> {
        let this = self.get_mut();
        let result = loop {
            if this.since_drain >= DRAIN_EVERY && this.running > 0 {
                this.poll_woken(cx);
            }
            if let Some(out) = this.pop_ready() {
                break Poll::Ready(Some(out));
            }
            if this.can_pull()
                && let Some(upstream) = this.upstream.as_mut()
            {
                match upstream.as_mut().poll_next(cx) {
                    Poll::Ready(Some(slot)) => {
                        if let Some(out) = this.start(slot) {
                            break Poll::Ready(Some(out));
                        }
                        continue;
                    }
                    Poll::Ready(None) => {
                        this.upstream = None;
                        continue;
                    }
                    Poll::Pending => {}
                }
            }
            if this.running == 0 {
                if this.upstream.is_none() && this.reorder.is_empty() && this.finished.is_empty() {
                    break Poll::Ready(None);
                }
                break Poll::Pending; // the upstream has our waker
            }
            if !this.poll_woken(cx) {
                break Poll::Pending;
            }
        };
        if !matches!(result, Poll::Ready(Some(_))) {
            this.flush();
        }
        this.stats.set_in_flight(this.held());
        result
    }
}
