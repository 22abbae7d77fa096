//! The type-erased jobs the async queue holds (a future plus where its
//! output goes), the blocking closure's cancel token, and the span a task
//! carries.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use conc_core::driver::panic_message;
use pin_project_lite::pin_project;

use crate::JoinError;
use crate::core::Outcome;
use crate::handle::ResultSender;

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

impl<'a> CancelToken<'a> {
    /// A token that asks `closed` whether the handle was cancelled.
    pub(crate) fn new(closed: &'a dyn Fn() -> bool) -> Self {
        Self { closed }
    }

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

/// Reports the panic of a fire-and-forget task (the worker's span names the pool).
pub(crate) fn log_panic(message: &str) {
    tracing::error!(target: "conc_pool", panic = message, "spawned task panicked");
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

impl std::fmt::Debug for dyn AsyncJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AsyncJob")
    }
}
