//! The type-erased jobs the queue holds: a task plus where its result goes.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use conc_core::driver::panic_message;
use pin_project_lite::pin_project;

use crate::JoinError;
use crate::core::Outcome;
use crate::handle::ResultSender;
use crate::result_cell::CellSender;

/// The submitter's tracing span, carried into the task. Boxed only when
/// there is one (the common case without an entered span stores 8 bytes,
/// not a 40-byte `Span`), which keeps a queued task small.
pub(crate) struct CarriedSpan(Option<Box<tracing::Span>>);

impl CarriedSpan {
    /// The current span, if any.
    pub(crate) fn current() -> Self {
        let span = tracing::Span::current();
        if span.is_none() { Self(None) } else { Self(Some(Box::new(span))) }
    }

    /// Enters the span until the guard drops.
    pub(crate) fn enter(&self) -> Option<tracing::span::Entered<'_>> {
        self.0.as_deref().map(tracing::Span::enter)
    }
}

/// A blocking job: run it (`now` on the pool's timeline, for its deadline),
/// or abandon it (its handle learns why).
pub(crate) trait BlockingJob: Send {
    fn run(self: Box<Self>, now: u64) -> Outcome;
    fn abandon(self: Box<Self>, reason: JoinError);
}

pub(crate) type BlockingBox = Box<dyn BlockingJob>;

/// Lets a running blocking closure see that its handle was cancelled.
///
/// # Examples
///
/// ```
/// use conc_pool::BlockingPool;
///
/// let pool = BlockingPool::builder().workers(1).build()?;
/// let mut handle = pool.submit_cancellable(|token| {
///     let mut rounds = 0_u64;
///     while !token.is_cancelled() {
///         rounds += 1;
///         std::thread::yield_now();
///     }
///     rounds
/// }).unwrap();
/// handle.cancel();
/// assert!(handle.join().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct CancelToken<'a> {
    closed: &'a dyn Fn() -> bool,
}

impl CancelToken<'_> {
    /// Whether the task's handle was cancelled or dropped.
    pub fn is_cancelled(&self) -> bool {
        (self.closed)()
    }
}

impl std::fmt::Debug for CancelToken<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken").field("cancelled", &self.is_cancelled()).finish()
    }
}

/// A closure whose result goes to a [`TaskHandle`](crate::TaskHandle).
/// `call` says how to invoke `f` (with or without the token); it is a
/// zero-sized function item, so `f` stays recoverable as it was given.
pub(crate) struct HandleTask<F, C, T> {
    pub(crate) f: F,
    pub(crate) call: C,
    pub(crate) tx: CellSender<T>,
    /// The deadline and the submitter's span, when there is either.
    pub(crate) extras: TaskExtras,
}

/// The deadline of a blocking task that has none: no time on the pool's
/// timeline reaches it (deadlines that would are dropped when submitted).
const NO_DEADLINE: u64 = u64::MAX;

/// What only some blocking tasks with a handle carry: a deadline (on the
/// pool's timeline) and the submitter's span. Boxed together, and absent
/// (8 bytes, no allocation) for a task with neither, which keeps the common
/// queued task small.
pub(crate) struct TaskExtras(Option<Box<(u64, Option<tracing::Span>)>>);

impl TaskExtras {
    /// `deadline` and the current span, if any.
    pub(crate) fn new(deadline: Option<u64>) -> Self {
        let span = tracing::Span::current();
        let span = (!span.is_none()).then_some(span);
        if deadline.is_none() && span.is_none() {
            return Self(None);
        }
        Self(Some(Box::new((deadline.unwrap_or(NO_DEADLINE), span))))
    }

    /// The deadline, [`NO_DEADLINE`] for none.
    fn deadline(&self) -> u64 {
        self.0.as_ref().map_or(NO_DEADLINE, |extras| extras.0)
    }

    /// Enters the span until the guard drops.
    fn enter(&self) -> Option<tracing::span::Entered<'_>> {
        self.0.as_ref().and_then(|extras| extras.1.as_ref()).map(tracing::Span::enter)
    }
}

/// Runs `f` with a token at `now`, catching a panic, and reports to `tx`.
fn run_with_handle<T, R>(tx: CellSender<T>, deadline: u64, now: u64, f: R) -> Outcome
where
    R: FnOnce(&CancelToken<'_>) -> T,
{
    if tx.is_closed() {
        return Outcome::Cancelled;
    }
    if deadline != NO_DEADLINE && now >= deadline {
        let _ = tx.send(Err(JoinError::DeadlineExceeded));
        return Outcome::TimedOut;
    }
    let closed = || tx.is_closed();
    let token = CancelToken { closed: &closed };
    match catch_unwind(AssertUnwindSafe(|| f(&token))) {
        Ok(value) => {
            // Not delivered: the handle was cancelled while it ran.
            if tx.send(Ok(value)) { Outcome::Completed } else { Outcome::Cancelled }
        }
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            let _ = tx.send(Err(JoinError::Panicked { message }));
            Outcome::Panicked
        }
    }
}

impl<F, C, T> HandleTask<F, C, T>
where
    C: FnOnce(F, &CancelToken<'_>) -> T,
{
    pub(crate) fn run_here(self, now: u64) -> Outcome {
        let HandleTask { f, call, tx, extras } = self;
        let _entered = extras.enter();
        run_with_handle(tx, extras.deadline(), now, move |token| call(f, token))
    }
}

impl<F, C, T> BlockingJob for HandleTask<F, C, T>
where
    F: Send,
    C: FnOnce(F, &CancelToken<'_>) -> T + Send,
    T: Send,
{
    fn run(self: Box<Self>, now: u64) -> Outcome {
        (*self).run_here(now)
    }

    fn abandon(self: Box<Self>, reason: JoinError) {
        let _ = self.tx.send(Err(reason));
    }
}

/// A fire-and-forget closure: a panic is logged and counted.
pub(crate) struct SpawnTask<F> {
    pub(crate) f: F,
    /// The submitter's span, entered while the task runs.
    pub(crate) span: CarriedSpan,
}

/// Reports the panic of a fire-and-forget task (the worker's span names the pool).
pub(crate) fn log_panic(message: &str) {
    tracing::error!(target: "conc_pool", panic = message, "spawned task panicked");
}

impl<F> BlockingJob for SpawnTask<F>
where
    F: FnOnce() + Send,
{
    fn run(self: Box<Self>, _now: u64) -> Outcome {
        let SpawnTask { f, span } = *self;
        let _entered = span.enter();
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(()) => Outcome::Completed,
            Err(payload) => {
                log_panic(&panic_message(payload.as_ref()));
                Outcome::Panicked
            }
        }
    }

    fn abandon(self: Box<Self>, reason: JoinError) {
        tracing::warn!(target: "conc_pool", %reason, "spawned task dropped unstarted");
    }
}

/// An async job: poll it to completion, or abandon it before its first poll.
pub(crate) trait AsyncJob: Future<Output = Outcome> + Send {
    fn abandon(self: Pin<&mut Self>, reason: JoinError);
}

pub(crate) type AsyncBox = Pin<Box<dyn AsyncJob>>;

fn poll_catching<F: Future>(
    fut: Pin<&mut F>,
    cx: &mut Context<'_>,
) -> Poll<Result<F::Output, String>> {
    match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
        Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
        Ok(Poll::Pending) => Poll::Pending,
        Err(payload) => Poll::Ready(Err(panic_message(payload.as_ref()))),
    }
}

pin_project! {
    /// A future whose output goes to a [`TaskHandle`](crate::TaskHandle).
    pub(crate) struct HandleFuture<F: Future> {
        #[pin]
        pub(crate) fut: F,
        pub(crate) tx: Option<ResultSender<F::Output>>,
        pub(crate) deadline: Option<tokio::time::Instant>,
        pub(crate) sleep: Option<Pin<Box<tokio::time::Sleep>>>,
        pub(crate) started: bool,
        // The submitter's span, entered on every poll.
        pub(crate) span: CarriedSpan,
    }
}

impl<F: Future> HandleFuture<F> {
    pub(crate) fn new(
        fut: F,
        tx: ResultSender<F::Output>,
        deadline: Option<tokio::time::Instant>,
    ) -> Self {
        Self {
            fut,
            tx: Some(tx),
            deadline,
            sleep: None,
            started: false,
            span: crate::job::CarriedSpan::current(),
        }
    }
}

impl<F> Future for HandleFuture<F>
where
    F: Future + Send,
    F::Output: Send,
{
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let mut this = self.project();
        let _entered = this.span.enter();
        let Some(tx) = this.tx.as_mut() else { return Poll::Ready(Outcome::Cancelled) };
        if !*this.started {
            *this.started = true;
            if tx.is_closed() {
                *this.tx = None;
                return Poll::Ready(Outcome::Cancelled);
            }
            if let Some(deadline) = *this.deadline {
                if tokio::time::Instant::now() >= deadline {
                    let _ = this.tx.take().map(|tx| tx.send(Err(JoinError::DeadlineExceeded)));
                    return Poll::Ready(Outcome::TimedOut);
                }
                *this.sleep = Some(Box::pin(tokio::time::sleep_until(deadline)));
            }
        }
        if let Poll::Ready(result) = poll_catching(this.fut.as_mut(), cx) {
            let tx = this.tx.take();
            return Poll::Ready(match result {
                Ok(value) => {
                    let cancelled = tx.as_ref().is_none_or(ResultSender::is_closed);
                    let _ = tx.map(|tx| tx.send(Ok(value)));
                    if cancelled { Outcome::Cancelled } else { Outcome::Completed }
                }
                Err(message) => {
                    let _ = tx.map(|tx| tx.send(Err(JoinError::Panicked { message })));
                    Outcome::Panicked
                }
            });
        }
        if let Some(tx) = this.tx.as_mut()
            && tx.poll_closed(cx).is_ready()
        {
            *this.tx = None;
            return Poll::Ready(Outcome::Cancelled);
        }
        if let Some(sleep) = this.sleep.as_mut()
            && sleep.as_mut().poll(cx).is_ready()
        {
            let _ = this.tx.take().map(|tx| tx.send(Err(JoinError::DeadlineExceeded)));
            return Poll::Ready(Outcome::TimedOut);
        }
        Poll::Pending
    }
}

impl<F> AsyncJob for HandleFuture<F>
where
    F: Future + Send,
    F::Output: Send,
{
    fn abandon(self: Pin<&mut Self>, reason: JoinError) {
        let this = self.project();
        if let Some(tx) = this.tx.take() {
            let _ = tx.send(Err(reason));
        }
    }
}

pin_project! {
    /// A fire-and-forget future: a panic is logged and counted.
    pub(crate) struct SpawnFuture<F> {
        #[pin]
        pub(crate) fut: F,
        pub(crate) done: bool,
        // The submitter's span, entered on every poll.
        pub(crate) span: CarriedSpan,
    }
}

impl<F> SpawnFuture<F> {
    /// `fut`, run in the submitter's span.
    pub(crate) fn new(fut: F) -> Self {
        Self { fut, done: false, span: CarriedSpan::current() }
    }
}

impl<F> Future for SpawnFuture<F>
where
    F: Future<Output = ()> + Send,
{
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let this = self.project();
        let _entered = this.span.enter();
        if *this.done {
            return Poll::Ready(Outcome::Cancelled);
        }
        match poll_catching(this.fut, cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => {
                *this.done = true;
                Poll::Ready(match result {
                    Ok(()) => Outcome::Completed,
                    Err(message) => {
                        log_panic(&message);
                        Outcome::Panicked
                    }
                })
            }
        }
    }
}

impl<F> AsyncJob for SpawnFuture<F>
where
    F: Future<Output = ()> + Send,
{
    fn abandon(self: Pin<&mut Self>, reason: JoinError) {
        let this = self.project();
        *this.done = true;
        tracing::warn!(target: "conc_pool", %reason, "spawned task dropped unstarted");
    }
}

impl std::fmt::Debug for dyn BlockingJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlockingJob")
    }
}

impl std::fmt::Debug for dyn AsyncJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AsyncJob")
    }
}
