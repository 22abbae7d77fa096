//! Queues: the [`QueueBackend`] contract every backend keeps, the typed
//! [`Queue`] front, and the backends.
//!
//! Delivery is **at least once**: a job is leased to one worker at a time,
//! with an owner token ([`LeaseToken`]) that every transition carries and
//! that the backend checks; a worker that dies loses nothing (its leases
//! expire and the next reservation anywhere takes the jobs back), and a
//! worker that lost its lease is refused ([`LeaseLost`]) instead of
//! overwriting what the next holder did. A job may therefore run more than
//! once: handlers must be idempotent, and may use the lease token as a
//! fencing token for their side effects.

mod any;
mod backend;
mod beat;
mod dispatch;
mod error;
mod front;
mod lease;
pub(crate) mod memory;
#[cfg(feature = "redis")]
mod redis;
pub(crate) mod settle;
#[cfg(feature = "sqlite")]
mod sqlite;
mod workflow;
mod workflow_front;

pub use any::AnyBackend;
pub use backend::{
    FailedStore, Pushed, QueueBackend, QueueSize, Reservation, ReserveRequest, Settled, Settlement,
};
pub use beat::{BeatState, MISSED_BEATS, WorkerBeat};
pub use dispatch::{EnqueueError, PendingDispatch};
pub use error::{LeaseLost, PushError, QueueError};
pub use front::{Overflow, Queue};
pub use lease::{Lease, LeaseToken, Reserved};
pub use memory::{
    DEFAULT_FAILED_MAX_AGE, DEFAULT_FAILED_MAX_JOBS, MemoryQueue, MemoryQueueBuilder,
};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::{RedisQueue, RedisQueueBuilder};
pub use settle::Transition;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::{SqliteQueue, SqliteQueueBuilder, Synchronous};
pub use workflow::WorkflowBackend;
