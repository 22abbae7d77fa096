//! Why opening a SQLite queue file failed.

use std::path::PathBuf;

/// Opening a SQLite queue file failed: which file, at which step, and (as
/// the source) SQLite's own error. Reaches users as the source of
/// [`QueueError::Backend`](crate::QueueError::Backend).
#[derive(Debug, thiserror::Error)]
#[error("cannot open the SQLite queue file `{}`: {what}", .path.display())]
pub(super) struct OpenError {
    /// The file.
    path: PathBuf,
    /// What went wrong.
    what: String,
    /// SQLite's error, when SQLite reported one.
    #[source]
    source: Option<rusqlite::Error>,
}

impl OpenError {
    /// A failure of step `what` on `path`, reported by SQLite.
    pub(super) fn sqlite(path: PathBuf, what: impl Into<String>, source: rusqlite::Error) -> Self {
        Self { path, what: what.into(), source: Some(source) }
    }

    /// A failure on `path` that SQLite did not report (a newer schema, a
    /// thread that could not start).
    pub(super) fn other(path: PathBuf, what: impl Into<String>) -> Self {
        Self { path, what: what.into(), source: None }
    }
}
