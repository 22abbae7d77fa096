//! What both pools' tasks use: the blocking closure's cancel token, the
//! span a task carries, and how a panic is caught and reported. The tasks
//! themselves are in `crate::task`.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use conc_core::driver::panic_message;

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

/// Polls `fut`, catching a panic as its message.
pub(crate) fn poll_catching<F: Future>(
    fut: Pin<&mut F>,
    cx: &mut Context<'_>,
) -> Poll<Result<F::Output, String>> {
    match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
        Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
        Ok(Poll::Pending) => Poll::Pending,
        Err(payload) => Poll::Ready(Err(panic_message(payload.as_ref()))),
    }
}
