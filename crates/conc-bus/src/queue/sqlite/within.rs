//! Transactional enqueue: [`SqliteQueue::push_in`] writes jobs in a
//! transaction the application opened on the queue's file, so they (and
//! their unique locks) are stored if and only if that transaction commits.

use std::path::{Path, PathBuf};

use conc_core::config::ConfigError;

use super::SqliteQueue;
use super::schema::VERSION;
use super::writer::{Tx, push_error};
use super::{flow, store};
use crate::batch::{BatchId, NewBatch, PendingBatch, WorkflowError};
use crate::chain::Chain;
use crate::clock::millis;
use crate::id::JobId;
use crate::queue::backend::{Pushed, QueueBackend};
use crate::queue::error::PushError;
use crate::queue::front::Queue;

impl SqliteQueue {
    /// Stores `jobs` (all or none) inside `tx`, a transaction the caller
    /// opened on its own connection to this queue's file: a commit makes the
    /// jobs (and the unique locks and debounce records they take) visible
    /// together with the caller's own rows; a rollback drops them all.
    /// [`PendingDispatch::within`](crate::PendingDispatch::within) is the
    /// typed way to call it.
    ///
    /// The jobs are written in a savepoint of their own: a refusal (a held
    /// unique key, a full queue, a duplicate id) undoes only them, hands them
    /// back, and leaves `tx` usable.
    ///
    /// # The caller's connection
    ///
    /// - Open the queue's file itself (the path given to
    ///   [`SqliteQueue::open`]); the queue must have opened it first, so that
    ///   its schema is in place.
    /// - Begin with [`TransactionBehavior::Immediate`](rusqlite::TransactionBehavior::Immediate):
    ///   in WAL mode (the queue sets it on the file) a deferred transaction
    ///   that read first can fail to take the write lock (`SQLITE_BUSY`).
    /// - Keep it short: while it is open, the queue's own writes (workers'
    ///   reservations and settlements, other pushes) wait for it, up to their
    ///   busy timeout.
    /// - The commit is flushed as the caller's connection says
    ///   (`PRAGMA synchronous`; SQLite's default in WAL mode is `FULL`).
    ///
    /// Workers see the jobs once the caller commits, at their next poll (a
    /// waiting worker is not woken by another connection's commit). The
    /// queue's [`Overflow`](crate::Overflow) policy does not apply: a full
    /// queue refuses at once.
    ///
    /// # Errors
    ///
    /// [`PushError::Invalid`] (field `transaction`) when `tx` is on another
    /// file or on a file whose schema version is not this build's;
    /// [`PushError::Locked`], [`PushError::Full`] and
    /// [`PushError::Duplicate`] as for [`push`](QueueBackend::push);
    /// [`PushError::Backend`] when SQLite fails. The jobs come back in each.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::rusqlite::{Connection, TransactionBehavior};
    /// use conc_bus::{Job, JobOptions, Pushed, QueueBackend, SqliteQueue};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Ship { order: u64 }
    /// impl Job for Ship { const NAME: &'static str = "ship"; }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("app.db");
    /// let queue = SqliteQueue::open(&path)?;
    ///
    /// let mut conn = Connection::open(&path)?;
    /// let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    /// let envelope = conc_bus::Envelope::new(&Ship { order: 1 }, &JobOptions::default(), queue.now())?;
    /// queue.push_in(&tx, vec![Pushed::new(envelope, queue.now())])?;
    /// tx.rollback()?; // the job goes with it
    /// assert_eq!(queue.size("default").await?.ready, 0);
    /// # Ok(()) }
    /// ```
    pub fn push_in(
        &self,
        tx: &rusqlite::Transaction<'_>,
        jobs: Vec<Pushed>,
    ) -> Result<(), PushError> {
        if let Err(error) = self.check_transaction(tx) {
            return Err(PushError::Invalid { error, jobs });
        }
        // Raw envelopes are not sealed here: one marked encrypted must come
        // sealed (through `Queue::dispatch(..).within`, or a keyring's
        // `seal`), never be stored in clear.
        if let Some(name) = jobs.iter().find_map(|job| job.envelope.unsealed()) {
            let error = ConfigError::new(
                "keyring",
                name,
                "a job marked encrypted must be sealed before `push_in`: dispatch it through \
                 a `Queue` with a keyring (`dispatch(..).within(&tx)`)",
            );
            return Err(PushError::Invalid { error, jobs });
        }
        if jobs.is_empty() {
            return Ok(());
        }
        let now = self.now();
        let on = Tx::on(tx, now, &self.inner.shared.settings);
        match on.savepoint(|on| store::push(on, &jobs)) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(failure)) => Err(push_error(failure, jobs)),
            Err(error) => Err(PushError::Backend { error: Box::new(error), jobs }),
        }
    }

    /// Stores `batch` and its members inside `tx`, all or nothing (see
    /// [`push_in`](Self::push_in) for the caller's connection).
    fn create_batch_in(
        &self,
        tx: &rusqlite::Transaction<'_>,
        batch: NewBatch,
    ) -> Result<(), WorkflowError> {
        if let Err(error) = self.check_transaction(tx) {
            return Err(PushError::Invalid { error, jobs: batch.members }.into());
        }
        let on = Tx::on(tx, self.now(), &self.inner.shared.settings);
        match on.savepoint(|on| flow::create(on, &batch.record, &batch.members)) {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(failure)) => Err(push_error(failure, batch.members).into()),
            Err(error) => {
                Err(PushError::Backend { error: Box::new(error), jobs: batch.members }.into())
            }
        }
    }

    /// Refuses a transaction on another file, or on a file at another schema
    /// version.
    fn check_transaction(&self, tx: &rusqlite::Transaction<'_>) -> Result<(), ConfigError> {
        let theirs = tx.path().filter(|path| !path.is_empty()).map(Path::new);
        let same = match (theirs.map(std::fs::canonicalize), std::fs::canonicalize(self.path())) {
            (Some(Ok(theirs)), Ok(ours)) => theirs == ours,
            _ => false,
        };
        if !same {
            return Err(ConfigError::new(
                "transaction",
                theirs.map_or_else(|| PathBuf::from(":memory:"), Path::to_path_buf),
                format!("must be on the queue's file {}", self.path().display()),
            ));
        }
        let version: i64 =
            tx.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(|error| {
                ConfigError::new("transaction", error.to_string(), "must read the schema version")
            })?;
        if version != i64::from(VERSION) {
            return Err(ConfigError::new(
                "transaction",
                version,
                format!(
                    "must be on a file at schema version {VERSION} (open it with SqliteQueue first)"
                ),
            ));
        }
        Ok(())
    }
}

impl Queue<SqliteQueue> {
    /// Stores `batch` and pushes its members inside `tx`, the caller's own
    /// transaction on the queue's file (see [`SqliteQueue::push_in`]): the
    /// batch, its members and their locks exist if and only if `tx`
    /// commits. A refusal hands the members back (in
    /// [`WorkflowError::Push`]) and leaves `tx` usable. Its id.
    ///
    /// # Errors
    ///
    /// As [`dispatch_batch`](Self::dispatch_batch), plus
    /// [`PushError::Invalid`] (field `transaction`) for a transaction on
    /// another file or schema version.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::rusqlite::{Connection, TransactionBehavior};
    /// use conc_bus::batch::PendingBatch;
    /// use conc_bus::{Queue, SqliteQueue};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Resize { page: u32 }
    /// # impl conc_bus::Job for Resize { const NAME: &'static str = "resize"; }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("app.db");
    /// let queue = Queue::new(SqliteQueue::open(&path)?);
    /// let mut conn = Connection::open(&path)?;
    /// let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    /// let id = queue.dispatch_batch_within(PendingBatch::new().add(Resize { page: 1 }), &tx)?;
    /// tx.commit()?;
    /// assert_eq!(queue.batch(id).await?.map(|b| b.pending), Some(1));
    /// # Ok(()) }
    /// ```
    pub fn dispatch_batch_within(
        &self,
        batch: PendingBatch,
        tx: &rusqlite::Transaction<'_>,
    ) -> Result<BatchId, WorkflowError> {
        let mut new = batch.build(self.backend().now())?;
        // Sealed as at any push: the file never holds an encrypted payload in clear.
        new.members = self.seal(std::mem::take(&mut new.members))?;
        let id = new.id();
        self.backend().create_batch_in(tx, new)?;
        Ok(id)
    }

    /// Pushes the first link of `chain` inside `tx`, the caller's own
    /// transaction on the queue's file (see [`SqliteQueue::push_in`]); its id.
    ///
    /// # Errors
    ///
    /// As [`dispatch_batch_within`](Self::dispatch_batch_within).
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::rusqlite::{Connection, TransactionBehavior};
    /// use conc_bus::chain::Chain;
    /// use conc_bus::{Queue, SqliteQueue};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Step(u8);
    /// # impl conc_bus::Job for Step { const NAME: &'static str = "step"; }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("app.db");
    /// let queue = Queue::new(SqliteQueue::open(&path)?);
    /// let mut conn = Connection::open(&path)?;
    /// let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    /// queue.dispatch_chain_within(Chain::new(Step(1)).then(Step(2)), &tx)?;
    /// tx.rollback()?;
    /// assert_eq!(queue.size("default").await?.ready, 0);
    /// # Ok(()) }
    /// ```
    pub fn dispatch_chain_within(
        &self,
        chain: Chain,
        tx: &rusqlite::Transaction<'_>,
    ) -> Result<JobId, WorkflowError> {
        let (mut head, delay) = chain.into_head()?;
        let now = self.backend().now();
        head.created_at = now;
        let id = head.id;
        let jobs = self.seal(vec![Pushed::new(head, now.saturating_add(millis(delay)))])?;
        self.backend().push_in(tx, jobs)?;
        Ok(id)
    }
}
