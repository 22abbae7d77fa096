//! [`AdminError`]: why an admin operation did not happen.

use std::path::PathBuf;

use conc_bus::batch::BatchId;
use conc_bus::{JobId, QueueError};

/// Why an admin operation did not happen. None of them changed anything:
/// every check that can fail runs before the first write.
///
/// # Examples
///
/// ```
/// use conc_bus_cli::{AdminError, connect};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let error = connect("ftp://example").await.unwrap_err();
/// assert!(matches!(error, AdminError::BadUrl { .. }));
/// assert_eq!(error.exit_code(), 2);
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The backend URL is not one this build understands.
    #[error("cannot use backend `{url}`: {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The SQLite file does not exist (it is never created by an admin command).
    #[error("no queue file at `{}`: it does not exist (admin commands never create one)", .path.display())]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// The file exists but is not a conc-bus queue file.
    #[error("`{}` is not a conc-bus queue file: {reason}", .path.display())]
    NotAQueue {
        /// The path given.
        path: PathBuf,
        /// Why it is not one.
        reason: String,
    },
    /// The backend could not be reached or opened.
    #[error("cannot reach backend `{url}`: {source}")]
    Unreachable {
        /// The URL given.
        url: String,
        /// Why.
        #[source]
        source: QueueError,
    },
    /// The backend failed during the operation.
    #[error(transparent)]
    Backend(#[from] QueueError),
    /// No failed job has this id.
    #[error("no failed job with id {0}")]
    NoSuchJob(JobId),
    /// No queue has this name: nothing was ever pushed to it, paused or
    /// bounded. Nothing was written.
    #[error(
        "no queue named `{0}`: nothing was pushed to it, paused or bounded \
         (a queue can be paused before its first job with `--create`, `Admin::pause_ahead`)"
    )]
    NoSuchQueue(String),
    /// No batch has this id (never created, or pruned).
    #[error("no batch with id {0}")]
    NoSuchBatch(BatchId),
    /// The backend keeps no batches (an [`AnyBackend`](conc_bus::AnyBackend)
    /// made without its workflows).
    #[error(
        "this backend keeps no batches: open it with AnyBackend::with_workflows (every conc-bus queue keeps them)"
    )]
    NoBatches,
}

impl AdminError {
    /// The process exit code the `conc-bus` binary uses for it: 2 for a
    /// bad URL or a backend without batches for a batch command, 3 for a
    /// backend that is missing or unreachable, 4 for an unknown job, batch or queue,
    /// 1 for a backend failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::BadUrl { .. } | Self::NoBatches => 2,
            Self::NotFound { .. } | Self::NotAQueue { .. } | Self::Unreachable { .. } => 3,
            Self::NoSuchJob(_) | Self::NoSuchBatch(_) | Self::NoSuchQueue(_) => 4,
            Self::Backend(_) => 1,
        }
    }
}
