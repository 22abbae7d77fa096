//! Jobs: the [`Job`] trait a payload type implements, the options every
//! dispatch carries, the error a handler returns, and the context it runs in.
//!
//! A job is plain data with a stable name and a version. Its handler is an
//! `async fn(job, JobContext) -> Result<(), JobError>` registered on a
//! [`JobHandlers`] table that workers run from:
//!
//! ```
//! use std::time::Duration;
//! use conc_bus::{JobHandlers, Job, JobContext, JobError, JobOptions};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Serialize, Deserialize)]
//! struct SendInvoice { order: u64 }
//!
//! impl Job for SendInvoice {
//!     const NAME: &'static str = "send-invoice";
//!     fn options() -> JobOptions {
//!         JobOptions::new().queue("mail").max_attempts(5).backoff([1, 5, 10].map(Duration::from_secs))
//!     }
//! }
//!
//! async fn send_invoice(job: SendInvoice, ctx: JobContext) -> Result<(), JobError> {
//!     if job.order == 0 {
//!         return Err(JobError::fatal("order 0 does not exist"));
//!     }
//!     let _ = ctx.attempt();
//!     Ok(())
//! }
//!
//! let handlers = JobHandlers::new().handle(send_invoice);
//! assert!(handlers.knows("send-invoice"));
//! ```

mod context;
mod envelope;
pub(crate) mod error;
mod flow;
mod options;
mod registry;

pub(crate) use context::{Cancellation, ContextSink};
pub use context::{Cancelled, JobContext};
pub use envelope::{AttemptRecord, Envelope, MAX_HISTORY};
pub use error::{DecodeError, JobError};
pub(crate) use flow::derived_id;
pub use flow::{BatchMember, JobFlow, Trigger, TriggerKind};
pub(crate) use options::check_queue_name;
pub use options::{
    DEFAULT_QUEUE, JobBackoff, JobOptions, MAX_MIDDLEWARE_NAME, MAX_PRIORITY, MAX_QUEUE_NAME,
};
pub(crate) use options::{check_middleware_name, push_middleware};
pub use registry::JobHandlers;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A background job: serializable data with a stable name and a version.
///
/// `NAME` is stored with every queued payload and picks the handler: never
/// change it while jobs of that name are queued. Bump `VERSION` when the
/// payload changes shape, and register an upcaster for the old shape with
/// [`JobHandlers::upcast`], so jobs queued by the previous deploy still run.
///
/// # Examples
///
/// ```
/// use conc_bus::{Job, JobOptions};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Resize { image: String, width: u32 }
///
/// impl Job for Resize {
///     const NAME: &'static str = "resize";
///     const VERSION: u32 = 2;
///     fn options() -> JobOptions {
///         JobOptions::new().queue("images").priority(5)
///     }
/// }
/// assert_eq!(Resize::options().queue_name(), "images");
/// ```
pub trait Job: Serialize + DeserializeOwned + Send + 'static {
    /// The job's stable name, stored with every payload.
    const NAME: &'static str;

    /// The payload's version. Defaults to 1.
    const VERSION: u32 = 1;

    /// The options every dispatch of this job starts from; a dispatch can
    /// override each one. Defaults to [`JobOptions::new`].
    fn options() -> JobOptions {
        JobOptions::new()
    }
}
