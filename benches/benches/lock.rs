//! `conc-lock`: the in-memory lock store beside what a user would write
//! instead in one process (a `tokio::sync::Mutex`, or a map of them per key).
//!
//! Everything runs on a current-thread tokio runtime, so the figures are the
//! cost of the operations themselves, without contention.
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

criterion_group!(benches, uncontended, keyed);
criterion_main!(benches);
