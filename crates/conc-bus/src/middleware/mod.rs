//! Job middleware: tower layers around every attempt of a job, on the worker.
//!
//! A job's attempt is a tower [`Service`] of [`JobRequest`] whose response is
//! `()` and whose error is a [`JobError`]; middleware is any [`Layer`] over
//! it, registered on [`JobHandlers::layer`](crate::JobHandlers::layer) (every
//! job) or [`JobHandlers::layer_for`](crate::JobHandlers::layer_for) (one job
//! type), or under a name with
//! [`JobHandlers::named_layer`](crate::JobHandlers::named_layer) for the jobs
//! that ask for it ([`JobOptions::through`](crate::JobOptions::through), and
//! batch middleware: every member of a batch dispatched
//! [`through`](crate::batch::PendingBatch::through) it). The first layer
//! registered is the outermost; named layers run inside the others. A
//! middleware can:
//!
//! - run the job: call the inner service;
//! - skip it: return `Ok(())` without calling the inner service (the job is
//!   acknowledged as done, like Laravel's middleware that does not call
//!   `$next`);
//! - put it back: return `Err(JobError::release(delay))`; the job becomes
//!   available again after `delay`. A release is not a failure: it does not
//!   count against `max_exceptions`. Attempts are counted when a job is
//!   reserved, so the attempt a release ends **does** count against
//!   `max_attempts`, as in Laravel; give jobs that may be released often a
//!   larger `max_attempts` or a `retry_until` deadline;
//! - fail it: return `Err(JobError::retry(..))` or `Err(JobError::fatal(..))`.
//!
//! The middleware runs inside the attempt: under the job's timeout, with
//! panics caught (and reported as the attempt's failure), after the payload
//! is decoded (a payload that does not decode, or a sealed one that does not
//! open, goes to the failed store before any middleware runs).
//!
//! Built in, each behind the feature of the crate it uses:
//!
//! | middleware | feature | Laravel |
//! |---|---|---|
//! | [`RateLimitedLayer`] | `ratelimit` | `RateLimited`, `RateLimitedWithRedis` |
//! | [`WithoutOverlappingLayer`] | `lock` | `WithoutOverlapping` |
//! | [`ThrottlesExceptionsLayer`] | `resilience` | `ThrottlesExceptions` |
//! | [`SkipIfBatchCancelledLayer`] | — | `SkipIfBatchCancelled` |
//!
//! # Writing one
//!
//! ```
//! use std::task::{Context, Poll};
//! use conc_bus::middleware::JobRequest;
//! use conc_bus::{Job, JobContext, JobError, JobHandlers, MemoryQueue, Queue, Worker};
//! use conc_core::BoxFuture;
//! use serde::{Deserialize, Serialize};
//! use tower::{Layer, Service};
//!
//! /// Skips every job while maintenance is on.
//! #[derive(Clone)]
//! struct SkipDuringMaintenance { on: bool }
//!
//! impl<S> Layer<S> for SkipDuringMaintenance {
//!     type Service = Skip<S>;
//!     fn layer(&self, inner: S) -> Skip<S> { Skip { inner, on: self.on } }
//! }
//!
//! #[derive(Clone)]
//! struct Skip<S> { inner: S, on: bool }
//!
//! impl<S> Service<JobRequest> for Skip<S>
//! where
//!     S: Service<JobRequest, Response = (), Error = JobError>,
//!     S::Future: Send + 'static,
//! {
//!     type Response = ();
//!     type Error = JobError;
//!     type Future = BoxFuture<'static, Result<(), JobError>>;
//!
//!     fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), JobError>> {
//!         self.inner.poll_ready(cx)
//!     }
//!
//!     fn call(&mut self, request: JobRequest) -> Self::Future {
//!         if self.on {
//!             tracing::info!(job = request.name(), "skipped during maintenance");
//!             return Box::pin(async { Ok(()) });
//!         }
//!         Box::pin(self.inner.call(request))
//!     }
//! }
//!
//! #[derive(Serialize, Deserialize)]
//! struct Ping;
//! impl Job for Ping { const NAME: &'static str = "ping"; }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let backend = MemoryQueue::new();
//! Queue::new(backend.clone()).push(Ping).await?;
//! let handlers = JobHandlers::new()
//!     .handle(|_: Ping, _: JobContext| async { panic!("not during maintenance") })
//!     .layer(SkipDuringMaintenance { on: true });
//! let worker = Worker::builder(backend, handlers).stop_when_empty(true).build()?;
//! worker.run().await?;
//! assert_eq!(conc_core::metrics::MetricsSource::metrics(&worker).processed, 1);
//! # Ok(()) }
//! ```

#[cfg(feature = "ratelimit")]
mod rate_limited;
mod skip_cancelled;
#[cfg(feature = "resilience")]
mod throttles;
#[cfg(feature = "lock")]
mod without_overlapping;

#[cfg(feature = "ratelimit")]
#[cfg_attr(docsrs, doc(cfg(feature = "ratelimit")))]
pub use rate_limited::{RateLimited, RateLimitedLayer};
pub use skip_cancelled::{SkipIfBatchCancelled, SkipIfBatchCancelledLayer};
#[cfg(feature = "resilience")]
#[cfg_attr(docsrs, doc(cfg(feature = "resilience")))]
pub use throttles::{ThrottlesExceptions, ThrottlesExceptionsBuilder, ThrottlesExceptionsLayer};
#[cfg(feature = "lock")]
#[cfg_attr(docsrs, doc(cfg(feature = "lock")))]
pub use without_overlapping::{WithoutOverlapping, WithoutOverlappingLayer};

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use conc_core::BoxFuture;
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceExt as _};

use crate::job::{DecodeError, Envelope, Job, JobContext, JobError};

/// One attempt of a job, as middleware sees it: the job's envelope (payload
/// opened and decoded already), its context, and the handler's run, which
/// the innermost service starts.
///
/// # Examples
///
/// ```
/// use conc_bus::middleware::JobRequest;
///
/// fn key(request: &JobRequest) -> String {
///     format!("{}:{}", request.name(), request.envelope().queue)
/// }
/// # let _ = key;
/// ```
pub struct JobRequest {
    envelope: Arc<Envelope>,
    ctx: JobContext,
    run: BoxFuture<'static, Result<(), JobError>>,
}

impl fmt::Debug for JobRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobRequest")
            .field("id", &self.envelope.id)
            .field("name", &self.envelope.name)
            .field("attempt", &self.ctx.attempt())
            .finish_non_exhaustive()
    }
}

impl JobRequest {
    /// The job's envelope, its payload opened when it travelled sealed.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The attempt's context (attempt number, lease, cancellation).
    pub fn context(&self) -> &JobContext {
        &self.ctx
    }

    /// The job type's name.
    pub fn name(&self) -> &str {
        &self.envelope.name
    }

    /// The payload decoded as a `J` (for a key taken from the job's fields).
    ///
    /// # Errors
    ///
    /// [`DecodeError::Payload`] when the payload is not a `J` of the current
    /// version.
    pub fn decode<J: Job>(&self) -> Result<J, DecodeError> {
        serde_json::from_str(&self.envelope.payload).map_err(|error| DecodeError::Payload {
            name: self.envelope.name.clone(),
            version: self.envelope.version,
            message: error.to_string(),
        })
    }
}

/// The service a middleware wraps: the rest of the stack down to the
/// handler, boxed.
pub type JobService = BoxCloneSyncService<JobRequest, (), JobError>;

/// The innermost service: runs the handler.
#[derive(Clone, Copy)]
struct RunHandler;

impl Service<JobRequest> for RunHandler {
    type Response = ();
    type Error = JobError;
    type Future = BoxFuture<'static, Result<(), JobError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), JobError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: JobRequest) -> Self::Future {
        request.run
    }
}

/// A registered layer, type-erased: wraps the service below it.
pub(crate) type ErasedLayer = Arc<dyn Fn(JobService) -> JobService + Send + Sync>;

/// `layer` with its service boxed.
pub(crate) fn erase<L>(layer: L) -> ErasedLayer
where
    L: Layer<JobService> + Send + Sync + 'static,
    L::Service:
        Service<JobRequest, Response = (), Error = JobError> + Clone + Send + Sync + 'static,
    <L::Service as Service<JobRequest>>::Future: Send + 'static,
{
    Arc::new(move |inner| BoxCloneSyncService::new(layer.layer(inner)))
}

/// The handler's `run` of `envelope` behind `layers` (outermost first).
pub(crate) fn wrap<'a>(
    layers: impl DoubleEndedIterator<Item = &'a ErasedLayer>,
    envelope: Arc<Envelope>,
    ctx: JobContext,
    run: BoxFuture<'static, Result<(), JobError>>,
) -> BoxFuture<'static, Result<(), JobError>> {
    let service =
        layers.rev().fold(BoxCloneSyncService::new(RunHandler), |inner, layer| layer(inner));
    Box::pin(service.oneshot(JobRequest { envelope, ctx, run }))
}

#[cfg(any(feature = "ratelimit", feature = "lock", feature = "resilience"))]
/// The key of a job for a keyed middleware: `None` leaves the job alone.
pub(crate) type KeyFn = Arc<dyn Fn(&JobRequest) -> Option<String> + Send + Sync>;

#[cfg(any(feature = "ratelimit", feature = "lock", feature = "resilience"))]
/// The default key: the job type's name.
pub(crate) fn name_key() -> KeyFn {
    Arc::new(|request: &JobRequest| Some(request.name().to_owned()))
}
