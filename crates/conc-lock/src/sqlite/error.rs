//! Why opening a SQLite lock file failed.

use std::path::PathBuf;

/// Opening a SQLite lock file failed: which file, at which step, and (as
/// the source) SQLite's own error. Reaches users as the source of
/// [`LockError::Backend`](crate::LockError::Backend).
#[derive(Debug, thiserror::Error)]
#[error("cannot open the SQLite lock file `{}`: {what}", .path.display())]
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

    /// A failure on `path` that SQLite did not report (a bad setting, a
    /// thread that could not start).
    pub(super) fn other(path: PathBuf, what: impl Into<String>) -> Self {
        Self { path, what: what.into(), source: None }
    }
}

/// A copy of `error` for every request of a batch that failed as a whole.
///
/// `rusqlite::Error` is not `Clone`; the errors a transaction's `BEGIN` or
/// `COMMIT` can give are `SqliteFailure`s, which copy exactly. Anything else
/// is copied as a `SqliteFailure` carrying its message.
pub(super) fn copy(error: &rusqlite::Error) -> rusqlite::Error {
    match error {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    }
}
