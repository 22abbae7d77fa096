//! Locks with a time to live, an owner and a fencing token, and concurrency
//! limiters: in memory, in a SQLite file, or in Redis.
//!
//! # Overview
//!
//! The API is the shape of Laravel's `Cache::lock`, in Rust:
//!
//! | Laravel | here |
//! |---|---|
//! | `Cache::lock($name, $seconds)` | [`LockStore::lock`]`(name, ttl)` |
//! | `->get()` / `->get($callback)` | [`Lock::get`] / [`Lock::get_with`] |
//! | `Cache::lock($name, $seconds)->get($callback)` | [`LockStore::get_with`]`(name, ttl, work)` (no handle) |
//! | `->block($seconds)` / with a callback | [`Lock::block`] / [`Lock::block_with`] |
//! | `->release()` | [`LockGuard::release`] (or [`Lock::release`] for a restored handle) |
//! | `->owner()` / `->isOwnedByCurrentProcess()` | [`Lock::owner`] / [`Lock::is_owned`] |
//! | `Cache::restoreLock($name, $owner)` | [`LockStore::restore`] |
//! | `->forceRelease()` | [`LockStore::force_release`] |
//! | `Redis::funnel($name)->limit($n)` | [`LockStore::funnel`] |
//! | — | [`LockGuard::fence`], [`LockGuard::extend`], [`LockGuard::keep_alive`] |
//!
//! Every acquisition returns a [`Fence`]: a number that only grows per lock
//! name. These are **efficiency locks**: they keep two workers from doing the
//! same work most of the time, but a holder that stalls past its time to live
//! (a long GC pause, a stopped VM) can still act after someone else took the
//! lock. The fence is how the protected resource refuses that late holder:
//! it records the highest fence it has seen and rejects writes carrying a
//! lower one. There is no Redlock here; see `docs/lock.md`.
//!
//! # Feature flags
//!
//! - `sqlite`: `SqliteBackend`, locks in a SQLite file shared by the
//!   processes of one machine.
//! - `redis`: `RedisBackend`, locks in Redis shared by many machines.
//!
//! The in-memory backend is always available.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use conc_lock::{LockError, LockStore};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), LockError> {
//! let store = LockStore::memory();
//! let lock = store.lock("nightly-report", Duration::from_secs(60))?;
//!
//! // Wait up to five seconds for it, run the work, release.
//! let rows = lock
//!     .block_with(Duration::from_secs(5), |fence| async move {
//!         // Hand `fence` to every write the report makes.
//!         fence.get() * 0 + 1_024
//!     })
//!     .await?;
//! assert_eq!(rows, 1_024);
//! # Ok(()) }
//! ```
//!
//! # What it replaces
//!
//! | need | usual choice | here |
//! |---|---|---|
//! | keyed in-process locks | a `Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>` | [`MemoryBackend`]: sharded, expiring, fenced |
//! | Redis locks | hand-written `SET NX PX`, `redlock` crates | `RedisBackend`: owner-checked Lua, fences, server time |
//! | Laravel's `Cache::lock` / `funnel` | — | [`LockStore`], [`Funnel`] |
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.88.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

mod backend;
mod error;
mod fence;
mod funnel;
mod guard;
mod lock;
mod loom;
mod memory;
mod metrics;
mod name;
mod owner;
#[cfg(feature = "redis")]
mod redis;
mod scoped;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;
mod ttl;
mod wait;

pub use backend::{Acquisition, LockBackend, SlotAcquisition};
pub use error::LockError;
pub use fence::Fence;
pub use funnel::{Funnel, FunnelPermit};
pub use guard::LockGuard;
pub use lock::Lock;
pub use memory::{MemoryBackend, MemoryBackendBuilder, MemorySlot};
pub use metrics::LockMetrics;
pub use name::MAX_NAME_LEN;
pub use owner::{MAX_OWNER_LEN, Owner};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::{RedisBackend, RedisBackendBuilder, RedisKeys};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::{SqliteBackend, SqliteBackendBuilder};
pub use store::{LockStore, MAX_FUNNEL_LIMIT};
pub use ttl::MAX_TTL;

/// The guide's examples are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/lock.md")]
struct LockGuide;
