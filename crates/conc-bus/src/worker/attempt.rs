//! One attempt at a job: decode it, run its handler under the job's timeout
//! with panics caught, and say how it went.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use conc_core::driver::panic_message;
use futures::FutureExt;

use crate::job::{Envelope, JobContext, JobError, JobHandlers, error::chain};

/// How one attempt ended.
#[derive(Debug)]
pub(crate) enum AttemptOutcome {
    /// The handler returned `Ok` and asked for nothing.
    Succeeded,
    /// The handler asked for the job to be put back after this delay.
    Released(Duration),
    /// The handler returned an error (`fatal` when no retry can help).
    Failed { error: String, fatal: bool },
    /// The handler panicked, with this message.
    Panicked(String),
    /// The attempt ran past the job's timeout.
    TimedOut(Duration),
    /// The payload could not be decoded or no handler knows its name.
    Undecodable(String),
}

/// Runs one attempt of `envelope` with `ctx`.
pub(crate) async fn run(
    handlers: &JobHandlers,
    envelope: &Arc<Envelope>,
    ctx: JobContext,
) -> AttemptOutcome {
    let started =
        std::panic::catch_unwind(AssertUnwindSafe(|| handlers.start(envelope, ctx.clone())));
    let future = match started {
        Ok(Ok(future)) => future,
        Ok(Err(error)) => return AttemptOutcome::Undecodable(error.to_string()),
        Err(panic) => return AttemptOutcome::Panicked(panic_message(panic.as_ref())),
    };
    let guarded = AssertUnwindSafe(future).catch_unwind();
    let result = match envelope.timeout() {
        Some(timeout) => match tokio::time::timeout(timeout, guarded).await {
            Ok(result) => result,
            Err(_) => return AttemptOutcome::TimedOut(timeout),
        },
        None => guarded.await,
    };
    match result {
        Err(panic) => AttemptOutcome::Panicked(panic_message(panic.as_ref())),
        Ok(Ok(())) => match ctx.released() {
            Some(delay) => AttemptOutcome::Released(delay),
            None => AttemptOutcome::Succeeded,
        },
        Ok(Err(JobError::Release(delay))) => AttemptOutcome::Released(delay),
        Ok(Err(JobError::Retry(error))) => {
            AttemptOutcome::Failed { error: chain(error.as_ref()), fatal: false }
        }
        Ok(Err(JobError::Fatal(error))) => {
            AttemptOutcome::Failed { error: chain(error.as_ref()), fatal: true }
        }
    }
}
