//! [`BatchQuery`]: which batches a listing returns, by state, name and cursor.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::model::{BatchId, BatchInfo};

/// How many of the newest batches the default
/// [`WorkflowBackend::list_batches`](crate::queue::WorkflowBackend::list_batches)
/// looks through when it filters by state, name or cursor (a backend that
/// filters in its store, as the memory and SQLite queues do, has no such
/// bound).
pub const BATCH_SCAN: usize = 10_000;

/// Where a batch stands, as the listings filter it.
///
/// # Examples
///
/// ```
/// use conc_bus::batch::BatchState;
///
/// assert_eq!("finished".parse::<BatchState>(), Ok(BatchState::Finished));
/// assert_eq!(BatchState::Cancelled.to_string(), "cancelled");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum BatchState {
    /// Some members have no outcome yet, and it was not cancelled.
    Pending,
    /// Every member has an outcome, and it was not cancelled.
    Finished,
    /// It was cancelled (by hand, by a failure without `allow_failures`, or
    /// by its timeout).
    Cancelled,
}

impl BatchState {
    /// The state of `info`.
    pub fn of(info: &BatchInfo) -> Self {
        if info.is_cancelled() {
            Self::Cancelled
        } else if info.is_finished() {
            Self::Finished
        } else {
            Self::Pending
        }
    }
}

impl fmt::Display for BatchState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending",
            Self::Finished => "finished",
            Self::Cancelled => "cancelled",
        })
    }
}

impl FromStr for BatchState {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "pending" => Ok(Self::Pending),
            "finished" => Ok(Self::Finished),
            "cancelled" => Ok(Self::Cancelled),
            other => Err(format!("`{other}` is not a batch state: pending, finished, cancelled")),
        }
    }
}

/// Which batches a listing returns, newest first: by state, by name, a page
/// at a time (after a cursor).
///
/// # Examples
///
/// ```
/// use conc_bus::batch::{BatchQuery, BatchState};
///
/// let query = BatchQuery::new().state(BatchState::Pending).name("import").limit(20);
/// assert_eq!(query.limit, 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchQuery {
    /// Only batches in this state. Defaults to all.
    pub state: Option<BatchState>,
    /// Only batches whose name contains this (case-sensitive). Defaults to all.
    pub name: Option<String>,
    /// Only batches older than this one (the last of the previous page).
    pub before: Option<BatchId>,
    /// The most batches to list. Defaults to 50.
    pub limit: usize,
}

impl Default for BatchQuery {
    fn default() -> Self {
        Self { state: None, name: None, before: None, limit: 50 }
    }
}

impl BatchQuery {
    /// Every batch, 50 at a time.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only batches in `state`.
    #[must_use]
    pub fn state(mut self, state: BatchState) -> Self {
        self.state = Some(state);
        self
    }

    /// Only batches whose name contains `name`.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Only batches older than `id`.
    #[must_use]
    pub fn before(mut self, id: BatchId) -> Self {
        self.before = Some(id);
        self
    }

    /// At most `limit` batches.
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Whether `info` passes the state and name filters (not the cursor).
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::batch::{BatchQuery, BatchState};
    ///
    /// let query = BatchQuery::new().state(BatchState::Finished);
    /// # let _ = query;
    /// ```
    pub fn matches(&self, info: &BatchInfo) -> bool {
        self.state.is_none_or(|state| BatchState::of(info) == state)
            && self
                .name
                .as_deref()
                .is_none_or(|name| info.name.as_deref().is_some_and(|have| have.contains(name)))
    }

    /// Whether it filters or pages (anything but the newest `limit`).
    pub(crate) fn narrows(&self) -> bool {
        self.state.is_some() || self.name.is_some() || self.before.is_some()
    }

    /// `newest` (newest first, as [`WorkflowBackend::batches`](crate::queue::WorkflowBackend::batches)
    /// lists them) after the cursor, filtered, at most `limit`. A cursor no
    /// longer listed (pruned) pages by id.
    pub(crate) fn apply(&self, mut newest: Vec<BatchInfo>) -> Vec<BatchInfo> {
        if let Some(before) = self.before {
            match newest.iter().position(|info| info.id == before) {
                Some(at) => drop(newest.drain(..=at)),
                None => newest.retain(|info| info.id < before),
            }
        }
        newest.into_iter().filter(|info| self.matches(info)).take(self.limit).collect()
    }
}
