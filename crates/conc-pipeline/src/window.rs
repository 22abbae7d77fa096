//! The stream that runs one stage inside whoever polls it: up to
//! `concurrency` items at once, each in a reusable slot, emitted in input
//! order or as they finish.
//!
//! Slots are boxed once and reused (`Pin::set`), so a stage allocates nothing
//! per item. A new item's future is polled at once; if it finishes there it
//! never waits anywhere. A future that is pending is polled again only when
//! its own waker fires (see [`ReadyQueue`]), never by scanning the window.

use std::collections::VecDeque;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures::Stream;
use futures::stream::BoxStream;

use crate::metrics::StageStats;
use crate::ready::ReadyQueue;
use crate::slot::{Gone, Slot, State};

pub(crate) struct StageStream<In, Out, G, Fut> {
    /// `None` once the source ended or the run failed: nothing more is pulled.
    upstream: Option<BoxStream<'static, Slot<In>>>,
    make: G,
    ordered: bool,
    concurrency: usize,
    /// Ordered mode: the most items between "pulled" and "emitted".
    window: usize,
    slots: Vec<Pin<Box<Option<Fut>>>>,
    /// The arrival number of the item in each slot (ordered mode).
    slot_seq: Vec<u64>,
    wakers: Vec<Waker>,
    free: Vec<usize>,
    queue: Arc<ReadyQueue>,
    woken: Vec<usize>,
    running: usize,
    /// Ordered mode: results by arrival number, from `head_seq`.
    reorder: VecDeque<Option<Slot<Out>>>,
    head_seq: u64,
    next_seq: u64,
    /// Unordered mode: results not yet emitted.
    finished: VecDeque<Slot<Out>>,
    stats: Arc<StageStats>,
    _in: PhantomData<fn(In)>,
}

impl<In, Out, G, Fut> StageStream<In, Out, G, Fut>
where
    G: FnMut(u64, In) -> Fut,
    Fut: Future<Output = Slot<Out>>,
{
    pub(crate) fn new(
        upstream: BoxStream<'static, Slot<In>>,
        make: G,
        ordered: bool,
        concurrency: usize,
        window: usize,
        stats: Arc<StageStats>,
    ) -> Self {
        Self {
            upstream: Some(upstream),
            make,
            ordered,
            concurrency,
            window: window.max(concurrency),
            slots: Vec::new(),
            slot_seq: Vec::new(),
            wakers: Vec::new(),
            free: Vec::new(),
            queue: ReadyQueue::new(),
            woken: Vec::new(),
            running: 0,
            reorder: VecDeque::new(),
            head_seq: 0,
            next_seq: 0,
            finished: VecDeque::new(),
            stats,
            _in: PhantomData,
        }
    }

    fn can_pull(&self) -> bool {
        self.upstream.is_some()
            && self.running < self.concurrency
            && (!self.ordered || self.reorder.len() < self.window)
    }

    fn start(&mut self, slot: Slot<In>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.ordered {
            self.reorder.push_back(None);
        }
        match slot.state {
            State::Gone(gone) => self.complete(seq, Slot::gone(slot.index, gone)),
            State::Item(item) => {
                let i = if let Some(i) = self.free.pop() {
                    i
                } else {
                    let i = self.slots.len();
                    self.slots.push(Box::pin(None));
                    self.slot_seq.push(0);
                    self.wakers.push(self.queue.waker(i));
                    i
                };
                self.slots[i].set(Some((self.make)(slot.index, item)));
                self.slot_seq[i] = seq;
                self.running += 1;
                self.poll_slot(i);
            }
        }
    }

    fn poll_slot(&mut self, i: usize) {
        let mut cx = Context::from_waker(&self.wakers[i]);
        let Some(future) = self.slots[i].as_mut().as_pin_mut() else {
            return; // a late wake-up for a slot that has finished
        };
        if let Poll::Ready(out) = future.poll(&mut cx) {
            self.slots[i].set(None);
            self.running -= 1;
            self.free.push(i);
            let seq = self.slot_seq[i];
            self.complete(seq, out);
        }
    }

    fn complete(&mut self, seq: u64, out: Slot<Out>) {
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

    fn pop_ready(&mut self) -> Option<Slot<Out>> {
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

    fn held(&self) -> usize {
        if self.ordered { self.reorder.len() } else { self.running + self.finished.len() }
    }
}

// The futures are pinned in their own boxes; nothing else is pinned.
impl<In, Out, G: Unpin, Fut> Unpin for StageStream<In, Out, G, Fut> {}

impl<In, Out, G, Fut> Stream for StageStream<In, Out, G, Fut>
where
    G: FnMut(u64, In) -> Fut + Unpin,
    Fut: Future<Output = Slot<Out>>,
{
    type Item = Slot<Out>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Slot<Out>>> {
        let this = self.get_mut();
        let result = loop {
            if let Some(out) = this.pop_ready() {
                break Poll::Ready(Some(out));
            }
            if this.can_pull()
                && let Some(upstream) = this.upstream.as_mut()
            {
                match upstream.as_mut().poll_next(cx) {
                    Poll::Ready(Some(slot)) => {
                        this.start(slot);
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
            let mut woken = std::mem::take(&mut this.woken);
            this.queue.drain(&mut woken, cx.waker());
            if woken.is_empty() {
                this.woken = woken;
                break Poll::Pending;
            }
            for i in woken.drain(..) {
                this.poll_slot(i);
            }
            this.woken = woken;
        };
        this.stats.set_in_flight(this.held());
        result
    }
}
