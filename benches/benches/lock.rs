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
#![allow(missing_docs, reason = "criterion's macros generate undocumented items")]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conc_lock::{Lock, LockStore, MemoryBackend};
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;

const TTL: Duration = Duration::from_secs(60);

/// How many distinct names the keyed scenario cycles through.
const KEYS: usize = 10_000;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("a tokio runtime")
}

/// One lock, taken and released over and over: a `Lock` handle's `get` +
/// `release` against an uncontended `tokio::sync::Mutex`'s `lock` + drop.
fn uncontended(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("lock/uncontended");

    let store = LockStore::memory();
    let lock = store.lock("bench:uncontended", TTL).expect("valid lock");
    group.bench_function("ours", |b| {
        b.to_async(&rt).iter(|| async {
            let guard = lock.get().await.expect("in memory").expect("uncontended");
            black_box(guard.fence());
            guard.release().await.expect("held");
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
/// use (`store.lock(name, ttl)`, then `get` + `release`), as keyed code does;
/// `ours/prepared` reuses handles made up front. The peer is the usual
/// hand-rolled map: a std `Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>`
/// looked up (inserting on first use) then locked. It never forgets a key;
/// the store sweeps unused names.
fn keyed(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("lock/keyed_10k");
    let names: Vec<String> = (0..KEYS).map(|i| format!("customer:{i}")).collect();

    let store = LockStore::memory();
    let mut next = 0;
    group.bench_function("ours", |b| {
        b.to_async(&rt).iter(|| {
            let name = names[next].as_str();
            next = (next + 1) % KEYS;
            let store = &store;
            async move {
                let lock = store.lock(name, TTL).expect("valid lock");
                let guard = lock.get().await.expect("in memory").expect("uncontended");
                black_box(guard.fence());
                guard.release().await.expect("held");
            }
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
            async move {
                let guard = lock.get().await.expect("in memory").expect("uncontended");
                black_box(guard.fence());
                guard.release().await.expect("held");
            }
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
        b.to_async(&rt).iter(|| async {
            let guard = lock.get().await.expect("server up").expect("uncontended");
            black_box(guard.fence());
            guard.release().await.expect("held");
        });
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

criterion_group!(benches, uncontended, keyed, funnel, redis);
criterion_main!(benches);
