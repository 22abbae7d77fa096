//! `conc-lock`: the in-memory lock store beside what a user would write
//! instead in one process (a `tokio::sync::Mutex`, or a map of them per key).
//!
//! Everything runs on a current-thread tokio runtime, so the figures are the
//! cost of the operations themselves, without contention.
//!
//! `lock/funnel` takes and frees one slot of a funnel of 4 (`get` +
//! `release`, uncontended) against the in-process peer for "at most N at
//! once", a `tokio::sync::Semaphore` of 4 permits (`acquire` + drop).
//!
//! `lock/redis` puts the Redis store's acquire + release (two scripts) beside
//! the two raw commands it replaces, `SET NX PX` + `DEL`, sent through the same
//! client to a `redis-server` the bench starts on loopback. Without a
//! `redis-server` binary that group is skipped with a message.
//!
//! `lock/sqlite_uncontended` takes and releases one lock through a
//! `LockStore` on a `SqliteBackend` in a temporary file (`get` + `release`)
//! against the floor, no peer crate doing the same: one lock row written by
//! hand with rusqlite on the bench thread, `BEGIN IMMEDIATE; INSERT … ON
//! CONFLICT … DO UPDATE … RETURNING fence; COMMIT`, then the owner- and
//! fence-checked release `UPDATE`. Both files are in WAL mode with the same
//! durability: the acquisition's commit is flushed (`synchronous=FULL`), the
//! release's is not (`synchronous=NORMAL`). Ours adds the hop to its
//! connection thread and back.
#![allow(missing_docs, reason = "criterion's macros generate undocumented items")]

use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use conc_lock::{Lock, LockBackend, LockStore, MemoryBackend, SqliteBackend};
use criterion::{Criterion, criterion_group, criterion_main};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::runtime::Runtime;

const TTL: Duration = Duration::from_secs(60);

/// How many distinct names the keyed scenario cycles through.
const KEYS: usize = 10_000;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("a tokio runtime")
}

/// Takes the free `lock` and releases it: `get` + `release`.
async fn take_and_release<B: LockBackend>(lock: &Lock<B>) {
    let guard = lock.get().await.expect("the backend is up").expect("uncontended");
    black_box(guard.fence());
    guard.release().await.expect("held");
}

/// One lock, taken and released over and over: a `Lock` handle's `get` +
/// `release` against an uncontended `tokio::sync::Mutex`'s `lock` + drop.
/// `ours/get_with` is the same through `Lock::get_with`, whose hold borrows
/// the handle instead of making a guard that shares it.
fn uncontended(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("lock/uncontended");

    let store = LockStore::memory();
    let lock = store.lock("bench:uncontended", TTL).expect("valid lock");
    group.bench_function("ours", |b| {
        b.to_async(&rt).iter(|| take_and_release(&lock));
    });
    group.bench_function("ours/get_with", |b| {
        b.to_async(&rt).iter(|| async {
            let ran = lock
                .get_with(|fence| async move {
                    black_box(fence);
                })
                .await
                .expect("held to the end");
            assert!(ran.is_some(), "uncontended");
        });
    });

    let mutex = tokio::sync::Mutex::new(());
    group.bench_function("peer/tokio_mutex", |b| {
        b.to_async(&rt).iter(|| async {
            let guard = mutex.lock().await;
            black_box(&guard);
            drop(guard);
        });
    });
    group.finish();
}

/// Per-key locking over 10 000 keys, the next key each time (round robin), as
/// a job runner serialising work per customer does. `ours` makes a handle per
/// use (`store.lock(name, ttl)`, then `get` + `release`), as code that keeps
/// its guard does; `ours/get_with` is the one-shot call for code with a name
/// in hand, `store.get_with(name, ttl, work)`: acquire, run the work, release,
/// with no handle; `ours/prepared` reuses handles made up front. The peer is the usual
/// hand-rolled map: a std `Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>`
/// looked up (inserting on first use) then locked. It never forgets a key;
/// the store sweeps unused names.
fn keyed(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("lock/keyed_10k");
    let names: Vec<String> = (0..KEYS).map(|i| format!("customer:{i}")).collect();

    let store = LockStore::memory();
    let mut next = 0;
    group.bench_function("ours/get_with", |b| {
        b.to_async(&rt).iter(|| {
            let name = names[next].as_str();
            next = (next + 1) % KEYS;
            let store = &store;
            async move {
                let ran = store
                    .get_with(name, TTL, |fence| async move {
                        black_box(fence);
                    })
                    .await
                    .expect("held to the end");
                assert!(ran.is_some(), "uncontended");
            }
        });
    });

    let store = LockStore::memory();
    let mut next = 0;
    group.bench_function("ours", |b| {
        b.to_async(&rt).iter(|| {
            let name = names[next].as_str();
            next = (next + 1) % KEYS;
            let store = &store;
            async move { take_and_release(&store.lock(name, TTL).expect("valid lock")).await }
        });
    });

    let store = LockStore::memory();
    let handles: Vec<Lock<MemoryBackend>> =
        names.iter().map(|name| store.lock(name.as_str(), TTL).expect("valid lock")).collect();
    let mut next = 0;
    group.bench_function("ours/prepared", |b| {
        b.to_async(&rt).iter(|| {
            let lock = &handles[next];
            next = (next + 1) % KEYS;
            take_and_release(lock)
        });
    });

    let map: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>> = Mutex::default();
    let mut next = 0;
    group.bench_function("peer/mutex_hashmap", |b| {
        b.to_async(&rt).iter(|| {
            let name = names[next].as_str();
            next = (next + 1) % KEYS;
            let map = &map;
            async move {
                let mutex = {
                    let mut map = map.lock().expect("not poisoned");
                    match map.get(name) {
                        Some(mutex) => Arc::clone(mutex),
                        None => Arc::clone(map.entry(name.to_owned()).or_default()),
                    }
                };
                let guard = mutex.lock().await;
                black_box(&guard);
                drop(guard);
            }
        });
    });
    group.finish();
}

/// Acquire + release on Redis against the raw `SET NX PX` + `DEL` round trips
/// with the same client (a `ConnectionManager`) and the same server.
fn redis(c: &mut Criterion) {
    let server = match conc_test_support::RedisServer::start() {
        Ok(server) => server,
        Err(error) => {
            #[allow(
                clippy::print_stderr,
                reason = "a bench reports a skipped group on the terminal"
            )]
            {
                eprintln!("skipping lock/redis: {error}");
            }
            return;
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let url = server.url();
    let (store, raw) = rt.block_on(async {
        let backend = conc_lock::RedisBackend::connect(&url).await.expect("the bench server");
        let client = redis::Client::open(url.as_str()).expect("a redis url");
        let raw = redis::aio::ConnectionManager::new(client).await.expect("the bench server");
        (LockStore::new(backend), raw)
    });
    let lock = store.lock("bench:redis", TTL).expect("valid lock");

    let mut group = c.benchmark_group("lock/redis");
    group.bench_function("ours", |b| {
        b.to_async(&rt).iter(|| take_and_release(&lock));
    });
    group.bench_function("peer/set_nx_px_del", |b| {
        b.to_async(&rt).iter(|| {
            let mut raw = raw.clone();
            async move {
                let set: Option<String> = redis::cmd("SET")
                    .arg("bench:raw")
                    .arg("owner")
                    .arg("NX")
                    .arg("PX")
                    .arg(60_000)
                    .query_async(&mut raw)
                    .await
                    .expect("server up");
                black_box(set);
                let deleted: i64 = redis::cmd("DEL")
                    .arg("bench:raw")
                    .query_async(&mut raw)
                    .await
                    .expect("server up");
                black_box(deleted);
            }
        });
    });
    group.finish();
    drop(rt);
    drop(server);
}

/// Acquire + release through the SQLite store against one hand-written lock
/// row with the same statements and durability.
fn sqlite(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut group = c.benchmark_group("lock/sqlite_uncontended");

    let backend = SqliteBackend::open(dir.path().join("ours.db")).expect("a lock file");
    let store = LockStore::new(backend);
    let lock = store.lock("bench:sqlite", TTL).expect("valid lock");
    group.bench_function("ours", |b| {
        b.to_async(&rt).iter(|| take_and_release(&lock));
    });

    let mut row = RawLockRow::open(&dir.path().join("peer.db"));
    group.bench_function("peer/rusqlite_row", |b| {
        b.iter(|| {
            let fence = row.acquire().expect("uncontended");
            black_box(fence);
            assert!(row.release(fence), "held");
        });
    });
    group.finish();
}

/// One lock row in a SQLite file, the way a user would write it by hand.
struct RawLockRow {
    connection: Connection,
}

impl RawLockRow {
    const NAME: &'static str = "bench:sqlite";
    /// A random owner token's length: 32 hex digits.
    const OWNER: &'static str = "0123456789abcdef0123456789abcdef";

    /// Opens the file in WAL mode and creates the table.
    fn open(path: &Path) -> Self {
        let connection = Connection::open(path).expect("a bench file");
        connection.busy_timeout(Duration::from_secs(5)).expect("a busy timeout");
        let mode: String = connection
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .expect("WAL mode");
        assert!(mode.eq_ignore_ascii_case("wal"), "journal mode {mode}");
        connection
            .execute_batch(
                "CREATE TABLE locks (
                    name TEXT PRIMARY KEY NOT NULL,
                    owner TEXT,
                    fence INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL
                ) WITHOUT ROWID",
            )
            .expect("the table");
        Self { connection }
    }

    /// Takes the row if it is free or expired: one flushed transaction.
    fn acquire(&mut self) -> Option<i64> {
        self.synchronous("PRAGMA synchronous = FULL");
        let now = now_ms();
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("the write lock");
        let fence = transaction
            .prepare_cached(
                "INSERT INTO locks (name, owner, fence, expires_at) VALUES (?1, ?2, 1, ?3)
                ON CONFLICT (name) DO UPDATE
                SET owner = excluded.owner, fence = locks.fence + 1,
                    expires_at = excluded.expires_at
                WHERE locks.owner IS NULL OR locks.expires_at <= ?4
                RETURNING fence",
            )
            .expect("the statement")
            .query_row(params![Self::NAME, Self::OWNER, now + TTL_MS, now], |row| row.get(0))
            .optional()
            .expect("the file");
        transaction.commit().expect("the commit");
        fence
    }

    /// Releases the row if this owner holds it under `fence`: one commit,
    /// not flushed.
    fn release(&mut self, fence: i64) -> bool {
        self.synchronous("PRAGMA synchronous = NORMAL");
        let released = self
            .connection
            .prepare_cached(
                "UPDATE locks SET owner = NULL
                WHERE name = ?1 AND owner = ?2 AND expires_at > ?3 AND fence = ?4",
            )
            .expect("the statement")
            .execute(params![Self::NAME, Self::OWNER, now_ms(), fence])
            .expect("the file");
        released == 1
    }

    fn synchronous(&self, pragma: &str) {
        self.connection.prepare_cached(pragma).expect("the pragma").execute([]).expect("set");
    }
}

/// [`TTL`] in milliseconds.
const TTL_MS: i64 = 60_000;

/// Milliseconds since the UNIX epoch, as the SQLite store keeps expiry times.
fn now_ms() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970");
    i64::try_from(since_epoch.as_millis()).expect("a time in range")
}

/// One slot of a funnel of 4 taken and freed, against a semaphore of 4.
fn funnel(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("lock/funnel");
    let store = LockStore::memory();
    let funnel = store.funnel("bench:funnel", 4, TTL).expect("valid funnel");
    group.bench_function("ours", |b| {
        b.to_async(&rt).iter(|| async {
            let permit = funnel.get().await.expect("in memory").expect("a free slot");
            black_box(permit.fence());
            permit.release().await.expect("held");
        });
    });
    let semaphore = tokio::sync::Semaphore::new(4);
    group.bench_function("peer/tokio_semaphore", |b| {
        b.to_async(&rt).iter(|| async {
            let permit = semaphore.acquire().await.expect("open");
            black_box(&permit);
            drop(permit);
        });
    });
    group.finish();
}

criterion_group!(benches, uncontended, keyed, funnel, sqlite, redis);
criterion_main!(benches);
